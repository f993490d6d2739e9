//! Herald's embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a single writer thread that group-commits whatever queued while
//! the previous commit ran ([`engine`]); reads use a small pool of connections. Every
//! write returns only after its own commit, so "accepted means durable" holds.

mod attempts;
mod deliveries;
mod engine;
mod events;
mod ingest;
mod maintenance;
mod messages;
mod resources;
mod rows;
mod schema;

use std::{path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use herald_core::Clock;
use herald_store::{StoreResult, handoff::HandoffSlot};
use tokio::sync::{Notify, watch};

use crate::engine::Engine;

pub use schema::VERSION as SCHEMA_VERSION;

/// The SQLite implementation of [`herald_store::Store`]: each capability trait is
/// implemented in the module holding its SQL.
pub struct SqliteStore {
    engine: Engine,
    clock: Clock,
    waker: Arc<Notify>,
    /// Moved after every commit that created messages (see [`herald_store::Events::message_commits`]).
    commits: watch::Sender<u64>,
    /// This node's dispatcher, when it takes accepted deliveries in memory.
    handoff: HandoffSlot,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating and migrating it as needed.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened; `Internal` when its schema is newer
    /// than this binary or a migration fails.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_clock(path, Arc::new(|| herald_core::to_millis(Utc::now())))
    }

    /// Like [`SqliteStore::open`] with an injected clock (for tests).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with_clock(path: &Path, clock: Clock) -> StoreResult<Self> {
        let (waker, commits) = (Arc::new(Notify::new()), watch::Sender::new(0));
        Ok(Self { engine: Engine::open(path)?, clock, waker, commits, handoff: HandoffSlot::default() })
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
