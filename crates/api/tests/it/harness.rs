//! A running API over a fresh store from the test harness (an SQLite file or a
//! PostgreSQL schema), with an admin token and request helpers.

use std::sync::Arc;

use chrono::Utc;
use herald_api::{ApiConfig, AppState, auth::mint_token, router, router_with_ssrf_guard};
use herald_core::{AppId, Clock, net::AllowList};
use herald_store::DynStore;
use herald_testkit::{Backend, TestStore};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub store: DynStore,
    /// Cancelling it ends the server's live streams, as a shutdown does.
    pub shutdown: CancellationToken,
    _database: Arc<TestStore>,
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, ApiConfig::default()).await
}

pub async fn spawn_with(backend: Backend, config: ApiConfig) -> TestApp {
    spawn_full(backend, config, None, Arc::new(Utc::now)).await
}

/// An API reading `clock` instead of the system time.
pub async fn spawn_with_clock(backend: Backend, config: ApiConfig, clock: Clock) -> TestApp {
    spawn_full(backend, config, None, clock).await
}

/// An API that refuses endpoint URLs naming blocked addresses unless `allow` opens them.
pub async fn spawn_guarded(backend: Backend, allow: &str) -> TestApp {
    spawn_full(backend, ApiConfig::default(), Some(allow.parse().expect("allow-list")), Arc::new(Utc::now)).await
}

async fn spawn_full(backend: Backend, config: ApiConfig, guard: Option<AllowList>, clock: Clock) -> TestApp {
    let database = backend.open().await;
    let store = database.store.clone();
    let (token, record) = mint_token(None, Utc::now(), &mut rand::rng());
    store.create_token(record).await.expect("store token");
    let shutdown = CancellationToken::new();
    let state =
        AppState::new(store.clone(), config, clock, herald_metrics::Metrics::new()).with_shutdown(shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = match guard {
        Some(allow) => router_with_ssrf_guard(state, allow),
        None => router(state),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        token,
        store,
        shutdown,
        _database: Arc::new(database),
    }
}

impl TestApp {
    /// A token scoped to `app`.
    pub async fn scoped_token(&self, app: &str) -> String {
        let (token, record) = mint_token(Some(AppId::parse(app).unwrap()), Utc::now(), &mut rand::rng());
        self.store.create_token(record).await.unwrap();
        token
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = req.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(Method::PUT, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(Method::PATCH, path).json(&body)).await
    }

    /// Creates an application and returns its id.
    pub async fn app(&self, uid: Option<&str>) -> String {
        let (status, body) = self.post("/api/v1/app", serde_json::json!({"name": "test", "uid": uid})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Runs `n` copies of `f` concurrently, returning their results in order.
    pub async fn concurrently<T, F, Fut>(&self, n: usize, f: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(TestApp, usize) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(self.clone(), i))).collect();
        let mut out = Vec::with_capacity(n);
        for handle in handles {
            out.push(handle.await.expect("task"));
        }
        out
    }

    /// Walks a list forwards from the start, then backwards from its end, in pages of
    /// `limit`, returning the item ids seen each way (backwards ones put in list order).
    pub async fn walk(&self, path: &str, limit: usize, extra: &str) -> (Vec<String>, Vec<String>) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut forwards = Vec::new();
        let mut iterator: Option<String> = None;
        let mut last_iterator = None;
        loop {
            let it = iterator.as_ref().map(|i| format!("&iterator={i}")).unwrap_or_default();
            let (status, body) = self.get(&format!("{path}{sep}limit={limit}{it}{extra}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let data = body["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            forwards.extend(data.iter().map(id_of));
            last_iterator = body["iterator"].as_str().map(str::to_owned).or(last_iterator);
            if body["done"].as_bool().unwrap() {
                break;
            }
            iterator = body["iterator"].as_str().map(str::to_owned);
        }
        // Backwards: start after the last item and follow prevIterator.
        let mut backwards = Vec::new();
        let mut iterator = last_iterator.map(|i| format!("-{i}"));
        // The first backward step from the last item's key skips the last item itself.
        if let Some(last) = forwards.last() {
            backwards.push(last.clone());
        }
        while let Some(it) = iterator {
            let (status, body) = self.get(&format!("{path}{sep}limit={limit}&iterator={it}{extra}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let data = body["data"].as_array().unwrap();
            let page: Vec<String> = data.iter().map(id_of).collect();
            backwards.splice(0..0, page);
            iterator =
                if body["done"].as_bool().unwrap() { None } else { body["prevIterator"].as_str().map(str::to_owned) };
        }
        (forwards, backwards)
    }
}

fn id_of(item: &Value) -> String {
    item.get("id").or_else(|| item.get("name")).and_then(Value::as_str).unwrap().to_owned()
}

/// Asserts the contract's `{"code","detail"}` body with `code`.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

/// Asserts a 422 body naming `loc`.
pub fn assert_invalid(status: StatusCode, body: &Value, loc: &[&str]) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_array().unwrap_or_else(|| panic!("no detail list: {body}"));
    assert!(
        detail.iter().any(|d| d["loc"] == serde_json::json!(loc) && d["msg"].is_string() && d["type"].is_string()),
        "expected loc {loc:?} in {body}"
    );
}
