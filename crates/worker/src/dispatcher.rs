//! The claim loop: claim due deliveries under a lease, admit each to its endpoint,
//! run one task per admitted delivery (prepare → send → classify → record), and
//! decide when to look again.
//!
//! - **Bounds.** At most `max_in_flight` deliveries are in memory; the loop claims no
//!   more than the free room. Each endpoint gets `max_in_flight_per_endpoint` requests
//!   and `max_queued_per_endpoint` waiting deliveries; claims skip endpoints that hold
//!   that many, so the loop never blocks on a slow endpoint and one endpoint's backlog
//!   cannot fill the room other endpoints need.
//! - **Hand-off.** Deliveries this node's accept calls leased to it arrive on a channel
//!   and start like claimed ones, without a read of the queue; those of a saturated
//!   endpoint go back to the table. The channel is read only while there is room.
//! - **Wake-up.** The loop sleeps until a hand-off arrives, the store says a message was
//!   accepted (and left its deliveries in the table), the recorder knows an earlier
//!   retry time, a skipped endpoint has drained, room frees up while full, or the poll
//!   interval passes (the safety net for retries and other nodes' work).
//! - **Shutdown.** Cancelling stops claiming; those being sent finish (the request
//!   timeout bounds them) and are recorded, deliveries still waiting for a request slot
//!   or in the hand-off channel are handed back to the queue unsent, and then the loop
//!   returns. Anything claimed or handed off but neither recorded nor handed back (the
//!   process died, the store failed) keeps its lease and is claimed again once the
//!   lease expires: delivery is at-least-once, and `webhook-id` lets receivers drop
//!   the duplicates.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use herald_core::{
    Clock, EndpointId, MessageId,
    model::{Delivery, Endpoint},
    to_millis,
};
use herald_metrics::Metrics;
use herald_store::{ClaimedDelivery, DynStore, HandedOff, HandoffReceiver, NextStep, StoreError, StoreResult};
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
    recorder::{Recorder, RecorderTask, RetryWatch},
    schedules::TypeSchedules,
    throttle::Throttles,
};

/// The delivery engine of one node. Build it with [`Dispatcher::new`], then either
/// run it in the background ([`Dispatcher::run_until_stopped`]) or drive it from a
/// test ([`Dispatcher::run_until_idle`]).
pub struct Dispatcher {
    shared: Arc<Shared>,
    /// Deliveries this node's accept calls leased to it, sent without a claim.
    handoff: Option<HandoffReceiver>,
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
    schedules: TypeSchedules,
    throttles: Throttles,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Checks `config`, builds the guarded HTTP client and starts the recorder task
    /// (so it must be called inside a Tokio runtime).
    ///
    /// # Errors
    /// [`WorkerError::Config`] for inconsistent settings, [`WorkerError::Client`] when
    /// the TLS stack cannot be set up.
    pub fn new(store: DynStore, config: WorkerConfig, clock: Clock) -> Result<Self, WorkerError> {
        Self::with_metrics(store, config, clock, Metrics::new())
    }

    /// [`Dispatcher::new`], counting attempts, latency and requests in flight in `metrics`.
    ///
    /// # Errors
    /// As [`Dispatcher::new`].
    pub fn with_metrics(
        store: DynStore,
        config: WorkerConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WorkerError> {
        config.validate()?;
        let client = GuardedClient::new(&config).map_err(WorkerError::Client)?;
        let retries = Arc::new(RetryWatch::default());
        let task = RecorderTask {
            store: store.clone(),
            retries: retries.clone(),
            clock: clock.clone(),
            disable_after_failing: config.disable_after_failing,
            metrics: metrics.clone(),
        };
        let recorder = Recorder::spawn(task, config.max_in_flight);
        let endpoints = Arc::new(EndpointSlots::new(config.max_in_flight_per_endpoint, config.max_held_per_endpoint()));
        let (schedules, throttles) = (TypeSchedules::default(), Throttles::default());
        let shared =
            Shared { store, config, clock, client, endpoints, recorder, retries, schedules, throttles, metrics };
        Ok(Self { shared: Arc::new(shared), handoff: None })
    }

    /// Also takes the deliveries that the store hands off from `receiver` (the store
    /// must have been given its sender, [`herald_store::DeliveryQueue::hand_off_to`]).
    #[must_use]
    pub fn with_handoff(mut self, receiver: HandoffReceiver) -> Self {
        self.handoff = Some(receiver);
        self
    }

    /// Sends everything that is due now, waits for every attempt to be recorded, and
    /// returns once a claim finds nothing due. Retries scheduled for later are left for
    /// a later call (tests move their clock forward between calls).
    ///
    /// # Errors
    /// The store failed to claim.
    pub async fn run_until_idle(&self) -> StoreResult<()> {
        let config = &self.shared.config;
        let limit = config.batch_size.min(config.max_in_flight);
        let never = CancellationToken::new();
        loop {
            let claim = self.claim(limit).await?;
            if claim.deliveries.is_empty() {
                return Ok(());
            }
            let mut tasks = JoinSet::new();
            self.start(claim.leased(), &mut tasks, &never);
            while let Some(joined) = tasks.join_next().await {
                task_ended(joined);
            }
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes and records the attempts in
    /// progress, hands back the deliveries that had not started, and returns.
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) {
        let mut handoff = self.handoff.take();
        let config = &self.shared.config;
        let waker = self.shared.store.delivery_waker();
        let mut tasks = JoinSet::new();
        let mut unsent = Vec::new();
        // The time the last successful claim looked at: a retry due by then was picked
        // up by it, one due later (even by a fraction of a millisecond) still needs a look.
        let mut looked_at = DateTime::<Utc>::MIN_UTC;
        tracing::info!(
            max_in_flight = config.max_in_flight,
            max_in_flight_per_endpoint = config.max_in_flight_per_endpoint,
            "dispatcher started"
        );
        while !shutdown.is_cancelled() {
            while let Some(joined) = tasks.try_join_next() {
                unsent.extend(task_ended(joined));
            }
            let room = config.batch_size.min(config.max_in_flight.saturating_sub(tasks.len()));
            if room > 0 {
                match self.claim(room).await {
                    Ok(claim) => {
                        looked_at = claim.at;
                        let full = claim.deliveries.len() == room;
                        self.start(claim.leased(), &mut tasks, &shutdown);
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
            let mut handed = None;
            tokio::select! {
                () = shutdown.cancelled() => {}
                received = receive(handoff.as_mut(), room), if room > 0 => handed = Some(received),
                () = waker.notified() => {}
                () = self.shared.retries.changed() => {}
                () = self.shared.endpoints.room_freed() => {}
                Some(joined) = tasks.join_next(), if room == 0 => unsent.extend(task_ended(joined)),
                () = tokio::time::sleep(self.until_next_look(looked_at)) => {}
            }
            match handed {
                Some(Some(batch)) => {
                    let back = self.take_handed(batch, &mut tasks, &shutdown).await;
                    self.hand_back(back).await;
                }
                // The store let go of its sender: only claims are left.
                Some(None) => handoff = None,
                None => {}
            }
        }
        if let Some(mut receiver) = handoff {
            // No more hand-offs; those already committed go back to the table.
            receiver.close();
            while let Some(handed) = receiver.recv().await {
                unsent.push(Unsent::of(&handed.delivery, handed.lease_until));
            }
        }
        tracing::info!(deliveries.count = tasks.len(), "dispatcher stopping; finishing attempts in progress");
        while let Some(joined) = tasks.join_next().await {
            unsent.extend(task_ended(joined));
        }
        self.hand_back(unsent).await;
        tracing::info!("dispatcher stopped");
    }

    /// Claim step: leases up to `limit` due deliveries, skipping endpoints that are full.
    async fn claim(&self, limit: usize) -> StoreResult<Claim> {
        let now = to_millis((self.shared.clock)());
        let lease = chrono::TimeDelta::from_std(self.shared.config.lease).unwrap_or(chrono::TimeDelta::MAX);
        let lease_until = now + lease;
        let skip = self.shared.endpoints.saturated();
        let deliveries = self.shared.store.claim_due_deliveries_skipping(now, limit, lease_until, &skip).await?;
        let types = deliveries.iter().map(|d| d.message.event_type.as_str());
        self.shared.schedules.refresh(&self.shared.store, types).await;
        Ok(Claim { deliveries, at: now, lease_until })
    }

    /// Starts the deliveries handed off by the accept calls like claimed ones: their
    /// endpoints are read once per batch, and those of a saturated (or vanished)
    /// endpoint are returned, to be handed back to the table.
    async fn take_handed(
        &self,
        batch: Vec<HandedOff>,
        tasks: &mut JoinSet<TaskEnd>,
        stop: &CancellationToken,
    ) -> Vec<Unsent> {
        let saturated = self.shared.endpoints.saturated();
        let mut endpoints: HashMap<EndpointId, Option<Endpoint>> = HashMap::new();
        let (mut ready, mut back) = (Vec::with_capacity(batch.len()), Vec::new());
        for handed in batch {
            let id = &handed.delivery.endpoint_id;
            if !endpoints.contains_key(id) {
                let found = self.shared.store.get_endpoint(&handed.delivery.app_id, id.as_str()).await;
                if let Err(error) = &found
                    && !matches!(error, StoreError::NotFound(_))
                {
                    tracing::warn!(error = error as &dyn std::error::Error, "reading a handed-off delivery's endpoint");
                }
                endpoints.insert(id.clone(), found.ok());
            }
            match endpoints.get(id).cloned().flatten() {
                Some(endpoint) if !saturated.contains(id) => {
                    let claimed = ClaimedDelivery { delivery: handed.delivery, message: handed.message, endpoint };
                    ready.push((claimed, handed.lease_until));
                }
                // A claim deletes the delivery of a deleted endpoint, and skips a
                // saturated one until it has drained.
                _ => back.push(Unsent::of(&handed.delivery, handed.lease_until)),
            }
        }
        let types = ready.iter().map(|(d, _)| d.message.event_type.as_str());
        self.shared.schedules.refresh(&self.shared.store, types).await;
        self.start(ready, tasks, stop);
        back
    }

    /// Admits each leased delivery to its endpoint and starts its task.
    fn start(
        &self,
        leased: impl IntoIterator<Item = (ClaimedDelivery, DateTime<Utc>)>,
        tasks: &mut JoinSet<TaskEnd>,
        stop: &CancellationToken,
    ) {
        for (claimed, lease_until) in leased {
            let admission = self.shared.endpoints.admit(&claimed.endpoint.id);
            let span = tracing::info_span!(
                "delivery",
                msg.id = %claimed.message.id,
                endpoint.id = %claimed.endpoint.id,
                app.id = %claimed.delivery.app_id,
                attempt = claimed.delivery.attempts + 1,
            );
            let task = deliver(self.shared.clone(), claimed, admission, lease_until, stop.clone());
            tasks.spawn(task.instrument(span));
        }
    }

    /// Hands back deliveries claimed but never sent, logging a failure (their leases
    /// then bring them back).
    async fn hand_back(&self, unsent: Vec<Unsent>) {
        if unsent.is_empty() {
            return;
        }
        let count = unsent.len();
        match self.release(unsent).await {
            Ok(()) => tracing::info!(deliveries.count = count, "handed back deliveries that had not started"),
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                deliveries.count = count,
                "could not hand back unsent deliveries; they are sent again when their lease runs out"
            ),
        }
    }

    /// Makes `unsent` due again now, one store call per lease they were claimed under.
    async fn release(&self, mut unsent: Vec<Unsent>) -> StoreResult<()> {
        let now = to_millis((self.shared.clock)());
        unsent.sort_by_key(|u| u.lease_until);
        for group in unsent.chunk_by(|a, b| a.lease_until == b.lease_until) {
            let keys = group.iter().map(|u| (u.msg_id.clone(), u.endpoint_id.clone())).collect();
            self.shared.store.release_deliveries(keys, group[0].lease_until, now).await?;
        }
        Ok(())
    }

    /// How long to sleep when nothing more is due: the poll interval, or less when a
    /// retry the claim at `looked_at` did not cover is due sooner.
    fn until_next_look(&self, looked_at: DateTime<Utc>) -> Duration {
        let poll = self.shared.config.poll_interval;
        let now = (self.shared.clock)();
        match self.shared.retries.next_after(looked_at) {
            Some(at) => (at - now).to_std().map_or(Duration::ZERO, |wait| wait.min(poll)),
            None => poll,
        }
    }
}

/// What one claim returned, and the lease it holds them under.
struct Claim {
    deliveries: Vec<ClaimedDelivery>,
    /// The (millisecond) time it claimed what was due by.
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
}

impl Claim {
    /// Each delivery with the lease it is held under.
    fn leased(self) -> impl Iterator<Item = (ClaimedDelivery, DateTime<Utc>)> {
        let lease_until = self.lease_until;
        self.deliveries.into_iter().map(move |d| (d, lease_until))
    }
}

/// A delivery claimed but not sent, to hand back.
struct Unsent {
    msg_id: MessageId,
    endpoint_id: EndpointId,
    lease_until: DateTime<Utc>,
}

impl Unsent {
    fn of(delivery: &Delivery, lease_until: DateTime<Utc>) -> Self {
        Self { msg_id: delivery.msg_id.clone(), endpoint_id: delivery.endpoint_id.clone(), lease_until }
    }
}

/// Up to `room` handed-off deliveries once at least one has arrived, or `None` once
/// the store has let go of its sender; never resolves without a hand-off.
async fn receive(handoff: Option<&mut HandoffReceiver>, room: usize) -> Option<Vec<HandedOff>> {
    let Some(receiver) = handoff else { return std::future::pending().await };
    let mut batch = Vec::with_capacity(room.min(receiver.max_capacity()));
    (receiver.recv_many(&mut batch, room).await > 0).then_some(batch)
}

/// How a delivery task ended.
enum TaskEnd {
    /// Attempted (and recorded, unless the store kept failing).
    Attempted,
    /// Stopped by shutdown before it got a request slot.
    NotStarted(Unsent),
}

/// One delivery's task: wait for a request slot of its endpoint, attempt, record.
async fn deliver(
    shared: Arc<Shared>,
    claimed: ClaimedDelivery,
    admission: Admission,
    lease_until: DateTime<Utc>,
    stop: CancellationToken,
) -> TaskEnd {
    // A request slot, then the endpoint's turn under its `throttleRate`: a throttled
    // delivery holds only its own endpoint's slot while it waits.
    let turn = async {
        let slot = admission.request_slot().await;
        shared.throttles.wait_turn(&claimed.endpoint.id, claimed.endpoint.throttle_rate, &shared.clock).await;
        slot
    };
    let slot = tokio::select! {
        biased;
        () = stop.cancelled() => {
            let (msg_id, endpoint_id) = (claimed.message.id.clone(), claimed.endpoint.id.clone());
            return TaskEnd::NotStarted(Unsent { msg_id, endpoint_id, lease_until });
        }
        slot = turn => slot,
    };
    let config = &shared.config;
    let type_schedule = shared.schedules.get(&claimed.message.event_type);
    let ctx = AttemptContext {
        client: &shared.client,
        policy: RetryPolicy {
            schedule: type_schedule.as_deref().unwrap_or(&config.retry_schedule),
            retry_after_min: config.retry_after_min,
            retry_after_max: config.retry_after_max,
        },
        clock: &shared.clock,
        lease_until,
    };
    let in_flight = shared.metrics.request_started(claimed.endpoint.id.as_str());
    let result = attempt(&ctx, &claimed).await;
    drop((in_flight, slot));
    let latency = (result.next == NextStep::Delivered).then(|| {
        let ended = result.attempt.created_at + chrono::TimeDelta::milliseconds(result.attempt.response_duration_ms);
        (ended - claimed.message.created_at).to_std().unwrap_or(Duration::ZERO)
    });
    // A failed write is logged by the recorder; the lease brings the delivery back.
    if shared.recorder.record(result).await
        && let Some(latency) = latency
    {
        shared.metrics.delivered_after(latency);
    }
    TaskEnd::Attempted
}

/// The delivery to hand back, if the task stopped before sending.
fn task_ended(joined: Result<TaskEnd, JoinError>) -> Option<Unsent> {
    match joined {
        Ok(TaskEnd::NotStarted(unsent)) => Some(unsent),
        Ok(TaskEnd::Attempted) => None,
        Err(error) => {
            if error.is_panic() {
                tracing::error!("a delivery task panicked; its delivery is sent again when its lease runs out");
            }
            None
        }
    }
}
