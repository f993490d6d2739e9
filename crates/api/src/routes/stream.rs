//! `GET /api/v1/app/{app_id}/events/stream`: the application's messages live, as
//! Server-Sent Events (Herald's extension; the filters are the events API's).
//!
//! A subscriber holds no copy of anything: it keeps its position and reads new rows
//! from the store when the store signals a commit, so it never skips a message (the
//! store's read is commit-order safe) and nothing is fanned out per message. Each event
//! carries the message id as its SSE `id`; a client reconnecting with `Last-Event-ID`
//! continues right after that message. Comments are sent as heartbeats while idle, so
//! proxies keep the connection open. At most one page of events is held per
//! subscriber, and a reader that takes longer than the configured limit to accept an
//! event is disconnected (it reconnects with `Last-Event-ID` and loses nothing).

use std::{collections::VecDeque, convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use chrono::{DateTime, Utc};
use herald_core::{AppId, Clock, MessageId};
use herald_store::{DynStore, Event, EventFilter, Position, StoreError};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::{
    events::{EventFilterParams, decode_position, event_filter},
    load_app,
    messages::message_out,
};
use crate::{
    Shared,
    auth::Auth,
    error::ApiError,
    extract::{Keys, Query},
    params::AppPath,
};

/// Messages read from the store at once per subscriber: the most it ever holds.
const PAGE: usize = 32;
/// How soon to read again when the store held rows back behind an open transaction.
const HELD_BACK_RETRY: Duration = Duration::from_millis(20);

/// Live stream settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Idle time after which a heartbeat comment is sent.
    pub heartbeat: Duration,
    /// A subscriber that takes longer than this to accept one event is disconnected.
    pub slow_reader_timeout: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(15), slow_reader_timeout: Duration::from_secs(30) }
    }
}

/// Where a stream without `Last-Event-ID` starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamFrom {
    /// An iterator from the events API to continue from.
    iterator: Option<String>,
}

/// Live Events (SSE): the application's messages as they commit.
#[utoipa::path(get, path = "/api/v1/app/{app_id}/events/stream", operation_id = "herald.message.events-stream",
    tag = "Message",
    description = "Herald's extension: the events API as Server-Sent Events. Each event's `id` is the message id and \
its `data` a `MessageOut`. Starts after the message named by `Last-Event-ID`, else at `iterator` (from the events \
API), else with messages created from now on. Idle connections get a comment every heartbeat interval.",
    params(
        AppPath,
        StreamFrom,
        EventFilterParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last message received."),
    ),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "An endless stream of `MessageOut` events.")))]
pub(crate) async fn stream(
    State(ctx): State<Shared>,
    auth: Auth,
    Keys(AppPath { app_id: app_key }): Keys<AppPath>,
    query: Query,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let app = load_app(&ctx, &auth, &app_key).await?;
    let filter = event_filter(&query)?;
    let from = match headers.get("last-event-id") {
        Some(raw) => resume_after(&ctx, &app.id, raw).await?,
        None => match query.params::<StreamFrom>()?.iterator {
            Some(raw) => decode_position(&raw, &["query", "iterator"])?,
            None => ctx.store.position_after(&app.id, ctx.now()).await?,
        },
    };
    let live = Live {
        store: ctx.store.clone(),
        app: app.id,
        filter,
        at: from,
        commits: ctx.store.message_commits(),
        pending: VecDeque::new(),
        shutdown: ctx.shutdown.clone(),
        slow_reader_timeout: ctx.config.stream.slow_reader_timeout,
        clock: ctx.clock.clone(),
        sent_at: None,
    };
    let events = futures_util::stream::unfold(live, Live::next);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(ctx.config.stream.heartbeat).text("heartbeat"));
    // Tells buffering proxies (nginx) to pass events through as they come.
    Ok(([(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"))], sse).into_response())
}

/// The position right after the message named by a `Last-Event-ID` header.
async fn resume_after(ctx: &Shared, app: &AppId, raw: &HeaderValue) -> Result<Position, ApiError> {
    let loc = ["header", "Last-Event-ID"];
    let id = raw
        .to_str()
        .ok()
        .and_then(|s| MessageId::parse(s.trim()).ok())
        .ok_or_else(|| ApiError::invalid(&loc, "not a message id"))?;
    match ctx.store.message_position(app, &id).await {
        Ok(position) => Ok(position),
        Err(StoreError::NotFound(_)) => Err(ApiError::invalid(&loc, "no message of this application has this id")),
        Err(e) => Err(e.into()),
    }
}

/// One subscriber: where it stands and the page it is sending.
struct Live {
    store: DynStore,
    app: AppId,
    filter: EventFilter,
    at: Position,
    commits: watch::Receiver<u64>,
    pending: VecDeque<Event>,
    shutdown: CancellationToken,
    slow_reader_timeout: Duration,
    /// The injected clock, like every other time the API reads, so tests can stand for
    /// a reader pausing without waiting that long.
    clock: Clock,
    /// When the last event was handed to the connection, until it asks for the next.
    sent_at: Option<DateTime<Utc>>,
}

impl Live {
    /// The next event, waiting for commits while there is none; `None` ends the stream.
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        // The connection asks for the next event only once it has written the last;
        // a long gap means the client is not reading.
        if let Some(sent) = self.sent_at.take()
            && ((self.clock)() - sent).to_std().is_ok_and(|gap| gap > self.slow_reader_timeout)
        {
            tracing::info!(app.id = %self.app, "disconnecting a live stream reader that stopped reading");
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.sent_at = Some((self.clock)());
                return Some((Ok(sse_event(event)), self));
            }
            // Marked before reading, so a commit during the read wakes the wait below.
            self.commits.borrow_and_update();
            let page = match self.store.read_events(&self.app, &self.filter, self.at, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    // The client reconnects with Last-Event-ID once the store is back.
                    tracing::warn!(error = %e, app.id = %self.app, "live stream read failed; closing the stream");
                    return None;
                }
            };
            if let Some(last) = page.events.last() {
                self.at = last.position;
                self.pending.extend(page.events);
                continue;
            }
            tokio::select! {
                changed = self.commits.changed() => if changed.is_err() { return None },
                () = tokio::time::sleep(HELD_BACK_RETRY), if page.held_back => {}
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

fn sse_event(event: Event) -> SseEvent {
    let id = event.message.id.to_string();
    // Compact JSON; newlines kept inside a raw payload are split into `data:` lines,
    // which clients join back.
    let data = serde_json::to_string(&message_out(event.message, true)).unwrap_or_default();
    SseEvent::default().id(id).data(data)
}
