//! `herald-bench stream`: the live event stream (SSE).
//!
//! Two phases, each on a fresh server: the time from sending a create request to
//! receiving the message on an open stream, at a steady rate; and the server's resident
//! memory added by many idle subscribers (connected, nothing to send).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use clap::Args;
use hdrhistogram::Histogram;

use crate::{
    api::{Api, message_body},
    server::{Nodes, print_latency, sent_us},
};

#[derive(Args)]
pub struct StreamArgs {
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
    /// Messages per second in the latency phase.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// How long the latency phase sends.
    #[arg(long, default_value = "20s", value_parser = crate::parse_run_time)]
    steady: Duration,
    /// Size of each message's payload in bytes.
    #[arg(long, default_value_t = 256)]
    payload_bytes: usize,
    /// Idle subscribers in the memory phase (0 skips it).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Run on a fresh schema of this PostgreSQL server instead of a temp SQLite file.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    println!("stream: {}", if args.postgres.is_some() { "PostgreSQL, one node" } else { "SQLite, one node" });
    if args.rate > 0 {
        latency(&args).await?;
    }
    if args.subscribers > 0 {
        idle_memory(&args).await?;
    }
    Ok(())
}

/// Starts a node and creates an application without endpoints; returns the node, a
/// client, the message URL and the stream URL.
async fn start(args: &StreamArgs, clients: usize) -> anyhow::Result<(Nodes, Api, String, String)> {
    let nodes = Nodes::start(args.server_bin.clone(), args.postgres.as_deref(), "api", 0).await?;
    let api = Api::new(&format!("http://{}", nodes.api.addr), &nodes.api.token, clients)?;
    let msg_url = api.setup(0, "").await?;
    let stream_url = msg_url.strip_suffix("/msg").context("message URL")?.to_owned() + "/events/stream";
    Ok((nodes, api, msg_url, stream_url))
}

/// Opens a stream and checks it answered 200.
async fn subscribe(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<reqwest::Response> {
    let response = http.get(url).bearer_auth(token).send().await.context("opening a stream")?;
    ensure!(response.status() == reqwest::StatusCode::OK, "the stream answered {}", response.status());
    Ok(response)
}

async fn latency(args: &StreamArgs) -> anyhow::Result<()> {
    let (nodes, api, msg_url, stream_url) = start(args, 64).await?;
    let epoch = Instant::now();
    let mut response = subscribe(&reqwest::Client::new(), &stream_url, &nodes.api.token).await?;
    let received = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?));
    let reader = {
        let (received, hist) = (received.clone(), hist.clone());
        tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                pending.extend_from_slice(&chunk);
                // Each event's data line carries the payload's send time; a chunk may
                // hold several lines, or end inside one.
                let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                for line in pending[..complete].split(|b| *b == b'\n').filter(|l| l.starts_with(b"data: ")) {
                    if let Some(sent) = sent_us(line) {
                        received.fetch_add(1, Ordering::Relaxed);
                        hist.lock().expect("latency lock").saturating_record(now.saturating_sub(sent).max(1));
                    }
                }
                pending.drain(..complete);
            }
        })
    };
    let total = args.rate * args.steady.as_secs().max(1);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let (api, url, body) = (api.clone(), msg_url.clone(), message_body(args.payload_bytes, epoch, None));
        tasks.push(tokio::spawn(async move { api.post(&url, body, None).await }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += u64::from(task.await.context("sender task")?);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < accepted {
        ensure!(Instant::now() < deadline, "only {} of {accepted} events arrived", received.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reader.abort();
    println!("steady {} msg/s for {:?}: {accepted} messages streamed", args.rate, args.steady);
    print_latency("create→SSE:", &hist.lock().expect("latency lock"));
    println!("server RSS: {}", nodes.peak_rss_text()?);
    Ok(())
}

async fn idle_memory(args: &StreamArgs) -> anyhow::Result<()> {
    let (nodes, _api, _msg_url, stream_url) = start(args, 1).await?;
    // Warm the server's allocator and the stream code path with one subscriber first.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let warm = subscribe(&http, &stream_url, &nodes.api.token).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = nodes.api.rss_kib()?;
    let mut open = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        open.push(subscribe(&http, &stream_url, &nodes.api.token).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = nodes.api.rss_kib()?;
    let added = after.saturating_sub(before);
    println!(
        "idle subscribers: {} open; server RSS {:.1} MiB -> {:.1} MiB: {:.1} KiB per subscriber",
        open.len(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        added as f64 / args.subscribers as f64
    );
    drop((warm, open));
    Ok(())
}
