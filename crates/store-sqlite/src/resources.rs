//! Applications, event types, endpoints and tokens: plain rows, one statement or a few
//! per call.

use async_trait::async_trait;
use herald_core::{
    AppId, EndpointId, RetrySchedule,
    model::{Application, Endpoint, EventType},
};
use herald_store::{AppFilter, Page, PageQuery, Resources, StoreError, StoreResult, TokenRecord, found};
use rusqlite::{Connection, OptionalExtension, params, types::Value};

use crate::{
    SqliteStore,
    engine::internal,
    rows::{self, PageSql, db_err, ms, to_json},
};

/// Runs a list query: `base` selects with `WHERE …` and has `?1..` bound from `args`;
/// the cursor condition, order and limit are appended.
pub fn page<T>(
    conn: &Connection,
    base: &str,
    mut args: Vec<Value>,
    column: &str,
    page: &PageQuery,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Page<T>> {
    let sql_page = PageSql::new(page, column, args.len() + 1);
    if let Some(c) = &sql_page.cursor {
        args.push(Value::Text(c.clone()));
    }
    let sql = format!("{base}{} ORDER BY {} LIMIT {}", sql_page.condition, sql_page.order_by, sql_page.fetch);
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err("query"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), map)
        .map_err(db_err("query"))?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(db_err("row"))?;
    Ok(Page::from_rows(rows, page.limit, sql_page.direction))
}

pub fn insert_token(conn: &Connection, t: &TokenRecord) -> StoreResult<()> {
    conn.prepare_cached("INSERT INTO tokens (id, hash, app_id, created_at) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| {
            s.execute(params![t.id.as_str(), t.hash, t.app_id.as_ref().map(AppId::as_str), ms(t.created_at)])
        })
        .map_err(db_err("token"))?;
    Ok(())
}

pub fn find_token(conn: &Connection, hash: &str) -> StoreResult<Option<TokenRecord>> {
    conn.prepare_cached("SELECT id, hash, app_id, created_at FROM tokens WHERE hash = ?1")
        .and_then(|mut s| {
            s.query_row([hash], |r| {
                let id: String = r.get(0)?;
                let app: Option<String> = r.get(2)?;
                let created: i64 = r.get(3)?;
                Ok((id, r.get::<_, String>(1)?, app, created))
            })
            .optional()
        })
        .map_err(db_err("token"))?
        .map(|(id, hash, app, created)| {
            Ok(TokenRecord {
                id: id.try_into().map_err(crate::engine::internal)?,
                hash,
                app_id: app.map(AppId::try_from).transpose().map_err(crate::engine::internal)?,
                created_at: chrono::DateTime::from_timestamp_millis(created).unwrap_or_default(),
            })
        })
        .transpose()
}

pub fn insert_application(conn: &Connection, app: &Application) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            app.id.as_str(),
            app.uid,
            app.name,
            app.throttle_rate,
            to_json(&app.metadata).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            ms(app.created_at),
            ms(app.updated_at)
        ])
    })
    .map_err(db_err("an application with this uid"))?;
    Ok(())
}

/// An application by id or uid.
pub fn find_application(conn: &Connection, key: &str) -> StoreResult<Option<Application>> {
    let column = if AppId::is_id(key) { "id" } else { "uid" };
    conn.prepare_cached(&format!("SELECT {} FROM applications WHERE {column} = ?1", rows::APP_COLUMNS))
        .and_then(|mut s| s.query_row([key], rows::application).optional())
        .map_err(db_err("application"))
}

pub fn update_application(conn: &Connection, app: &Application) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE applications SET uid = ?2, name = ?3, throttle_rate = ?4, metadata = ?5, updated_at = ?6 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                app.id.as_str(),
                app.uid,
                app.name,
                app.throttle_rate,
                to_json(&app.metadata).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                ms(app.updated_at)
            ])
        })
        .map_err(db_err("an application with this uid"))?;
    if n == 0 { Err(StoreError::NotFound("application")) } else { Ok(()) }
}

pub fn delete_application(conn: &Connection, id: &AppId) -> StoreResult<()> {
    let n = conn.execute("DELETE FROM applications WHERE id = ?1", [id.as_str()]).map_err(db_err("application"))?;
    if n == 0 {
        return Err(StoreError::NotFound("application"));
    }
    for table in ["endpoints", "messages", "deliveries"] {
        conn.execute(&format!("DELETE FROM {table} WHERE app_id = ?1"), [id.as_str()])
            .map_err(db_err("application"))?;
    }
    Ok(())
}

fn event_type_params(et: &EventType) -> StoreResult<Vec<Value>> {
    Ok(vec![
        Value::Text(et.name.clone()),
        Value::Text(et.description.clone()),
        Value::Integer(et.archived.into()),
        Value::Integer(et.deprecated.into()),
        et.schemas.as_ref().map(to_json).transpose()?.map_or(Value::Null, Value::Text),
        et.group_name.clone().map_or(Value::Null, Value::Text),
        et.feature_flags.as_ref().map(to_json).transpose()?.map_or(Value::Null, Value::Text),
        Value::Integer(ms(et.created_at)),
        Value::Integer(ms(et.updated_at)),
    ])
}

pub fn insert_event_type(conn: &Connection, et: &EventType) -> StoreResult<()> {
    let args = event_type_params(et)?;
    conn.prepare_cached(&format!(
        "INSERT INTO event_types ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rows::EVENT_TYPE_COLUMNS
    ))
    .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
    .map_err(db_err("an event type with this name"))?;
    Ok(())
}

pub fn update_event_type(conn: &Connection, et: &EventType) -> StoreResult<()> {
    let args = event_type_params(et)?;
    let n = conn
        .prepare_cached(
            "UPDATE event_types SET description = ?2, archived = ?3, deprecated = ?4, schemas = ?5, group_name = ?6,
             feature_flags = ?7, created_at = ?8, updated_at = ?9 WHERE name = ?1",
        )
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
        .map_err(db_err("event type"))?;
    if n == 0 { Err(StoreError::NotFound("event type")) } else { Ok(()) }
}

pub fn find_event_type(conn: &Connection, name: &str) -> StoreResult<Option<EventType>> {
    conn.prepare_cached(&format!("SELECT {} FROM event_types WHERE name = ?1", rows::EVENT_TYPE_COLUMNS))
        .and_then(|mut s| s.query_row([name], rows::event_type).optional())
        .map_err(db_err("event type"))
}

fn endpoint_params(ep: &Endpoint) -> StoreResult<Vec<Value>> {
    let text = |s: &str| Value::Text(s.to_owned());
    Ok(vec![
        text(ep.id.as_str()),
        text(ep.app_id.as_str()),
        ep.uid.clone().map_or(Value::Null, Value::Text),
        text(&ep.url),
        text(&ep.description),
        ep.throttle_rate.map_or(Value::Null, |r| Value::Integer(r.into())),
        Value::Integer(ep.disabled.into()),
        ep.event_types.as_ref().map(to_json).transpose()?.map_or(Value::Null, Value::Text),
        ep.channels.as_ref().map(to_json).transpose()?.map_or(Value::Null, Value::Text),
        Value::Text(to_json(&ep.metadata)?),
        Value::Text(to_json(&ep.headers)?),
        Value::Text(to_json(&ep.secrets)?),
        Value::Integer(ms(ep.created_at)),
        Value::Integer(ms(ep.updated_at)),
    ])
}

pub fn insert_endpoint(conn: &Connection, ep: &Endpoint) -> StoreResult<()> {
    let args = endpoint_params(ep)?;
    conn.prepare_cached(&format!(
        "INSERT INTO endpoints ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        rows::ENDPOINT_COLUMNS
    ))
    .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
    .map_err(db_err("an endpoint with this uid"))?;
    Ok(())
}

pub fn update_endpoint(conn: &Connection, ep: &Endpoint) -> StoreResult<()> {
    let args = endpoint_params(ep)?;
    let n = conn
        .prepare_cached(
            "UPDATE endpoints SET uid = ?3, url = ?4, description = ?5, throttle_rate = ?6, disabled = ?7,
             event_types = ?8, channels = ?9, metadata = ?10, headers = ?11, secrets = ?12, created_at = ?13,
             updated_at = ?14 WHERE id = ?1 AND app_id = ?2",
        )
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
        .map_err(db_err("an endpoint with this uid"))?;
    if n == 0 { Err(StoreError::NotFound("endpoint")) } else { Ok(()) }
}

/// An endpoint of `app` by id or uid.
pub fn find_endpoint(conn: &Connection, app: &AppId, key: &str) -> StoreResult<Option<Endpoint>> {
    let column = if EndpointId::is_id(key) { "id" } else { "uid" };
    conn.prepare_cached(&format!(
        "SELECT {} FROM endpoints WHERE app_id = ?1 AND {column} = ?2",
        rows::ENDPOINT_COLUMNS
    ))
    .and_then(|mut s| s.query_row([app.as_str(), key], rows::endpoint).optional())
    .map_err(db_err("endpoint"))
}

pub fn delete_endpoint(conn: &Connection, app: &AppId, id: &EndpointId) -> StoreResult<()> {
    let n = conn
        .execute("DELETE FROM endpoints WHERE app_id = ?1 AND id = ?2", [app.as_str(), id.as_str()])
        .map_err(db_err("endpoint"))?;
    if n == 0 {
        return Err(StoreError::NotFound("endpoint"));
    }
    conn.execute("DELETE FROM deliveries WHERE endpoint_id = ?1", [id.as_str()]).map_err(db_err("endpoint"))?;
    Ok(())
}

#[async_trait]
impl Resources for SqliteStore {
    async fn create_token(&self, token: TokenRecord) -> StoreResult<()> {
        self.engine.write(move |c| insert_token(c, &token)).await
    }

    async fn find_token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.engine.read(move |c| find_token(c, &hash)).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        self.engine
            .read(|c| {
                c.query_row("SELECT EXISTS (SELECT 1 FROM tokens WHERE app_id IS NULL)", [], |r| r.get(0))
                    .map_err(internal)
            })
            .await
    }

    async fn create_application(&self, app: Application) -> StoreResult<Application> {
        self.engine.write(move |c| insert_application(c, &app).map(|()| app)).await
    }

    async fn get_application(&self, key: &str) -> StoreResult<Application> {
        let key = key.to_owned();
        self.engine
            .read(move |c| find_application(c, &key).and_then(|app| crate::ingest::unless_hidden(c, app)))
            .await
            .and_then(found("application"))
    }

    async fn list_applications(&self, filter: AppFilter, page: &PageQuery) -> StoreResult<Page<Application>> {
        let page = page.clone();
        let mut sql =
            format!("SELECT {} FROM applications WHERE {}", crate::rows::APP_COLUMNS, crate::ingest::NOT_A_SOURCE_APP);
        let endpoint = "SELECT 1 FROM endpoints e WHERE e.app_id = applications.id";
        if filter.exclude_without_endpoints {
            sql.push_str(&format!(" AND EXISTS ({endpoint})"));
        }
        if filter.exclude_only_disabled_endpoints {
            sql.push_str(&format!(" AND (NOT EXISTS ({endpoint}) OR EXISTS ({endpoint} AND e.disabled = 0))"));
        }
        self.engine.read(move |c| self::page(c, &sql, vec![], "id", &page, crate::rows::application)).await
    }

    async fn update_application(&self, app: Application) -> StoreResult<Application> {
        self.engine.write(move |c| update_application(c, &app).map(|()| app)).await
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<()> {
        let id = id.clone();
        self.engine.write(move |c| delete_application(c, &id)).await
    }

    async fn create_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        self.engine.write(move |c| insert_event_type(c, &event_type).map(|()| event_type)).await
    }

    async fn get_event_type(&self, name: &str) -> StoreResult<EventType> {
        let name = name.to_owned();
        self.engine.read(move |c| find_event_type(c, &name)).await.and_then(found("event type"))
    }

    async fn list_event_types(&self, page: &PageQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let page = page.clone();
        let filter = if include_archived { "1 = 1" } else { "archived = 0" };
        let sql = format!("SELECT {} FROM event_types WHERE {filter}", crate::rows::EVENT_TYPE_COLUMNS);
        self.engine.read(move |c| self::page(c, &sql, vec![], "name", &page, crate::rows::event_type)).await
    }

    async fn update_event_type(&self, event_type: EventType) -> StoreResult<EventType> {
        self.engine.write(move |c| update_event_type(c, &event_type).map(|()| event_type)).await
    }

    async fn delete_event_type(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.engine
            .write(move |c| {
                let n = c.execute("DELETE FROM event_types WHERE name = ?1", [&name]).map_err(internal)?;
                if n == 0 { Err(StoreError::NotFound("event type")) } else { Ok(()) }
            })
            .await
    }

    async fn get_event_type_retry_schedule(&self, name: &str) -> StoreResult<Option<RetrySchedule>> {
        let name = name.to_owned();
        self.engine.read(move |c| crate::maintenance::retry_schedule(c, &name)).await
    }

    async fn set_event_type_retry_schedule(&self, name: &str, schedule: Option<RetrySchedule>) -> StoreResult<()> {
        let name = name.to_owned();
        self.engine.write(move |c| crate::maintenance::set_retry_schedule(c, &name, schedule.as_ref())).await
    }

    async fn create_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        self.engine
            .write(move |c| {
                // The application may have been deleted since the API looked it up.
                let app_exists = c
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM applications WHERE id = ?1)",
                        [endpoint.app_id.as_str()],
                        |r| r.get::<_, bool>(0),
                    )
                    .map_err(internal)?;
                if !app_exists {
                    return Err(StoreError::NotFound("application"));
                }
                insert_endpoint(c, &endpoint).map(|()| endpoint)
            })
            .await
    }

    async fn get_endpoint(&self, app: &AppId, key: &str) -> StoreResult<Endpoint> {
        let (app, key) = (app.clone(), key.to_owned());
        self.engine.read(move |c| find_endpoint(c, &app, &key)).await.and_then(found("endpoint"))
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageQuery) -> StoreResult<Page<Endpoint>> {
        let page = page.clone();
        let args = vec![Value::Text(app.as_str().to_owned())];
        let sql = format!("SELECT {} FROM endpoints WHERE app_id = ?1", crate::rows::ENDPOINT_COLUMNS);
        self.engine.read(move |c| self::page(c, &sql, args, "id", &page, crate::rows::endpoint)).await
    }

    async fn update_endpoint(&self, endpoint: Endpoint) -> StoreResult<Endpoint> {
        self.engine.write(move |c| update_endpoint(c, &endpoint).map(|()| endpoint)).await
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<()> {
        let (app, id) = (app.clone(), id.clone());
        self.engine.write(move |c| delete_endpoint(c, &app, &id)).await
    }
}
