//! The endpoint request and response types (`EndpointIn`, `EndpointUpsertIn`,
//! `EndpointPatch`, `EndpointOut`) and the field rules they check: URL
//! syntax, filters, channels and custom headers. Old names (`filterTypes`, `rateLimit`)
//! are accepted as aliases.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use herald_core::{
    AppId, EndpointId, ValidationError,
    model::{Endpoint, EndpointSecret},
    validate::{self, Checker},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::headers::check_headers;
use crate::{extract::Validate, routes::patch_field};

/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 65_536;
/// A new endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    #[schema(format = "uri", min_length = 1, max_length = 65536, example = "https://example.com/webhook/")]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, alias = "rateLimit")]
    #[schema(minimum = 1, format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// The endpoint's verification secret: `whsec_` and base64 of 24–64 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// The body of an endpoint upsert: an endpoint without secret and headers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointUpsertIn {
    #[schema(format = "uri", min_length = 1, max_length = 65536)]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, alias = "rateLimit")]
    #[schema(minimum = 1, format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Changes to some fields of an endpoint; `null` clears a nullable field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, alias = "rateLimit", deserialize_with = "patch_field")]
    #[schema(value_type = Option<u16>, format = "uint16")]
    pub throttle_rate: Option<Option<u16>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub uid: Option<Option<String>>,
    #[serde(default)]
    #[schema(format = "uri")]
    pub url: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "patch_field")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<Vec<String>>)]
    pub channels: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// An endpoint as returned (never with its secret or headers).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    /// The Endpoint's ID.
    #[schema(value_type = String, example = "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: EndpointId,
    pub metadata: BTreeMap<String, String>,
    #[schema(format = "uri")]
    pub url: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uint16")]
    pub throttle_rate: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[schema(default = false, required = false)]
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            metadata: e.metadata,
            url: e.url,
            description: e.description,
            throttle_rate: e.throttle_rate,
            uid: e.uid,
            disabled: e.disabled,
            event_types: e.event_types,
            channels: e.channels,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

crate::list_schema!(EndpointList, ListResponse_EndpointOut_, EndpointOut);

/// Checks an endpoint URL: http or https, with a host, at most 64 KiB.
///
/// # Errors
/// The reason, for a violation.
pub fn check_url(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("url must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("url is invalid: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("url must use http or https".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("url must have a host".to_owned());
    }
    Ok(())
}

fn check_list(
    check: &mut Checker,
    field: &str,
    list: Option<&Vec<String>>,
    max: usize,
    rule: fn(&str) -> Result<(), String>,
) {
    if let Some(list) = list {
        check.check(!list.is_empty(), &["body", field], format!("{field} must not be empty (omit it for all)"));
        check.rule(&["body", field], validate::unique_list(list, max, rule));
    }
}

/// The rules shared by create, upsert and patch.
struct Fields<'a> {
    url: Option<&'a str>,
    uid: Option<&'a String>,
    throttle_rate: Option<u16>,
    event_types: Option<&'a Vec<String>>,
    channels: Option<&'a Vec<String>>,
}

impl Fields<'_> {
    fn check(&self, check: &mut Checker) {
        if let Some(url) = self.url {
            check.rule(&["body", "url"], check_url(url));
        }
        if let Some(uid) = self.uid {
            check.rule(&["body", "uid"], validate::uid(uid));
        }
        check.check(self.throttle_rate != Some(0), &["body", "throttleRate"], "throttleRate must be at least 1");
        check_list(check, "eventTypes", self.event_types, 1_000, validate::name);
        check_list(check, "channels", self.channels, 10, validate::channel);
    }
}

impl Validate for EndpointIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        Fields {
            url: Some(&self.url),
            uid: self.uid.as_ref(),
            throttle_rate: self.throttle_rate,
            event_types: self.event_types.as_ref(),
            channels: self.channels.as_ref(),
        }
        .check(&mut check);
        if let Some(secret) = &self.secret {
            check.rule(&["body", "secret"], EndpointSecret::parse(secret).map(|_| ()));
        }
        if let Some(headers) = &self.headers {
            check_headers(&mut check, headers.iter().map(|(k, v)| (k, Some(v))));
        }
        check.finish()
    }
}

impl Validate for EndpointUpsertIn {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        Fields {
            url: Some(&self.url),
            uid: self.uid.as_ref(),
            throttle_rate: self.throttle_rate,
            event_types: self.event_types.as_ref(),
            channels: self.channels.as_ref(),
        }
        .check(&mut check);
        check.finish()
    }
}

impl Validate for EndpointPatch {
    fn validate(&self) -> Result<(), ValidationError> {
        let mut check = Checker::default();
        Fields {
            url: self.url.as_deref(),
            uid: self.uid.as_ref().and_then(Option::as_ref),
            throttle_rate: self.throttle_rate.flatten(),
            event_types: self.event_types.as_ref().and_then(Option::as_ref),
            channels: self.channels.as_ref().and_then(Option::as_ref),
        }
        .check(&mut check);
        check.finish()
    }
}

impl From<EndpointUpsertIn> for EndpointIn {
    fn from(u: EndpointUpsertIn) -> Self {
        Self {
            url: u.url,
            description: u.description,
            throttle_rate: u.throttle_rate,
            uid: u.uid,
            disabled: u.disabled,
            event_types: u.event_types,
            channels: u.channels,
            secret: None,
            metadata: u.metadata,
            headers: None,
        }
    }
}

impl EndpointIn {
    /// The secret given at creation, else a freshly generated one.
    ///
    /// # Errors
    /// A 422 at `body.secret` when the given one is not a valid key.
    pub fn initial_secret(&self) -> Result<EndpointSecret, crate::ApiError> {
        match &self.secret {
            Some(key) => EndpointSecret::parse(key).map_err(|msg| crate::ApiError::invalid(&["body", "secret"], msg)),
            None => Ok(EndpointSecret::generate(&mut rand::rng())),
        }
    }

    /// The endpoint this input creates.
    pub fn into_endpoint(self, app_id: AppId, secret: EndpointSecret, now: DateTime<Utc>) -> Endpoint {
        Endpoint {
            id: EndpointId::generate(now, &mut rand::rng()),
            app_id,
            uid: self.uid,
            url: self.url,
            description: self.description,
            throttle_rate: self.throttle_rate,
            disabled: self.disabled,
            event_types: self.event_types,
            channels: self.channels,
            metadata: self.metadata,
            headers: self.headers.unwrap_or_default(),
            secrets: vec![secret],
            created_at: now,
            updated_at: now,
        }
    }
}

impl EndpointUpsertIn {
    /// Replaces `endpoint`'s settable fields; secrets and headers stay.
    pub fn apply_to(self, endpoint: Endpoint, now: DateTime<Utc>) -> Endpoint {
        Endpoint {
            uid: self.uid.or(endpoint.uid),
            url: self.url,
            description: self.description,
            throttle_rate: self.throttle_rate,
            disabled: self.disabled,
            event_types: self.event_types,
            channels: self.channels,
            metadata: self.metadata,
            updated_at: now,
            ..endpoint
        }
    }
}

impl EndpointPatch {
    /// Changes the fields this patch names.
    pub fn apply_to(self, mut e: Endpoint, now: DateTime<Utc>) -> Endpoint {
        if let Some(description) = self.description {
            e.description = description;
        }
        if let Some(rate) = self.throttle_rate {
            e.throttle_rate = rate;
        }
        if let Some(uid) = self.uid {
            e.uid = uid;
        }
        if let Some(url) = self.url {
            e.url = url;
        }
        if let Some(disabled) = self.disabled {
            e.disabled = disabled;
        }
        if let Some(types) = self.event_types {
            e.event_types = types;
        }
        if let Some(channels) = self.channels {
            e.channels = channels;
        }
        if let Some(metadata) = self.metadata {
            e.metadata = metadata;
        }
        e.updated_at = now;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/").is_ok());
        for bad in ["ftp://example.com", "example.com", "https://", "", "javascript:alert(1)", "file:///etc/passwd"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn aliases_are_accepted() {
        let input: EndpointIn =
            serde_json::from_str(r#"{"url":"https://e.com","filterTypes":["a"],"rateLimit":5}"#).unwrap();
        assert_eq!(input.event_types, Some(vec!["a".to_owned()]));
        assert_eq!(input.throttle_rate, Some(5));
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let patch: EndpointPatch = serde_json::from_str(r#"{"channels":null}"#).unwrap();
        assert_eq!(patch.channels, Some(None));
        assert_eq!(patch.event_types, None);
    }
}
