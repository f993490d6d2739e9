//! Load for the crash tests: producers posting uniquely numbered messages to a set of
//! nodes and remembering each one answered 202, and the tally of what a receiver got.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use herald_testkit::Receiver;
use serde_json::json;
use tokio::task::JoinHandle;

/// The admin token every crash-test node is started with.
pub const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789";

/// A plain client for one-off calls to a node, with the admin token.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {ADMIN_TOKEN}").parse().expect("a header value");
    headers.insert(reqwest::header::AUTHORIZATION, bearer);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build the HTTP client")
}

/// Creates an application with one endpoint pointing at `receiver` through the node
/// at `base`; returns the application id.
pub async fn app_with_endpoint(base: &str, receiver: &Receiver) -> String {
    let http = client();
    let app: serde_json::Value = http
        .post(format!("{base}/api/v1/app"))
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("create the application")
        .json()
        .await
        .expect("an application body");
    let app_id = app["id"].as_str().expect("an application id").to_owned();
    http.post(format!("{base}/api/v1/app/{app_id}/endpoint"))
        .json(&json!({"url": receiver.url("/hook")}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("create the endpoint");
    app_id
}

/// Concurrent clients posting messages `{"n": N}` (every N unique) round-robin to the
/// current targets until `limit` have been accepted. A failed request (the node was
/// killed, or is restarting) is not retried: that message simply was not accepted.
pub struct Producers {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    app_id: String,
    targets: RwLock<Vec<String>>,
    limit: usize,
    next_n: AtomicU64,
    turn: AtomicUsize,
    /// Payload number → message id, for every 202.
    accepted: Mutex<HashMap<u64, String>>,
    /// Requests that got no answer or an error status.
    failed: AtomicUsize,
    stop: AtomicBool,
}

impl Producers {
    /// Starts `clients` producers for `app_id` on `targets` (base URLs).
    pub fn start(clients: usize, app_id: &str, targets: Vec<String>, limit: usize) -> Self {
        let shared = Arc::new(Shared {
            app_id: app_id.to_owned(),
            targets: RwLock::new(targets),
            limit,
            next_n: AtomicU64::new(0),
            turn: AtomicUsize::new(0),
            accepted: Mutex::new(HashMap::new()),
            failed: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let tasks = (0..clients).map(|_| tokio::spawn(produce(shared.clone()))).collect();
        Self { shared, tasks }
    }

    /// Replaces the nodes messages are posted to (e.g. after a restart on a new port).
    pub fn set_targets(&self, targets: Vec<String>) {
        *self.shared.targets.write().expect("targets lock") = targets;
    }

    /// How many messages have been accepted so far.
    pub fn accepted_count(&self) -> usize {
        self.shared.accepted.lock().expect("accepted lock").len()
    }

    /// Waits for every producer to finish (the limit reached) and returns the
    /// accepted messages and the number of failed requests.
    pub async fn finish(mut self) -> (HashMap<u64, String>, usize) {
        for task in std::mem::take(&mut self.tasks) {
            task.await.expect("a producer panicked");
        }
        let accepted = std::mem::take(&mut *self.shared.accepted.lock().expect("accepted lock"));
        (accepted, self.shared.failed.load(Ordering::SeqCst))
    }
}

impl Drop for Producers {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

async fn produce(shared: Arc<Shared>) {
    let http = client();
    while !shared.stop.load(Ordering::SeqCst) && shared.accepted.lock().expect("accepted lock").len() < shared.limit {
        let target = {
            let targets = shared.targets.read().expect("targets lock");
            targets[shared.turn.fetch_add(1, Ordering::Relaxed) % targets.len()].clone()
        };
        let n = shared.next_n.fetch_add(1, Ordering::SeqCst);
        let body = json!({"eventType": "crash.test", "payload": {"n": n}});
        let sent = http.post(format!("{target}/api/v1/app/{}/msg", shared.app_id)).json(&body).send().await;
        match sent {
            Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                let message: serde_json::Value = match response.json().await {
                    Ok(message) => message,
                    // The node died after its head was sent: not counted as accepted.
                    Err(_) => continue,
                };
                let id = message["id"].as_str().expect("a message id").to_owned();
                shared.accepted.lock().expect("accepted lock").insert(n, id);
            }
            Ok(response) => {
                assert!(response.status().is_server_error(), "message create answered {}", response.status());
                shared.failed.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                // The node is down: give the test a moment to point us elsewhere
                // (a retry pace, not synchronisation).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// What the receiver got, against what was accepted.
#[derive(Debug)]
pub struct Tally {
    /// Accepted messages the receiver never got.
    pub lost: Vec<u64>,
    /// Requests beyond the first for a message (at-least-once redeliveries).
    pub duplicates: usize,
    /// Messages delivered that were never answered 202 (committed as the node died).
    pub unacknowledged: usize,
}

/// Payload numbers of every request `receiver` got, in arrival order.
pub fn received(receiver: &Receiver) -> Vec<u64> {
    receiver.requests().iter().map(|r| r.json()["n"].as_u64().expect("payload n")).collect()
}

/// Compares what `receiver` got with `accepted`.
pub fn tally(receiver: &Receiver, accepted: &HashMap<u64, String>) -> Tally {
    let got = received(receiver);
    let unique: HashSet<u64> = got.iter().copied().collect();
    let mut lost: Vec<u64> = accepted.keys().filter(|n| !unique.contains(n)).copied().collect();
    lost.sort_unstable();
    Tally {
        lost,
        duplicates: got.len() - unique.len(),
        unacknowledged: unique.iter().filter(|n| !accepted.contains_key(n)).count(),
    }
}

/// How many accepted messages the receiver has got at least once.
pub fn delivered_count(receiver: &Receiver, accepted: &HashMap<u64, String>) -> usize {
    let unique: HashSet<u64> = received(receiver).into_iter().collect();
    accepted.keys().filter(|n| unique.contains(n)).count()
}
