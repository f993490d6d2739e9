//! The `idempotency-key` header on POST: the same key (for the same token, method and
//! path) within 24 hours gets the first response back and changes nothing.
//!
//! The generic path is a middleware over the store's claim/complete/release calls.
//! Message creation does not use it: it writes the message and its idempotency record
//! in one transaction (see `routes::messages`), the hot path staying one store call.

use std::time::Duration;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use herald_store::{IdempotencyClaim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::{Shared, auth::Auth, error::ApiError};

/// The request header carrying the client's key.
pub const HEADER: &str = "idempotency-key";
/// Set on a response that was replayed from an earlier request.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a key is remembered.
pub const KEY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// How long a request waits for a concurrent one holding the same key.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(25);
/// Responses larger than this are not kept (ours are far smaller).
const MAX_STORED_BODY: usize = 1024 * 1024;

/// The stored form of a client key: a hash over who asked, where, and the key, so one
/// token's keys never answer another token's requests.
pub fn scoped_key(auth: &Auth, method: &Method, path: &str, key: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [auth.token_id.as_str().as_bytes(), method.as_str().as_bytes(), path.as_bytes(), key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    crate::auth::hex(&hasher.finalize())
}

/// When a key claimed at `now` expires.
pub fn expires_at(now: DateTime<Utc>) -> DateTime<Utc> {
    now + KEY_TTL
}

/// Builds the response for a replayed key.
pub fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let has_body = !stored.body.is_empty();
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if has_body {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Middleware for every POST except message creation: claim, run, store the answer.
pub(crate) async fn middleware(State(ctx): State<Shared>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (Some(key), Some(auth)) = (req.headers().get(HEADER), req.extensions().get::<Auth>()) else {
        return next.run(req).await;
    };
    let scoped = scoped_key(auth, req.method(), req.uri().path(), key.as_bytes());
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    loop {
        let claim = match ctx.store.claim_idempotency_key(&scoped, expires_at((ctx.clock)())).await {
            Ok(claim) => claim,
            Err(err) => return ApiError::from(err).into_response(),
        };
        match claim {
            IdempotencyClaim::Claimed => return run_and_record(&ctx, &scoped, req, next).await,
            IdempotencyClaim::Completed(stored) => return replay(stored),
            IdempotencyClaim::InProgress if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL_EVERY).await;
            }
            IdempotencyClaim::InProgress => {
                return ApiError::Conflict("a request with this idempotency key is still in progress".into())
                    .into_response();
            }
        }
    }
}

async fn run_and_record(ctx: &Shared, scoped: &str, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status().is_server_error() {
        // A server error is not an answer worth repeating: let a retry run again.
        release(ctx, scoped).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            release(ctx, scoped).await;
            return ApiError::Internal(err.into()).into_response();
        }
    };
    let stored = StoredResponse { status: parts.status.as_u16(), body: bytes.to_vec() };
    if let Err(err) = ctx.store.complete_idempotency_key(scoped, stored).await {
        tracing::warn!(error = %crate::error::cause_chain(&err), "could not record idempotent response");
        release(ctx, scoped).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(ctx: &Shared, scoped: &str) {
    if let Err(err) = ctx.store.release_idempotency_key(scoped).await {
        tracing::warn!(error = %crate::error::cause_chain(&err), "could not release idempotency key");
    }
}

#[cfg(test)]
mod tests {
    use herald_core::TokenId;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn keys_are_scoped_by_token_method_and_path() {
        let mut rng = StdRng::seed_from_u64(3);
        let now = Utc::now();
        let a = Auth { token_id: TokenId::generate(now, &mut rng), app_id: None };
        let b = Auth { token_id: TokenId::generate(now, &mut rng), app_id: None };
        let base = scoped_key(&a, &Method::POST, "/api/v1/app", b"k");
        assert_eq!(base, scoped_key(&a, &Method::POST, "/api/v1/app", b"k"));
        assert_ne!(base, scoped_key(&b, &Method::POST, "/api/v1/app", b"k"));
        assert_ne!(base, scoped_key(&a, &Method::POST, "/api/v1/event-type", b"k"));
        assert_ne!(base, scoped_key(&a, &Method::POST, "/api/v1/app", b"k2"));
        // Length prefixes keep the parts from running into each other.
        assert_ne!(scoped_key(&a, &Method::POST, "/a", b"b/c"), scoped_key(&a, &Method::POST, "/a/b", b"c"));
    }

    #[test]
    fn replays_carry_the_stored_answer() {
        let response = replay(StoredResponse { status: 201, body: b"{}".to_vec() });
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[REPLAYED], "true");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
