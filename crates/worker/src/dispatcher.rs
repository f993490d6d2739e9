//! The claim loop: claim due deliveries under a lease, admit each to its endpoint,
//! run one task per admitted delivery (prepare → send → classify → record), and
//! decide when to look again.
//!
//! - **Bounds.** At most `max_in_flight` deliveries are in memory; the loop claims no
//!   more than the free room. Each endpoint gets `max_in_flight_per_endpoint` requests
//!   and `max_queued_per_endpoint` waiting deliveries; a delivery claimed for a full
//!   endpoint is left under its lease and comes back when the lease runs out, so the
//!   loop never blocks on a slow endpoint.
//! - **Wake-up.** The loop sleeps until the store says a message was accepted, the
//!   recorder knows an earlier retry time, a slot frees up while full, or the poll
//!   interval passes (the safety net for retries and other nodes' work).
//! - **Shutdown.** Cancelling stops claiming; deliveries still waiting for a request
//!   slot are dropped unsent, and those being sent finish (the request timeout bounds
//!   them) and are recorded before the loop returns. Anything claimed but not recorded
//!   keeps its lease and is claimed again once the lease expires: delivery is
//!   at-least-once, and `webhook-id` lets receivers drop the duplicates.

use std::{sync::Arc, time::Duration};

use herald_core::{Clock, to_millis};
use herald_store::{ClaimedDelivery, DynStore, StoreResult};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{
    WorkerError,
    attempt::{AttemptContext, attempt},
    client::GuardedClient,
    config::WorkerConfig,
    endpoints::{Admission, EndpointSlots},
    outcome::RetryPolicy,
    recorder::{Recorder, RetryWatch},
};

/// The delivery engine of one node. Build it with [`Dispatcher::new`], then either
/// run it in the background ([`Dispatcher::run_until_stopped`]) or drive it from a
/// test ([`Dispatcher::run_until_idle`]).
pub struct Dispatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

struct Shared {
    store: DynStore,
    config: WorkerConfig,
    clock: Clock,
    client: GuardedClient,
    endpoints: Arc<EndpointSlots>,
    recorder: Recorder,
    retries: Arc<RetryWatch>,
}

impl Dispatcher {
    /// Checks `config`, builds the guarded HTTP client and starts the recorder task
    /// (so it must be called inside a Tokio runtime).
    ///
    /// # Errors
    /// [`WorkerError::Config`] for inconsistent settings, [`WorkerError::Client`] when
    /// the TLS stack cannot be set up.
    pub fn new(store: DynStore, config: WorkerConfig, clock: Clock) -> Result<Self, WorkerError> {
        config.validate()?;
        let client = GuardedClient::new(&config).map_err(WorkerError::Client)?;
        let retries = Arc::new(RetryWatch::default());
        let recorder = Recorder::spawn(store.clone(), retries.clone(), config.max_in_flight);
        let endpoints = Arc::new(EndpointSlots::new(config.max_in_flight_per_endpoint, config.max_held_per_endpoint()));
        Ok(Self { shared: Arc::new(Shared { store, config, clock, client, endpoints, recorder, retries }) })
    }

    /// Sends everything that is due now, waits for every attempt to be recorded, and
    /// returns once a claim finds nothing due. Retries scheduled for later are left for
    /// a later call (tests move their clock forward between calls).
    ///
    /// # Errors
    /// The store failed to claim.
    pub async fn run_until_idle(&self) -> StoreResult<()> {
        let config = &self.shared.config;
        // Never more than one endpoint may hold, so nothing is left under a lease.
        let limit = config.batch_size.min(config.max_held_per_endpoint());
        let never = CancellationToken::new();
        loop {
            let claimed = self.claim(limit).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let mut tasks = JoinSet::new();
            self.start(claimed, &mut tasks, &never);
            while let Some(joined) = tasks.join_next().await {
                report_panic(joined);
            }
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes and records the attempts in
    /// progress and returns (see the module docs for what stays leased).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let config = &self.shared.config;
        let waker = self.shared.store.delivery_waker();
        let mut tasks = JoinSet::new();
        tracing::info!(
            max_in_flight = config.max_in_flight,
            max_in_flight_per_endpoint = config.max_in_flight_per_endpoint,
            "dispatcher started"
        );
        while !shutdown.is_cancelled() {
            while let Some(joined) = tasks.try_join_next() {
                report_panic(joined);
            }
            let room = config.batch_size.min(config.max_in_flight.saturating_sub(tasks.len()));
            if room > 0 {
                match self.claim(room).await {
                    Ok(claimed) => {
                        let full = claimed.len() == room;
                        self.start(claimed, &mut tasks, &shutdown);
                        if full {
                            // More may be due; claim again before sleeping.
                            tokio::task::yield_now().await;
                            continue;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = &error as &dyn std::error::Error, "claiming deliveries failed");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = waker.notified() => {}
                () = self.shared.retries.changed() => {}
                Some(joined) = tasks.join_next(), if room == 0 => report_panic(joined),
                () = tokio::time::sleep(self.until_next_look()) => {}
            }
        }
        tracing::info!(deliveries.count = tasks.len(), "dispatcher stopping; finishing attempts in progress");
        while let Some(joined) = tasks.join_next().await {
            report_panic(joined);
        }
        tracing::info!("dispatcher stopped");
    }

    /// Claim step: leases up to `limit` due deliveries.
    async fn claim(&self, limit: usize) -> StoreResult<Vec<ClaimedDelivery>> {
        let now = to_millis((self.shared.clock)());
        let lease = chrono::TimeDelta::from_std(self.shared.config.lease).unwrap_or(chrono::TimeDelta::MAX);
        self.shared.store.claim_due_deliveries(now, limit, now + lease).await
    }

    /// Admits each claimed delivery to its endpoint and starts its task; deliveries of
    /// full endpoints stay leased and are claimed again when the lease runs out.
    fn start(&self, claimed: Vec<ClaimedDelivery>, tasks: &mut JoinSet<()>, stop: &CancellationToken) {
        let mut deferred = 0usize;
        for claimed in claimed {
            let Some(admission) = self.shared.endpoints.admit(&claimed.endpoint.id) else {
                deferred += 1;
                continue;
            };
            let span = tracing::info_span!(
                "delivery",
                msg.id = %claimed.message.id,
                endpoint.id = %claimed.endpoint.id,
                app.id = %claimed.delivery.app_id,
                attempt = claimed.delivery.attempts + 1,
            );
            tasks.spawn(deliver(self.shared.clone(), claimed, admission, stop.clone()).instrument(span));
        }
        if deferred > 0 {
            tracing::debug!(deliveries.count = deferred, "endpoints at capacity; deferring until the lease runs out");
        }
    }

    /// How long to sleep when nothing more is due: the poll interval, or less when a
    /// retry is due sooner.
    fn until_next_look(&self) -> Duration {
        let poll = self.shared.config.poll_interval;
        let now = (self.shared.clock)();
        match self.shared.retries.next_after(now) {
            Some(at) => (at - now).to_std().map_or(Duration::ZERO, |wait| wait.min(poll)),
            None => poll,
        }
    }
}

/// One delivery's task: wait for a request slot of its endpoint, attempt, record.
async fn deliver(shared: Arc<Shared>, claimed: ClaimedDelivery, admission: Admission, stop: CancellationToken) {
    let slot = tokio::select! {
        biased;
        // Not started yet: leave it under its lease for the next claim.
        () = stop.cancelled() => return,
        slot = admission.request_slot() => slot,
    };
    let config = &shared.config;
    let ctx = AttemptContext {
        client: &shared.client,
        policy: RetryPolicy {
            schedule: &config.retry_schedule,
            retry_after_min: config.retry_after_min,
            retry_after_max: config.retry_after_max,
        },
        clock: &shared.clock,
    };
    let result = attempt(&ctx, &claimed).await;
    drop(slot);
    // A failed write is logged by the recorder; the lease brings the delivery back.
    shared.recorder.record(result).await;
}

fn report_panic(joined: Result<(), JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        tracing::error!("a delivery task panicked; its delivery is sent again when its lease runs out");
    }
}
