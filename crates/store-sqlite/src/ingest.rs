//! Ingest sources, their URL tokens and request logs. A source and its hidden
//! application are written in one job (so one transaction); deleting a source removes
//! the application with everything under it, and the source's log.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, SourceId,
    ingest::{IngestLog, PreviousSecret, Source},
    model::Application,
};
use herald_store::{Ingest, Page, PageQuery, StoreError, StoreResult, TokenHash, TokenRotation, found};
use rusqlite::{Connection, OptionalExtension, Row, params, types::Value};

use crate::{
    SqliteStore,
    resources::{self, insert_application},
    rows::{db_err, ms, to_json},
};

pub const SOURCE_COLUMNS: &str =
    "id, uid, name, kind, secret, old_secret, old_secret_expires_at, app_id, metadata, created_at, updated_at";
const LOG_COLUMNS: &str = "id, source_id, status_code, error_text, msg_id, created_at";

/// The condition that hides source applications from the applications API.
pub const NOT_A_SOURCE_APP: &str = "NOT EXISTS (SELECT 1 FROM ingest_sources s WHERE s.app_id = applications.id)";

fn conversion(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
}

fn time(v: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| conversion("bad timestamp"))
}

pub fn source(row: &Row<'_>) -> rusqlite::Result<Source> {
    let metadata: String = row.get("metadata")?;
    Ok(Source {
        id: row.get::<_, String>("id")?.try_into().map_err(conversion)?,
        uid: row.get("uid")?,
        name: row.get("name")?,
        kind: row.get("kind")?,
        secret: row.get("secret")?,
        previous_secret: match (row.get::<_, Option<String>>("old_secret")?, row.get("old_secret_expires_at")?) {
            (Some(key), Some(at)) => Some(PreviousSecret { key, expires_at: time(at)? }),
            _ => None,
        },
        app_id: row.get::<_, String>("app_id")?.try_into().map_err(conversion)?,
        metadata: serde_json::from_str(&metadata).map_err(conversion)?,
        created_at: time(row.get("created_at")?)?,
        updated_at: time(row.get("updated_at")?)?,
    })
}

fn log(row: &Row<'_>) -> rusqlite::Result<IngestLog> {
    Ok(IngestLog {
        id: row.get::<_, String>("id")?.try_into().map_err(conversion)?,
        source_id: row.get::<_, String>("source_id")?.try_into().map_err(conversion)?,
        status_code: row.get("status_code")?,
        error_text: row.get("error_text")?,
        msg_id: row.get::<_, Option<String>>("msg_id")?.map(TryInto::try_into).transpose().map_err(conversion)?,
        created_at: time(row.get("created_at")?)?,
    })
}

/// Whether `app` is a source's hidden application.
pub fn is_source_app(conn: &Connection, app: &AppId) -> StoreResult<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM ingest_sources WHERE app_id = ?1)")
        .and_then(|mut s| s.query_row([app.as_str()], |r| r.get::<_, bool>(0)))
        .map_err(db_err("source"))
}

/// `app`, unless it is a source's hidden application.
pub fn unless_hidden(conn: &Connection, app: Option<Application>) -> StoreResult<Option<Application>> {
    let Some(app) = app else { return Ok(None) };
    Ok((!is_source_app(conn, &app.id)?).then_some(app))
}

pub fn create(conn: &Connection, source: &Source, app: &Application, token: &TokenHash) -> StoreResult<()> {
    insert_application(conn, app)?;
    conn.prepare_cached(
        "INSERT INTO ingest_sources (id, uid, name, kind, secret, old_secret, old_secret_expires_at, app_id,
             token_hash, metadata, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            source.id.as_str(),
            source.uid,
            source.name,
            source.kind,
            source.secret,
            source.previous_secret.as_ref().map(|p| p.key.as_str()),
            source.previous_secret.as_ref().map(|p| ms(p.expires_at)),
            source.app_id.as_str(),
            token.0,
            to_json(&source.metadata).map_err(conversion)?,
            ms(source.created_at),
            ms(source.updated_at),
        ])
    })
    .map_err(db_err("a source with this uid"))?;
    Ok(())
}

pub fn find(conn: &Connection, key: &str) -> StoreResult<Option<Source>> {
    let column = if SourceId::is_id(key) { "id" } else { "uid" };
    conn.prepare_cached(&format!("SELECT {SOURCE_COLUMNS} FROM ingest_sources WHERE {column} = ?1"))
        .and_then(|mut s| s.query_row([key], source).optional())
        .map_err(db_err("source"))
}

pub fn find_by_token(conn: &Connection, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>> {
    conn.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM ingest_sources
         WHERE token_hash = ?1 OR (old_token_hash = ?1 AND old_token_expires_at > ?2)"
    ))
    .and_then(|mut s| s.query_row(params![token.0, ms(now)], source).optional())
    .map_err(db_err("source"))
}

pub fn list(conn: &Connection, page: &PageQuery) -> StoreResult<Page<Source>> {
    let sql = format!("SELECT {SOURCE_COLUMNS} FROM ingest_sources WHERE 1 = 1");
    resources::page(conn, &sql, vec![], "id", page, source)
}

pub fn update(conn: &Connection, s: &Source) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE ingest_sources SET uid = ?2, name = ?3, kind = ?4, secret = ?5, metadata = ?6, updated_at = ?7,
                 old_secret = ?8, old_secret_expires_at = ?9
             WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.id.as_str(),
                s.uid,
                s.name,
                s.kind,
                s.secret,
                to_json(&s.metadata).map_err(conversion)?,
                ms(s.updated_at),
                s.previous_secret.as_ref().map(|p| p.key.as_str()),
                s.previous_secret.as_ref().map(|p| ms(p.expires_at)),
            ])
        })
        .map_err(db_err("a source with this uid"))?;
    if n == 0 { Err(StoreError::NotFound("source")) } else { Ok(()) }
}

pub fn delete(conn: &Connection, id: &SourceId) -> StoreResult<()> {
    let app: Option<String> = conn
        .query_row("DELETE FROM ingest_sources WHERE id = ?1 RETURNING app_id", [id.as_str()], |r| r.get(0))
        .optional()
        .map_err(db_err("source"))?;
    let app = app.ok_or(StoreError::NotFound("source"))?;
    conn.execute("DELETE FROM ingest_logs WHERE source_id = ?1", [id.as_str()]).map_err(db_err("source"))?;
    resources::delete_application(conn, &app.try_into().map_err(crate::engine::internal)?)
}

pub fn rotate_token(conn: &Connection, id: &SourceId, rotation: &TokenRotation) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE ingest_sources
             SET old_token_hash = token_hash, old_token_expires_at = ?3, token_hash = ?2
             WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id.as_str(), rotation.new.0, ms(rotation.old_valid_until)]))
        .map_err(db_err("a source token"))?;
    if n == 0 { Err(StoreError::NotFound("source")) } else { Ok(()) }
}

pub fn insert_log(conn: &Connection, e: &IngestLog) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO ingest_logs (id, source_id, status_code, error_text, msg_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.id.as_str(),
            e.source_id.as_str(),
            e.status_code,
            e.error_text,
            e.msg_id.as_ref().map(|m| m.as_str()),
            ms(e.created_at)
        ])
    })
    .map_err(db_err("a log entry with this id"))?;
    Ok(())
}

pub fn list_logs(conn: &Connection, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM ingest_logs WHERE source_id = ?1");
    resources::page(conn, &sql, vec![Value::Text(source.as_str().to_owned())], "id", page, log)
}

pub fn sweep_logs(conn: &Connection, before: DateTime<Utc>, limit: i64) -> StoreResult<usize> {
    let n = conn
        .prepare_cached(
            "DELETE FROM ingest_logs WHERE id IN (SELECT id FROM ingest_logs WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![ms(before), limit]))
        .map_err(db_err("log entry"))?;
    Ok(n)
}

/// The newest `keep` entries of each source are found through `ingest_logs_by_source`
/// (one index walk of `keep` rows per source); everything older goes, `limit` at a time.
pub fn trim_logs(conn: &Connection, keep: usize, limit: usize) -> StoreResult<usize> {
    let (keep, limit) = (i64::try_from(keep).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
    let n = conn
        .prepare_cached(
            "DELETE FROM ingest_logs WHERE id IN (
                 WITH cut AS MATERIALIZED (
                     SELECT s.id AS source_id, (SELECT x.id FROM ingest_logs x WHERE x.source_id = s.id
                                                ORDER BY x.id DESC LIMIT 1 OFFSET ?1) AS last_id
                     FROM ingest_sources s)
                 SELECT l.id FROM cut JOIN ingest_logs l ON l.source_id = cut.source_id AND l.id <= cut.last_id
                 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![keep, limit]))
        .map_err(db_err("log entry"))?;
    Ok(n)
}

#[async_trait]
impl Ingest for SqliteStore {
    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source> {
        self.engine.write(move |c| create(c, &source, &app, &token).map(|()| source)).await
    }

    async fn get_source(&self, key: &str) -> StoreResult<Source> {
        let key = key.to_owned();
        self.engine.read(move |c| find(c, &key)).await.and_then(found("source"))
    }

    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>> {
        let page = page.clone();
        self.engine.read(move |c| list(c, &page)).await
    }

    async fn update_source(&self, source: Source) -> StoreResult<Source> {
        self.engine.write(move |c| update(c, &source).map(|()| source)).await
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| delete(c, &id)).await
    }

    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| rotate_token(c, &id, &rotation)).await
    }

    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>> {
        let token = token.clone();
        self.engine.read(move |c| find_by_token(c, &token, now)).await
    }

    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()> {
        self.engine.write(move |c| insert_log(c, &entry)).await
    }

    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
        let (source, page) = (source.clone(), page.clone());
        self.engine.read(move |c| list_logs(c, &source, &page)).await
    }

    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize> {
        self.engine.write(move |c| trim_logs(c, keep, limit)).await
    }
}
