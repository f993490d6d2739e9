//! `herald-bench forwarder`: the yardstick. A server that speaks the few API calls the
//! benches make (create an application, its endpoints, messages) and forwards each
//! message at once as a signed webhook to every endpoint, storing nothing: no database,
//! no queue, no retries, no attempt log. What it reaches on a machine is what the
//! harness, the HTTP stack and signing allow there, so Herald's figures are read as a
//! ratio to it, measured in the same run.
//!
//! It runs as its own process, like `herald serve`, so both compete for the same cores
//! with the load generator and the receiver. It keeps the endpoints of each application
//! in memory (configuration, not data) and answers a message with 202 before sending it.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use clap::Args;
use herald_signature::{SigningSecret, SymmetricKey, sign};
use serde_json::{json, value::RawValue};
use tokio::sync::Semaphore;

/// Most webhooks in flight at once, as Herald's default `max_in_flight`.
const MAX_IN_FLIGHT: usize = 500;

#[derive(Args)]
pub struct ForwarderArgs {
    /// Address to listen on; the bound address is printed as `Forwarder listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

struct Endpoint {
    url: String,
    secret: SigningSecret,
}

struct Forwarder {
    apps: RwLock<HashMap<String, Vec<Arc<Endpoint>>>>,
    next_id: AtomicU64,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

impl Forwarder {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

pub async fn run(args: ForwarderArgs) -> anyhow::Result<()> {
    let state = Arc::new(Forwarder {
        apps: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        http: reqwest::Client::builder().pool_max_idle_per_host(MAX_IN_FLIGHT).build()?,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    });
    let app = Router::new()
        .route("/api/v1/app", post(create_app))
        .route("/api/v1/app/{app}/endpoint", post(create_endpoint))
        .route("/api/v1/app/{app}/msg", post(create_message))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.listen).await.context("binding the forwarder")?;
    println!("Forwarder listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await.context("serving")
}

async fn create_app(State(state): State<Arc<Forwarder>>) -> Response {
    let id = state.id("app");
    state.apps.write().expect("apps lock").insert(id.clone(), Vec::new());
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn create_endpoint(
    State(state): State<Arc<Forwarder>>,
    Path(app): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let Some(url) = body["url"].as_str() else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let endpoint =
        Arc::new(Endpoint { url: url.to_owned(), secret: SigningSecret::Symmetric(SymmetricKey::generate()) });
    match state.apps.write().expect("apps lock").get_mut(&app) {
        Some(endpoints) => endpoints.push(endpoint),
        None => return StatusCode::NOT_FOUND.into_response(),
    }
    (StatusCode::CREATED, Json(json!({ "id": state.id("ep") }))).into_response()
}

/// The body is parsed as Herald parses it (the payload kept as its raw bytes), answered,
/// then signed and sent once to each endpoint.
async fn create_message(State(state): State<Arc<Forwarder>>, Path(app): Path<String>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct MessageIn<'a> {
        #[serde(rename = "eventType")]
        event_type: &'a str,
        #[serde(borrow)]
        payload: &'a RawValue,
    }
    let Ok(message) = serde_json::from_slice::<MessageIn<'_>>(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let Some(endpoints) = state.apps.read().expect("apps lock").get(&app).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = state.id("msg");
    let payload = Bytes::copy_from_slice(message.payload.get().as_bytes());
    let answer = Json(json!({ "id": id, "eventType": message.event_type }));
    for endpoint in endpoints {
        let (state, id, payload) = (state.clone(), id.clone(), payload.clone());
        tokio::spawn(async move {
            let Ok(_permit) = state.in_flight.clone().acquire_owned().await else { return };
            let timestamp = chrono::Utc::now().timestamp();
            let signature = sign(&endpoint.secret, &id, timestamp, &payload);
            let _ = state
                .http
                .post(&endpoint.url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(payload)
                .send()
                .await;
        });
    }
    (StatusCode::ACCEPTED, answer).into_response()
}
