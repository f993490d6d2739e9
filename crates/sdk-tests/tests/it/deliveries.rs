//! What a message created through the SDK turns into on the wire: the webhook reaches
//! a real receiver, verifies with the SDK's own `svix::webhooks::Webhook` and the key
//! `get_secret` returns, and carries the payload the SDK user gave.

use herald_testkit::{Backend, Receiver, TestApp, backends};
use serde_json::json;
use svix::{
    api::Svix,
    models::{ApplicationIn, EndpointIn, MessageIn},
    webhooks::Webhook,
};

/// A server that may deliver to loopback, one application with one endpoint pointing
/// at a fresh receiver; returns the application id.
async fn setup(backend: Backend) -> (TestApp, Svix, Receiver, String) {
    let app = TestApp::builder().backend(backend).allow_loopback().spawn().await;
    let svix = app.svix_client();
    let receiver = Receiver::start().await;
    let app_id = svix.application().create(ApplicationIn::new("deliveries".to_owned()), None).await.unwrap().id;
    let endpoint = EndpointIn::new(receiver.url("/hook"));
    svix.endpoint().create(app_id.clone(), endpoint, None).await.unwrap();
    (app, svix, receiver, app_id)
}

#[backends]
async fn delivered_webhook_verifies_with_the_sdk_and_the_endpoint_secret(backend: Backend) {
    let (_app, svix, receiver, app_id) = setup(backend).await;
    let endpoint_id = svix.endpoint().list(app_id.clone(), None).await.unwrap().data.remove(0).id;
    let secret = svix.endpoint().get_secret(app_id.clone(), endpoint_id).await.unwrap().key;
    let input = MessageIn::new("invoice.paid".to_owned(), json!({"invoice": "in_1", "cents": 1250}));

    let message = svix.message().create(app_id, input, None).await.unwrap();

    let got = receiver.wait_for(1).await;
    let webhook = Webhook::new(&secret).expect("get_secret returns a key the SDK accepts");
    webhook.verify(&got[0].body, &got[0].headers).expect("the SDK verifies Herald's signature");
    assert_eq!(got[0].header("svix-id"), Some(message.id.as_str()));
    assert_eq!(got[0].json(), json!({"invoice": "in_1", "cents": 1250}));
}

/// `MessageIn::new_raw_payload` (svix 2.x) sends `payload: {}` and the real body as
/// `transformationsParams.rawPayload`, to be delivered byte for byte.
#[backends]
async fn raw_payload_from_the_sdk_is_delivered_as_given(backend: Backend) {
    let (_app, svix, receiver, app_id) = setup(backend).await;
    let raw = r#"{ "kept":   "exactly", "as": [1.50] }"#;
    let input = MessageIn::new_raw_payload("raw.event".to_owned(), raw.to_owned());

    svix.message().create(app_id, input, None).await.unwrap();

    let got = receiver.wait_for(1).await;
    assert_eq!(String::from_utf8_lossy(&got[0].body), raw);
}
