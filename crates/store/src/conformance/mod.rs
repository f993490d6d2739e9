//! The behavioural suite every [`Store`](crate::Store) backend must pass, and the
//! fixture builders its cases share. [`conformance_tests!`] is its one entry point: it
//! runs every case on a fresh store of each backend.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Application, Endpoint, EndpointSecret, Message},
};
use rand::{SeedableRng, rngs::StdRng};

pub mod apps;
pub mod deliveries;
pub mod events;
pub mod ingest;
pub mod maintenance;
pub mod messages;

use crate::{MessageOutcome, NewMessage};

/// Expands to every conformance case as a test module holding two tests, `sqlite` and
/// `postgres`, each on a fresh store from `herald_testkit` (so the invoking crate
/// dev-depends on it). A case is an `async fn(DynStore)` in one of the modules below and
/// is listed here once.
#[macro_export]
macro_rules! conformance_tests {
    () => {
        $crate::conformance_tests!(@cases
            apps: applications_round_trip, application_uid_is_unique, pages_walk_both_ways,
                application_list_filters, event_types_round_trip, endpoints_are_scoped_to_their_app;
            messages: message_fans_out_to_matching_endpoints, message_idempotency_replays_without_writing,
                event_id_conflicts_within_window, idempotency_claims_are_exclusive, concurrent_messages_all_commit,
                message_filters, deleting_an_app_removes_its_data;
            deliveries: claims_are_leased_and_expire, attempts_move_deliveries_on,
                a_late_result_does_not_overwrite_a_newer_owner, handed_off_deliveries_are_leased_until_sent,
                attempt_log_filters_and_pages,
                manual_control_requeues_deliveries, claims_skip_endpoints_and_releases_requeue;
            maintenance: event_type_retry_schedules_round_trip, endpoints_failing_too_long_are_disabled,
                retention_drops_expired_payloads_and_old_attempts, queue_depth_counts_pending_and_sending;
            ingest: sources_round_trip, source_applications_are_hidden_but_take_messages,
                source_tokens_rotate_with_a_grace_period, ingest_logs_page_and_sweep,
                ingest_logs_are_trimmed_per_source, concurrent_retries_of_one_event_store_it_once,
                deleting_a_source_removes_its_data;
            events: events_read_in_commit_order_with_filters, readers_continuing_during_concurrent_writes_miss_nothing,
                consumer_positions_are_kept_per_consumer, commits_are_signalled;
        );
    };
    (@cases $($module:ident: $($case:ident),+;)+) => {
        $($(
            // Two worker threads: several cases race tasks against each other.
            #[::herald_testkit::backends(multi_thread)]
            async fn $case(backend: ::herald_testkit::Backend) {
                let db = backend.open().await;
                $crate::conformance::$module::$case(db.store.clone()).await;
            }
        )+)+
    };
}

pub(crate) fn rng() -> StdRng {
    StdRng::from_os_rng()
}

/// An application named `name` with an optional uid.
pub fn app(name: &str, uid: Option<&str>) -> Application {
    let now = herald_core::to_millis(Utc::now());
    Application {
        id: AppId::generate(now, &mut rng()),
        uid: uid.map(str::to_owned),
        name: name.to_owned(),
        throttle_rate: None,
        metadata: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        created_at: now,
        updated_at: now,
    }
}

/// An endpoint of `app_id` with the given filters.
pub fn endpoint(app_id: &AppId, types: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
    let now = herald_core::to_millis(Utc::now());
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Endpoint {
        id: EndpointId::generate(now, &mut rng()),
        app_id: app_id.clone(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        throttle_rate: None,
        disabled: false,
        event_types: types.map(list),
        channels: channels.map(list),
        metadata: BTreeMap::new(),
        headers: BTreeMap::from([("x-team".to_owned(), "core".to_owned())]),
        secrets: vec![EndpointSecret::generate(&mut rng())],
        created_at: now,
        updated_at: now,
    }
}

/// A new-message request for `app_key`.
pub fn message(app_key: &str, event_type: &str, channels: Option<&[&str]>) -> NewMessage {
    let now = herald_core::to_millis(Utc::now());
    NewMessage {
        app_key: app_key.to_owned(),
        create_app: None,
        message: Message {
            id: MessageId::generate(now, &mut rng()),
            // Placeholder: the store fills in the resolved application.
            app_id: AppId::generate(now, &mut rng()),
            event_id: None,
            event_type: event_type.to_owned(),
            payload: Some(r#"{"k": 1}"#.to_owned()),
            channels: channels.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            tags: None,
            created_at: now,
            deliver_at: None,
            expires_at: now + Duration::days(90),
            content_type: None,
        },
        idempotency: None,
        event_id_since: now - Duration::hours(24),
        ingest_log: None,
    }
}

/// The message and deliveries of a `Created` outcome.
///
/// # Panics
/// On any other outcome.
pub fn created(outcome: MessageOutcome) -> (Message, Vec<herald_core::model::Delivery>) {
    match outcome {
        MessageOutcome::Created { message, deliveries } => (message, deliveries),
        other => panic!("expected a new message, got {other:?}"),
    }
}
