//! Herald's delivery engine: the dispatcher that turns stored deliveries into signed
//! HTTP POSTs (docs/ARCHITECTURE.md, "The path of a message"; docs/GUARANTEES.md).
//!
//! Each delivery goes through named steps:
//!
//! 1. **claim** ([`Dispatcher`]): take the deliveries this node's accept calls handed
//!    off (already leased to it), and lease batches of due deliveries from the store,
//!    which stays the queue's truth;
//! 2. **prepare** (`signing`): the exact stored payload bytes, `webhook-*` and `svix-*`
//!    headers, one `v1`/`v1a` signature per active secret, the endpoint's headers;
//! 3. **send** (`client`): one shared client that resolves names itself, connects only
//!    to addresses the SSRF guard accepted, follows no redirects and uses no proxy;
//! 4. **classify** (`outcome`): 2xx delivered, 410 disables the endpoint, anything
//!    else retried on the schedule (with `Retry-After` honoured) until it runs out;
//! 5. **record** (`recorder`): attempts written in batches, each delivery moved on;
//! 6. **schedule**: the loop wakes when a message is accepted, when a retry is due,
//!    or at the poll interval.
//!
//! Delivery is **at-least-once**: a delivery claimed by a worker that dies (or cannot
//! reach the store) before recording its attempt keeps its lease, and any worker sends
//! it again once the lease runs out; a graceful stop finishes the requests in flight and
//! hands the unstarted ones back at once. Receivers deduplicate on `webhook-id`, which
//! stays the same across attempts.
//!
//! The worker never logs payloads, secrets, signatures or response bodies. It does
//! not know about HTTP routing (`api`) or configuration files (`server`).

#![forbid(unsafe_code)]

mod attempt;
mod client;
mod config;
mod dispatcher;
mod endpoints;
mod outcome;
mod recorder;
mod retention;
mod schedules;
mod signing;
mod throttle;

use herald_core::Clock;
use herald_store::DynStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use client::{DestinationRefused, GuardedResolver, USER_AGENT};
pub use config::{ConfigError, WorkerConfig};
pub use dispatcher::Dispatcher;
pub use herald_metrics::Metrics;
pub use retention::{RetentionConfig, spawn_retention_sweeper, sweep_retention};

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The settings are inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The outbound HTTP client could not be built.
    #[error("building the outbound HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Starts a [`Dispatcher`] in a background task that runs until `shutdown` is
/// cancelled.
///
/// # Errors
/// As [`Dispatcher::new`].
pub fn spawn_dispatcher(
    store: DynStore,
    config: WorkerConfig,
    clock: Clock,
    shutdown: CancellationToken,
) -> Result<DispatcherHandle, WorkerError> {
    spawn_dispatcher_with_metrics(store, config, clock, Metrics::new(), None, shutdown)
}

/// [`spawn_dispatcher`], counting into `metrics` (see [`Dispatcher::with_metrics`]) and
/// taking the deliveries the store hands off through `handoff`
/// ([`Dispatcher::with_handoff`]).
///
/// # Errors
/// As [`Dispatcher::new`].
pub fn spawn_dispatcher_with_metrics(
    store: DynStore,
    config: WorkerConfig,
    clock: Clock,
    metrics: std::sync::Arc<Metrics>,
    handoff: Option<herald_store::HandoffReceiver>,
    shutdown: CancellationToken,
) -> Result<DispatcherHandle, WorkerError> {
    let dispatcher = Dispatcher::with_metrics(store, config, clock, metrics)?;
    let dispatcher = match handoff {
        Some(receiver) => dispatcher.with_handoff(receiver),
        None => dispatcher,
    };
    Ok(DispatcherHandle { task: tokio::spawn(dispatcher.run_until_stopped(shutdown)) })
}

/// A running dispatcher; await [`DispatcherHandle::stopped`] after cancelling its token.
#[derive(Debug)]
pub struct DispatcherHandle {
    task: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Waits until the dispatcher has stopped claiming and recorded the attempts it
    /// had in progress.
    ///
    /// # Errors
    /// The dispatcher task panicked.
    pub async fn stopped(self) -> Result<(), tokio::task::JoinError> {
        self.task.await
    }
}
