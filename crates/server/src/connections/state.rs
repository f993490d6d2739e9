//! What one inbound connection is doing, as the connection watchdog and the cap's
//! eviction see it: waiting for a request, reading a request head, or serving
//! requests (possibly waiting for body bytes). The state is updated by the socket
//! wrapper, the service and the body wrappers in [`super::service`]; [`watch`] turns
//! it into a deadline.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionLimits;

/// One open connection's shared state.
#[derive(Debug)]
pub(super) struct Connection {
    phase: Mutex<Phase>,
    /// Wakes the watchdog when the phase changes, so it recomputes its deadline.
    changed: Notify,
    /// Cancelled when the connection cap evicts this connection.
    evicted: CancellationToken,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No byte of a request yet since `since`; `first` until the first request.
    Idle { since: Instant, first: bool },
    /// A request head began arriving at `since`.
    Head { since: Instant },
    /// `requests` are being served; `body_wait` is when a handler began waiting for
    /// body bytes that have not arrived yet.
    Busy { requests: usize, body_wait: Option<Instant> },
}

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// No complete request head in time.
    HeaderTimeout,
    /// Idle between requests for too long.
    KeepAliveTimeout,
    /// The request body made no progress in time.
    BodyTimeout,
    /// Closed to make room under the connection cap.
    Evicted,
}

impl Ended {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "no complete request head within the header read timeout",
            Self::KeepAliveTimeout => "idle past the keep-alive timeout",
            Self::BodyTimeout => "the request body stalled past the body timeout",
            Self::Evicted => "closed to make room under the connection cap",
        }
    }
}

impl Connection {
    /// A connection accepted now.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Idle { since: Instant::now(), first: true }),
            changed: Notify::new(),
            evicted: CancellationToken::new(),
        })
    }

    fn update(&self, f: impl FnOnce(&mut Phase) -> bool) {
        // A panic while holding the lock leaves a valid phase behind (every update
        // writes a whole value), so a poisoned lock is still usable.
        let changed = f(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
        if changed {
            self.changed.notify_one();
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived from the client.
    pub(super) fn on_bytes(&self) {
        self.update(|phase| match *phase {
            Phase::Idle { .. } => {
                *phase = Phase::Head { since: Instant::now() };
                true
            }
            _ => false,
        });
    }

    /// A request head was parsed and handed to the router.
    pub(super) fn on_request(&self) {
        self.update(|phase| {
            *phase = match *phase {
                Phase::Busy { requests, body_wait } => Phase::Busy { requests: requests + 1, body_wait },
                Phase::Idle { .. } | Phase::Head { .. } => Phase::Busy { requests: 1, body_wait: None },
            };
            true
        });
    }

    /// A response was sent (or abandoned).
    pub(super) fn on_response_done(&self) {
        self.update(|phase| {
            if let Phase::Busy { requests, body_wait } = *phase {
                *phase = match requests {
                    0 | 1 => Phase::Idle { since: Instant::now(), first: false },
                    n => Phase::Busy { requests: n - 1, body_wait },
                };
            }
            true
        });
    }

    /// A handler waits for body bytes that have not arrived.
    pub(super) fn on_body_wait(&self) {
        self.update(|phase| match phase {
            Phase::Busy { body_wait: wait @ None, .. } => {
                *wait = Some(Instant::now());
                true
            }
            _ => false,
        });
    }

    /// Body bytes (or the body's end) arrived.
    pub(super) fn on_body_progress(&self) {
        self.update(|phase| match phase {
            Phase::Busy { body_wait: wait @ Some(_), .. } => {
                *wait = None;
                true
            }
            _ => false,
        });
    }

    /// Since when the connection has had no request in progress, if it has none:
    /// such a connection may be evicted when the cap is reached.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Idle { since, .. } | Phase::Head { since } => Some(since),
            Phase::Busy { .. } => None,
        }
    }

    /// Makes [`watch`] end the connection now.
    pub(super) fn evict(&self) {
        self.evicted.cancel();
    }

    /// Whether [`Self::evict`] was called.
    #[cfg(test)]
    pub(super) fn is_evicted(&self) -> bool {
        self.evicted.is_cancelled()
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Ended)> {
        let after = |since: Instant, limit: Duration| since.checked_add(limit).unwrap_or_else(far_future);
        match self.phase() {
            Phase::Idle { since, first: true } | Phase::Head { since } => {
                Some((after(since, limits.header_read_timeout), Ended::HeaderTimeout))
            }
            Phase::Idle { since, first: false } => {
                Some((after(since, limits.keep_alive_timeout), Ended::KeepAliveTimeout))
            }
            Phase::Busy { body_wait: Some(since), .. } => Some((after(since, limits.body_timeout), Ended::BodyTimeout)),
            // A handler without body to wait for is bounded by the request timeout; a
            // live stream by its slow-reader timeout.
            Phase::Busy { body_wait: None, .. } => None,
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 86_400)
}

/// Resolves when `conn` should be closed: a deadline of its current phase passed, or
/// it was evicted. It follows phase changes, so it only resolves for a real stall.
pub(super) async fn watch(conn: &Connection, limits: &ConnectionLimits) -> Ended {
    loop {
        // Registered before the phase is read, so no change between the two is missed.
        let changed = conn.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let deadline = conn.deadline(limits);
        tokio::select! {
            () = conn.evicted.cancelled() => return Ended::Evicted,
            () = &mut changed => {}
            ended = async {
                match deadline {
                    Some((at, ended)) => {
                        tokio::time::sleep_until(at).await;
                        ended
                    }
                    None => std::future::pending().await,
                }
            } => return ended,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(5),
            max_connections: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_ends_at_the_header_timeout() {
        let conn = Connection::new();
        assert_eq!(watch(&conn, &limits()).await, Ended::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_served_connection_is_idle_until_the_keep_alive_timeout() {
        let conn = Connection::new();
        conn.on_bytes();
        conn.on_request();
        assert_eq!(conn.idle_since(), None);
        conn.on_response_done();
        assert_eq!(watch(&conn, &limits()).await, Ended::KeepAliveTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_at_the_body_timeout_and_progress_resets_it() {
        let conn = Connection::new();
        conn.on_request();
        conn.on_body_wait();
        let watcher = tokio::spawn({
            let conn = conn.clone();
            async move { watch(&conn, &limits()).await }
        });
        tokio::time::advance(Duration::from_secs(4)).await;
        conn.on_body_progress();
        conn.on_body_wait();
        // 8 s after the first wait, but only 4 s after the last progress.
        tokio::time::advance(Duration::from_secs(4)).await;
        tokio::task::yield_now().await;
        assert!(!watcher.is_finished());
        assert_eq!(watcher.await.unwrap(), Ended::BodyTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_ends_a_busy_connection_too() {
        let conn = Connection::new();
        conn.on_request();
        conn.evict();
        assert_eq!(watch(&conn, &limits()).await, Ended::Evicted);
    }
}
