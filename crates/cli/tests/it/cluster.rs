//! Scale-out: three `herald serve` processes on one PostgreSQL schema
//! take messages round-robin; one is SIGKILLed mid-run, and every message any node
//! answered 202 still reaches the receiver once at least, leaving the queue drained.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use herald_core::{AppId, MessageId, model::DeliveryStatus};
use herald_testkit::{Backend, DEADLINE, Receiver, Reply, poll_until, wait_until};

use crate::{
    load::{ADMIN_TOKEN, Producers, app_with_endpoint, tally},
    support::{Server, herald},
};

/// Messages accepted in all.
const MESSAGES: usize = 2_000;
/// Accepted before one node is killed.
const KILL_AT: usize = 700;
const CLIENTS: usize = 6;

fn start(dir: &std::path::Path, database_url: &str) -> Server {
    Server::spawn(
        herald(dir)
            .args(["serve", "--role", "all"])
            .env("HERALD_DATABASE_URL", database_url)
            .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HERALD_ALLOW_CIDRS", "127.0.0.1/32")
            .env("HERALD_STORE__POOL_SIZE", "4")
            .env("HERALD_WORKER__LEASE_MS", "6000")
            .env("HERALD_WORKER__REQUEST_TIMEOUT_MS", "1000"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_lose_nothing_when_one_is_killed() {
    let database = Backend::Postgres.open().await;
    let database_url = database.database_url();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    receiver.respond_with(Reply::ok().after(Duration::from_millis(20)));

    let url = database_url.clone();
    let path = dir.path().to_owned();
    let mut nodes = tokio::task::spawn_blocking(move || (0..3).map(|_| start(&path, &url)).collect::<Vec<_>>())
        .await
        .expect("start three nodes");
    let bases: Vec<String> = nodes.iter().map(Server::base_url).collect();
    let app_id = app_with_endpoint(&bases[0], &receiver).await;

    let producers = Producers::start(CLIENTS, &app_id, bases.clone(), MESSAGES);
    wait_until(DEADLINE, || async { producers.accepted_count() >= KILL_AT }).await;
    nodes.remove(1).kill();
    producers.set_targets(vec![bases[0].clone(), bases[2].clone()]);
    let accepted_at_kill = producers.accepted_count();
    let (accepted, failed) = producers.finish().await;

    let outcome = poll_until(DEADLINE, || {
        let t = tally(&receiver, &accepted);
        async move { t.lost.is_empty().then_some(t) }
    })
    .await;
    // The receiver may hold a message only from the killed node, whose claim stays
    // leased until it expires: wait until a live node has recorded every delivery.
    let store = database.store.clone();
    let app = AppId::parse(&app_id).unwrap();
    let ids: Vec<MessageId> = accepted.values().map(|id| MessageId::parse(id).unwrap()).collect();
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
    for node in nodes {
        assert!(node.terminate(), "SIGTERM is a clean exit");
    }

    println!("accepted: {} ({accepted_at_kill} before the kill); failed requests: {failed}", accepted.len());
    println!("lost: {}", outcome.lost.len());
    println!("duplicates: {}", outcome.duplicates);
    println!("delivered without a 202 (committed as the node died): {}", outcome.unacknowledged);
    assert!(accepted.len() >= MESSAGES);
    assert!(outcome.lost.is_empty(), "lost: {:?}", outcome.lost);

    // Drained: every delivery succeeded and nothing is left to claim, even a day on.
    for id in accepted.values() {
        let deliveries = store.list_deliveries(&app, &MessageId::parse(id).unwrap()).await.unwrap();
        assert!(deliveries.len() == 1 && deliveries[0].status == DeliveryStatus::Success, "{id}: {deliveries:?}");
    }
    let later = Utc::now() + TimeDelta::days(1);
    let left = store.claim_due_deliveries(later, 1000, later + TimeDelta::minutes(1)).await.unwrap();
    assert!(left.is_empty(), "{} deliveries still queued", left.len());
}
