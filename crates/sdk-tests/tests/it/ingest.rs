//! Ingest sources and their endpoints through `svix.ingest().source()` and
//! `svix.ingest().endpoint()`: create, list, get by id and uid, upsert, delete, token
//! rotation, and the endpoint's secret and headers, so the official models parse
//! Herald's answers (including the `type`/`config` pair of a source).

use std::collections::BTreeMap;

use herald_testkit::{Backend, TestApp, backends};
use svix::{
    api::{IngestSourceListOptions, Svix},
    models::{
        IngestEndpointHeadersIn, IngestEndpointIn, IngestEndpointSecretIn, IngestEndpointUpsertIn, IngestSourceIn,
        IngestSourceInConfig, IngestSourceOutConfig, StripeConfig,
    },
};

use crate::{http_error, validation_error};

const SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn stripe(name: &str, uid: Option<&str>) -> IngestSourceIn {
    IngestSourceIn {
        name: name.to_owned(),
        uid: uid.map(str::to_owned),
        metadata: None,
        config: IngestSourceInConfig::Stripe(StripeConfig::new("whsec_stripe_secret".to_owned())),
    }
}

async fn setup(backend: Backend) -> (TestApp, Svix) {
    let app = TestApp::builder().backend(backend).spawn().await;
    let svix = app.svix_client();
    (app, svix)
}

#[backends]
async fn sources_round_trip_through_the_sdk(backend: Backend) {
    let (app, svix) = setup(backend).await;
    let sources = svix.ingest().source();
    let created = sources.create(stripe("Stripe live", Some("stripe-live")), None).await.unwrap();
    assert!(created.id.starts_with("src_"));
    assert_eq!(created.config, IngestSourceOutConfig::Stripe(svix::models::StripeConfigOut {}));
    let url = created.ingest_url.clone().expect("the URL is shown on create");
    assert!(url.starts_with(&format!("{}/ingest/", app.base_url)), "{url}");

    let got = sources.get("stripe-live".to_owned()).await.unwrap();
    assert_eq!(
        (got.id.as_str(), got.name.as_str(), got.ingest_url.as_deref()),
        (created.id.as_str(), "Stripe live", None)
    );

    let generic = IngestSourceIn {
        name: "Hooks".to_owned(),
        uid: None,
        metadata: Some(BTreeMap::from([("team".to_owned(), "ops".to_owned())])),
        config: IngestSourceInConfig::GenericWebhook,
    };
    let upserted = sources.upsert("hooks".to_owned(), generic).await.unwrap();
    assert_eq!(upserted.uid.as_deref(), Some("hooks"));
    assert_eq!(upserted.config, IngestSourceOutConfig::GenericWebhook);
    let renamed = sources.upsert(created.id.clone(), stripe("Stripe", Some("stripe-live"))).await.unwrap();
    assert_eq!(renamed.name, "Stripe");

    let page = sources.list(Some(IngestSourceListOptions { limit: Some(1), ..Default::default() })).await.unwrap();
    assert_eq!(page.data.len(), 1);
    assert!(!page.done);
    let rest = sources
        .list(Some(IngestSourceListOptions { limit: Some(10), iterator: page.iterator, ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 1);
    assert!(rest.done);

    let rotated = sources.rotate_token(created.id.clone(), None).await.unwrap();
    assert_ne!(rotated.ingest_url, url);

    sources.delete("hooks".to_owned()).await.unwrap();
    let (status, body) = http_error(sources.get("hooks".to_owned()).await);
    assert_eq!((status, body.code.as_str()), (404, "not_found"));
    let bad = IngestSourceIn {
        name: "Empty".to_owned(),
        uid: None,
        metadata: None,
        config: IngestSourceInConfig::Stripe(StripeConfig::new(String::new())),
    };
    let detail = validation_error(sources.create(bad, None).await);
    assert_eq!(detail[0].loc, ["body", "config", "secret"]);
}

#[backends]
async fn ingest_endpoints_round_trip_through_the_sdk(backend: Backend) {
    let (_app, svix) = setup(backend).await;
    let source = svix.ingest().source().create(stripe("Stripe", Some("stripe")), None).await.unwrap();
    let endpoints = svix.ingest().endpoint();
    let input = IngestEndpointIn {
        uid: Some("billing".to_owned()),
        secret: Some(SECRET.to_owned()),
        headers: Some(BTreeMap::from([("x-team".to_owned(), "billing".to_owned())])),
        ..IngestEndpointIn::new("https://internal.example.com/stripe".to_owned())
    };
    let created = endpoints.create(source.id.clone(), input, None).await.unwrap();
    assert!(created.id.starts_with("ep_"));
    let got = endpoints.get("stripe".to_owned(), "billing".to_owned()).await.unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(endpoints.get_secret("stripe".to_owned(), "billing".to_owned()).await.unwrap().key, SECRET);

    endpoints
        .rotate_secret("stripe".to_owned(), "billing".to_owned(), IngestEndpointSecretIn::new(), None)
        .await
        .unwrap();
    assert_ne!(endpoints.get_secret("stripe".to_owned(), "billing".to_owned()).await.unwrap().key, SECRET);

    let headers = endpoints.get_headers("stripe".to_owned(), "billing".to_owned()).await.unwrap();
    assert_eq!(headers.headers.get("x-team").map(String::as_str), Some("billing"));
    let replacement = BTreeMap::from([("authorization".to_owned(), "Bearer internal".to_owned())]);
    endpoints
        .set_headers("stripe".to_owned(), "billing".to_owned(), IngestEndpointHeadersIn::new(replacement.clone()))
        .await
        .unwrap();
    assert_eq!(endpoints.get_headers("stripe".to_owned(), "billing".to_owned()).await.unwrap().headers, replacement);

    let upsert = IngestEndpointUpsertIn::new("https://audit.example.com/".to_owned());
    let audit = endpoints.upsert("stripe".to_owned(), "audit".to_owned(), upsert).await.unwrap();
    assert_eq!(audit.uid.as_deref(), Some("audit"));
    assert_eq!(endpoints.list("stripe".to_owned(), None).await.unwrap().data.len(), 2);
    endpoints.delete("stripe".to_owned(), "audit".to_owned()).await.unwrap();
    let (status, _) = http_error(endpoints.get("stripe".to_owned(), "audit".to_owned()).await);
    assert_eq!(status, 404);
}
