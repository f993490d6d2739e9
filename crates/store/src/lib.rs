//! The storage boundary, split by capability: [`Resources`], [`Messages`],
//! [`DeliveryQueue`], [`AttemptLog`], [`Ingest`], [`Events`] and [`Upkeep`]. Their
//! methods follow Herald's use cases (not its tables), so each backend can do each one
//! in a single transaction with the SQL that suits it. [`Store`] is their union, so
//! callers hold one [`DynStore`] and `use herald_store::prelude::*` to call it.
//! Records are `herald_core::model` types.
//!
//! Backends live in their own crates (`herald-store-sqlite`, `herald-store-postgres`)
//! and run the shared behavioural suite in [`conformance`] (feature `conformance`).

use std::sync::Arc;

pub mod accept;
mod attempts;
#[cfg(feature = "conformance")]
pub mod conformance;
mod events;
pub mod handoff;
mod ingest;
mod maintenance;
mod messages;
mod page;
mod queue;
mod resources;

pub use attempts::{
    AttemptFilter, AttemptLog, AttemptResult, DeliveryCounts, EndpointMessage, MessageDestination, NextStep,
    RequeueFilter,
};
pub use events::{ConsumerKey, Event, EventFilter, EventPage, Events, Position};
pub use handoff::{HandedOff, HandoffReceiver, HandoffSender};
pub use ingest::{Ingest, TokenHash, TokenRotation};
pub use maintenance::{FailingEndpoint, HealthChanges, QueueDepth, RetentionSwept, Upkeep};
pub use messages::{
    IdempotencyClaim, IdempotencyWrite, MessageFilter, MessageOutcome, Messages, NewMessage, StoredResponse,
};
pub use page::{Cursor, Direction, Order, Page, PageQuery};
pub use queue::{ClaimedDelivery, DeliveryQueue};
pub use resources::{AppFilter, Resources, TokenRecord};

/// The capability traits, for callers of a [`DynStore`]: one `use` brings every
/// method into scope.
pub mod prelude {
    pub use crate::{AttemptLog, DeliveryQueue, Events, Ingest, Messages, Resources, Store, Upkeep};
}

/// What went wrong in the store, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist (or belongs to another application).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached or is overloaded; retrying may work.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or corrupt data.
    #[error("store failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The `NotFound` error for a lookup that found nothing: `found("endpoint")(row)`.
///
/// # Errors
/// `NotFound(what)` when the value is `None`.
pub fn found<T>(what: &'static str) -> impl FnOnce(Option<T>) -> StoreResult<T> {
    move |v| v.ok_or(StoreError::NotFound(what))
}

/// Herald's persistence: every capability of one backend. Implemented for every type
/// that has them all, so a backend only implements the capability traits.
pub trait Store: Resources + Messages + DeliveryQueue + AttemptLog + Ingest + Events + Upkeep {}

impl<T> Store for T where T: Resources + Messages + DeliveryQueue + AttemptLog + Ingest + Events + Upkeep {}

/// The shared handle handlers and workers hold.
pub type DynStore = Arc<dyn Store>;
