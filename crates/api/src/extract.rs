//! Our own extractors, so every rejection has the contract's shape: JSON bodies
//! (content type → 415, size → 413, syntax → 400, shape and rules → 422 with a `loc`),
//! path keys, and query strings split into pairs (read into typed parameters by
//! `query`). Also the body-limit middleware: a declared length over the
//! limit is refused before anything is read, and a streamed body is cut off at it.

use std::error::Error as StdError;

use axum::{
    body::Body,
    extract::{FromRequest, FromRequestParts, Path, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use herald_core::{ValidationError, validate};
use http_body_util::{LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::{Shared, error::ApiError};

/// Rules an input checks after it has the right shape.
pub trait Validate {
    /// Every broken rule, located under `body`.
    ///
    /// # Errors
    /// The violations, for a 422.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// A JSON body of type `T` that passed [`Validate`].
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = read_body(req.into_body()).await?;
        let value: T = parse_json(&bytes)?;
        value.validate()?;
        Ok(Self(value))
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json { Ok(()) } else { Err(ApiError::UnsupportedMediaType("expected content-type application/json")) }
}

/// Reads the whole body, which `limit_body` has already capped.
pub(crate) async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, usize::MAX).await.map_err(|err| {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(&err);
        while let Some(e) = cause {
            if e.is::<LengthLimitError>() {
                return ApiError::PayloadTooLarge;
            }
            cause = e.source();
        }
        ApiError::BadRequest("could not read the request body".to_owned())
    })
}

/// Parses JSON into `T`: syntax errors are 400, a wrong shape is 422 naming the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The fast path parses without path tracking; only a failure pays for a second
    // pass that finds where the bad value is.
    let err = match serde_json::from_slice::<T>(bytes) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    if !err.is_data() {
        return Err(ApiError::BadRequest(format!("invalid JSON: {}", strip_position(&err.to_string()))));
    }
    let mut loc = vec!["body".to_owned()];
    let mut msg = strip_position(&err.to_string()).to_owned();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(tracked) = serde_path_to_error::deserialize::<_, T>(&mut de) {
        for segment in tracked.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => loc.push(index.to_string()),
                Segment::Map { key } => loc.push(key.clone()),
                Segment::Enum { variant } => loc.push(variant.clone()),
                Segment::Unknown => {}
            }
        }
        msg = strip_position(&tracked.inner().to_string()).to_owned();
    }
    if let Some(field) = msg.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
        loc.push(field.to_owned());
        msg = "field required".to_owned();
    }
    Err(ApiError::Validation(vec![herald_core::Violation { loc, msg, kind: "type_error".to_owned() }]))
}

fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// Middleware: 413 for a declared length over the limit (before reading anything), and
/// a cap on the bytes a streamed body may deliver.
pub(crate) async fn limit_body(State(ctx): State<Shared>, req: Request, next: Next) -> Response {
    let max = ctx.config.max_body_bytes;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req.map(|body| Body::new(Limited::new(body, max)))).await
}

/// Path parameters, with a rejection in the contract's shape.
#[derive(Debug)]
pub struct Keys<T>(pub T);

impl<T, S> FromRequestParts<S> for Keys<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// Checks a path key that is an id or a `uid` (both follow the `uid` pattern).
///
/// # Errors
/// 422 located at `["path", name]`.
pub fn check_key(name: &str, value: &str) -> Result<(), ApiError> {
    validate::uid(value).map_err(|msg| ApiError::invalid(&["path", name], msg))
}

/// The raw query string as ordered pairs; never fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Self::parse(parts.uri.query().unwrap_or("")))
    }
}

impl Query {
    /// Splits `raw` into decoded pairs (invalid percent-escapes are kept lossily).
    pub fn parse(raw: &str) -> Self {
        Self(url::form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    fn matches(key: &str, name: &str) -> bool {
        key == name || key.strip_suffix("[]") == Some(name)
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| Self::matches(k, name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, from repeated keys and comma-separated lists alike.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| Self::matches(k, name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[test]
    fn arrays_accept_repeated_and_comma_separated_values() {
        let q = Query::parse("event_types=a&event_types=b,c&event_types%5B%5D=d&other=x&event_types=");
        assert_eq!(q.list("event_types"), ["a", "b", "c", "d"]);
        assert_eq!(q.list("missing"), Vec::<String>::new());
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        #[expect(dead_code, reason = "only parsed")]
        name: String,
        #[expect(dead_code, reason = "only parsed")]
        tags: Option<Vec<u8>>,
    }

    #[test]
    fn json_errors_are_located() {
        let err = parse_json::<Sample>(b"{\"name\": 1}").unwrap_err();
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "name"]));

        let err = parse_json::<Sample>(b"{\"name\": \"a\", \"tags\": [1, \"x\"]}").unwrap_err();
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "tags", "1"]));

        let err = parse_json::<Sample>(b"{}").unwrap_err();
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["body", "name"]));

        assert_eq!(parse_json::<Sample>(b"{\"name\": ").unwrap_err().status().as_u16(), 400);
        assert_eq!(parse_json::<Sample>(b"").unwrap_err().status().as_u16(), 400);
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = HeaderMap::new();
        assert!(require_json(&headers).is_err());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(require_json(&headers).is_err());
        headers.insert(header::CONTENT_TYPE, "application/JSON; charset=utf-8".parse().unwrap());
        assert!(require_json(&headers).is_ok());
    }

    proptest! {
        #[test]
        fn query_parsing_never_panics(raw in ".{0,200}") {
            let q = Query::parse(&raw);
            let _ = q.list("a");
            let _ = q.get("a");
        }

        #[test]
        fn json_parsing_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_json::<Sample>(&raw);
        }

        #[test]
        fn jsonish_parsing_never_panics(raw in "[{}\\[\\]\":,a-z0-9 ]{0,80}") {
            let _ = parse_json::<Sample>(raw.as_bytes());
        }
    }
}
