//! The rules for accepting a message, written once; each backend applies them with its
//! own SQL inside the transaction of [`crate::Messages::create_message`], in this order:
//!
//! 1. The idempotency key ([`settled_by_key`]): a completed earlier request is replayed
//!    and a running one refuses; either way nothing else is checked or written.
//! 2. The application, by id or uid, or created from the request's inline one; without
//!    either the request is `NotFound`.
//! 3. The hidden application of an ingest source is reached only by its source's
//!    requests, which carry their log entry ([`admit`]); any other request is `NotFound`.
//! 4. `eventId` within its window: a message of the application with the same eventId
//!    created since `event_id_since` refuses the request
//!    ([`MessageOutcome::DuplicateEventId`]).
//! 5. The writes, all or none: the message, one delivery per endpoint whose filters
//!    accept it ([`deliveries`]; pending, or leased to this node's dispatcher when it
//!    takes them in memory, [`crate::handoff`]), the idempotency record completed with
//!    its response, and the ingest log entry.
//!
//! A refused request leaves nothing behind, so a retry sees the store as it was.

use chrono::{DateTime, Duration, Utc};
use herald_core::{
    AppId, EndpointId,
    model::{Delivery, DeliveryStatus, Message, TriggerType, subscription_accepts},
};

use crate::{IdempotencyClaim, MessageOutcome, StoreError, StoreResult};

/// A claimed idempotency key whose request has shown no sign of life for this long is
/// taken over by the next request with that key.
pub const IDEMPOTENCY_CLAIM_TIMEOUT: Duration = Duration::seconds(60);

/// An endpoint's filter columns: all that matching a message needs, so the hot path
/// reads only these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: EndpointId,
    pub disabled: bool,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
}

/// Step 1: the outcome an earlier use of the request's idempotency key decides, or
/// `None` when the key is the caller's (claimed now, or free) and acceptance goes on.
pub fn settled_by_key(earlier: IdempotencyClaim) -> Option<MessageOutcome> {
    match earlier {
        IdempotencyClaim::Claimed => None,
        IdempotencyClaim::Completed(response) => Some(MessageOutcome::Replayed(response)),
        IdempotencyClaim::InProgress => Some(MessageOutcome::KeyInProgress),
    }
}

/// Step 3: `message` as it is stored in the resolved application `app`.
/// `from_source` says whether the request came through an ingest source (it carries
/// a log entry); backends need only find out `is_source_app` when it did not.
///
/// # Errors
/// `NotFound("application")` when `app` is a source's hidden application and the
/// request did not come through that source.
pub fn admit(mut message: Message, app: &AppId, is_source_app: bool, from_source: bool) -> StoreResult<Message> {
    if is_source_app && !from_source {
        return Err(StoreError::NotFound("application"));
    }
    message.app_id = app.clone();
    Ok(message)
}

/// When a new message's deliveries are first due: its `deliverAt`, else its creation.
pub fn due_at(message: &Message) -> DateTime<Utc> {
    message.deliver_at.unwrap_or(message.created_at)
}

/// Step 5: the deliveries to create for `message`, one per subscriber whose filters
/// accept it, ordered by endpoint id (the order rows are written in, so concurrent
/// writers lock them in one order).
pub fn deliveries<'a>(message: &Message, subscribers: impl IntoIterator<Item = &'a Subscriber>) -> Vec<Delivery> {
    let due = due_at(message);
    let mut queued: Vec<Delivery> = subscribers
        .into_iter()
        .filter(|s| {
            let (types, wanted) = (s.event_types.as_deref(), s.channels.as_deref());
            subscription_accepts(s.disabled, types, wanted, &message.event_type, message.channels.as_deref())
        })
        .map(|s| Delivery {
            msg_id: message.id.clone(),
            endpoint_id: s.id.clone(),
            app_id: message.app_id.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: due,
            trigger: TriggerType::Scheduled,
        })
        .collect();
    queued.sort_unstable_by(|a, b| a.endpoint_id.cmp(&b.endpoint_id));
    queued
}

/// Whether `outcome` queued deliveries that are due at `now`, so a dispatcher should
/// be woken instead of waiting for its next poll.
pub fn is_due_now(outcome: &MessageOutcome, now: DateTime<Utc>) -> bool {
    matches!(outcome, MessageOutcome::Created { message, deliveries }
        if !deliveries.is_empty() && message.deliver_at.is_none_or(|t| t <= now))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use herald_core::MessageId;

    use super::*;
    use crate::StoredResponse;

    fn message(event_type: &str, channels: Option<&[&str]>) -> Message {
        let now = herald_core::to_millis(Utc::now());
        Message {
            id: MessageId::generate(now, &mut rand::rng()),
            app_id: AppId::generate(now, &mut rand::rng()),
            event_id: None,
            event_type: event_type.to_owned(),
            payload: Some("{}".to_owned()),
            channels: channels.map(|c| c.iter().map(|&c| c.to_owned()).collect()),
            tags: None,
            created_at: now,
            deliver_at: None,
            expires_at: now + TimeDelta::days(1),
            content_type: None,
        }
    }

    fn subscriber(disabled: bool, types: Option<&[&str]>, channels: Option<&[&str]>) -> Subscriber {
        let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|&s| s.to_owned()).collect());
        Subscriber {
            id: EndpointId::generate(Utc::now(), &mut rand::rng()),
            disabled,
            event_types: list(types),
            channels: list(channels),
        }
    }

    #[test]
    fn an_earlier_use_of_the_key_settles_the_request() {
        assert!(settled_by_key(IdempotencyClaim::Claimed).is_none());
        let response = StoredResponse { status: 202, body: b"{}".to_vec() };
        assert!(matches!(
            settled_by_key(IdempotencyClaim::Completed(response.clone())),
            Some(MessageOutcome::Replayed(r)) if r == response
        ));
        assert!(matches!(settled_by_key(IdempotencyClaim::InProgress), Some(MessageOutcome::KeyInProgress)));
    }

    #[test]
    fn a_source_app_admits_only_its_source() {
        let app = AppId::generate(Utc::now(), &mut rand::rng());
        let admitted = admit(message("t", None), &app, false, false).expect("an ordinary app admits");
        assert_eq!(admitted.app_id, app);
        assert!(admit(message("t", None), &app, true, true).is_ok());
        assert!(matches!(admit(message("t", None), &app, true, false), Err(StoreError::NotFound("application"))));
    }

    #[test]
    fn deliveries_go_to_matching_enabled_endpoints_in_id_order() {
        let m = message("user.created", Some(&["eu"]));
        let all = subscriber(false, None, None);
        let typed = subscriber(false, Some(&["user.created"]), Some(&["eu", "us"]));
        let cases = [
            (subscriber(true, None, None), false),
            (subscriber(false, Some(&["user.deleted"]), None), false),
            (subscriber(false, None, Some(&["us"])), false),
            (all.clone(), true),
            (typed.clone(), true),
        ];
        let subscribers: Vec<_> = cases.iter().rev().map(|(s, _)| s.clone()).collect();
        let queued = deliveries(&m, &subscribers);
        let mut expected: Vec<_> = cases.iter().filter(|(_, wanted)| *wanted).map(|(s, _)| s.id.clone()).collect();
        expected.sort();
        assert_eq!(queued.iter().map(|d| d.endpoint_id.clone()).collect::<Vec<_>>(), expected);
        for d in &queued {
            assert_eq!((d.status, d.attempts, d.next_attempt_at), (DeliveryStatus::Pending, 0, m.created_at));
            assert_eq!((&d.msg_id, &d.app_id, d.trigger), (&m.id, &m.app_id, TriggerType::Scheduled));
        }
    }

    #[test]
    fn a_scheduled_message_is_due_at_its_time_and_wakes_no_one_before() {
        let mut m = message("t", None);
        let later = m.created_at + TimeDelta::minutes(5);
        m.deliver_at = Some(later);
        let queued = deliveries(&m, &[subscriber(false, None, None)]);
        assert_eq!(queued[0].next_attempt_at, later);
        let outcome = MessageOutcome::Created { message: m.clone(), deliveries: queued };
        assert!(!is_due_now(&outcome, m.created_at));
        assert!(is_due_now(&outcome, later));
        let empty = MessageOutcome::Created { message: m, deliveries: Vec::new() };
        assert!(!is_due_now(&empty, later));
    }
}
