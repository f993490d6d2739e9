//! Database outage: a private PostgreSQL instance, started by the test
//! with `initdb` and `pg_ctl` on a free port (the shared server stays untouched), is
//! stopped under a running node. Requests in the outage get a prompt 503 in the Svix
//! error shape (no hang, no 202); once PostgreSQL is back the node recovers by itself,
//! accepting and delivering again, and every message answered 202 reaches the receiver.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use herald_testkit::{DEADLINE, Receiver, Reply, poll_until};
use serde_json::json;

use crate::{
    load::{ADMIN_TOKEN, app_with_endpoint, client, tally},
    support::{Server, herald},
};

/// Where the installed server's tools are, unless `HERALD_TEST_PG_BIN` says otherwise.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Messages accepted before the outage, and after recovery.
const BEFORE: u64 = 100;
const AFTER: u64 = 100;
/// Requests sent while PostgreSQL is down.
const DURING: u64 = 5;

/// A PostgreSQL instance in a temp dir, on a port of its own; stopped on drop, also
/// when the test fails.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Creates a cluster with trust auth for `postgres` and starts it.
    fn start_new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            let chowned = Command::new("chown").arg("postgres").arg(dir.path()).status().expect("run chown");
            assert!(chowned.success(), "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        run(pg_tool("initdb").arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "--no-sync"]));
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let pg = Self { dir, port };
        pg.start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL of the cluster's default database.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        run(pg_tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"]));
    }

    /// Stops the server with `mode` (`fast`, `immediate`) and waits until it is down.
    fn stop(&self, mode: &str) {
        run(pg_tool("pg_ctl").arg("-D").arg(self.data()).args(["-m", mode, "-w", "-t", "60", "stop"]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped is fine: this only makes sure nothing outlives the test.
        let _ = pg_tool("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A PostgreSQL tool, run as `postgres` when the test runs as root.
fn pg_tool(name: &str) -> Command {
    let bin = Path::new(&std::env::var("HERALD_TEST_PG_BIN").unwrap_or_else(|_| PG_BIN.to_owned())).join(name);
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin);
        cmd
    } else {
        Command::new(bin)
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the node answered one message create.
#[derive(Debug, PartialEq)]
enum Answer {
    Accepted(String),
    Unavailable,
}

/// Posts message `n`. The client gives up after 10 s, so a hang fails here; any
/// answer other than 202, or 503 with a Svix error body, fails too.
async fn post(http: &reqwest::Client, base: &str, app_id: &str, n: u64) -> Answer {
    let body = json!({"eventType": "outage.test", "payload": {"n": n}});
    let response = http
        .post(format!("{base}/api/v1/app/{app_id}/msg"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("message {n} got no answer within the client timeout: {e}"));
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_else(|e| panic!("message {n}: a JSON body: {e}"));
    match status.as_u16() {
        202 => Answer::Accepted(body["id"].as_str().expect("a message id").to_owned()),
        503 => {
            assert!(body["code"].is_string() && body["detail"].is_string(), "503 body not in the Svix shape: {body}");
            Answer::Unavailable
        }
        other => panic!("message {n} answered {other}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_answers_503_then_recovers_and_loses_nothing() {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start_new).await.expect("start PostgreSQL");
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    // Slow enough that deliveries are still queued or in flight when the database stops.
    receiver.respond_with(Reply::ok().after(Duration::from_millis(50)));
    let (path, url) = (dir.path().to_owned(), pg.url());
    let node = tokio::task::spawn_blocking(move || {
        Server::spawn(
            herald(&path)
                .args(["serve", "--role", "all"])
                .env("HERALD_DATABASE_URL", url)
                .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("HERALD_ALLOW_CIDRS", "127.0.0.1/32")
                .env("HERALD_STORE__ACQUIRE_TIMEOUT_MS", "2000")
                .env("HERALD_WORKER__LEASE_MS", "6000")
                .env("HERALD_WORKER__REQUEST_TIMEOUT_MS", "1000"),
        )
    })
    .await
    .expect("start herald");
    let base = node.base_url();
    let app_id = app_with_endpoint(&base, &receiver).await;
    let http = client();
    let mut accepted = HashMap::new();

    for n in 0..BEFORE {
        match post(&http, &base, &app_id, n).await {
            Answer::Accepted(id) => accepted.insert(n, id),
            Answer::Unavailable => panic!("message {n} answered 503 with the database up"),
        };
    }

    let stopping = tokio::task::spawn_blocking(move || {
        pg.stop("fast");
        pg
    });
    let pg = stopping.await.expect("stop PostgreSQL");
    for n in BEFORE..BEFORE + DURING {
        assert_eq!(post(&http, &base, &app_id, n).await, Answer::Unavailable, "message {n} with the database down");
    }

    let pg = tokio::task::spawn_blocking(move || {
        pg.start();
        pg
    })
    .await
    .expect("start PostgreSQL again");
    // The node reconnects by itself; until it has, 503 is still the answer.
    let recovery_deadline = Instant::now() + DEADLINE;
    let mut n = BEFORE + DURING;
    while accepted.len() < (BEFORE + AFTER) as usize {
        match post(&http, &base, &app_id, n).await {
            Answer::Accepted(id) => {
                accepted.insert(n, id);
            }
            Answer::Unavailable => {
                assert!(Instant::now() < recovery_deadline, "still 503 {DEADLINE:?} after PostgreSQL came back");
                // A retry pace, not synchronisation: the loop ends on the first 202s.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        n += 1;
    }

    let outcome = poll_until(DEADLINE, || {
        let t = tally(&receiver, &accepted);
        async move { t.lost.is_empty().then_some(t) }
    })
    .await;
    println!(
        "accepted: {}; lost: {}; duplicates: {}; delivered after a 503: {}",
        accepted.len(),
        outcome.lost.len(),
        outcome.duplicates,
        outcome.unacknowledged
    );
    assert!(node.terminate(), "SIGTERM is a clean exit");
    drop(pg);
}
