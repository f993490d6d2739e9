//! Applications, event types, endpoints and tokens: plain rows, one statement per call.
//! Uniqueness (app uid, endpoint uid per app, event type name) is held by constraints,
//! so it holds across nodes and under races; foreign keys cascade deletes.

use async_trait::async_trait;
use herald_core::{
    AppId, EndpointId, RetrySchedule,
    model::{Application, Endpoint, EventType},
};
use herald_store::{AppFilter, Page, PageQuery, Resources, StoreError, StoreResult, TokenRecord, found};
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row, postgres::PgRow, types::Json};

use crate::{
    PostgresStore,
    error::{db, internal},
    rows::{self, app_columns, endpoint_columns, event_type_columns, ms},
};

/// Runs a list query: `query` selects with its `WHERE` already; the cursor condition,
/// order and limit are appended.
pub(crate) async fn page<'e, T>(
    executor: impl PgExecutor<'e>,
    mut query: QueryBuilder<Postgres>,
    column: &str,
    page: &PageQuery,
    map: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let direction = rows::push_page(&mut query, column, page);
    let fetched = query.build().fetch_all(executor).await.map_err(db)?;
    let items = fetched.iter().map(map).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(items, page.limit, direction))
}

fn not_found_if_none(affected: u64, what: &'static str) -> StoreResult<()> {
    if affected == 0 { Err(StoreError::NotFound(what)) } else { Ok(()) }
}

pub(crate) async fn insert_token(executor: impl PgExecutor<'_>, t: &TokenRecord) -> StoreResult<()> {
    sqlx::query("INSERT INTO tokens (id, hash, app_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(t.id.as_str())
        .bind(&t.hash)
        .bind(t.app_id.as_ref().map(AppId::as_str))
        .bind(ms(t.created_at))
        .execute(executor)
        .await
        .map_err(db)?;
    Ok(())
}

pub(crate) async fn find_token(executor: impl PgExecutor<'_>, hash: &str) -> StoreResult<Option<TokenRecord>> {
    let row = sqlx::query("SELECT id, hash, app_id, created_at FROM tokens WHERE hash = $1")
        .bind(hash)
        .fetch_optional(executor)
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(TokenRecord {
        id: row.try_get::<String, _>("id").map_err(db)?.try_into().map_err(internal)?,
        hash: row.try_get("hash").map_err(db)?,
        app_id: row
            .try_get::<Option<String>, _>("app_id")
            .map_err(db)?
            .map(AppId::try_from)
            .transpose()
            .map_err(internal)?,
        created_at: row.try_get("created_at").map_err(db)?,
    }))
}

pub(crate) async fn insert_application(executor: impl PgExecutor<'_>, app: &Application) -> StoreResult<()> {
    sqlx::query(concat!("INSERT INTO applications (", app_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"))
        .bind(app.id.as_str())
        .bind(&app.uid)
        .bind(&app.name)
        .bind(app.throttle_rate.map(i32::from))
        .bind(Json(&app.metadata))
        .bind(ms(app.created_at))
        .bind(ms(app.updated_at))
        .execute(executor)
        .await
        .map_err(db)?;
    Ok(())
}

pub(crate) async fn update_application(executor: impl PgExecutor<'_>, app: &Application) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE applications SET uid = $2, name = $3, throttle_rate = $4, metadata = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(app.id.as_str())
    .bind(&app.uid)
    .bind(&app.name)
    .bind(app.throttle_rate.map(i32::from))
    .bind(Json(&app.metadata))
    .bind(ms(app.updated_at))
    .execute(executor)
    .await
    .map_err(db)?;
    not_found_if_none(done.rows_affected(), "application")
}

/// Deletes the application; its endpoints, messages, deliveries and attempts go with it
/// through `ON DELETE CASCADE`, in the same statement.
pub(crate) async fn delete_application(executor: impl PgExecutor<'_>, id: &AppId) -> StoreResult<()> {
    let done =
        sqlx::query("DELETE FROM applications WHERE id = $1").bind(id.as_str()).execute(executor).await.map_err(db)?;
    not_found_if_none(done.rows_affected(), "application")
}

fn bind_event_type<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    et: &'q EventType,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.archived)
        .bind(et.deprecated)
        .bind(et.schemas.as_ref().map(Json))
        .bind(&et.group_name)
        .bind(&et.feature_flags)
        .bind(ms(et.created_at))
        .bind(ms(et.updated_at))
}

pub(crate) async fn insert_event_type(executor: impl PgExecutor<'_>, et: &EventType) -> StoreResult<()> {
    let query = sqlx::query(concat!(
        "INSERT INTO event_types (",
        event_type_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ));
    bind_event_type(query, et).execute(executor).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn update_event_type(executor: impl PgExecutor<'_>, et: &EventType) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE event_types SET description = $2, archived = $3, deprecated = $4, schemas = $5, group_name = $6,
         feature_flags = $7, created_at = $8, updated_at = $9 WHERE name = $1",
    );
    let done = bind_event_type(query, et).execute(executor).await.map_err(db)?;
    not_found_if_none(done.rows_affected(), "event type")
}

pub(crate) async fn find_event_type(executor: impl PgExecutor<'_>, name: &str) -> StoreResult<Option<EventType>> {
    let row = sqlx::query(concat!("SELECT ", event_type_columns!(), " FROM event_types WHERE name = $1"))
        .bind(name)
        .fetch_optional(executor)
        .await
        .map_err(db)?;
    row.as_ref().map(rows::event_type).transpose()
}

pub(crate) async fn delete_event_type(executor: impl PgExecutor<'_>, name: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM event_types WHERE name = $1").bind(name).execute(executor).await.map_err(db)?;
    not_found_if_none(done.rows_affected(), "event type")
}

fn bind_endpoint<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ep: &'q Endpoint,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(ep.id.as_str())
        .bind(ep.app_id.as_str())
        .bind(&ep.uid)
        .bind(&ep.url)
        .bind(&ep.description)
        .bind(ep.throttle_rate.map(i32::from))
        .bind(ep.disabled)
        .bind(&ep.event_types)
        .bind(&ep.channels)
        .bind(Json(&ep.metadata))
        .bind(Json(&ep.headers))
        .bind(Json(&ep.secrets))
        .bind(ms(ep.created_at))
        .bind(ms(ep.updated_at))
}

/// Inserts an endpoint; the foreign key answers `NotFound` when the application is gone.
pub(crate) async fn insert_endpoint(executor: impl PgExecutor<'_>, ep: &Endpoint) -> StoreResult<()> {
    let query = sqlx::query(concat!(
        "INSERT INTO endpoints (",
        endpoint_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ));
    bind_endpoint(query, ep).execute(executor).await.map_err(db)?;
    Ok(())
}

pub(crate) async fn update_endpoint(executor: impl PgExecutor<'_>, ep: &Endpoint) -> StoreResult<()> {
    let query = sqlx::query(
        "UPDATE endpoints SET uid = $3, url = $4, description = $5, throttle_rate = $6, disabled = $7,
         event_types = $8, channels = $9, metadata = $10, headers = $11, secrets = $12, created_at = $13,
         updated_at = $14 WHERE id = $1 AND app_id = $2",
    );
    let done = bind_endpoint(query, ep).execute(executor).await.map_err(db)?;
    not_found_if_none(done.rows_affected(), "endpoint")
}

/// An endpoint of `app` by id or uid.
pub(crate) async fn find_endpoint(
    executor: impl PgExecutor<'_>,
    app: &AppId,
    key: &str,
) -> StoreResult<Option<Endpoint>> {
    let sql = if EndpointId::is_id(key) {
        concat!("SELECT ", endpoint_columns!(), " FROM endpoints WHERE app_id = $1 AND id = $2")
    } else {
        concat!("SELECT ", endpoint_columns!(), " FROM endpoints WHERE app_id = $1 AND uid = $2")
    };
    let row = sqlx::query(sql).bind(app.as_str()).bind(key).fetch_optional(executor).await.map_err(db)?;
    row.as_ref().map(rows::endpoint).transpose()
}

/// Deletes an endpoint; its queued deliveries go with it (`ON DELETE CASCADE`).
pub(crate) async fn delete_endpoint(executor: impl PgExecutor<'_>, app: &AppId, id: &EndpointId) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM endpoints WHERE app_id = $1 AND id = $2")
        .bind(app.as_str())
        .bind(id.as_str())
        .execute(executor)
        .await
        .map_err(db)?;
    not_found_if_none(done.rows_affected(), "endpoint")
}

#[async_trait]
impl Resources for PostgresStore {
    async fn create_token(&self, token: TokenRecord) -> StoreResult<()> {
        insert_token(&self.pool, &token).await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        find_token(&self.pool, hash).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL)")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn create_application(&self, app: Application) -> StoreResult<Application> {
        insert_application(&self.pool, &app).await.map(|()| app)
    }

    async fn get_application(&self, key: &str) -> StoreResult<Application> {
        crate::ingest::find_visible_application(&self.pool, key).await.and_then(found("application"))
    }

    async fn list_applications(&self, filter: AppFilter, page: &PageQuery) -> StoreResult<Page<Application>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            crate::rows::app_columns!(),
            " FROM applications WHERE ",
            crate::ingest::not_a_source_app!()
        ));
        const ENDPOINT: &str = "SELECT 1 FROM endpoints e WHERE e.app_id = applications.id";
        if filter.exclude_without_endpoints {
            query.push(format_args!(" AND EXISTS ({ENDPOINT})"));
        }
        if filter.exclude_only_disabled_endpoints {
            query.push(format_args!(" AND (NOT EXISTS ({ENDPOINT}) OR EXISTS ({ENDPOINT} AND NOT e.disabled))"));
        }
        self::page(&self.pool, query, "id", page, crate::rows::application).await
    }

    async fn update_application(&self, app: Application) -> StoreResult<Application> {
        update_application(&self.pool, &app).await.map(|()| app)
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<()> {
        delete_application(&self.pool, id).await
    }

    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        insert_event_type(&self.pool, &event_type).await.map(|()| event_type)
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        find_event_type(&self.pool, name).await.and_then(found("event type"))
    }

    async fn list_event_types(&self, page: &PageQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let sql = if include_archived {
            concat!("SELECT ", crate::rows::event_type_columns!(), " FROM event_types WHERE true")
        } else {
            concat!("SELECT ", crate::rows::event_type_columns!(), " FROM event_types WHERE NOT archived")
        };
        self::page(&self.pool, QueryBuilder::new(sql), "name", page, crate::rows::event_type).await
    }

    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        update_event_type(&self.pool, &event_type).await.map(|()| event_type)
    }

    async fn delete_event_type(&self, name: &str) -> StoreResult<()> {
        delete_event_type(&self.pool, name).await
    }

    async fn get_event_type_retry_schedule(&self, name: &str) -> StoreResult<Option<RetrySchedule>> {
        crate::maintenance::retry_schedule(&self.pool, name).await
    }

    async fn set_event_type_retry_schedule(&self, name: &str, schedule: Option<RetrySchedule>) -> StoreResult<()> {
        crate::maintenance::set_retry_schedule(&self.pool, name, schedule.as_ref()).await
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        insert_endpoint(&self.pool, &endpoint).await.map(|()| endpoint)
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Endpoint> {
        find_endpoint(&self.pool, app, key).await.and_then(found("endpoint"))
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageQuery) -> StoreResult<Page<Endpoint>> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            crate::rows::endpoint_columns!(),
            " FROM endpoints WHERE app_id = "
        ));
        query.push_bind(app.as_str().to_owned());
        self::page(&self.pool, query, "id", page, crate::rows::endpoint).await
    }

    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        update_endpoint(&self.pool, &endpoint).await.map(|()| endpoint)
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<()> {
        delete_endpoint(&self.pool, app, id).await
    }
}
