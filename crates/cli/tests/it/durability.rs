//! Accepted means durable, delivered at least once (docs/GUARANTEES.md): the real
//! binary on one SQLite file is SIGKILLed while it accepts messages and again while it
//! delivers a backlog, restarted each time, and every message it answered 202
//! still reaches the receiver, leaving the queue drained.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{TimeDelta, Utc};
use herald_core::{AppId, MessageId, model::DeliveryStatus};
use herald_testkit::{DEADLINE, Receiver, Reply, open_sqlite, poll_until, wait_until};

use crate::{
    load::{ADMIN_TOKEN, Producers, app_with_endpoint, delivered_count, tally},
    support::{Server, herald},
};

/// Messages accepted in all.
const MESSAGES: usize = 3_000;
/// Accepted before the first kill (while accepting).
const KILL_WHILE_ACCEPTING_AT: usize = 800;
/// Requests the receiver must get from the second process before it is killed.
const DELIVERED_BEFORE_SECOND_KILL: usize = 100;
/// Concurrent producers.
const CLIENTS: usize = 8;
/// A short lease, so deliveries claimed by a killed process come back quickly.
const LEASE_MS: &str = "6000";

/// `herald serve` on `db` with a short lease, delivering to loopback.
fn start(dir: &Path, db: &Path) -> Server {
    let url = format!("sqlite://{}", db.display());
    Server::spawn(
        herald(dir)
            .arg("serve")
            .env("HERALD_DATABASE_URL", url)
            .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HERALD_ALLOW_CIDRS", "127.0.0.1/32")
            .env("HERALD_WORKER__LEASE_MS", LEASE_MS)
            .env("HERALD_WORKER__REQUEST_TIMEOUT_MS", "1000"),
    )
}

/// Starting blocks on the child's stdout, so it runs off the async workers.
async fn start_async(dir: &Path, db: &Path) -> Server {
    let (dir, db): (PathBuf, PathBuf) = (dir.to_owned(), db.to_owned());
    tokio::task::spawn_blocking(move || start(&dir, &db)).await.expect("start herald")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_accepting_and_while_delivering_loses_no_accepted_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("herald.db");
    // A slow receiver (20 requests in flight per endpoint × 200 ms: 100/s) makes a
    // backlog certain however fast the machine accepts; it speeds up for the last run.
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::ok().after(Duration::from_millis(200)));

    // 1. Killed while accepting.
    let server = start_async(dir.path(), &db).await;
    let app_id = app_with_endpoint(&server.base_url(), &receiver).await;
    let producers = Producers::start(CLIENTS, &app_id, vec![server.base_url()], MESSAGES);
    wait_until(DEADLINE, || async { producers.accepted_count() >= KILL_WHILE_ACCEPTING_AT }).await;
    server.kill();
    let accepted_at_first_kill = producers.accepted_count();

    // 2. Restarted on the same file; accepts the rest, then is killed while delivering.
    let server = start_async(dir.path(), &db).await;
    let delivered_before = receiver.requests().len();
    producers.set_targets(vec![server.base_url()]);
    let (accepted, failed) = producers.finish().await;
    wait_until(DEADLINE, || async { receiver.requests().len() >= delivered_before + DELIVERED_BEFORE_SECOND_KILL })
        .await;
    server.kill();
    let backlog_at_second_kill = accepted.len() - delivered_count(&receiver, &accepted);

    // 3. Restarted again: everything accepted arrives, claims of the killed process
    // once their lease has run out.
    let server = start_async(dir.path(), &db).await;
    receiver.respond_with(Reply::ok());
    let outcome = poll_until(DEADLINE, || {
        let t = tally(&receiver, &accepted);
        async move { t.lost.is_empty().then_some(t) }
    })
    .await;
    // The receiver may hold a message only from the killed process, whose claim stays
    // leased until it expires: wait until the live server has recorded every delivery.
    wait_until_all_delivered(&db, &app_id, accepted.values()).await;
    assert!(server.terminate(), "SIGTERM is a clean exit");

    println!(
        "accepted: {} (before the first kill: {accepted_at_first_kill}); failed requests: {failed}; \
         backlog at the second kill: {backlog_at_second_kill}",
        accepted.len()
    );
    println!("lost: {}", outcome.lost.len());
    println!("duplicates: {}", outcome.duplicates);
    println!("delivered without a 202 (committed as the process died): {}", outcome.unacknowledged);
    assert!(accepted.len() >= MESSAGES, "the producers reached their limit");
    assert!(accepted_at_first_kill < MESSAGES, "the first kill came while accepting");
    assert!(backlog_at_second_kill > 0, "the second kill came while a backlog was being delivered");
    assert!(outcome.lost.is_empty(), "lost: {:?}", outcome.lost);

    assert_queue_drained(&db, &app_id, accepted.values()).await;
}

/// Polls the live server's database until every delivery of every accepted message
/// is recorded as a success.
async fn wait_until_all_delivered<'a>(db: &Path, app_id: &str, messages: impl Iterator<Item = &'a String>) {
    let store = open_sqlite(db);
    let app = AppId::parse(app_id).expect("an application id");
    let ids: Vec<MessageId> = messages.map(|id| MessageId::parse(id).expect("a message id")).collect();
    wait_until(DEADLINE, || {
        let (store, app, ids) = (store.clone(), app.clone(), ids.clone());
        async move {
            for msg in &ids {
                match store.list_deliveries(&app, msg).await {
                    Ok(d) if d.iter().all(|d| d.status == DeliveryStatus::Success) => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
}

/// Opens the file the server used and checks that every delivery of every accepted
/// message succeeded and that nothing is left to claim, even a day from now.
async fn assert_queue_drained<'a>(db: &Path, app_id: &str, messages: impl Iterator<Item = &'a String>) {
    let store = open_sqlite(db);
    let app = AppId::parse(app_id).expect("an application id");
    for id in messages {
        let msg = MessageId::parse(id).expect("a message id");
        let deliveries = store.list_deliveries(&app, &msg).await.expect("list deliveries");
        assert_eq!(deliveries.len(), 1, "{id}: one endpoint, one delivery");
        assert!(deliveries.iter().all(|d| d.status == DeliveryStatus::Success), "{id}: {deliveries:?}");
    }
    let later = Utc::now() + TimeDelta::days(1);
    let left = store.claim_due_deliveries(later, 1000, later + TimeDelta::minutes(1)).await.expect("claim");
    assert!(left.is_empty(), "{} deliveries still queued", left.len());
}
