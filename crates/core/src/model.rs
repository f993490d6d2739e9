//! The records Herald keeps: applications, event types, endpoints, messages and the
//! deliveries that queue a message for an endpoint, with the rules that belong to them.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::ids::{AppId, AttemptId, EndpointId, MessageId};

/// Free-form string labels on applications and endpoints.
pub type Metadata = BTreeMap<String, String>;

/// An application: the tenant that owns endpoints and receives messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    pub throttle_rate: Option<u16>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A kind of event endpoints can subscribe to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One signing secret of an endpoint; old ones keep signing until `expires_at`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSecret {
    /// `whsec_` followed by base64 of 24–64 bytes.
    pub key: String,
    /// `None` for the current secret; the end of the grace period for a rotated one.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSecret").field("key", &"[redacted]").field("expires_at", &self.expires_at).finish()
    }
}

/// Prefix of symmetric Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

impl EndpointSecret {
    /// A fresh random secret of 24 bytes.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut raw = [0u8; 24];
        rng.fill_bytes(&mut raw);
        Self {
            key: format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(raw)),
            expires_at: None,
        }
    }

    /// Accepts a caller-supplied secret: optional `whsec_` prefix, then base64 of
    /// 24–64 bytes. The stored form always carries the prefix.
    ///
    /// # Errors
    /// The reason, for a validation error.
    pub fn parse(input: &str) -> Result<Self, String> {
        let body = input.strip_prefix(SECRET_PREFIX).unwrap_or(input);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "secret must be `whsec_` followed by base64".to_owned())?;
        if !(24..=64).contains(&raw.len()) {
            return Err("secret must encode 24 to 64 bytes".to_owned());
        }
        Ok(Self { key: format!("{SECRET_PREFIX}{body}"), expires_at: None })
    }
}

/// Where an application's messages are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub throttle_rate: Option<u16>,
    pub disabled: bool,
    /// Event types this endpoint receives; `None` means all.
    pub event_types: Option<Vec<String>>,
    /// Channels this endpoint receives; `None` means all.
    pub channels: Option<Vec<String>>,
    pub metadata: Metadata,
    /// Custom headers added to every request.
    pub headers: BTreeMap<String, String>,
    /// Current secret first, then rotated ones still in their grace period.
    pub secrets: Vec<EndpointSecret>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether a message of `event_type` on `channels` is queued for this endpoint.
    ///
    /// A disabled endpoint receives nothing. An endpoint with a channel filter receives
    /// only messages that name at least one of its channels.
    pub fn accepts(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        subscription_accepts(self.disabled, self.event_types.as_deref(), self.channels.as_deref(), event_type, channels)
    }

    /// The secret currently used to sign.
    pub fn current_secret(&self) -> Option<&EndpointSecret> {
        self.secrets.iter().find(|s| s.expires_at.is_none())
    }
}

/// The rule behind [`Endpoint::accepts`], for callers that hold only the filter columns.
///
/// A disabled endpoint receives nothing. An endpoint with a channel filter receives
/// only messages that name at least one of its channels.
pub fn subscription_accepts(
    disabled: bool,
    event_types: Option<&[String]>,
    wanted_channels: Option<&[String]>,
    event_type: &str,
    channels: Option<&[String]>,
) -> bool {
    if disabled {
        return false;
    }
    if let Some(types) = event_types
        && !types.iter().any(|t| t == event_type)
    {
        return false;
    }
    match (wanted_channels, channels) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wanted), Some(have)) => have.iter().any(|c| wanted.contains(c)),
    }
}

/// An event sent to an application. `payload` holds the exact JSON bytes received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub app_id: AppId,
    pub event_id: Option<String>,
    pub event_type: String,
    /// Raw JSON text; `None` once expunged or past retention.
    pub payload: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub deliver_at: Option<DateTime<Utc>>,
    /// When the payload may be dropped.
    pub expires_at: DateTime<Utc>,
    /// The `Content-Type` the worker sends; `None` is `application/json`. Set for
    /// messages received on an ingest source, which forward the provider's type.
    pub content_type: Option<String>,
}

/// Delivery state, numbered as the contract's `MessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
    Canceled = 4,
}

impl DeliveryStatus {
    /// The contract's integer code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Parses the contract's integer code.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Success,
            1 => Self::Pending,
            2 => Self::Fail,
            3 => Self::Sending,
            4 => Self::Canceled,
            _ => return None,
        })
    }
}

impl DeliveryStatus {
    /// The contract's `MessageStatusText`.
    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Fail => "fail",
            Self::Sending => "sending",
            Self::Canceled => "canceled",
        }
    }
}

/// Why an attempt was made, numbered as the contract's `MessageAttemptTriggerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

impl TriggerType {
    /// Parses the contract's integer code.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Scheduled),
            1 => Some(Self::Manual),
            _ => None,
        }
    }
}

/// One HTTP attempt to deliver a message to an endpoint, as the attempt log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub url: String,
    /// `Success` or `Fail`.
    pub status: DeliveryStatus,
    /// The receiver's status code; 0 when no response arrived (refused, timed out).
    pub response_status_code: i16,
    /// The response body (capped), or why no response arrived.
    pub response: String,
    pub response_duration_ms: i64,
    pub trigger: TriggerType,
    pub created_at: DateTime<Utc>,
}

/// A queued message-to-endpoint pair; the store is the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub status: DeliveryStatus,
    /// Attempts made so far (since the last manual resend, recover or replay).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Why the next attempt is made: `Manual` after a resend, recover or replay, for
    /// the one attempt that follows; `Scheduled` otherwise.
    pub trigger: TriggerType,
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn endpoint(types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
        let now = Utc::now();
        let mut rng = StdRng::seed_from_u64(7);
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Endpoint {
            id: EndpointId::generate(now, &mut rng),
            app_id: AppId::generate(now, &mut rng),
            uid: None,
            url: "https://example.com/hook".into(),
            description: String::new(),
            throttle_rate: None,
            disabled: false,
            event_types: types.map(list),
            channels: channels.map(list),
            metadata: Metadata::new(),
            headers: BTreeMap::new(),
            secrets: vec![EndpointSecret::generate(&mut rng)],
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn filters_select_by_type_and_channel() {
        let chans = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let any = endpoint(None, None);
        assert!(any.accepts("a", None));
        assert!(any.accepts("a", Some(&chans(&["x"]))));

        let typed = endpoint(Some(&["a", "b"]), None);
        assert!(typed.accepts("b", None));
        assert!(!typed.accepts("c", None));

        let channeled = endpoint(None, Some(&["x"]));
        assert!(!channeled.accepts("a", None));
        assert!(!channeled.accepts("a", Some(&chans(&["y"]))));
        assert!(channeled.accepts("a", Some(&chans(&["y", "x"]))));

        let mut disabled = endpoint(None, None);
        disabled.disabled = true;
        assert!(!disabled.accepts("a", None));
    }

    #[test]
    fn secrets_are_checked_and_normalised() {
        let mut rng = StdRng::seed_from_u64(1);
        let generated = EndpointSecret::generate(&mut rng);
        assert!(generated.key.starts_with("whsec_"));
        assert_eq!(EndpointSecret::parse(&generated.key).unwrap(), generated);
        let bare = generated.key.trim_start_matches("whsec_");
        assert_eq!(EndpointSecret::parse(bare).unwrap().key, generated.key);
        assert!(EndpointSecret::parse("whsec_dG9vc2hvcnQ=").is_err());
        assert!(EndpointSecret::parse("whsec_!!!").is_err());
        assert!(!format!("{generated:?}").contains(bare));
    }
}
