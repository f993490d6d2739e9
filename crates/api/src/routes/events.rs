//! The pull side by polling: `GET /api/v1/app/{app_id}/events` and the pollers
//! (`/api/v1/app/{app_id}/poller/{sink_id}`, its server-side consumers and `seek`).
//!
//! Both read an application's messages in commit order from a [`Position`]; the
//! iterator handed out is that position, opaque to clients (base64url of 16 bytes).
//! A reader that keeps passing back the last iterator sees every message exactly once,
//! including messages that commit after others created later (the store guarantees
//! it). A poller's `sink_id` is an endpoint of the application: its event type and
//! channel filters apply, as they would to webhooks sent to it.

use axum::extract::State;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use herald_core::{MessageId, model::Endpoint, validate};
use herald_store::{ConsumerKey, EventFilter, EventPage, Position};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::{
    load_app,
    messages::{MessageOut, message_out},
};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Json, Keys, Query, Validate, check_key},
    pagination::Paging,
    params::{AppPath, ConsumerPath, SinkPath},
    query::{checked, checked_list},
};

/// Encodes a position as the opaque iterator clients pass back.
pub(crate) fn encode_position(position: Position) -> String {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&position.commit.to_be_bytes());
    raw[8..].copy_from_slice(&position.seq.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes an iterator made by [`encode_position`].
///
/// # Errors
/// 422 at `loc` for anything else.
pub(crate) fn decode_position(raw: &str, loc: &[&str]) -> Result<Position, ApiError> {
    let invalid = || ApiError::invalid(loc, "invalid iterator");
    // 16 bytes are 22 characters; checking first bounds the work on garbage.
    if raw.len() != 22 {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let (commit, seq) = bytes.split_at_checked(8).ok_or_else(invalid)?;
    Ok(Position {
        commit: u64::from_be_bytes(commit.try_into().map_err(|_| invalid())?),
        seq: u64::from_be_bytes(seq.try_into().map_err(|_| invalid())?),
    })
}

/// The events API's and the stream's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventFilterParams {
    /// Filter response based on the event type
    #[serde(default)]
    event_types: Vec<String>,
    /// Filter response based on the channel.
    #[serde(default)]
    channels: Vec<String>,
}

/// `after`, the events API's start time.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsAfter {
    /// Only include items created after a certain date.
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    after: Option<DateTime<Utc>>,
}

/// A poller's own filters, narrowing the sink's.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PollParams {
    /// Filters messages sent with this event type (optional).
    event_type: Option<String>,
    /// Filters messages sent with this channel (optional).
    channel: Option<String>,
    #[serde(default, deserialize_with = "crate::query::rfc3339")]
    after: Option<DateTime<Utc>>,
}

/// `limit` and `iterator`: how many messages to read, and from where.
fn paging(query: &Query) -> Result<(usize, Option<Position>), ApiError> {
    let paging: Paging = query.params()?;
    let from = paging.iterator.as_deref().map(|raw| decode_position(raw, &["query", "iterator"])).transpose()?;
    Ok((paging.limit()?, from))
}

/// The events API's filters (`event_types`, `channels`, `after`), also used by the stream.
///
/// # Errors
/// 422 for a malformed event type, channel or time.
pub(crate) fn event_filter(query: &Query) -> Result<EventFilter, ApiError> {
    let EventFilterParams { event_types, channels } = query.params()?;
    let EventsAfter { after } = query.params()?;
    checked_list("event_types", &event_types, validate::name)?;
    checked_list("channels", &channels, validate::channel)?;
    Ok(EventFilter {
        event_types: (!event_types.is_empty()).then_some(event_types),
        channels: (!channels.is_empty()).then_some(channels),
        channel: None,
        after,
    })
}

/// A page of the events API.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEventsOut {
    pub data: Vec<MessageOut>,
    /// Pass it back to continue after the last message returned.
    pub iterator: String,
    /// Nothing more to read now; later calls with `iterator` return new messages.
    pub done: bool,
}

/// Events: the application's messages in the order they were committed.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/events", operation_id = "v1.message.events", tag = "Message",
    params(AppPath, Paging, EventFilterParams, EventsAfter),
    responses((status = 200, body = MessageEventsOut)))]
pub(crate) async fn list(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id: app_key }): Keys<AppPath>,
    query: Query,
) -> Result<axum::Json<MessageEventsOut>, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    let (limit, from) = paging(&query)?;
    let (filter, from) = (event_filter(&query)?, from.unwrap_or_default());
    let page = ctx.store.read_events(&app.id, &filter, from, limit).await?;
    let (iterator, done) = (encode_position(last_position(&page, from)), is_done(&page));
    let data = page.events.into_iter().map(|e| message_out(e.message, true)).collect();
    Ok(axum::Json(MessageEventsOut { data, iterator, done }))
}

fn last_position(page: &EventPage, from: Position) -> Position {
    page.events.last().map_or(from, |e| e.position)
}

/// `done` for clients: nothing more to read now. Rows held back behind an open
/// transaction are more to read, moments later, so a page with some is not done.
fn is_done(page: &EventPage) -> bool {
    page.done && !page.held_back
}

/// A message as a poller returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollingEndpointMessageOut {
    /// Not kept by Herald: always absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The Message's ID.
    #[schema(value_type = String, example = "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: MessageId,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<DateTime<Utc>>,
}

/// A page of a poller.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollingEndpointOut {
    pub data: Vec<PollingEndpointMessageOut>,
    pub iterator: String,
    pub done: bool,
}

fn polling_out(page: EventPage, from: Position) -> PollingEndpointOut {
    let (iterator, done) = (encode_position(last_position(&page, from)), is_done(&page));
    let data = page
        .events
        .into_iter()
        .map(|e| {
            let m = message_out(e.message, true);
            PollingEndpointMessageOut {
                headers: None,
                event_id: m.event_id,
                event_type: m.event_type,
                payload: m.payload,
                channels: m.channels,
                id: m.id,
                timestamp: m.timestamp,
                tags: m.tags,
                deliver_at: m.deliver_at,
            }
        })
        .collect();
    PollingEndpointOut { data, iterator, done }
}

/// The sink's filters narrowed by the poll's own `event_type` and `channel`.
fn sink_filter(sink: &Endpoint, event_type: Option<String>, channel: Option<String>) -> EventFilter {
    let event_types = match (sink.event_types.clone(), event_type) {
        (types, None) => types,
        (None, Some(one)) => Some(vec![one]),
        // Outside the sink's types: nothing matches.
        (Some(types), Some(one)) => Some(if types.contains(&one) { vec![one] } else { Vec::new() }),
    };
    EventFilter { event_types, channels: sink.channels.clone(), channel, after: None }
}

/// Loads the application and the endpoint named as the sink.
async fn load_sink(ctx: &Shared, auth: &Auth, app_key: &str, sink_key: &str) -> Result<Endpoint, ApiError> {
    let app = load_app(ctx, auth, app_key).await?;
    check_key("sink_id", sink_key)?;
    Ok(ctx.store.get_endpoint(&app.id, sink_key).await?)
}

/// Poller Poll: the application's messages that the sink's filters accept.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/poller/{sink_id}", operation_id = "v1.message.poller.poll",
    tag = "Message",
    params(SinkPath, Paging, PollParams),
    responses((status = 200, body = PollingEndpointOut)))]
pub(crate) async fn poll(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(SinkPath { app_id: app_key, sink_id: sink_key }): Keys<SinkPath>,
    query: Query,
) -> Result<axum::Json<PollingEndpointOut>, ApiError> {
    let sink = load_sink(&ctx, &auth, &app_key, &sink_key).await?;
    let (limit, from) = paging(&query)?;
    let PollParams { event_type, channel, after } = query.params()?;
    let mut filter = sink_filter(
        &sink,
        checked("event_type", event_type, validate::name)?,
        checked("channel", channel, validate::channel)?,
    );
    filter.after = after;
    let from = from.unwrap_or_default();
    let page = ctx.store.read_events(&sink.app_id, &filter, from, limit).await?;
    Ok(axum::Json(polling_out(page, from)))
}

/// Poller Consumer Poll: like a poll, with the iterator kept on the server per consumer.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}",
    operation_id = "v1.message.poller.consumer-poll", tag = "Message",
    params(ConsumerPath, Paging),
    responses((status = 200, body = PollingEndpointOut)))]
pub(crate) async fn consumer_poll(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(ConsumerPath { app_id: app_key, sink_id: sink_key, consumer_id }): Keys<ConsumerPath>,
    query: Query,
) -> Result<axum::Json<PollingEndpointOut>, ApiError> {
    let sink = load_sink(&ctx, &auth, &app_key, &sink_key).await?;
    check_key("consumer_id", &consumer_id)?;
    let (limit, given) = paging(&query)?;
    let key = ConsumerKey { endpoint_id: sink.id.clone(), consumer_id };
    let saved = ctx.store.consumer_position(&sink.app_id, &key).await?;
    // An explicit iterator wins (re-reading from an older point); else where the
    // consumer stands; a new consumer starts at the beginning.
    let from = match given {
        Some(given) => given,
        None => saved.unwrap_or_default(),
    };
    let page = ctx.store.read_events(&sink.app_id, &sink_filter(&sink, None, None), from, limit).await?;
    let next = last_position(&page, from);
    if saved != Some(next) {
        ctx.store.save_consumer_position(&sink.app_id, &key, next, ctx.now()).await?;
    }
    Ok(axum::Json(polling_out(page, from)))
}

/// Where a consumer should continue from.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PollingEndpointConsumerSeekIn {
    /// The consumer next reads the messages created after this time.
    #[schema(example = "2025-04-21T11:20:34Z")]
    pub after: DateTime<Utc>,
}

impl Validate for PollingEndpointConsumerSeekIn {
    fn validate(&self) -> Result<(), herald_core::ValidationError> {
        Ok(())
    }
}

/// The consumer's new iterator.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollingEndpointConsumerSeekOut {
    pub iterator: String,
}

/// Poller Consumer Seek: moves a consumer to the messages created after a time.
#[utoipa::path(post, path = "/api/v1/app/{app_id}/poller/{sink_id}/consumer/{consumer_id}/seek",
    operation_id = "v1.message.poller.consumer-seek", tag = "Message",
    params(ConsumerPath, ("idempotency-key" = Option<String>, Header)),
    request_body = PollingEndpointConsumerSeekIn,
    responses((status = 200, body = PollingEndpointConsumerSeekOut)))]
pub(crate) async fn consumer_seek(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(ConsumerPath { app_id: app_key, sink_id: sink_key, consumer_id }): Keys<ConsumerPath>,
    Json(input): Json<PollingEndpointConsumerSeekIn>,
) -> Result<axum::Json<PollingEndpointConsumerSeekOut>, ApiError> {
    let sink = load_sink(&ctx, &auth, &app_key, &sink_key).await?;
    check_key("consumer_id", &consumer_id)?;
    let position = ctx.store.position_after(&sink.app_id, input.after).await?;
    let key = ConsumerKey { endpoint_id: sink.id.clone(), consumer_id };
    ctx.store.save_consumer_position(&sink.app_id, &key, position, ctx.now()).await?;
    Ok(axum::Json(PollingEndpointConsumerSeekOut { iterator: encode_position(position) }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn iterators_round_trip_and_refuse_garbage() {
        for position in [Position::START, Position { commit: 7, seq: 42 }, Position { commit: u64::MAX, seq: 1 }] {
            let raw = encode_position(position);
            assert_eq!(decode_position(&raw, &["query", "iterator"]).unwrap(), position);
        }
        for bad in ["", "x", "AAAAAAAAAAAAAAAAAAAAAA=", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", "!!!!!!!!!!!!!!!!!!!!!!"] {
            let err = decode_position(bad, &["query", "iterator"]).unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{bad}");
        }
    }

    #[test]
    fn a_poll_narrows_the_sink_filters() {
        let sink = |types: Option<&[&str]>| Endpoint {
            event_types: types.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
            ..bare_endpoint()
        };
        let narrowed = |types, one: Option<&str>| sink_filter(&sink(types), one.map(str::to_owned), None).event_types;
        assert_eq!(narrowed(None, None), None);
        assert_eq!(narrowed(None, Some("a")), Some(vec!["a".to_owned()]));
        assert_eq!(narrowed(Some(&["a", "b"]), None), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(narrowed(Some(&["a", "b"]), Some("b")), Some(vec!["b".to_owned()]));
        assert_eq!(narrowed(Some(&["a"]), Some("c")), Some(vec![]));
    }

    fn bare_endpoint() -> Endpoint {
        let now = Utc::now();
        Endpoint {
            id: herald_core::EndpointId::generate(now, &mut rand::rng()),
            app_id: herald_core::AppId::generate(now, &mut rand::rng()),
            uid: None,
            url: "https://example.com".into(),
            description: String::new(),
            throttle_rate: None,
            disabled: false,
            event_types: None,
            channels: None,
            metadata: Default::default(),
            headers: Default::default(),
            secrets: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    proptest! {
        #[test]
        fn iterator_decoding_never_panics(raw in ".{0,40}") {
            let _ = decode_position(&raw, &["query", "iterator"]);
        }
    }
}
