//! Records of the pull side (the events API, pollers and the live stream): a message's
//! place in commit order, the filters a reader applies, and what one read returns.
//!
//! Readers walk an application's messages by [`Position`], never by id or time: ids and
//! timestamps are assigned before the commit, so a message can become visible after
//! others that sort after it. Each backend hands out positions so that a reader that
//! continues from the last position it saw sees every later message exactly once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{AppId, MessageId, model::Message};

use crate::StoreResult;

/// A message's place in its store's commit order. Positions compare as `(commit, seq)`.
///
/// `commit` identifies the committing transaction on backends where sequence order is
/// not commit order (PostgreSQL's `xid8`), and is 0 on backends where it is (SQLite).
/// [`Position::START`] lies before every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub commit: u64,
    pub seq: u64,
}

impl Position {
    /// Before every message.
    pub const START: Self = Self { commit: 0, seq: 0 };

    /// The position just before `self`, so a read after it starts at `self`.
    pub fn predecessor(self) -> Self {
        match self.seq.checked_sub(1) {
            Some(seq) => Self { commit: self.commit, seq },
            None => Self { commit: self.commit.saturating_sub(1), seq: u64::MAX },
        }
    }
}

/// What a reader wants to see. Every field narrows; `None` accepts everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Messages whose event type is one of these (an empty list matches nothing).
    pub event_types: Option<Vec<String>>,
    /// Messages on at least one of these channels (an endpoint's channel filter).
    pub channels: Option<Vec<String>>,
    /// Messages on this channel.
    pub channel: Option<String>,
    /// Messages created after this time.
    pub after: Option<DateTime<Utc>>,
}

/// One message as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub position: Position,
    pub message: Message,
}

/// The result of one read, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// No more matching messages are readable now (the page was not cut by `limit`).
    pub done: bool,
    /// Messages of the application have committed that cannot be returned yet because
    /// an earlier transaction is still open; reading again shortly will return them.
    /// Always false on backends where commit order is sequence order.
    pub held_back: bool,
}

/// Where a poller consumer stands: the endpoint (sink) it reads through and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerKey {
    pub endpoint_id: herald_core::EndpointId,
    pub consumer_id: String,
}

/// The pull side: reading messages in commit order, and pollers' saved positions.
#[async_trait]
pub trait Events: Send + Sync + 'static {
    /// Up to `limit` of `app`'s messages after `after` in commit order that match
    /// `filter`, each with its position. A message is returned only once every message
    /// that will ever sort before it is visible, so a reader that continues from the
    /// last position it got never skips one that commits late.
    async fn read_events(
        &self,
        app: &AppId,
        filter: &EventFilter,
        after: Position,
        limit: usize,
    ) -> StoreResult<EventPage>;
    /// The position of one of `app`'s messages.
    ///
    /// # Errors
    /// `NotFound` when `app` has no such message.
    async fn message_position(&self, app: &AppId, msg_id: &MessageId) -> StoreResult<Position>;
    /// A position from which a read returns `app`'s messages created after `at`: just
    /// before the first readable one, or after the last readable message when none is.
    async fn position_after(&self, app: &AppId, at: DateTime<Utc>) -> StoreResult<Position>;
    /// The position a poller consumer saved, if it ever saved one.
    async fn consumer_position(&self, app: &AppId, consumer: &ConsumerKey) -> StoreResult<Option<Position>>;
    /// Saves where a poller consumer stands; it goes when its endpoint is deleted.
    async fn save_consumer_position(
        &self,
        app: &AppId,
        consumer: &ConsumerKey,
        position: Position,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A counter that moves whenever messages commit (in this process, and on stores
    /// shared by several nodes also on the others), so live readers know to read again.
    /// It is a hint: readers still read by position and never trust it for content.
    fn message_commits(&self) -> tokio::sync::watch::Receiver<u64>;
}
