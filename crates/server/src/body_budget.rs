//! The memory budget for buffered request bodies, shared by all requests of a node.
//!
//! Each request's body is capped (`api.max_body_bytes`), but many slow uploads at once
//! would still hold that much each until their deadline. So before a request with a
//! body reaches its handler, the bytes it may buffer (its `Content-Length`, or the cap
//! for a chunked body) are reserved from `api.body_budget_bytes` and given back when
//! the handler has answered. A request that does not fit is answered 503 with
//! `Retry-After` at once, before any of its body is read; its connection drains the
//! unread body (see `connections`), it does not buffer it.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::Body as _;
use tokio::sync::Semaphore;

/// Seconds a client refused for the budget is asked to wait: uploads in progress
/// finish, or hit the body timeout, within seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// The shared budget, in bytes.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    max_body_bytes: usize,
}

impl BodyBudget {
    /// A budget of `budget_bytes` (at least one body of the largest size) for bodies
    /// of at most `max_body_bytes` each.
    pub fn new(budget_bytes: usize, max_body_bytes: usize) -> Self {
        // The configuration caps both at 1 GiB, far below the semaphore's maximum.
        let budget = budget_bytes.max(max_body_bytes).min(Semaphore::MAX_PERMITS);
        Self { bytes: Arc::new(Semaphore::new(budget)), max_body_bytes }
    }

    /// The bytes to reserve for `request`, or `None` when it buffers nothing: no body,
    /// or a declared length over the per-request cap, which the API refuses unread.
    fn needed(&self, request: &Request) -> Option<u32> {
        let hint = request.body().size_hint();
        let bytes = match hint.exact() {
            Some(0) => return None,
            Some(n) if n > self.max_body_bytes as u64 => return None,
            Some(n) => n,
            None => self.max_body_bytes as u64,
        };
        u32::try_from(bytes).ok()
    }
}

/// Middleware: reserves the request's body bytes for as long as its handler runs.
pub async fn reserve(State(budget): State<BodyBudget>, request: Request, next: Next) -> Response {
    let Some(needed) = budget.needed(&request) else { return next.run(request).await };
    let Ok(reserved) = budget.bytes.clone().try_acquire_many_owned(needed) else {
        tracing::debug!(body.bytes = needed, "body budget exhausted; refusing the request");
        return over_budget();
    };
    let response = next.run(request).await;
    drop(reserved);
    response
}

fn over_budget() -> Response {
    let body = serde_json::json!({
        "code": "service_unavailable",
        "detail": "Too many request bodies are being received at once; retry shortly.",
    });
    let retry_after = (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    (StatusCode::SERVICE_UNAVAILABLE, [retry_after], Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::post};
    use tower::ServiceExt;

    use super::*;

    fn request(len: usize) -> Request {
        Request::post("/").header("content-length", len).body(Body::from(vec![b'x'; len])).unwrap()
    }

    #[tokio::test]
    async fn a_body_past_the_budget_is_refused_with_retry_after() {
        let budget = BodyBudget::new(100, 80);
        let held = budget.bytes.clone().try_acquire_many_owned(50).unwrap();
        let app = Router::new()
            .route("/", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(budget.clone(), reserve));

        let refused = app.clone().oneshot(request(60)).await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(refused.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "service_unavailable");

        assert_eq!(app.clone().oneshot(request(50)).await.unwrap().status(), StatusCode::OK);
        // Over the per-request cap: left to the API's 413, nothing reserved.
        assert_eq!(app.clone().oneshot(request(90)).await.unwrap().status(), StatusCode::OK);
        drop(held);
        assert_eq!(app.oneshot(request(60)).await.unwrap().status(), StatusCode::OK);
        assert_eq!(budget.bytes.available_permits(), 100, "every reservation is given back");
    }
}
