//! `/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers`: the custom headers Herald adds
//! to every request to an endpoint. Get, replace (PUT) and merge (PATCH; a `null` value
//! or `deleteHeaders` removes). Names are compared case-insensitively, and headers
//! Herald sets itself cannot be overridden.

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode};
use herald_core::{ValidationError, model::Endpoint, validate::Checker};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::load_endpoint;
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Validate},
    params::AppEndpointPath,
};

/// Headers Herald sets on every webhook, which an endpoint may not override.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];
const RESERVED_PREFIXES: &[&str] = &["webhook-", "svix-"];
/// Headers listed as sensitive in `EndpointHeadersOut`.
const SENSITIVE: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key"];
const MAX_HEADERS: usize = 100;

/// Replacement headers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    pub headers: BTreeMap<String, String>,
}

/// Changes to headers: a value sets, `null` removes; `deleteHeaders` removes too.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    pub headers: BTreeMap<String, Option<String>>,
    /// A list of headers to be removed.
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

/// An endpoint's headers, and which of them are sensitive.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    pub headers: BTreeMap<String, String>,
    pub sensitive: Vec<String>,
}

/// Records a violation for each header name or value that cannot be used.
pub(crate) fn check_headers<'a>(
    check: &mut Checker,
    headers: impl ExactSizeIterator<Item = (&'a String, Option<&'a String>)>,
) {
    check.check(headers.len() <= MAX_HEADERS, &["body", "headers"], format!("at most {MAX_HEADERS} headers"));
    for (name, value) in headers {
        let loc = ["body", "headers", name.as_str()];
        let lower = name.to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            check.check(false, &loc, "not a valid HTTP header name");
        } else if RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            check.check(false, &loc, "this header is set by Herald and cannot be overridden");
        }
        if let Some(value) = value {
            check.check(axum::http::HeaderValue::from_str(value).is_ok(), &loc, "not a valid HTTP header value");
        }
    }
}

impl Validate for EndpointHeadersIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_headers(&mut check, self.headers.iter().map(|(k, v)| (k, Some(v))));
        check.finish()
    }
}

impl Validate for EndpointHeadersPatchIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        check_headers(&mut check, self.headers.iter().map(|(k, v)| (k, v.as_ref())));
        check.finish()
    }
}

fn remove(headers: &mut BTreeMap<String, String>, name: &str) {
    headers.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

/// Applies a patch to `headers`.
pub(crate) fn merge(headers: &mut BTreeMap<String, String>, patch: EndpointHeadersPatchIn) {
    for name in &patch.delete_headers {
        remove(headers, name);
    }
    for (name, value) in patch.headers {
        remove(headers, &name);
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
}

/// The headers as returned, with the sensitive-looking names listed.
pub(crate) fn out(headers: BTreeMap<String, String>) -> EndpointHeadersOut {
    let sensitive = headers.keys().filter(|k| SENSITIVE.iter().any(|s| k.eq_ignore_ascii_case(s))).cloned().collect();
    EndpointHeadersOut { headers, sensitive }
}

/// Get Endpoint Headers.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", operation_id = "v1.endpoint.get-headers", tag = "Endpoint",
    params(AppEndpointPath),
    responses((status = 200, body = EndpointHeadersOut)))]
pub(crate) async fn get(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
) -> Result<axum::Json<EndpointHeadersOut>, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    Ok(axum::Json(out(endpoint.headers)))
}

/// Set Endpoint Headers: replaces them all.
#[utoipa::path(put, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", operation_id = "v1.endpoint.set-headers", tag = "Endpoint",
    params(AppEndpointPath),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "No content")))]
pub(crate) async fn put(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
    Json(input): Json<EndpointHeadersIn>,
) -> Result<StatusCode, ApiError> {
    let (_, endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    replace(&ctx, endpoint, input.headers).await
}

/// Gives `endpoint` exactly `headers` and stores it: 204.
///
/// # Errors
/// Store failures.
pub(crate) async fn replace(
    ctx: &Shared,
    mut endpoint: Endpoint,
    headers: BTreeMap<String, String>,
) -> Result<StatusCode, ApiError> {
    endpoint.headers = headers;
    endpoint.updated_at = ctx.now();
    ctx.store.update_endpoint(endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Patch Endpoint Headers: merges the given ones in.
#[utoipa::path(patch, path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", operation_id = "v1.endpoint.patch-headers", tag = "Endpoint",
    params(AppEndpointPath),
    request_body = EndpointHeadersPatchIn,
    responses((status = 204, description = "No content")))]
pub(crate) async fn patch(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(path): Keys<AppEndpointPath>,
    Json(input): Json<EndpointHeadersPatchIn>,
) -> Result<StatusCode, ApiError> {
    let (_, mut endpoint) = load_endpoint(&ctx, &auth, &path.app_id, &path.endpoint_id).await?;
    merge(&mut endpoint.headers, input);
    if endpoint.headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid(&["body", "headers"], format!("at most {MAX_HEADERS} headers")));
    }
    endpoint.updated_at = ctx.now();
    ctx.store.update_endpoint(endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn patch_sets_replaces_and_removes_case_insensitively() {
        let mut headers = map(&[("X-A", "1"), ("X-B", "2"), ("X-C", "3")]);
        let patch: EndpointHeadersPatchIn =
            serde_json::from_str(r#"{"headers":{"x-a":"10","X-B":null,"X-D":"4"},"deleteHeaders":["x-c"]}"#).unwrap();
        merge(&mut headers, patch);
        assert_eq!(headers, map(&[("X-D", "4"), ("x-a", "10")]));
    }

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        for bad in ["webhook-id", "Svix-Signature", "Content-Type", "host", "bad header", ""] {
            let input = EndpointHeadersIn { headers: map(&[(bad, "v")]) };
            assert!(input.validate().is_err(), "{bad}");
        }
        let bad_value = EndpointHeadersIn { headers: map(&[("X-Ok", "line\nbreak")]) };
        assert!(bad_value.validate().is_err());
        assert!(EndpointHeadersIn { headers: map(&[("Authorization", "Bearer x")]) }.validate().is_ok());
    }

    #[test]
    fn sensitive_names_are_listed_but_not_hidden() {
        let shown = out(map(&[("Authorization", "Bearer x"), ("X-A", "1")]));
        assert_eq!(shown.sensitive, ["Authorization"]);
        assert_eq!(shown.headers["Authorization"], "Bearer x");
    }
}
