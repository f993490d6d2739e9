//! `herald-bench ingest`: concurrent message creation against one application with one
//! endpoint (the bench's own receiver, so deliveries run as in production).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use hdrhistogram::Histogram;

use crate::{
    api::{Api, message_body},
    server::{Nodes, Receiver, print_latency},
};

#[derive(Args)]
pub struct IngestArgs {
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to send, e.g. 20s or 2m (at most 10m).
    #[arg(long, default_value = "20s", value_parser = crate::parse_run_time)]
    duration: Duration,
    /// Size of each message's payload in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Stop after this many messages even if time remains.
    #[arg(long, default_value_t = 10_000_000)]
    max_messages: u64,
    /// The server's role: `all` delivers alongside ingest, `api` only accepts (the
    /// deliveries stay queued).
    #[arg(long, default_value = "all", value_parser = ["all", "api"])]
    role: String,
    /// Run on a fresh schema of this PostgreSQL server (e.g.
    /// `postgres://postgres@127.0.0.1:5432/test`) instead of a temp SQLite file.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Send no `idempotency-key` header (the official SDKs send one with every POST).
    #[arg(long)]
    no_idempotency_key: bool,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let epoch = Instant::now();
    let nodes = Nodes::start(args.server_bin.clone(), args.postgres.as_deref(), &args.role, 0).await?;
    let server = &nodes.api;
    let receiver = Receiver::start(epoch).await?;
    let api = Api::new(&format!("http://{}", server.addr), &server.token, args.clients)?;
    let url = api.setup(1, &receiver.url()).await?;
    println!(
        "ingest: {}, role {}, {} clients, {}-byte payloads, {:?}, idempotency keys {}",
        if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        args.role,
        args.clients,
        args.payload_bytes,
        args.duration,
        if args.no_idempotency_key { "off" } else { "on" }
    );

    let (hist, errors, elapsed) = load(&api, &url, &args, epoch).await?;
    let accepted = hist.len();
    println!("accepted:   {accepted} messages ({errors} failed requests) in {:.1}s", elapsed.as_secs_f64());
    println!("throughput: {:.0} messages/s", accepted as f64 / elapsed.as_secs_f64());
    print_latency("latency:", &hist);
    println!("delivered:  {} so far (deliveries run alongside)", receiver.received());
    println!("server RSS: peak {:.1} MiB (VmHWM)", server.peak_rss_kib()? as f64 / 1024.0);
    Ok(())
}

async fn load(
    api: &Api,
    url: &str,
    args: &IngestArgs,
    epoch: Instant,
) -> anyhow::Result<(Histogram<u64>, u64, Duration)> {
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = Vec::with_capacity(args.clients);
    for client_no in 0..args.clients {
        let (api, url, sent) = (api.clone(), url.to_owned(), sent.clone());
        let (max, keys, size) = (args.max_messages, !args.no_idempotency_key, args.payload_bytes);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                let key = keys.then(|| format!("bench-{client_no}-{n}"));
                n += 1;
                let t0 = Instant::now();
                if api.post(&url, message_body(size, epoch, None), key).await {
                    hist.saturating_record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
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
    Ok((hist, errors, started.elapsed()))
}
