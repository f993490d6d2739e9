//! Store-level figures on the test PostgreSQL (`HERALD_TEST_POSTGRES_URL`): message
//! creates per second under concurrency for several group-commit settings, and
//! deliveries claimed and recorded per second by one and two "nodes". Prints figures;
//! asserts nothing. `cargo bench -p herald-store-postgres` (add `-- quick` for a smoke run).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use herald_core::{AttemptId, model::DeliveryStatus, model::TriggerType};
use herald_store::{
    AttemptResult, DynStore, IdempotencyWrite, NextStep, StoredResponse,
    conformance::{app, endpoint, message},
};
use herald_store_postgres::{PostgresOptions, PostgresStore, testing::TestSchema};
use rand::SeedableRng;
use sqlx::Connection;

const CLIENTS: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let messages = if quick { 2_000 } else { 20_000 };
    println!("PostgreSQL store, {CLIENTS} concurrent clients, 1 endpoint per app, idempotency key on every create");
    for (writers, max_batch) in [(2, 256), (1, 256), (4, 256), (8, 1)] {
        ingest(messages, writers, max_batch).await;
    }
    for nodes in [1, 2] {
        deliver(messages, nodes).await;
    }
}

async fn open(schema: &TestSchema, writers: usize, max_batch: usize) -> DynStore {
    let options = PostgresOptions { writers, max_batch, pool_size: 16, ..schema.options() };
    Arc::new(PostgresStore::connect(schema.url(), options).await.expect("store"))
}

/// Creates `total` messages from [`CLIENTS`] tasks and returns the store and schema.
async fn fill(store: &DynStore, total: usize) -> Vec<Duration> {
    let a = store.create_application(app("bench", None)).await.unwrap();
    store.create_endpoint(endpoint(&a.id, None, None)).await.unwrap();
    let payload = format!(r#"{{"data":"{}"}}"#, "x".repeat(1000));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (store, app_key, payload) = (store.clone(), a.id.to_string(), payload.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in (client..total).step_by(CLIENTS) {
                    let mut new = message(&app_key, "bench.event", None);
                    new.message.payload = Some(payload.clone());
                    new.idempotency = Some(IdempotencyWrite {
                        key: format!("bench|{i}"),
                        response: StoredResponse { status: 202, body: b"{}".to_vec() },
                        expires_at: Utc::now() + chrono::Duration::hours(24),
                    });
                    let started = Instant::now();
                    store.create_message(new).await.expect("create");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Transactions committed in the test database so far (all sessions).
async fn commits(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("stats connection");
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("stats")
}

async fn ingest(total: usize, writers: usize, max_batch: usize) {
    let schema = TestSchema::create().await;
    let store = open(&schema, writers, max_batch).await;
    let before = commits(schema.url()).await;
    let started = Instant::now();
    let latencies = fill(&store, total).await;
    let elapsed = started.elapsed().as_secs_f64();
    let committed = commits(schema.url()).await - before;
    println!(
        "ingest  writers={writers} max_batch={max_batch:>3}: {:>6.0} messages/s  p50 {:>6.1} ms  p99 {:>6.1} ms  \
         ({:.1} messages per commit)",
        total as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        total as f64 / committed.max(1) as f64,
    );
}

async fn deliver(total: usize, nodes: usize) {
    let schema = TestSchema::create().await;
    let store = open(&schema, 2, 256).await;
    fill(&store, total).await;
    let started = Instant::now();
    let workers: Vec<_> = (0..nodes)
        .map(|_| {
            let schema_url = schema.url().to_owned();
            let options = PostgresOptions { pool_size: 4, ..schema.options() };
            tokio::spawn(async move {
                let node = PostgresStore::connect(&schema_url, options).await.expect("node");
                let store: DynStore = Arc::new(node);
                let mut rng = rand::rngs::StdRng::from_os_rng();
                let mut done = 0usize;
                loop {
                    let now = herald_core::to_millis(Utc::now());
                    let claimed =
                        store.claim_due_deliveries(now, 128, now + chrono::Duration::seconds(30)).await.unwrap();
                    if claimed.is_empty() {
                        return done;
                    }
                    done += claimed.len();
                    let results = claimed
                        .iter()
                        .map(|c| AttemptResult {
                            attempt: herald_core::model::Attempt {
                                id: AttemptId::generate(now, &mut rng),
                                msg_id: c.delivery.msg_id.clone(),
                                endpoint_id: c.delivery.endpoint_id.clone(),
                                app_id: c.delivery.app_id.clone(),
                                url: c.endpoint.url.clone(),
                                status: DeliveryStatus::Success,
                                response_status_code: 200,
                                response: String::new(),
                                response_duration_ms: 1,
                                trigger: TriggerType::Scheduled,
                                created_at: now,
                            },
                            next: NextStep::Delivered,
                            lease_until: c.delivery.next_attempt_at,
                        })
                        .collect();
                    store.record_attempts(results).await.unwrap();
                }
            })
        })
        .collect();
    let mut delivered = 0;
    for worker in workers {
        delivered += worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "deliver nodes={nodes}: {delivered} claimed+recorded, {:>6.0} deliveries/s (batches of 128, no HTTP)",
        delivered as f64 / elapsed
    );
}
