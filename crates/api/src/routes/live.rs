//! `GET /app/{app_id}/live`: a minimal built-in page that shows an application's
//! latest messages (from the message list) and appends new ones from the live stream.
//!
//! It is one static HTML file with its script and style inline, embedded in the binary;
//! no build step, nothing loaded from elsewhere. The page needs no token to be served:
//! its script reads the token from the URL fragment (`#token=…`, which browsers never
//! send) and calls the API with it. The Content-Security-Policy allows only the inline
//! script and style by hash and connections to this origin.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::Shared;

const PAGE: &str = include_str!("live/live.html");

/// The CSP source (`'sha256-…'`) of the inline block between `open` and `</close>`.
fn inline_hash(open: &str, close: &str) -> String {
    let body = PAGE.split_once(open).and_then(|(_, rest)| rest.split_once(close)).map_or("", |(inner, _)| inner);
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes())))
}

static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        inline_hash("<script>", "</script>"),
        inline_hash("<style>", "</style>"),
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// Serves the page for any application key: the API calls it makes are authorized.
pub(crate) async fn page(State(_): State<Shared>) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CONTENT_SECURITY_POLICY, POLICY.clone()),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, PAGE).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_inline_blocks() {
        let policy = POLICY.to_str().unwrap();
        assert!(policy.contains("script-src 'sha256-"), "{policy}");
        assert!(policy.contains("style-src 'sha256-"), "{policy}");
        assert!(!PAGE.contains("innerHTML"), "the page never renders markup it was given");
    }
}
