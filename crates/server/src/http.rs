//! The tower layers around the API router (request ids, tracing, a request timeout and
//! the body memory budget),
//! the listener of a worker-only node, and `GET /metrics`, which every role serves.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use herald_core::retry::format_duration;
use herald_metrics::{Metrics, QueueGauge};
use herald_store::DynStore;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::body_budget::{self, BodyBudget};

/// Wraps `router` in Herald's edge middleware, outermost first: a request id
/// (`x-request-id`, kept when the client sent one, echoed in the response), a tracing
/// span per request carrying that id, a deadline answered with a Svix error body, and
/// the shared budget of buffered body bytes (503 past it).
pub fn layers(router: Router, request_timeout: Duration, budget: BodyBudget) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                // The path only: query strings are the caller's business.
                let path = loggable_path(req.uri().path());
                tracing::info_span!("request", method = %req.method(), path, request_id)
            }))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn_with_state(request_timeout, timeout))
            .layer(middleware::from_fn_with_state(budget, body_budget::reserve)),
    )
}

/// The path as logged: an ingest URL's token is a credential, so `/ingest/{token}`
/// is shown with the token replaced (the API under `/ingest/api/` is logged as is).
fn loggable_path(path: &str) -> &str {
    match path.strip_prefix("/ingest/") {
        Some(rest) if !rest.starts_with("api/") => "/ingest/[redacted]",
        _ => path,
    }
}

/// The listener of a `worker` node: `GET /api/v1/health` (204 while the store answers,
/// 503 with a `{"code","detail"}` body when it does not) and 404 for everything else.
pub fn health_only(store: DynStore) -> Router {
    async fn health(State(store): State<DynStore>) -> Response {
        match store.ping().await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => {
                tracing::warn!(error = %e, "health check: the store does not answer");
                let body = serde_json::json!({"code": "store_unavailable", "detail": "The store does not answer."});
                let retry_after =
                    (header::RETRY_AFTER, HeaderValue::from(herald_api::error::UNAVAILABLE_RETRY_AFTER_SECS));
                (StatusCode::SERVICE_UNAVAILABLE, [retry_after], Json(body)).into_response()
            }
        }
    }
    async fn not_found() -> Response {
        let body = serde_json::json!({"code": "not_found", "detail": "This node runs the worker role only."});
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    }
    Router::new().route("/api/v1/health", axum::routing::get(health)).fallback(not_found).with_state(store)
}

/// `GET /metrics`: `metrics` in the Prometheus text format (`text/plain; version=0.0.4`),
/// with the queue depth read from the store at scrape time. It needs no token, like
/// health: the series carry counts and endpoint ids, never payloads or secrets. When the
/// store does not answer, the queue gauge is left out and the rest is still served.
pub fn metrics(store: DynStore, metrics: Arc<Metrics>) -> Router {
    async fn scrape(State((store, metrics)): State<(DynStore, Arc<Metrics>)>) -> Response {
        let queue = match store.queue_depth().await {
            Ok(depth) => Some(QueueGauge { pending: depth.pending, sending: depth.sending }),
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape: reading the queue depth failed");
                None
            }
        };
        let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
        ([(header::CONTENT_TYPE, content_type)], metrics.render(queue)).into_response()
    }
    Router::new().route("/metrics", axum::routing::get(scrape)).with_state((store, metrics))
}

/// Request ids: 128 random bits in hex.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:032x}", rand::random::<u128>());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Answers 408 `{"code":"request_timeout","detail":…}` when the inner service has not
/// produced a response head within `limit`. Streaming bodies (SSE) are not cut off.
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit = %format_duration(limit), "request timed out");
            let body = serde_json::json!({
                "code": "request_timeout",
                "detail": format!("The request did not complete within {}.", format_duration(limit)),
            });
            (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let router = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .route("/fast", get(|| async { "ok" }));
        layers(router, Duration::from_secs(30), BodyBudget::new(1024, 1024))
    }

    #[test]
    fn ingest_tokens_are_redacted_from_logged_paths() {
        assert_eq!(loggable_path("/ingest/AbCdEf0123456789AbCdEf0123456789"), "/ingest/[redacted]");
        assert_eq!(loggable_path("/ingest/"), "/ingest/[redacted]");
        assert_eq!(loggable_path("/ingest/api/v1/source/src_1/log"), "/ingest/api/v1/source/src_1/log");
        assert_eq!(loggable_path("/api/v1/app"), "/api/v1/app");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_the_deadline_gets_408_with_a_svix_body() {
        let response = app().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(response.headers().contains_key("x-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "request_timeout");
        assert_eq!(body["detail"], "The request did not complete within 30s.");
    }

    #[tokio::test]
    async fn request_ids_are_generated_or_kept() {
        let response = app().oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-request-id"].len(), 32);

        let request = Request::get("/fast").header("x-request-id", "abc-1").body(Body::empty()).unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-1");
    }
}
