//! `herald-bench deliver`: how fast accepted messages reach a receiver on loopback.
//!
//! Three phases, each on a fresh server: delivery throughput with 1 and with 10
//! endpoints per message (messages are queued with a common `deliverAt`, so sending is
//! timed apart from ingest), end-to-end latency at a steady rate, and the server's peak
//! RSS while a backlog of deliveries to a slow receiver is queued.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use clap::Args;

use crate::{
    api::{Api, message_body},
    server::{Nodes, Receiver, print_latency},
};

#[derive(Args)]
pub struct DeliverArgs {
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
    /// Messages for the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Endpoints per message in the throughput phase (comma-separated runs).
    #[arg(long, default_value = "1,10", value_delimiter = ',')]
    endpoints: Vec<usize>,
    /// Messages per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long the latency phase sends.
    #[arg(long, default_value = "20s", value_parser = crate::parse_run_time)]
    steady: Duration,
    /// Deliveries queued in the backlog phase (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    queued: u64,
    /// Size of each message's payload in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Concurrent clients creating messages.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Run on a fresh schema of this PostgreSQL server (e.g.
    /// `postgres://postgres@127.0.0.1:5432/test`) instead of a temp SQLite file; each
    /// phase gets its own schema.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// With `--postgres`: start one `--role api` node that receives the messages plus
    /// this many `--role worker` nodes that deliver them (0: one node in role `all`).
    #[arg(long, default_value_t = 0, requires = "postgres")]
    worker_nodes: usize,
    /// Longest wait for deliveries to arrive in any phase.
    #[arg(long, default_value = "300s", value_parser = crate::parse_run_time)]
    timeout: Duration,
}

pub async fn run(args: DeliverArgs) -> anyhow::Result<()> {
    println!(
        "deliver: {}",
        match (&args.postgres, args.worker_nodes) {
            (None, _) => "SQLite, one node".to_owned(),
            (Some(_), 0) => "PostgreSQL, one node in role all".to_owned(),
            (Some(_), n) => format!("PostgreSQL, one api node and {n} worker node(s)"),
        }
    );
    for &endpoints in &args.endpoints {
        throughput(&args, endpoints).await?;
    }
    if args.rate > 0 {
        steady_latency(&args).await?;
    }
    if args.queued > 0 {
        backlog(&args).await?;
    }
    Ok(())
}

struct Setup {
    nodes: Nodes,
    receiver: Receiver,
    api: Api,
    epoch: Instant,
}

async fn start(args: &DeliverArgs) -> anyhow::Result<Setup> {
    let epoch = Instant::now();
    let role = if args.worker_nodes > 0 { "api" } else { "all" };
    let nodes = Nodes::start(args.server_bin.clone(), args.postgres.as_deref(), role, args.worker_nodes).await?;
    let receiver = Receiver::start(epoch).await?;
    let api = Api::new(&format!("http://{}", nodes.api.addr), &nodes.api.token, args.clients)?;
    Ok(Setup { nodes, receiver, api, epoch })
}

/// Posts `count` messages from `clients` concurrent clients; returns how many were accepted.
async fn post_many(setup: &Setup, url: &str, count: u64, args: &DeliverArgs, deliver_at: Option<&str>) -> u64 {
    let load = Load { clients: args.clients, payload_bytes: args.payload_bytes, epoch: setup.epoch };
    load.post_many(&setup.api, url, count, deliver_at).await
}

/// How a burst of message creates is sent.
#[derive(Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub payload_bytes: usize,
    /// Payloads carry their send time relative to this, for end-to-end latency.
    pub epoch: Instant,
}

impl Load {
    /// Posts `count` messages from `clients` concurrent clients; returns how many were accepted.
    pub async fn post_many(&self, api: &Api, url: &str, count: u64, deliver_at: Option<&str>) -> u64 {
        let next = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..self.clients)
            .map(|_| {
                let (api, url, next, accepted) = (api.clone(), url.to_owned(), next.clone(), accepted.clone());
                let (epoch, size, deliver_at) = (self.epoch, self.payload_bytes, deliver_at.map(str::to_owned));
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        if api.post(&url, message_body(size, epoch, deliver_at.as_deref()), None).await {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        accepted.load(Ordering::Relaxed)
    }

    /// Sends messages at `rate` per second for `duration`, each from its own task so a
    /// slow answer does not hold the next one back; returns how many were accepted.
    pub async fn post_steady(&self, api: &Api, url: &str, rate: u64, duration: Duration) -> anyhow::Result<u64> {
        let total = rate * duration.as_secs().max(1);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(usize::MAX));
        for _ in 0..total {
            ticker.tick().await;
            let (api, url, body) = (api.clone(), url.to_owned(), message_body(self.payload_bytes, self.epoch, None));
            tasks.push(tokio::spawn(async move { api.post(&url, body, None).await }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += u64::from(task.await.context("sender task")?);
        }
        Ok(accepted)
    }
}

/// Waits until the receiver has `want` requests; returns the time of the first and
/// the last arrival as seen by polling every millisecond.
pub async fn wait_for(receiver: &Receiver, want: u64, timeout: Duration) -> anyhow::Result<(Instant, Instant)> {
    let deadline = Instant::now() + timeout;
    let mut first = None;
    loop {
        let got = receiver.received();
        if got > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if got >= want {
            return Ok((first.unwrap_or_else(Instant::now), Instant::now()));
        }
        ensure!(Instant::now() < deadline, "only {got} of {want} deliveries arrived within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn throughput(args: &DeliverArgs, endpoints: usize) -> anyhow::Result<()> {
    let setup = start(args).await?;
    let url = setup.api.setup(endpoints, &setup.receiver.url()).await?;
    // Queue everything for one moment far enough ahead that ingest finishes first.
    let lead = Duration::from_secs(10 + args.messages / 2_000);
    let due = chrono::Utc::now() + lead;
    let due_text = due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ingest_started = Instant::now();
    let accepted = post_many(&setup, &url, args.messages, args, Some(&due_text)).await;
    let ingest = ingest_started.elapsed();
    ensure!(chrono::Utc::now() < due, "ingest took {ingest:?}, longer than the {lead:?} lead; use fewer --messages");
    ensure!(setup.receiver.received() == 0, "deliveries arrived before their deliverAt");
    let want = accepted * endpoints as u64;
    let (first, last) = wait_for(&setup.receiver, want, lead + args.timeout).await?;
    let sending = last.duration_since(first).max(Duration::from_millis(1));
    println!(
        "deliver x{endpoints:<2}: {want} deliveries ({accepted} messages) in {:.2}s from first to last: {:.0} deliveries/s \
         (queued in {:.1}s)",
        sending.as_secs_f64(),
        want as f64 / sending.as_secs_f64(),
        ingest.as_secs_f64()
    );
    Ok(())
}

async fn steady_latency(args: &DeliverArgs) -> anyhow::Result<()> {
    let setup = start(args).await?;
    let url = setup.api.setup(1, &setup.receiver.url()).await?;
    let load = Load { clients: args.clients, payload_bytes: args.payload_bytes, epoch: setup.epoch };
    let accepted = load.post_steady(&setup.api, &url, args.rate, args.steady).await?;
    wait_for(&setup.receiver, accepted, args.timeout).await?;
    println!("steady {} msg/s for {:?}: {accepted} messages delivered", args.rate, args.steady);
    print_latency("end-to-end:", &setup.receiver.take_latency());
    println!("server RSS: {}", setup.nodes.peak_rss_text()?);
    Ok(())
}

async fn backlog(args: &DeliverArgs) -> anyhow::Result<()> {
    let setup = start(args).await?;
    let url = setup.api.setup(1, &setup.receiver.slow_url()).await?;
    let started = Instant::now();
    let accepted = post_many(&setup, &url, args.queued, args, None).await;
    println!(
        "backlog: {accepted} deliveries queued to a receiver answering after 10 s ({:.1}s to accept)",
        started.elapsed().as_secs_f64()
    );
    println!("server RSS: {} with the backlog queued", setup.nodes.peak_rss_text()?);
    Ok(())
}
