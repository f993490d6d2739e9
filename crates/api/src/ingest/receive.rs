//! `POST /ingest/{token}`: where providers send webhooks. No bearer token: the URL's
//! token names the source, and the source's scheme proves each request genuine.
//!
//! The order matters: the source's rate limit is checked as soon as the source is known
//! (429 with `Retry-After`; a steady stream finds its source in the token cache, so
//! this costs no store read and no body read), then the body is read under the size
//! limit (413), verified over its raw bytes (401 for anything short of a valid
//! signature within the timestamp tolerance), and only then stored as a message of the
//! source's hidden application in one group-committed transaction that also decides
//! dedupe (the provider's event id as the message's `eventId`, unique within the
//! configured window). The provider gets its 2xx after that commit; the dispatcher
//! forwards the message like any other.
//! Every accepted request leaves an entry in its source's log, in the same transaction
//! as its message. Requests that store nothing are logged a few per second per source;
//! the rest, and those over the rate limit, are counted into the next entry written
//! (see [`super::guard`]), so a flood costs the store a bounded number of rows.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use chrono::{DateTime, TimeDelta, Utc};
use herald_core::{
    IngestLogId, MessageId,
    ingest::{IngestLog, Source},
    model::Message,
};
use herald_store::{MessageOutcome, NewMessage, StoreError, TokenHash};

use super::source_types;
use crate::{
    Shared,
    auth::hash_token,
    cache::TokenHashCache,
    error::ApiError,
    extract::{Keys, read_body},
    routes::messages::DEFAULT_RETENTION_DAYS,
};

/// The event type of every message a source receives (internal: never sent on).
pub const INGEST_EVENT_TYPE: &str = "ingest.received";
/// Longest provider content type kept; a longer one is forwarded as JSON's default.
const MAX_CONTENT_TYPE_LEN: usize = 256;
/// What a rejected provider is told; the reason is in the source's log, not here.
const REJECTED: &str = "the request's signature could not be verified";
/// How long a source found by its token is reused without asking the store. A change
/// made on this node clears the cache at once; other nodes see it within this time.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(5);

/// Sources by the hash of their URL token, so a provider's steady stream costs no
/// store read per request. Any change to a source on this node clears it.
pub(crate) type SourceCache = TokenHashCache<Source>;

/// The source whose URL carries `token`, from the cache or the store.
async fn find_source(ctx: &Shared, token: &str, now: DateTime<Utc>) -> Result<Source, ApiError> {
    let hash = hash_token(token);
    let instant = Instant::now();
    if let Some(source) = ctx.sources.get(&hash, instant) {
        return Ok(source);
    }
    let source = ctx
        .store
        .find_source_by_token(&TokenHash(hash.clone()), now)
        .await?
        .ok_or_else(|| ApiError::NotFound("no ingest source has this URL".to_owned()))?;
    ctx.sources.put(hash, source.clone(), instant);
    Ok(source)
}

/// The route of ingest URLs.
pub(crate) const PATH: &str = "/ingest/{token}";

/// Receive a webhook on an ingest source's URL: 204 once it is stored (or recognised as
/// a provider's retry), 401 when its signature does not verify.
#[utoipa::path(post, path = "/ingest/{token}", operation_id = "herald.ingest.receive", tag = "Ingest",
    params(("token" = String, Path, description = "The token in the source's `ingestUrl`.")),
    request_body(content = String, description = "The provider's request, any content type, verified byte for byte."),
    responses(
        (status = 204, description = "Stored and queued for the source's endpoints, or a duplicate of a stored event"),
        (status = 401, description = "The signature is missing, malformed, wrong or outside the timestamp tolerance", body = crate::error::HttpErrorOut),
        (status = 429, description = "Over the source's rate limit; retry after `Retry-After` seconds", body = crate::error::HttpErrorOut),
    ))]
pub(crate) async fn receive(
    State(ctx): State<Shared>,
    Keys(token): Keys<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let now = ctx.now();
    let source = find_source(&ctx, &token, now).await?;
    if let Err(wait) = ctx.ingest_guard.admit(&source.id, now) {
        return Err(ApiError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil() as u64 });
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(err) => {
            record(&ctx, &source, now, err.status(), format!("not accepted: {err}"), None).await;
            return Err(err);
        }
    };
    if let Err(reason) = verify(&source, &headers, &body, now) {
        record(&ctx, &source, now, StatusCode::UNAUTHORIZED, format!("rejected: {reason}"), None).await;
        return Err(ApiError::Unauthorized(REJECTED));
    }
    let Ok(payload) = String::from_utf8(body.to_vec()) else {
        let err = ApiError::UnsupportedMediaType("the body must be UTF-8 text");
        record(&ctx, &source, now, err.status(), "not accepted: the body is not UTF-8".to_owned(), None).await;
        return Err(err);
    };
    accept(&ctx, &source, &headers, payload, now).await
}

/// Checks the request against the source's scheme.
///
/// # Errors
/// Why it is rejected; a source whose type or secret cannot verify rejects everything.
fn verify(source: &Source, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<(), String> {
    let kind = source_types::find(&source.kind).ok_or("the source's type is not supported")?;
    let Some(verifier) = kind.verifier(&source.secrets_at(now))? else { return Ok(()) };
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    verifier.verify(body, &lookup, now.timestamp()).map_err(|e| e.to_string())
}

/// Stores a verified request as a message (or recognises a provider retry) and logs it.
async fn accept(
    ctx: &Shared,
    source: &Source,
    headers: &HeaderMap,
    payload: String,
    now: DateTime<Utc>,
) -> Result<StatusCode, ApiError> {
    let lookup = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let event_id = source_types::find(&source.kind).and_then(|kind| kind.event_id(&lookup, payload.as_bytes()));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_CONTENT_TYPE_LEN)
        .map(str::to_owned);
    let id = MessageId::generate(now, &mut rand::rng());
    // The log entry of an accepted request commits with its message: one commit, not two.
    let unlogged = ctx.ingest_guard.take(&source.id, now);
    let text = format!("accepted as {id}{unlogged}");
    let accepted = log_entry(source, now, StatusCode::NO_CONTENT, text, Some(id.clone()));
    let message = Message {
        id,
        app_id: source.app_id.clone(),
        event_id: event_id.clone(),
        event_type: INGEST_EVENT_TYPE.to_owned(),
        payload: Some(payload),
        channels: None,
        tags: None,
        created_at: now,
        deliver_at: None,
        expires_at: now + TimeDelta::days(DEFAULT_RETENTION_DAYS),
        content_type,
    };
    let new = NewMessage {
        app_key: source.app_id.to_string(),
        create_app: None,
        message,
        idempotency: None,
        event_id_since: now - ctx.config.ingest_dedup_window,
        ingest_log: Some(accepted),
    };
    let created = ctx.store.create_message(new).await;
    if !matches!(created, Ok(MessageOutcome::Created { .. })) {
        ctx.ingest_guard.restore(&source.id, now, unlogged);
    }
    match created {
        Ok(MessageOutcome::Created { .. }) => {
            ctx.metrics.messages_accepted(1);
            Ok(StatusCode::NO_CONTENT)
        }
        // The provider retried an event already stored.
        Ok(MessageOutcome::DuplicateEventId) => {
            let key = event_id.unwrap_or_default();
            let earlier = ctx.store.get_message(&source.app_id, &key).await.ok().map(|m| m.id);
            let text =
                format!("duplicate of an event received within the dedupe window, not forwarded again (id {key})");
            record(ctx, source, now, StatusCode::NO_CONTENT, text, earlier).await;
            Ok(StatusCode::NO_CONTENT)
        }
        // Ingest requests carry no idempotency key.
        Ok(MessageOutcome::Replayed(_) | MessageOutcome::KeyInProgress) => {
            Err(ApiError::Internal("an ingest message met an idempotency key".into()))
        }
        // The source was deleted (on another node) since it was cached.
        Err(StoreError::NotFound(_)) => Err(ApiError::NotFound("no ingest source has this URL".to_owned())),
        Err(err) => Err(err.into()),
    }
}

fn log_entry(
    source: &Source,
    now: DateTime<Utc>,
    status: StatusCode,
    error_text: String,
    msg_id: Option<MessageId>,
) -> IngestLog {
    IngestLog {
        id: IngestLogId::generate(now, &mut rand::rng()),
        source_id: source.id.clone(),
        status_code: status.as_u16(),
        error_text,
        msg_id,
        created_at: now,
    }
}

/// Appends to the source's log a request that stored nothing, or only counts it once
/// the source's entries for this second are spent. A failure here is only reported: the
/// provider's answer depends on what happened to its request, not on the log.
async fn record(
    ctx: &Shared,
    source: &Source,
    now: DateTime<Utc>,
    status: StatusCode,
    error_text: String,
    msg_id: Option<MessageId>,
) {
    let Some(unlogged) = ctx.ingest_guard.log_unstored(&source.id, now) else { return };
    let entry = log_entry(source, now, status, format!("{error_text}{unlogged}"), msg_id);
    if let Err(err) = ctx.store.record_ingest_log(entry).await {
        ctx.ingest_guard.restore(&source.id, now, unlogged);
        tracing::warn!(source.id = %source.id, error = %err, "could not record an ingest log entry");
    }
}
