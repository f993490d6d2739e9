//! One attempt for one claimed delivery, as named steps: prepare (sign) → send →
//! classify, giving the [`AttemptResult`] the recorder writes. The delivery's result
//! is a value, never an error: every failure is an attempt in the log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::{
    AttemptId,
    model::{Attempt, DeliveryStatus},
    to_millis,
};
use herald_store::{AttemptResult, ClaimedDelivery, NextStep};

use crate::{
    client::{Exchange, GuardedClient},
    outcome::{RetryPolicy, classify},
    signing::prepare,
};

/// What an attempt needs besides the delivery.
pub(crate) struct AttemptContext<'a> {
    pub client: &'a GuardedClient,
    pub policy: RetryPolicy<'a>,
    pub clock: &'a herald_core::Clock,
    /// The lease the delivery was claimed under.
    pub lease_until: DateTime<Utc>,
}

/// Makes one attempt and says what happens next.
pub(crate) async fn attempt(ctx: &AttemptContext<'_>, claimed: &ClaimedDelivery) -> AttemptResult {
    let started_at = to_millis((ctx.clock)());
    let (exchange, duration, next) = match prepare(claimed, started_at) {
        // Nothing to retry: the payload, the secret or the endpoint will not come back
        // by waiting.
        Err(reason) => (Exchange::NoResponse { reason: reason.to_string() }, Duration::ZERO, NextStep::Failed),
        Ok(request) => {
            let (exchange, duration) = ctx.client.send(request).await;
            let ended_at = (ctx.clock)();
            let next = classify(&exchange, claimed.delivery.attempts, ended_at, rand::random(), ctx.policy);
            (exchange, duration, next)
        }
    };
    log_outcome(&exchange, duration, next);
    AttemptResult {
        attempt: attempt_record(claimed, started_at, exchange, duration, next),
        next,
        lease_until: ctx.lease_until,
    }
}

fn attempt_record(
    claimed: &ClaimedDelivery,
    started_at: DateTime<Utc>,
    exchange: Exchange,
    duration: Duration,
    next: NextStep,
) -> Attempt {
    let (code, response) = match exchange {
        Exchange::Response { status, body, .. } => (status.as_u16(), body),
        Exchange::NoResponse { reason } => (0, reason),
    };
    Attempt {
        id: AttemptId::generate(started_at, &mut rand::rng()),
        msg_id: claimed.message.id.clone(),
        endpoint_id: claimed.endpoint.id.clone(),
        app_id: claimed.delivery.app_id.clone(),
        url: claimed.endpoint.url.clone(),
        status: if next == NextStep::Delivered { DeliveryStatus::Success } else { DeliveryStatus::Fail },
        // HTTP status codes are three digits, so they fit.
        response_status_code: i16::try_from(code).unwrap_or(i16::MAX),
        response,
        response_duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        // `Manual` when a resend, recover or replay queued this attempt.
        trigger: claimed.delivery.trigger,
        created_at: started_at,
    }
}

/// One line per attempt, inside the delivery's span (which names the ids). The
/// response body and the payload are never logged; a refusal reason is ours.
fn log_outcome(exchange: &Exchange, duration: Duration, next: NextStep) {
    let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let (status_code, reason) = match exchange {
        Exchange::Response { status, .. } => (status.as_u16(), None),
        Exchange::NoResponse { reason } => (0, Some(reason.as_str())),
    };
    match next {
        NextStep::Delivered => tracing::debug!(status_code, duration_ms, "delivered"),
        NextStep::RetryAt(at) => {
            tracing::info!(status_code, duration_ms, reason, retry_at = %at, "attempt failed; will retry");
        }
        NextStep::Failed => tracing::info!(status_code, duration_ms, reason, "attempt failed; delivery failed"),
        NextStep::EndpointDisabled => {
            tracing::warn!(status_code, duration_ms, "endpoint answered 410 Gone; disabling it");
        }
    }
}
