//! The prepare step: turn a claimed delivery into the exact request Herald sends, or
//! say why it cannot be sent. The body is the stored payload byte for byte; the
//! Standard Webhooks headers (and their `svix-*` twins) carry the message id, the
//! attempt time and one signature entry per active secret (docs/GUARANTEES.md, "Signing"). The
//! content type is JSON, or what the provider sent for a message received on a source.
//!
//! The HTTP exchange and what its result means are left to `client` and `outcome`.

use chrono::{DateTime, Utc};
use herald_core::model::{Endpoint, EndpointSecret};
use herald_signature::{
    SigningSecret,
    header::{SVIX_ID, SVIX_SIGNATURE, SVIX_TIMESTAMP, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP},
    sign_all,
};
use herald_store::ClaimedDelivery;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::client::OutboundRequest;

/// Why a delivery is failed without sending anything. None of these can change by
/// retrying, so the delivery fails at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotSendable {
    /// The payload was expunged or dropped by retention.
    #[error("not sent: the message payload is no longer stored")]
    PayloadGone,
    /// The endpoint was disabled after the delivery was queued.
    #[error("not sent: the endpoint is disabled")]
    EndpointDisabled,
    /// No secret is active, or one does not parse: Herald never sends unsigned.
    #[error("not sent: the endpoint has no usable signing secret")]
    NoUsableSecret,
}

/// Headers an endpoint may not set: they describe the connection or the body, which
/// Herald controls (`host` would also let a custom header steer virtual hosting).
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];

/// Builds the request for `claimed`, signed at `now` (the attempt time).
///
/// # Errors
/// [`NotSendable`] when the delivery must fail without a request.
pub(crate) fn prepare(claimed: &ClaimedDelivery, now: DateTime<Utc>) -> Result<OutboundRequest, NotSendable> {
    let endpoint = &claimed.endpoint;
    if endpoint.disabled {
        return Err(NotSendable::EndpointDisabled);
    }
    let body = claimed.message.payload.clone().ok_or(NotSendable::PayloadGone)?;
    let secrets = signing_secrets(endpoint, now)?;
    let msg_id = claimed.message.id.as_str();
    let timestamp = now.timestamp();
    let signature = sign_all(&secrets, msg_id, timestamp, body.as_bytes());

    let mut headers = custom_headers(endpoint);
    let id = header_value(msg_id);
    let timestamp = HeaderValue::from(timestamp);
    let signature = header_value(&signature);
    // Inserted after the custom headers, so an endpoint cannot override them. A message
    // received on an ingest source is forwarded with the provider's content type.
    let content_type = claimed.message.content_type.as_deref().and_then(|t| HeaderValue::from_str(t).ok());
    headers.insert(CONTENT_TYPE, content_type.unwrap_or(HeaderValue::from_static("application/json")));
    for (name, value) in [
        (WEBHOOK_ID, &id),
        (SVIX_ID, &id),
        (WEBHOOK_TIMESTAMP, &timestamp),
        (SVIX_TIMESTAMP, &timestamp),
        (WEBHOOK_SIGNATURE, &signature),
        (SVIX_SIGNATURE, &signature),
    ] {
        headers.insert(HeaderName::from_static(name), value.clone());
    }
    Ok(OutboundRequest { url: endpoint.url.clone(), headers, body })
}

/// The current secret and every rotated one still in its grace period, in stored
/// order (current first).
fn signing_secrets(endpoint: &Endpoint, now: DateTime<Utc>) -> Result<Vec<SigningSecret>, NotSendable> {
    let active = |s: &&EndpointSecret| s.expires_at.is_none_or(|end| end > now);
    let secrets = endpoint
        .secrets
        .iter()
        .filter(active)
        .map(|s| SigningSecret::parse(&s.key).map_err(|_| NotSendable::NoUsableSecret))
        .collect::<Result<Vec<_>, _>>()?;
    if secrets.is_empty() {
        return Err(NotSendable::NoUsableSecret);
    }
    Ok(secrets)
}

fn custom_headers(endpoint: &Endpoint) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(endpoint.headers.len() + 7);
    for (name, value) in &endpoint.headers {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) else {
            // The API validates headers on write; a bad one stored earlier is skipped
            // rather than failing every delivery of the endpoint.
            tracing::warn!(endpoint.id = %endpoint.id, "skipping an invalid custom header");
            continue;
        };
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        headers.insert(name, value);
    }
    headers
}

/// Message ids and signatures are ASCII by construction.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ids and base64 signatures are valid header values")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeDelta;
    use herald_core::{
        AppId, EndpointId, MessageId,
        model::{Delivery, DeliveryStatus, Message, Metadata},
    };

    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn claimed(secrets: Vec<EndpointSecret>, headers: &[(&str, &str)]) -> ClaimedDelivery {
        let now = Utc::now();
        let mut rng = rand::rng();
        let app_id = AppId::generate(now, &mut rng);
        let endpoint = Endpoint {
            id: EndpointId::generate(now, &mut rng),
            app_id: app_id.clone(),
            uid: None,
            url: "https://example.com/hook".into(),
            description: String::new(),
            throttle_rate: None,
            disabled: false,
            event_types: None,
            channels: None,
            metadata: Metadata::new(),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            secrets,
            created_at: now,
            updated_at: now,
        };
        let message = Message {
            id: MessageId::parse("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk").unwrap(),
            app_id: app_id.clone(),
            event_id: None,
            event_type: "user.created".into(),
            payload: Some(r#"{"email":"test@example.com","username":"test_user"}"#.into()),
            channels: None,
            tags: None,
            created_at: now,
            deliver_at: None,
            expires_at: now,
            content_type: None,
        };
        let delivery = Delivery {
            msg_id: message.id.clone(),
            endpoint_id: endpoint.id.clone(),
            app_id,
            status: DeliveryStatus::Sending,
            attempts: 0,
            next_attempt_at: now,
            trigger: herald_core::model::TriggerType::Scheduled,
        };
        ClaimedDelivery { delivery, message, endpoint }
    }

    fn current(key: &str) -> EndpointSecret {
        EndpointSecret { key: key.into(), expires_at: None }
    }

    #[test]
    fn signs_the_design_vector() {
        let at = DateTime::from_timestamp(1_649_367_553, 0).unwrap();
        let request = prepare(&claimed(vec![current(SECRET)], &[]), at).unwrap();
        let get = |name| request.headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(get("webhook-signature"), "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        assert_eq!(get("svix-signature"), get("webhook-signature"));
        assert_eq!(get("webhook-id"), "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk");
        assert_eq!(get("webhook-timestamp"), "1649367553");
        assert_eq!(get("content-type"), "application/json");
        assert_eq!(request.body, r#"{"email":"test@example.com","username":"test_user"}"#);
    }

    #[test]
    fn rotated_secrets_sign_until_they_expire() {
        let now = Utc::now();
        let old = |offset| EndpointSecret { key: SECRET.into(), expires_at: Some(now + offset) };
        let fresh = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let graced = prepare(&claimed(vec![current(fresh), old(TimeDelta::hours(1))], &[]), now).unwrap();
        let entries = graced.headers["webhook-signature"].to_str().unwrap().split(' ').count();
        assert_eq!(entries, 2);
        let expired = prepare(&claimed(vec![current(fresh), old(TimeDelta::seconds(-1))], &[]), now).unwrap();
        assert_eq!(expired.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 1);
    }

    #[test]
    fn custom_headers_cannot_override_protocol_headers() {
        let headers = [("x-team", "billing"), ("webhook-id", "forged"), ("host", "internal"), ("Content-Type", "x")];
        let request = prepare(&claimed(vec![current(SECRET)], &headers), Utc::now()).unwrap();
        assert_eq!(request.headers["x-team"], "billing");
        assert_eq!(request.headers["webhook-id"], "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk");
        assert_eq!(request.headers["content-type"], "application/json");
        assert!(request.headers.get("host").is_none());
    }

    #[test]
    fn a_received_message_keeps_its_content_type() {
        let mut received = claimed(vec![current(SECRET)], &[("Content-Type", "text/plain")]);
        received.message.content_type = Some("application/x-www-form-urlencoded; charset=utf-8".into());
        let request = prepare(&received, Utc::now()).unwrap();
        assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded; charset=utf-8");
        received.message.content_type = Some("bad\nvalue".into());
        assert_eq!(prepare(&received, Utc::now()).unwrap().headers["content-type"], "application/json");
    }

    #[test]
    fn nothing_is_sent_unsigned_or_without_a_payload() {
        let now = Utc::now();
        let expired = EndpointSecret { key: SECRET.into(), expires_at: Some(now) };
        assert_eq!(prepare(&claimed(vec![expired], &[]), now).unwrap_err(), NotSendable::NoUsableSecret);
        assert_eq!(prepare(&claimed(vec![current("whsec_!!")], &[]), now).unwrap_err(), NotSendable::NoUsableSecret);
        let mut gone = claimed(vec![current(SECRET)], &[]);
        gone.message.payload = None;
        assert_eq!(prepare(&gone, now).unwrap_err(), NotSendable::PayloadGone);
        let mut disabled = claimed(vec![current(SECRET)], &[]);
        disabled.endpoint.disabled = true;
        assert_eq!(prepare(&disabled, now).unwrap_err(), NotSendable::EndpointDisabled);
    }
}
