//! The retention sweeper: periodically drops the payloads of
//! messages past their retention (`expires_at`, set from `payloadRetentionPeriod` when
//! the message was accepted) and deletes attempts older than
//! [`RetentionConfig::attempt_retention`] (and ingest source log entries as old), in bounded batches so one sweep never holds
//! the store's writer for long. Every worker node may run it; the statements are
//! idempotent and skip rows another node holds.
//!
//! It also caps each ingest source's request log at
//! [`RetentionConfig::ingest_log_max_per_source`] entries, oldest first: time alone
//! would let anyone who knows a source's URL grow its log as fast as they can send.

use std::time::Duration;

use chrono::TimeDelta;
use herald_core::{Clock, to_millis};
use herald_store::{DynStore, RetentionSwept, StoreResult};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;

/// The `[retention]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Time between sweeps.
    pub interval: Duration,
    /// Attempts older than this many days are deleted.
    pub attempt_retention_days: u32,
    /// Most rows changed per statement; a sweep repeats batches until one is not full.
    pub batch_size: usize,
    /// Most request log entries kept per ingest source; older ones are deleted.
    pub ingest_log_max_per_source: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            attempt_retention_days: 30,
            batch_size: 1000,
            ingest_log_max_per_source: 10_000,
        }
    }
}

impl RetentionConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, reason: &str| Err(ConfigError { key, reason: reason.to_owned() });
        if self.interval.is_zero() {
            return err("interval_ms", "must be more than 0");
        }
        if self.attempt_retention_days == 0 {
            return err("attempt_retention_days", "must be at least 1");
        }
        if self.batch_size == 0 {
            return err("batch_size", "must be at least 1");
        }
        if self.ingest_log_max_per_source == 0 {
            return err("ingest_log_max_per_source", "must be at least 1");
        }
        Ok(())
    }
}

/// Sweeps until nothing more is due now, batch by batch; returns the totals.
///
/// # Errors
/// The store failed; what earlier batches removed stays removed.
pub async fn sweep_retention(store: &DynStore, config: &RetentionConfig, clock: &Clock) -> StoreResult<RetentionSwept> {
    let mut total = RetentionSwept::default();
    loop {
        let now = to_millis(clock());
        let attempts_before = now - TimeDelta::days(i64::from(config.attempt_retention_days));
        let swept = store.sweep_retention(now, attempts_before, config.batch_size).await?;
        let trimmed = store.trim_ingest_logs(config.ingest_log_max_per_source, config.batch_size).await?;
        total.payloads_dropped += swept.payloads_dropped;
        total.attempts_deleted += swept.attempts_deleted;
        total.ingest_logs_deleted += swept.ingest_logs_deleted + trimmed;
        if !swept.is_full(config.batch_size) && trimmed < config.batch_size {
            return Ok(total);
        }
        // Let queued writes (message creates, attempt records) in between batches.
        tokio::task::yield_now().await;
    }
}

/// Runs [`sweep_retention`] every `config.interval` until `shutdown` is cancelled.
pub fn spawn_retention_sweeper(
    store: DynStore,
    config: RetentionConfig,
    clock: Clock,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(config.interval) => {}
            }
            match sweep_retention(&store, &config, &clock).await {
                Ok(swept) if swept != RetentionSwept::default() => tracing::info!(
                    messages.count = swept.payloads_dropped,
                    attempts.count = swept.attempts_deleted,
                    ingest_logs.count = swept.ingest_logs_deleted,
                    "retention sweep dropped expired payloads, old attempts and old or over-cap ingest log entries"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = &error as &dyn std::error::Error, "retention sweep failed; retrying later");
                }
            }
        }
    })
}
