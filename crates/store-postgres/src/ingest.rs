//! Ingest sources, their URL tokens and request logs. A source and its hidden
//! application are inserted in one transaction; deleting the application cascades to
//! the source, its endpoints, messages and log, so deleting a source is one statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::{
    AppId, SourceId,
    ingest::{IngestLog, PreviousSecret, Source},
    model::Application,
};
use herald_store::{Ingest, Page, PageQuery, StoreError, StoreResult, TokenHash, TokenRotation, found};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder, Row, postgres::PgRow, types::Json};

use crate::{
    PostgresStore,
    error::{db, internal},
    resources::{self, insert_application},
    rows::{app_columns, ms},
};

/// The condition that hides source applications from the applications API.
macro_rules! not_a_source_app {
    () => {
        "NOT EXISTS (SELECT 1 FROM ingest_sources s WHERE s.app_id = applications.id)"
    };
}
pub(crate) use not_a_source_app;

macro_rules! source_columns {
    () => {
        "id, uid, name, kind, secret, old_secret, old_secret_expires_at, app_id, metadata, created_at, updated_at"
    };
}

macro_rules! log_columns {
    () => {
        "id, source_id, status_code, error_text, msg_id, created_at"
    };
}

fn parse_id<T: TryFrom<String>>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T::Error: std::error::Error + Send + Sync + 'static,
{
    T::try_from(row.try_get::<String, _>(column).map_err(db)?).map_err(internal)
}

fn source(row: &PgRow) -> StoreResult<Source> {
    Ok(Source {
        id: parse_id(row, "id")?,
        uid: row.try_get("uid").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        kind: row.try_get("kind").map_err(db)?,
        secret: row.try_get("secret").map_err(db)?,
        previous_secret: match (
            row.try_get::<Option<String>, _>("old_secret").map_err(db)?,
            row.try_get::<Option<DateTime<Utc>>, _>("old_secret_expires_at").map_err(db)?,
        ) {
            (Some(key), Some(expires_at)) => Some(PreviousSecret { key, expires_at }),
            _ => None,
        },
        app_id: parse_id(row, "app_id")?,
        metadata: row.try_get::<Json<_>, _>("metadata").map_err(db)?.0,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

fn log(row: &PgRow) -> StoreResult<IngestLog> {
    let status: i16 = row.try_get("status_code").map_err(db)?;
    Ok(IngestLog {
        id: parse_id(row, "id")?,
        source_id: parse_id(row, "source_id")?,
        status_code: u16::try_from(status).map_err(internal)?,
        error_text: row.try_get("error_text").map_err(db)?,
        msg_id: row
            .try_get::<Option<String>, _>("msg_id")
            .map_err(db)?
            .map(TryInto::try_into)
            .transpose()
            .map_err(internal)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

/// An application by id or uid, unless it is a source's hidden application.
pub(crate) async fn find_visible_application(
    executor: impl PgExecutor<'_>,
    key: &str,
) -> StoreResult<Option<Application>> {
    macro_rules! visible_by {
        ($column:literal) => {
            concat!("SELECT ", app_columns!(), " FROM applications WHERE ", $column, " = $1 AND ", not_a_source_app!())
        };
    }
    let sql = if AppId::is_id(key) { visible_by!("id") } else { visible_by!("uid") };
    let row = sqlx::query(sql).bind(key).fetch_optional(executor).await.map_err(db)?;
    row.as_ref().map(crate::rows::application).transpose()
}

pub(crate) async fn create(pool: &PgPool, source: &Source, app: &Application, token: &TokenHash) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    insert_application(&mut *tx, app).await?;
    sqlx::query(concat!(
        "INSERT INTO ingest_sources (",
        source_columns!(),
        ", token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(source.id.as_str())
    .bind(&source.uid)
    .bind(&source.name)
    .bind(&source.kind)
    .bind(&source.secret)
    .bind(source.previous_secret.as_ref().map(|p| p.key.as_str()))
    .bind(source.previous_secret.as_ref().map(|p| ms(p.expires_at)))
    .bind(source.app_id.as_str())
    .bind(Json(&source.metadata))
    .bind(ms(source.created_at))
    .bind(ms(source.updated_at))
    .bind(&token.0)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)
}

pub(crate) async fn find(executor: impl PgExecutor<'_>, key: &str) -> StoreResult<Option<Source>> {
    let sql = if SourceId::is_id(key) {
        concat!("SELECT ", source_columns!(), " FROM ingest_sources WHERE id = $1")
    } else {
        concat!("SELECT ", source_columns!(), " FROM ingest_sources WHERE uid = $1")
    };
    let row = sqlx::query(sql).bind(key).fetch_optional(executor).await.map_err(db)?;
    row.as_ref().map(source).transpose()
}

pub(crate) async fn find_by_token(
    executor: impl PgExecutor<'_>,
    token: &TokenHash,
    now: DateTime<Utc>,
) -> StoreResult<Option<Source>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        source_columns!(),
        " FROM ingest_sources WHERE token_hash = $1 OR (old_token_hash = $1 AND old_token_expires_at > $2)"
    ))
    .bind(&token.0)
    .bind(ms(now))
    .fetch_optional(executor)
    .await
    .map_err(db)?;
    row.as_ref().map(source).transpose()
}

pub(crate) async fn list(pool: &PgPool, page: &PageQuery) -> StoreResult<Page<Source>> {
    let query = QueryBuilder::<Postgres>::new(concat!("SELECT ", source_columns!(), " FROM ingest_sources WHERE true"));
    resources::page(pool, query, "id", page, source).await
}

pub(crate) async fn update(executor: impl PgExecutor<'_>, s: &Source) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE ingest_sources SET uid = $2, name = $3, kind = $4, secret = $5, metadata = $6, updated_at = $7,
             old_secret = $8, old_secret_expires_at = $9
         WHERE id = $1",
    )
    .bind(s.id.as_str())
    .bind(&s.uid)
    .bind(&s.name)
    .bind(&s.kind)
    .bind(&s.secret)
    .bind(Json(&s.metadata))
    .bind(ms(s.updated_at))
    .bind(s.previous_secret.as_ref().map(|p| p.key.as_str()))
    .bind(s.previous_secret.as_ref().map(|p| ms(p.expires_at)))
    .execute(executor)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound("source")) } else { Ok(()) }
}

pub(crate) async fn delete(executor: impl PgExecutor<'_>, id: &SourceId) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM applications WHERE id = (SELECT app_id FROM ingest_sources WHERE id = $1)")
        .bind(id.as_str())
        .execute(executor)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound("source")) } else { Ok(()) }
}

pub(crate) async fn rotate_token(
    executor: impl PgExecutor<'_>,
    id: &SourceId,
    rotation: &TokenRotation,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE ingest_sources SET old_token_hash = token_hash, old_token_expires_at = $3, token_hash = $2
         WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(&rotation.new.0)
    .bind(ms(rotation.old_valid_until))
    .execute(executor)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound("source")) } else { Ok(()) }
}

pub(crate) async fn insert_log(executor: impl PgExecutor<'_>, e: &IngestLog) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO ingest_logs (id, source_id, status_code, error_text, msg_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.id.as_str())
    .bind(e.source_id.as_str())
    .bind(i16::try_from(e.status_code).map_err(internal)?)
    .bind(&e.error_text)
    .bind(e.msg_id.as_ref().map(|m| m.as_str()))
    .bind(ms(e.created_at))
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(())
}

pub(crate) async fn list_logs(pool: &PgPool, source_id: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
    let mut query =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", log_columns!(), " FROM ingest_logs WHERE source_id = "));
    query.push_bind(source_id.as_str().to_owned());
    resources::page(pool, query, "id", page, log).await
}

pub(crate) async fn sweep_logs(executor: impl PgExecutor<'_>, before: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
    // SKIP LOCKED: rows another node's sweep holds are left for the next sweep.
    let done = sqlx::query(
        "DELETE FROM ingest_logs WHERE id IN
             (SELECT id FROM ingest_logs WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(ms(before))
    .bind(limit)
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// The newest `keep` entries of each source are found through `ingest_logs_by_source`
/// (one index walk of `keep` rows per source); everything older goes, `limit` at a time.
pub(crate) async fn trim_logs(executor: impl PgExecutor<'_>, keep: usize, limit: usize) -> StoreResult<usize> {
    let (keep, limit) = (i64::try_from(keep).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX));
    // SKIP LOCKED: rows another node's sweep holds are left for the next sweep.
    let done = sqlx::query(
        "DELETE FROM ingest_logs WHERE id IN (
             WITH cut AS MATERIALIZED (
                 SELECT s.id AS source_id, (SELECT x.id FROM ingest_logs x WHERE x.source_id = s.id
                                            ORDER BY x.id DESC LIMIT 1 OFFSET $1) AS last_id
                 FROM ingest_sources s)
             SELECT l.id FROM cut JOIN ingest_logs l ON l.source_id = cut.source_id AND l.id <= cut.last_id
             LIMIT $2 FOR UPDATE OF l SKIP LOCKED)",
    )
    .bind(keep)
    .bind(limit)
    .execute(executor)
    .await
    .map_err(db)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

#[async_trait]
impl Ingest for PostgresStore {
    async fn create_source(&self, source: Source, app: Application, token: TokenHash) -> StoreResult<Source> {
        create(&self.pool, &source, &app, &token).await.map(|()| source)
    }

    async fn get_source(&self, key: &str) -> StoreResult<Source> {
        find(&self.pool, key).await.and_then(found("source"))
    }

    async fn list_sources(&self, page: &PageQuery) -> StoreResult<Page<Source>> {
        list(&self.pool, page).await
    }

    async fn update_source(&self, source: Source) -> StoreResult<Source> {
        update(&self.pool, &source).await.map(|()| source)
    }

    async fn delete_source(&self, id: &SourceId) -> StoreResult<()> {
        delete(&self.pool, id).await
    }

    async fn rotate_source_token(&self, id: &SourceId, rotation: TokenRotation) -> StoreResult<()> {
        rotate_token(&self.pool, id, &rotation).await
    }

    async fn find_source_by_token(&self, token: &TokenHash, now: DateTime<Utc>) -> StoreResult<Option<Source>> {
        find_by_token(&self.pool, token, now).await
    }

    async fn record_ingest_log(&self, entry: IngestLog) -> StoreResult<()> {
        insert_log(&self.pool, &entry).await
    }

    async fn list_ingest_logs(&self, source: &SourceId, page: &PageQuery) -> StoreResult<Page<IngestLog>> {
        list_logs(&self.pool, source, page).await
    }

    async fn trim_ingest_logs(&self, keep: usize, limit: usize) -> StoreResult<usize> {
        trim_logs(&self.pool, keep, limit).await
    }
}
