//! The path and query parameters several routes share, each declared once: the same
//! struct is what a handler parses (paths with [`Keys`](crate::extract::Keys), queries
//! with [`Query::params`](crate::extract::Query::params)) and what its OpenAPI
//! operation lists (`params(AppEndpointPath, WithContent)`), the field docs being the
//! descriptions. Path keys are ids or `uid`s; handlers check and resolve them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

/// `{app_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The Application's ID or UID.
    pub app_id: String,
}

/// `{app_id}/…/{endpoint_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppEndpointPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Endpoint's ID or UID.
    pub endpoint_id: String,
}

/// `{app_id}/…/{msg_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppMsgPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Message's ID or UID.
    pub msg_id: String,
}

/// `{event_type_name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventTypePath {
    /// The event type's name
    pub event_type_name: String,
}

/// `{source_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourcePath {
    /// The Source's ID or UID.
    pub source_id: String,
}

/// `{source_id}/…/{endpoint_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourceEndpointPath {
    /// The Source's ID or UID.
    pub source_id: String,
    /// The Endpoint's ID or UID.
    pub endpoint_id: String,
}

/// `{app_id}/…/{msg_id}/…/{attempt_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AttemptPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Message's ID or UID.
    pub msg_id: String,
    /// The MessageAttempt's ID.
    pub attempt_id: String,
}

/// `{app_id}/…/{msg_id}/…/{endpoint_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MsgEndpointPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Message's ID or UID.
    pub msg_id: String,
    /// The Endpoint's ID or UID.
    pub endpoint_id: String,
}

/// `{app_id}/poller/{sink_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SinkPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Endpoint's ID or UID.
    pub sink_id: String,
}

/// `{app_id}/poller/{sink_id}/consumer/{consumer_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConsumerPath {
    /// The Application's ID or UID.
    pub app_id: String,
    /// The Endpoint's ID or UID.
    pub sink_id: String,
    /// The consumer's name, chosen by the client.
    pub consumer_id: String,
}

/// `with_content` of the message lists and reads: payloads are included by default.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithContent {
    /// When `true` message payloads are included in the response.
    pub with_content: Option<bool>,
}

/// `before` and `after`: the creation times a list is limited to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreatedBetween {
    /// Only include items created before a certain date.
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    pub before: Option<DateTime<Utc>>,
    /// Only include items created after a certain date.
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    pub after: Option<DateTime<Utc>>,
}

/// `expanded_statuses`, which the SDKs send; it is checked and has no effect.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpandedStatuses {
    /// Accepted; Herald never reports Canceled.
    pub expanded_statuses: Option<bool>,
}
