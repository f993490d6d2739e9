//! The ingest source types Herald accepts, one table entry each: its contract name,
//! how its secret is checked at creation, the verifier built from that secret, and
//! where the provider puts the id it keeps across its own retries (for dedupe).
//!
//! Adding a type is a verifier module in `herald-signature` plus one entry here. A type
//! not in the table is refused when a source is created or changed (422) and, should
//! one ever be stored, every request to it is rejected: nothing falls back to "no check".

use herald_signature::{
    InboundVerifier, Verifier, header,
    providers::{GitHub, Shopify, Slack, Stripe},
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Longest provider event id kept as is; longer ones are kept as their SHA-256.
const MAX_EVENT_ID_LEN: usize = 256;

/// Builds the verifier of a type from the source's secrets (any of them may sign).
type MakeVerifier = fn(&[&str]) -> Result<Box<dyn InboundVerifier>, String>;
/// Reads the provider's event id from a verified request's headers and body.
type EventId = fn(&dyn Fn(&str) -> Option<String>, &[u8]) -> Option<String>;

/// One supported source type.
pub(crate) struct SourceType {
    /// The contract's `type` value.
    pub name: &'static str,
    /// `None` for `generic-webhook`, the one type that verifies nothing by design.
    make_verifier: Option<MakeVerifier>,
    event_id: EventId,
}

const TYPES: &[SourceType] = &[
    SourceType { name: "generic-webhook", make_verifier: None, event_id: no_event_id },
    SourceType { name: "svix", make_verifier: Some(standard_webhooks), event_id: standard_webhooks_id },
    SourceType { name: "stripe", make_verifier: Some(|s| Ok(Box::new(Stripe::new(s)))), event_id: json_id },
    SourceType {
        name: "github",
        make_verifier: Some(|s| Ok(Box::new(GitHub::new(s)))),
        event_id: |h, _| h("x-github-delivery"),
    },
    SourceType {
        name: "shopify",
        make_verifier: Some(|s| Ok(Box::new(Shopify::new(s)))),
        event_id: |h, _| h("x-shopify-webhook-id").or_else(|| h("x-shopify-event-id")),
    },
    SourceType {
        name: "slack",
        make_verifier: Some(|s| Ok(Box::new(Slack::new(s)))),
        event_id: |_, body| json_field(body, "event_id"),
    },
];

/// The names of every supported type, for error messages and docs.
pub(crate) fn names() -> Vec<&'static str> {
    TYPES.iter().map(|t| t.name).collect()
}

/// The type called `name`, if Herald supports it.
pub(crate) fn find(name: &str) -> Option<&'static SourceType> {
    TYPES.iter().find(|t| t.name == name)
}

impl SourceType {
    /// Whether requests are verified, so a secret is required.
    pub fn verifies(&self) -> bool {
        self.make_verifier.is_some()
    }

    /// Checks a secret given for this type.
    ///
    /// # Errors
    /// Why the secret cannot verify this type's signatures.
    pub fn check_secret(&self, secret: &str) -> Result<(), String> {
        let Some(make) = self.make_verifier else { return Ok(()) };
        if secret.is_empty() {
            return Err("secret must not be empty".to_owned());
        }
        make(&[secret]).map(drop)
    }

    /// The verifier for a source of this type accepting any of `secrets`, or `None` for
    /// a type that verifies nothing.
    ///
    /// # Errors
    /// Why no verifier can be built: a verifying type without a usable secret.
    pub fn verifier(&self, secrets: &[&str]) -> Result<Option<Box<dyn InboundVerifier>>, String> {
        let Some(make) = self.make_verifier else { return Ok(None) };
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Err("the source has no secret".to_owned());
        }
        make(&secrets).map(Some)
    }

    /// The provider's id for this event, kept across its retries, if it sends one.
    pub fn event_id(&self, headers: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Option<String> {
        let id = (self.event_id)(headers, body)?;
        let id = id.trim();
        if id.is_empty() {
            None
        } else if id.len() > MAX_EVENT_ID_LEN {
            Some(format!("sha256:{:x}", Sha256::digest(id.as_bytes())))
        } else {
            Some(id.to_owned())
        }
    }
}

fn standard_webhooks(secrets: &[&str]) -> Result<Box<dyn InboundVerifier>, String> {
    Verifier::parse(secrets).map(|v| Box::new(v) as Box<dyn InboundVerifier>).map_err(|e| e.to_string())
}

fn no_event_id(_: &dyn Fn(&str) -> Option<String>, _: &[u8]) -> Option<String> {
    None
}

fn standard_webhooks_id(headers: &dyn Fn(&str) -> Option<String>, _: &[u8]) -> Option<String> {
    headers(header::WEBHOOK_ID).or_else(|| headers(header::SVIX_ID))
}

/// Stripe's event object carries its id at the top level (`evt_…`).
fn json_id(_: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Option<String> {
    json_field(body, "id")
}

/// A top-level string field of a JSON object body; `None` for any other body.
fn json_field(body: &[u8], field: &str) -> Option<String> {
    match serde_json::from_slice::<Value>(body).ok()?.get(field)? {
        Value::String(id) => Some(id.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_not_found_and_every_verifying_type_needs_a_secret() {
        assert!(find("zoom").is_none());
        assert!(find("Stripe").is_none());
        for t in TYPES {
            if t.verifies() {
                assert!(t.check_secret("").is_err(), "{}", t.name);
                assert!(t.verifier(&[]).is_err(), "{}", t.name);
                assert!(t.verifier(&[""]).is_err(), "{}", t.name);
            } else {
                assert!(t.verifier(&[]).unwrap().is_none());
            }
        }
        assert!(find("svix").unwrap().check_secret("not base64!").is_err());
        assert!(find("svix").unwrap().check_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
    }

    #[test]
    fn event_ids_come_from_where_each_provider_puts_them() {
        let headers = |name: &str| match name {
            "webhook-id" => Some("msg_1".to_owned()),
            "x-github-delivery" => Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned()),
            "x-shopify-event-id" => Some("98880550-7158-44d4-b7cd-2c97c8a091b5".to_owned()),
            _ => None,
        };
        let body = br#"{"id":"evt_1","event_id":"Ev1","object":"event"}"#;
        let id = |name: &str| find(name).unwrap().event_id(&headers, body);
        assert_eq!(id("svix").as_deref(), Some("msg_1"));
        assert_eq!(id("stripe").as_deref(), Some("evt_1"));
        assert_eq!(id("github").as_deref(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert_eq!(id("shopify").as_deref(), Some("98880550-7158-44d4-b7cd-2c97c8a091b5"));
        assert_eq!(id("slack").as_deref(), Some("Ev1"));
        assert_eq!(id("generic-webhook"), None);
        assert_eq!(find("stripe").unwrap().event_id(&headers, b"not json"), None);
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(300));
        let hashed = find("stripe").unwrap().event_id(&headers, long.as_bytes()).unwrap();
        assert!(hashed.starts_with("sha256:") && hashed.len() == 7 + 64, "{hashed}");
    }

    /// Every header a type reads, so arbitrary values reach each parser.
    const HEADERS: &[&str] = &[
        "stripe-signature",
        "x-hub-signature-256",
        "x-shopify-hmac-sha256",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "x-github-delivery",
        "x-shopify-webhook-id",
    ];

    proptest::proptest! {
        #[test]
        fn no_header_or_body_panics_any_type(
            values in proptest::collection::vec(proptest::prelude::any::<String>(), HEADERS.len()),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            now in proptest::prelude::any::<i64>(),
        ) {
            let lookup = |name: &str| HEADERS.iter().position(|h| *h == name).map(|i| values[i].as_str());
            let owned = |name: &str| lookup(name).map(str::to_owned);
            for t in TYPES {
                let verifier = t.verifier(&["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]).unwrap();
                if let Some(verifier) = verifier {
                    proptest::prop_assert!(verifier.verify(&body, &lookup, now).is_err());
                }
                let _ = t.event_id(&owned, &body);
            }
        }
    }
}
