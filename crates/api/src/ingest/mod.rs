//! Inbound webhooks: ingest sources and the URL providers post to.
//!
//! A source (`sources`) has a URL token, a type (`source_types`: how its requests are
//! verified) and a hidden application whose endpoints (`endpoints`) receive what it
//! accepts. A request to the URL (`receive`) is rate limited and logged per source
//! (`guard`), verified, and stored as a message the dispatcher forwards like any other.
//! The endpoint handlers are the application endpoints' own bodies
//! (`routes::endpoints`), called with the source's application.

use axum::{
    Router,
    routing::{get, post},
};

use crate::Shared;

pub mod endpoints;
pub(crate) mod guard;
pub mod receive;
pub(crate) mod source_types;
pub mod sources;

/// The ingest URL itself: no bearer token, its own token is in the path.
pub(crate) fn public() -> Router<Shared> {
    Router::new().route(receive::PATH, post(receive::receive))
}

/// Ingest sources, their endpoints and logs (server-wide tokens only).
pub(crate) fn management() -> Router<Shared> {
    use endpoints as ie;
    use sources as src;
    Router::new()
        .route("/ingest/api/v1/source", get(src::list).post(src::create))
        .route(
            "/ingest/api/v1/source/{source_id}",
            get(src::get).put(src::upsert).patch(src::patch).delete(src::delete),
        )
        .route("/ingest/api/v1/source/{source_id}/token/rotate", post(src::rotate_token))
        .route("/ingest/api/v1/source/{source_id}/log", get(src::list_log))
        .route("/ingest/api/v1/source/{source_id}/endpoint", get(ie::list).post(ie::create))
        .route(
            "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}",
            get(ie::get).put(ie::upsert).delete(ie::delete),
        )
        .route("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret", get(ie::get_secret))
        .route("/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/secret/rotate", post(ie::rotate_secret))
        .route(
            "/ingest/api/v1/source/{source_id}/endpoint/{endpoint_id}/headers",
            get(ie::get_headers).put(ie::set_headers),
        )
}
