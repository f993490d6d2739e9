//! Records of the pull side (the events API, pollers and the live stream): a message's
//! place in commit order, the filters a reader applies, and what one read returns.
//!
//! Readers walk an application's messages by [`Position`], never by id or time: ids and
//! timestamps are assigned before the commit, so a message can become visible after
//! others that sort after it. Each backend hands out positions so that a reader that
//! continues from the last position it saw sees every later message exactly once.

use chrono::{DateTime, Utc};
use herald_core::model::Message;

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
