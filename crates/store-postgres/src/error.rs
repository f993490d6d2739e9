//! How driver errors become [`StoreError`]s. The policy, in one place:
//!
//! - `Unavailable` (retrying may work): the connection could not be made or was lost,
//!   the pool had no connection in time, the server is starting up, shutting down, out
//!   of connections or not accepting them (`08…`, `53…`, `57P01`–`57P03`, `55000`), a
//!   statement timed out (`57014`), or the transaction lost a deadlock or
//!   serialization race (`40P01`, `40001`).
//! - `Conflict`: a unique constraint (`23505`); the constraint name says which rule.
//! - `NotFound`: a foreign key (`23503`): the parent row was deleted meanwhile.
//! - `Internal`: everything else, which is a bug or corrupt data.

use herald_store::StoreError;

/// Turns a driver error into the variant callers act on.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match classify(&e) {
        Class::Unavailable => StoreError::Unavailable(Box::new(e)),
        Class::Conflict(what) => StoreError::Conflict(format!("{what} already exists")),
        Class::NotFound(what) => StoreError::NotFound(what),
        Class::Internal => StoreError::Internal(Box::new(e)),
    }
}

/// Wraps a non-driver failure (a bad row, a JSON error) as `Internal`.
pub(crate) fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Internal(e.into())
}

/// Whether the transaction lost a deadlock: the work is safe to run again on its own.
pub(crate) fn is_deadlock(e: &StoreError) -> bool {
    let StoreError::Unavailable(source) = e else { return false };
    source.downcast_ref::<sqlx::Error>().and_then(code).as_deref() == Some("40P01")
}

enum Class {
    Unavailable,
    Conflict(&'static str),
    NotFound(&'static str),
    Internal,
}

fn code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn classify(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Unavailable,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match &*code {
                "23505" => Class::Conflict(unique_rule(db.constraint())),
                "23503" => Class::NotFound(parent(db.constraint())),
                "57P01" | "57P02" | "57P03" | "55000" | "57014" | "40P01" | "40001" => Class::Unavailable,
                c if c.starts_with("08") || c.starts_with("53") => Class::Unavailable,
                _ => Class::Internal,
            }
        }
        _ => Class::Internal,
    }
}

/// The rule a unique constraint stands for, named as the API reports it.
fn unique_rule(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("applications_uid_key") => "an application with this uid",
        Some("applications_pkey") => "an application with this id",
        Some("endpoints_app_uid_key") => "an endpoint with this uid",
        Some("endpoints_pkey") => "an endpoint with this id",
        Some("event_types_pkey") => "an event type with this name",
        Some("messages_pkey") => "a message with this id",
        Some("attempts_pkey") => "an attempt with this id",
        Some("tokens_pkey" | "tokens_hash_key") => "a token",
        Some("idempotency_keys_pkey") => "an idempotency key",
        Some("ingest_sources_uid_key") => "a source with this uid",
        Some("ingest_sources_pkey") => "a source with this id",
        Some("ingest_logs_pkey") => "a log entry with this id",
        Some("ingest_sources_token_key" | "ingest_sources_old_token_key" | "ingest_sources_app_key") => {
            "a source with this token or application"
        }
        _ => "a record with these values",
    }
}

/// The record a foreign key points at.
fn parent(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some(c) if c.ends_with("app_id_fkey") => "application",
        Some(c) if c.ends_with("endpoint_id_fkey") => "endpoint",
        Some(c) if c.ends_with("msg_id_fkey") => "message",
        Some(c) if c.ends_with("source_id_fkey") => "source",
        _ => "parent record",
    }
}

/// The database holds a schema written by a newer Herald than this binary.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database schema is version {found}, newer than version {known} that this Herald binary knows; \
     run a newer Herald (or restore a backup)"
)]
pub struct SchemaTooNew {
    /// The version recorded in the database.
    pub found: i32,
    /// The newest version this binary can migrate to.
    pub known: i32,
}

/// The database's schema is older than this binary and migrations were not enabled.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database schema is version {found}, older than version {known} that this Herald binary needs; run `herald migrate`"
)]
pub struct SchemaTooOld {
    /// The version recorded in the database (0 for an empty one).
    pub found: i32,
    /// The version this binary needs.
    pub known: i32,
}
