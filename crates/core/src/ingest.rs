//! Ingest sources (the receiving half): a source is a URL providers post to, the
//! scheme that proves each request genuine, and a hidden application whose endpoints
//! are where verified events are forwarded. The request log records what each POST
//! to the source's URL came to.
//!
//! Which schemes exist and how they verify is the API's business (it builds the
//! verifiers from `herald-signature`); here a source's type is its contract name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    ids::{AppId, IngestLogId, MessageId, SourceId},
    model::Metadata,
};

/// An ingest source as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub id: SourceId,
    pub uid: Option<String>,
    pub name: String,
    /// The contract's type name (`generic-webhook`, `stripe`, `github`, …).
    pub kind: String,
    /// The provider's signing secret; `None` only for types that verify nothing.
    pub secret: Option<String>,
    /// The hidden application whose endpoints are the source's ingest endpoints.
    pub app_id: AppId,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// What became of one request to a source's URL, as its log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestLog {
    pub id: IngestLogId,
    pub source_id: SourceId,
    /// The status Herald answered the provider with.
    pub status_code: u16,
    /// Why the request was rejected, or what was done with it.
    pub error_text: String,
    /// The message a verified request became (or duplicated), if any.
    pub msg_id: Option<MessageId>,
    pub created_at: DateTime<Utc>,
}
