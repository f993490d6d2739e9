//! The one error type of the API and its mapping to HTTP: every rejection leaves as the
//! contract's body, `{"code","detail"}` (`HttpErrorOut`) or, for 422,
//! `{"detail":[{"loc","msg","type"}]}` (`HTTPValidationError`).
//!
//! Server-side failures (5xx) carry no internals in their body; their cause chain is
//! logged once, here, when the response is built.

use std::{error::Error as StdError, fmt::Write as _};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use herald_core::{ValidationError, Violation};
use herald_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// `Retry-After` of a 503: a store outage (a restart, a full connection table) is
/// usually over within seconds, and clients that wait this long do not pile on.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// A boxed cause kept for logging.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Everything a request can fail with, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_request`: the body is not JSON at all, or the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401 `authentication_failed`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403 `insufficient_access`.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 413 `payload_too_large`.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// 422 with one entry per failed rule.
    #[error("validation failed")]
    Validation(Vec<Violation>),
    /// 429 `rate_limited`, with `Retry-After` in whole seconds.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// 503: the store cannot be reached; `Retry-After` says when to try again.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// 500: a bug or corrupt data.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// A single 422 violation at `loc`.
    pub fn invalid(loc: &[&str], msg: impl Into<String>) -> Self {
        Self::Validation(vec![Violation::new(loc, msg)])
    }

    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "authentication_failed",
            Self::Forbidden(_) => "insufficient_access",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The response body, as JSON bytes.
    pub fn body(&self) -> Vec<u8> {
        let result = match self {
            Self::Validation(violations) => serde_json::to_vec(&HttpValidationError {
                detail: violations
                    .iter()
                    .map(|v| ValidationErrorOut { loc: v.loc.clone(), msg: v.msg.clone(), kind: v.kind.clone() })
                    .collect(),
            }),
            other => serde_json::to_vec(&HttpErrorOut { code: other.code().to_owned(), detail: other.to_string() }),
        };
        result.unwrap_or_else(|_| br#"{"code":"internal_error","detail":"internal error"}"#.to_vec())
    }
}

/// Renders `err` and its sources as `a: b: c` for one log line.
pub(crate) fn cause_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause_chain(cause.as_ref()), "request failed")
            }
            Self::Unavailable(cause) => {
                tracing::warn!(error = %cause_chain(cause.as_ref()), "store unavailable")
            }
            _ => {}
        }
        let mut response = (status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            StoreError::Conflict(detail) => Self::Conflict(detail),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::Validation(err.0)
    }
}

/// The contract's error body for every status except 422.
#[derive(Debug, Serialize, ToSchema)]
#[schema(title = "HttpError")]
pub struct HttpErrorOut {
    pub code: String,
    pub detail: String,
}

/// The contract's 422 body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct HttpValidationError {
    pub detail: Vec<ValidationErrorOut>,
}

/// One failed rule in a 422 body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ValidationError)]
pub struct ValidationErrorOut {
    /// Where the bad value is, e.g. `["body", "uid"]`.
    pub loc: Vec<String>,
    /// What is wrong with it.
    pub msg: String,
    /// The kind of error, e.g. `value_error`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(err: &ApiError) -> Value {
        serde_json::from_slice(&err.body()).unwrap()
    }

    #[test]
    fn store_errors_map_to_contract_codes() {
        let cases = [
            (ApiError::from(StoreError::NotFound("application")), 404, "not_found"),
            (ApiError::from(StoreError::Conflict("uid taken".into())), 409, "conflict"),
            (ApiError::from(StoreError::Unavailable("db down".into())), 503, "service_unavailable"),
            (ApiError::from(StoreError::Internal("disk full at /var/x".into())), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(body(&err)["code"], code);
        }
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let err = ApiError::from(StoreError::Internal("disk full at /var/x".into()));
        assert_eq!(body(&err), json!({"code": "internal_error", "detail": "internal error"}));
    }

    #[test]
    fn validation_errors_use_the_422_shape() {
        let err = ApiError::invalid(&["body", "uid"], "bad uid");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body(&err), json!({"detail": [{"loc": ["body", "uid"], "msg": "bad uid", "type": "value_error"}]}));
    }

    #[test]
    fn rate_limited_sets_retry_after() {
        let response = ApiError::RateLimited { retry_after_secs: 3 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn unavailable_sets_retry_after() {
        let response = ApiError::from(StoreError::Unavailable("too many clients".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
