//! The part of the store that serves ingest sources: the
//! sources themselves (each with the hidden application its ingest endpoints live in),
//! the hashed tokens of their URLs, and their request logs.
//!
//! Endpoints of a source are ordinary endpoints of its hidden application, and a
//! verified request becomes an ordinary message of it through
//! [`Messages::create_message`](crate::Messages::create_message), so storing, deduplicating
//! (by `eventId` within a window) and delivering reuse the outbound path unchanged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    SourceId,
    ingest::{IngestLog, Source},
    model::Application,
};

use crate::{Page, PageQuery, StoreResult};

/// A source's URL token as the store keeps it: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

/// Where a source's previous URL token stands after a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRotation {
    /// The hash of the new token.
    pub new: TokenHash,
    /// Until when the token in use before the rotation keeps working.
    pub old_valid_until: DateTime<Utc>,
}

/// Ingest sources, their URL tokens and their request logs.
#[async_trait]
pub trait Ingest: Send + Sync + 'static {
    /// Creates an ingest source and, in the same transaction, its hidden application
    /// `app` (whose id is `source.app_id`), reachable by the URL token hashed as `token`.
    ///
    /// # Errors
    /// `Conflict` when the source's `uid` is taken.
    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source>;
    /// A source by id or uid.
    async fn get_source(&self, key: &str) -> StoreResult<Source>;
    /// A page of sources, ordered by id.
    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>>;
    /// Replaces a source's fields (matched by id; its application and token stay).
    ///
    /// # Errors
    /// `NotFound` when it does not exist, `Conflict` when its `uid` is taken.
    async fn update_source(&self, source: Source) -> StoreResult<Source>;
    /// Deletes a source with its hidden application and everything under it.
    async fn delete_source(&self, id: &SourceId) -> StoreResult<()>;
    /// Gives a source a new URL token; the one in use until now keeps working until
    /// `rotation.old_valid_until` (a token rotated out before that is dropped).
    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()>;
    /// The source whose current token, or previous one still valid at `now`, hashes to `token`.
    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>>;
    /// Appends an entry to a source's request log.
    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()>;
    /// A page of a source's request log, ordered by id. Entries are deleted by
    /// [`crate::Upkeep::sweep_retention`] like attempts.
    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>>;
    /// One bounded step of the per-source cap on request logs: deletes up to `limit` of
    /// the oldest entries (by id) of every source holding more than `keep`, so a flood
    /// of requests to one URL cannot grow the store without bound. Callers repeat while
    /// it returns `limit`.
    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize>;
}
