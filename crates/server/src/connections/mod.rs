//! Serving inbound HTTP/1 connections under limits, so hostile clients cannot make the
//! node unreachable: every connection has a deadline in each phase (header read,
//! keep-alive idle, body progress; see [`state`]), and at most `cap` are open.
//!
//! At the cap a new connection closes the longest-idle one with no request in
//! progress, like a server reusing its idle keep-alive slots: connections that only
//! sit there cannot lock others out, and `/api/v1/health` stays reachable. When every
//! open connection is serving a request, the new one is closed at once.
//!
//! The cap is derived from the file descriptor limit ([`fd_limit`]) unless configured.
//! Graceful shutdown stops accepting, lets each connection finish the request it is
//! serving and closes idle ones.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    service::{ConnService, DrainLimits, Watched},
    state::Connection,
};
use crate::config::ConnectionLimits;

pub mod fd_limit;
mod service;
mod state;

/// Pause after an accept error that is not about one connection (out of file
/// descriptors or memory), so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What [`serve`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) limits: ConnectionLimits,
    /// Most open connections.
    pub(crate) cap: usize,
    /// Most bytes of an unread request body drained after an early answer.
    pub(crate) drain_bytes: usize,
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown`
/// is cancelled; returns once every connection has closed.
pub(crate) async fn serve(listener: TcpListener, router: Router, settings: Settings, shutdown: CancellationToken) {
    let registry = Arc::new(Registry::new(settings.cap));
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; pausing before the next");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Dropping the stream closes it: every open connection is serving a request.
        let Some(admitted) = registry.admit() else { continue };
        tracker.spawn(serve_one(stream, remote, admitted, router.clone(), settings, shutdown.clone()));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Errors that concern only the connection being accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

async fn serve_one(
    stream: TcpStream,
    remote: SocketAddr,
    admitted: Admitted,
    router: Router,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let conn = admitted.conn.clone();
    let drain = DrainLimits { max_bytes: settings.drain_bytes, per_frame: settings.limits.body_timeout };
    let service = ConnService { router, conn: conn.clone(), remote, drain };
    let io = TokioIo::new(Watched::new(stream, conn.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The deadlines are the watchdog's; hyper's own header timer would need a timer
    // and could not tell a first request from a keep-alive wait.
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                break;
            }
            ended = state::watch(&conn, &settings.limits) => {
                tracing::debug!(%remote, reason = ended.describe(), "closing a connection");
                break;
            }
            () = shutdown.cancelled(), if !draining => {
                // Finishes the request in progress, then closes; idle ones close now.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    drop(admitted);
}

/// The open connections, for the cap.
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    cap: usize,
    /// Whether the cap was reached since it was last logged, so a flood logs once.
    at_cap: AtomicBool,
}

/// A connection counted under the cap until dropped.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    conn: Arc<Connection>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Registry {
    fn new(cap: usize) -> Self {
        Self { open: Mutex::new(HashMap::new()), next_id: AtomicU64::new(0), cap, at_cap: AtomicBool::new(false) }
    }

    /// Counts a new connection, evicting the longest-idle one at the cap; `None` when
    /// the cap is reached and every connection is serving a request.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        // A map entry only changes under this lock, which is never held across an await.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.cap {
            if !self.at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(cap = self.cap, "connection cap reached; closing idle connections to admit new ones");
            }
            let victim = open
                .iter()
                .filter_map(|(id, conn)| conn.idle_since().map(|since| (since, *id)))
                .min()
                .map(|(_, id)| id)?;
            // Removed now, so the count is right at once; its socket closes as soon as
            // its task sees the eviction.
            if let Some(conn) = open.remove(&victim) {
                conn.evict();
            }
        } else if open.len() < self.cap / 2 {
            self.at_cap.store(false, Ordering::Relaxed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Connection::new();
        open.insert(id, conn.clone());
        Some(Admitted { registry: self.clone(), id, conn })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let registry = Arc::new(Registry::new(2));
        let oldest = registry.admit().unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let newer = registry.admit().unwrap();
        let third = registry.admit().expect("an idle connection is evicted");
        assert!(oldest.conn.is_evicted());
        assert!(!newer.conn.is_evicted());
        assert_eq!(registry.open.lock().unwrap().len(), 2);
        drop((oldest, newer, third));
        assert!(registry.open.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn at_the_cap_with_every_connection_busy_the_new_one_is_refused() {
        let registry = Arc::new(Registry::new(1));
        let busy = registry.admit().unwrap();
        busy.conn.on_request();
        assert!(registry.admit().is_none());
        busy.conn.on_response_done();
        assert!(registry.admit().is_some());
    }
}
