//! The part of the [`Store`](crate::Store) boundary that serves ingest sources: the
//! sources themselves (each with the hidden application its ingest endpoints live in),
//! the hashed tokens of their URLs, and their request logs.
//!
//! Endpoints of a source are ordinary endpoints of its hidden application, and a
//! verified request becomes an ordinary message of it through
//! [`Store::create_message`](crate::Store::create_message), so storing, deduplicating
//! (by `eventId` within a window) and delivering reuse the outbound path unchanged.

use chrono::{DateTime, Utc};

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
