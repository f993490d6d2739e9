//! `herald-bench`: load generators that print figures (never assert on them).
//!
//! `herald-bench ingest` measures message ingest: it creates one application with one
//! endpoint, then `--clients` concurrent clients POST messages with `--payload-bytes`
//! payloads for `--duration`, and prints messages/s, p50/p99 latency and the server's
//! peak RSS. By default it starts its own server, the release `herald` binary next to
//! this one, as a child process on a temp SQLite file; `--url` and `--token` point it
//! at a running server instead (loopback only).

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use herald_core::retry::parse_duration;
use serde_json::json;

/// Longest run accepted, so a typo cannot start an endless load.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// How long the child server gets to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(name = "herald-bench", about = "Load generators for Herald; they print figures.")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Concurrent message creation against one application with one endpoint.
    Ingest(IngestArgs),
}

#[derive(Args)]
struct IngestArgs {
    /// A running server on loopback (e.g. http://127.0.0.1:8071). Without it, the
    /// bench starts `herald serve` itself on a temp SQLite file.
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// Admin token for --url.
    #[arg(long)]
    token: Option<String>,
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to send, e.g. 20s or 2m (at most 10m).
    #[arg(long, default_value = "20s", value_parser = parse_run_time)]
    duration: Duration,
    /// Size of each message's payload in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Stop after this many messages even if time remains.
    #[arg(long, default_value_t = 10_000_000)]
    max_messages: u64,
    /// Send no `idempotency-key` header (the official SDKs send one with every POST).
    #[arg(long)]
    no_idempotency_key: bool,
}

fn parse_run_time(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!("must be between 1ms and {}s", MAX_DURATION.as_secs()));
    }
    Ok(d)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::Ingest(args) => ingest(args).await,
    }
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    let (server, base_url, token) = match (&args.url, &args.token) {
        (Some(url), Some(token)) => {
            ensure_loopback(url)?;
            (None, url.trim_end_matches('/').to_owned(), token.clone())
        }
        _ => {
            let server = ChildServer::start(args.server_bin.clone())?;
            let url = format!("http://{}", server.addr);
            let token = server.token.clone();
            (Some(server), url, token)
        }
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
            h
        })
        .build()?;
    let app_id = setup(&client, &base_url).await?;
    let message_url = format!("{base_url}/api/v1/app/{app_id}/msg");
    let body = message_body(args.payload_bytes);

    println!(
        "ingest: {} clients, {}-byte payloads, {:?}, server {}",
        args.clients,
        args.payload_bytes,
        args.duration,
        if server.is_some() { "child process (SQLite temp file)" } else { base_url.as_str() }
    );
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = Vec::with_capacity(args.clients);
    for client_no in 0..args.clients {
        let (client, url, body, sent) = (client.clone(), message_url.clone(), body.clone(), sent.clone());
        let (max, keys) = (args.max_messages, !args.no_idempotency_key);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                let mut request = client.post(&url).header("content-type", "application/json").body(body.clone());
                if keys {
                    request = request.header("idempotency-key", format!("bench-{client_no}-{n}"));
                }
                n += 1;
                let t0 = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => response.status() == reqwest::StatusCode::ACCEPTED,
                    Err(_) => false,
                };
                if ok {
                    let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                    hist.saturating_record(micros.max(1));
                } else {
                    errors += 1;
                }
            }
            (hist, errors)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await?;
        hist.add(h)?;
        errors += e;
    }
    let elapsed = started.elapsed();

    let accepted = hist.len();
    println!("accepted:   {accepted} messages ({errors} failed requests) in {:.1}s", elapsed.as_secs_f64());
    println!("throughput: {:.0} messages/s", accepted as f64 / elapsed.as_secs_f64());
    println!(
        "latency:    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    match &server {
        Some(s) => match s.peak_rss_kib() {
            Ok(kib) => println!("server RSS: peak {:.1} MiB (VmHWM)", kib as f64 / 1024.0),
            Err(e) => println!("server RSS: unavailable ({e:#})"),
        },
        None => println!("server RSS: n/a (external server; run without --url to measure it)"),
    }
    drop(server);
    Ok(())
}

/// Creates the application and its one endpoint; returns the application id.
async fn setup(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let app: serde_json::Value = client
        .post(format!("{base}/api/v1/app"))
        .json(&json!({ "name": "bench" }))
        .send()
        .await
        .context("creating the application")?
        .error_for_status()
        .context("creating the application")?
        .json()
        .await?;
    let app_id = app["id"].as_str().context("application id in the response")?.to_owned();
    client
        .post(format!("{base}/api/v1/app/{app_id}/endpoint"))
        .json(&json!({ "url": "https://example.com/hook", "description": "bench" }))
        .send()
        .await
        .context("creating the endpoint")?
        .error_for_status()
        .context("creating the endpoint")?;
    Ok(app_id)
}

/// A message whose `payload` serialises to about `payload_bytes` bytes.
fn message_body(payload_bytes: usize) -> bytes::Bytes {
    let filler = "x".repeat(payload_bytes.saturating_sub(r#"{"data":""}"#.len()));
    let body = json!({ "eventType": "bench.event", "payload": { "data": filler } });
    bytes::Bytes::from(serde_json::to_vec(&body).expect("JSON value serialises"))
}

fn ensure_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("invalid --url {url:?}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if parsed.scheme() != "http" || !loopback {
        bail!("--url must be an http:// URL on loopback (127.0.0.1, ::1 or localhost)");
    }
    Ok(())
}

/// `herald serve` as a child process on a temp database, killed on drop.
struct ChildServer {
    child: Child,
    addr: SocketAddr,
    token: String,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    fn start(bin: Option<PathBuf>) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(bin) => bin,
            None => std::env::current_exe()?.with_file_name("herald"),
        };
        ensure!(
            bin.exists(),
            "{} not found: build it with `cargo build --release -p herald-cli`, or pass --server-bin",
            bin.display()
        );
        let dir = tempfile::tempdir()?;
        let token = format!("bench_{:032x}", rand::random::<u128>());
        let mut child = Command::new(&bin)
            .arg("serve")
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_DATABASE_URL", format!("sqlite://{}", dir.path().join("bench.db").display()))
            .env("HERALD_ADMIN_TOKEN", &token)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;

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
                bail!("{} did not report its address within {STARTUP_TIMEOUT:?}", bin.display());
            };
            if let Some(addr) = line.strip_prefix("Herald listening on http://") {
                break addr.trim().parse().context("parsing the server address")?;
            }
        };
        Ok(Self { child, addr, token, _dir: dir })
    }

    /// Peak resident set size of the child so far (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM line")?;
        let kib = line.split_whitespace().nth(1).context("malformed VmHWM line")?;
        Ok(kib.parse()?)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_about_the_requested_size() {
        let body: serde_json::Value = serde_json::from_slice(&message_body(1024)).unwrap();
        assert_eq!(serde_json::to_vec(&body["payload"]).unwrap().len(), 1024);
    }

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert!(ensure_loopback("http://127.0.0.1:8071").is_ok());
        assert!(ensure_loopback("http://localhost:8071/").is_ok());
        assert!(ensure_loopback("http://10.0.0.1:8071").is_err());
        assert!(ensure_loopback("https://127.0.0.1").is_err());
    }

    #[test]
    fn run_time_is_bounded() {
        assert_eq!(parse_run_time("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_run_time("0s").is_err());
        assert!(parse_run_time("2h").is_err());
    }
}
