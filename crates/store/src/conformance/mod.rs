//! The behavioural suite every [`Store`] backend must pass. A backend's tests invoke
//! [`conformance_tests!`] with an expression that yields a fresh, empty store.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use herald_core::{
    AppId, EndpointId, MessageId,
    model::{Application, Endpoint, EndpointSecret, Message},
};
use rand::{SeedableRng, rngs::StdRng};

mod apps;
mod deliveries;
pub mod events;
pub mod ingest;
pub mod maintenance;
mod messages;

pub use apps::{
    application_list_filters, application_uid_is_unique, applications_round_trip, endpoints_are_scoped_to_their_app,
    event_types_round_trip, pages_walk_both_ways,
};
pub use deliveries::{
    a_late_result_does_not_overwrite_a_newer_owner, attempt_log_filters_and_pages, attempts_move_deliveries_on,
    claims_are_leased_and_expire, claims_skip_endpoints_and_releases_requeue,
    handed_off_deliveries_are_leased_until_sent, manual_control_requeues_deliveries,
};
pub use messages::{
    concurrent_messages_all_commit, deleting_an_app_removes_its_data, event_id_conflicts_within_window,
    idempotency_claims_are_exclusive, message_fans_out_to_matching_endpoints, message_filters,
    message_idempotency_replays_without_writing,
};

use crate::{MessageOutcome, NewMessage};

/// Expands to one `#[tokio::test]` per conformance case; `$make` is an async
/// expression returning a fresh [`DynStore`](crate::DynStore) and a guard (e.g. a temp dir) that is
/// dropped when the case ends.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            applications_round_trip, application_uid_is_unique, pages_walk_both_ways, application_list_filters,
            event_types_round_trip, endpoints_are_scoped_to_their_app, message_fans_out_to_matching_endpoints,
            message_idempotency_replays_without_writing, event_id_conflicts_within_window,
            idempotency_claims_are_exclusive, concurrent_messages_all_commit, message_filters,
            deleting_an_app_removes_its_data, claims_are_leased_and_expire, attempts_move_deliveries_on,
            a_late_result_does_not_overwrite_a_newer_owner, handed_off_deliveries_are_leased_until_sent,
            attempt_log_filters_and_pages, manual_control_requeues_deliveries);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard): ($crate::DynStore, _) = $make.await;
                $crate::conformance::$case(store).await;
            }
        )*
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
