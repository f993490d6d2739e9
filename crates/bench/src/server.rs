//! `herald serve` nodes as child processes on a temp SQLite file or a fresh PostgreSQL
//! schema, and the in-process receiver that webhooks are delivered to. Everything
//! listens on 127.0.0.1 only.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use axum::{body::Bytes, extract::State, http::StatusCode, routing::post};
use hdrhistogram::Histogram;

use crate::postgres::BenchSchema;

/// How long `/slow` takes to answer: a receiver that keeps a backlog queued.
const SLOW_ANSWER: Duration = Duration::from_secs(10);
/// How long the child server gets to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the nodes keep their data: a temp SQLite file, or a fresh PostgreSQL schema.
enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(BenchSchema),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("bench.db").display()),
            Self::Postgres(schema) => schema.database_url(),
        }
    }
}

/// The Herald nodes of one bench phase on one database: a node taking the API
/// traffic, plus any worker nodes that do the delivering.
pub struct Nodes {
    /// The node the bench sends requests to.
    pub api: ChildServer,
    /// `--role worker` nodes on the same database.
    pub workers: Vec<ChildServer>,
    // Declared last: the database is dropped after every node has been stopped.
    _database: Database,
}

impl Nodes {
    /// Starts one node in `role` and then `worker_nodes` worker nodes, on a temp SQLite
    /// file, or on a fresh schema of the PostgreSQL server at `postgres`.
    pub async fn start(
        bin: Option<PathBuf>,
        postgres: Option<&str>,
        role: &str,
        worker_nodes: usize,
    ) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin,
            None => std::env::current_exe()?.with_file_name("herald"),
        };
        ensure!(
            bin.exists(),
            "{} not found: build it with `cargo build --release -p herald-cli`, or pass --server-bin",
            bin.display()
        );
        let database = match postgres {
            Some(url) => Database::Postgres(BenchSchema::create(url).await?),
            None => {
                ensure!(worker_nodes == 0, "worker nodes share a database: they need --postgres");
                Database::Sqlite(tempfile::tempdir()?)
            }
        };
        let token = format!("bench_{:032x}", rand::random::<u128>());
        // One after the other: the first node creates the schema, the others find it.
        let api = ChildServer::start(&bin, role, &database.url(), &token)?;
        let workers = (0..worker_nodes)
            .map(|_| ChildServer::start(&bin, "worker", &database.url(), &token))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { api, workers, _database: database })
    }

    /// Peak resident set size of every node, in MiB, for one line of output.
    pub fn peak_rss_text(&self) -> anyhow::Result<String> {
        let mut text = format!("peak {:.1} MiB (VmHWM)", self.api.peak_rss_kib()? as f64 / 1024.0);
        for worker in &self.workers {
            text.push_str(&format!(", worker node {:.1} MiB", worker.peak_rss_kib()? as f64 / 1024.0));
        }
        Ok(text)
    }
}

/// `herald serve` as a child process, killed on drop.
pub struct ChildServer {
    child: Child,
    pub addr: SocketAddr,
    pub token: String,
}

impl ChildServer {
    /// Starts `bin` in `role` (`all`, `api`, `worker`) on `database_url`, with loopback
    /// delivery allowed so webhooks can reach the bench's own receiver.
    fn start(bin: &Path, role: &str, database_url: &str, token: &str) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_DATABASE_URL", database_url)
            .env("HERALD_ADMIN_TOKEN", token)
            .env("HERALD_ALLOW_CIDRS", "127.0.0.1/32")
            .env("HERALD_ROLE", role)
            // The receive bench measures the path at full speed from one provider; the
            // per-source limit (1,000/s by default) would make its max-rate phase a 429 count.
            .env("HERALD_INGEST_RATE_LIMIT", "off")
            .env("RUST_LOG", "warn");
        Self::spawn(command, token)
    }

    /// Starts this bench binary's own `forwarder` (the no-storage yardstick).
    pub fn start_forwarder() -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("forwarder");
        Self::spawn(command, "forwarder-takes-any-token")
    }

    /// Runs `command` and waits for the `… listening on http://ADDR` line it prints.
    fn spawn(mut command: Command, token: &str) -> anyhow::Result<Self> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {program}"))?;

        // Read stdout on a thread so the wait is bounded by a deadline.
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{program} did not report its address within {STARTUP_TIMEOUT:?}");
            };
            if let Some((_, addr)) = line.split_once(" listening on http://") {
                break addr.trim().parse().context("parsing the server address")?;
            }
        };
        Ok(Self { child, addr, token: token.to_owned() })
    }

    /// CPU time the child has used so far, user and system, over all its threads.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // The command name (field 2) may hold spaces; the fields after its `)` do not.
        let rest = stat.rsplit_once(')').context("malformed stat line")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 =
            fields.get(11..13).context("short stat line")?.iter().map(|f| f.parse::<u64>()).sum::<Result<_, _>>()?;
        Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64))
    }

    /// Peak resident set size of the child so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident set size of the child now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} line"))?;
        let kib = line.split_whitespace().nth(1).with_context(|| format!("malformed {field} line"))?;
        Ok(kib.parse()?)
    }
}

/// The kernel's clock tick for `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts deliveries and, for payloads carrying `"sent_us"` (microseconds since
/// `epoch`), the end-to-end latency from create request to receipt.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

struct ReceiverState {
    epoch: Instant,
    received: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl Receiver {
    /// Starts the receiver on 127.0.0.1:0; it answers 200 at once.
    pub async fn start(epoch: Instant) -> anyhow::Result<Self> {
        let state = Arc::new(ReceiverState {
            epoch,
            received: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        });
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .route("/slow", post(|| async { tokio::time::sleep(SLOW_ANSWER).await }))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, state })
    }

    /// The URL endpoints point at; it answers 200 at once.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// A URL that answers only after 10 s, so deliveries pile up.
    pub fn slow_url(&self) -> String {
        format!("http://{}/slow", self.addr)
    }

    /// Requests received so far.
    pub fn received(&self) -> u64 {
        self.state.received.load(Ordering::Relaxed)
    }

    /// Takes the latency histogram recorded so far, leaving an empty one.
    pub fn take_latency(&self) -> Histogram<u64> {
        let mut hist = self.state.latency.lock().expect("latency lock");
        let out = hist.clone();
        hist.reset();
        out
    }
}

async fn receive(State(state): State<Arc<ReceiverState>>, body: Bytes) -> StatusCode {
    state.received.fetch_add(1, Ordering::Relaxed);
    if let Some(sent) = sent_us(&body) {
        let now = u64::try_from(state.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        state.latency.lock().expect("latency lock").saturating_record(now.saturating_sub(sent).max(1));
    }
    StatusCode::OK
}

/// Reads `"sent_us":N` from the front of a bench payload without parsing the rest.
pub fn sent_us(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sent_us\":";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = body[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[start..start + digits]).ok()?.parse().ok()
}

/// Prints p50/p99/max of a histogram in milliseconds.
pub fn print_latency(label: &str, hist: &Histogram<u64>) {
    println!(
        "{label:<12}p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        hist.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_is_read_from_the_payload() {
        assert_eq!(sent_us(br#"{"sent_us":1234,"data":"x"}"#), Some(1234));
        assert_eq!(sent_us(br#"{"data":"x"}"#), None);
    }
}
