//! `herald-bench receive`: a provider posting Stripe-signed events to one ingest
//! source URL, which forwards each to the bench's receiver.
//!
//! Two phases on one server: a steady rate (1,000 requests/s by default), then as fast
//! as `--clients` concurrent clients go. Each prints the requests accepted per second,
//! the time until the provider got its 2xx (p50/p99), and the time until the receiver
//! got the forwarded request (from the `sent_us` stamp the event body carries, which
//! Herald forwards byte for byte). With `--forged`, a last phase floods the URL with
//! forged signatures, which the source must refuse without a store write each.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use clap::Args;
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::{
    api::Api,
    server::{Nodes, Receiver, print_latency},
};

/// The Stripe endpoint secret the bench signs with (any string works as the HMAC key).
const SECRET: &str = "whsec_bench_stripe_secret";

#[derive(Args)]
pub struct ReceiveArgs {
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
    /// Requests per second in the steady phase (0 skips it).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long the steady phase sends.
    #[arg(long, default_value = "20s", value_parser = crate::parse_run_time)]
    steady: Duration,
    /// Concurrent clients in the max-rate phase (0 skips it).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long the max-rate phase sends.
    #[arg(long, default_value = "20s", value_parser = crate::parse_run_time)]
    duration: Duration,
    /// Size of each event body in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Run on a fresh schema of this PostgreSQL server instead of a temp SQLite file.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// After the other phases, post forged signatures from `--clients` clients for this long.
    #[arg(long, value_parser = crate::parse_run_time)]
    forged: Option<Duration>,
    /// Longest wait for the forwarded requests to arrive after a phase.
    #[arg(long, default_value = "300s", value_parser = crate::parse_run_time)]
    timeout: Duration,
}

/// The simulated provider: signs fresh events and posts them to the ingest URL.
#[derive(Clone)]
struct Provider {
    api: Api,
    url: String,
    epoch: Instant,
    size: usize,
    next_event: Arc<AtomicU64>,
}

impl Provider {
    /// A Stripe event of about `size` bytes with a fresh id, and its `Stripe-Signature`.
    fn signed_event(&self) -> (String, String) {
        let n = self.next_event.fetch_add(1, Ordering::Relaxed);
        let sent = self.epoch.elapsed().as_micros();
        let head = format!(r#"{{"sent_us":{sent},"id":"evt_bench_{n}","object":"event","data":""}}"#);
        let filler = "x".repeat(self.size.saturating_sub(head.len()));
        let body = format!(r#"{{"sent_us":{sent},"id":"evt_bench_{n}","object":"event","data":"{filler}"}}"#);
        let t = chrono::Utc::now().timestamp();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("{t}.{body}").as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        (body, format!("t={t},v1={hex}"))
    }

    /// Posts one fresh event signed with the wrong secret; the time to a 401 in
    /// microseconds, or `None` for any other outcome.
    async fn post_forged(&self) -> Option<u64> {
        let (body, signature) = self.signed_event();
        // Same length and form, wrong HMAC: the verifier does all its work and refuses.
        let forged = signature.replace("v1=", "v1=0").chars().take(signature.len()).collect();
        let t0 = Instant::now();
        let status = self.api.post_signed_status(&self.url, body, forged).await;
        (status == Some(reqwest::StatusCode::UNAUTHORIZED))
            .then(|| u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1))
    }

    /// Posts one fresh event; the time to the 2xx in microseconds, or `None` on failure.
    async fn post_one(&self) -> Option<u64> {
        let (body, signature) = self.signed_event();
        let t0 = Instant::now();
        let ok = self.api.post_signed(&self.url, body, signature).await;
        ok.then(|| u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1))
    }
}

pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let nodes = Nodes::start(args.server_bin.clone(), args.postgres.as_deref(), "all", 0).await?;
    let receiver = Receiver::start(epoch).await?;
    let api = Api::new(&format!("http://{}", nodes.api.addr), &nodes.api.token, args.clients.max(64))?;
    let url = api.setup_source(SECRET, &receiver.url()).await?;
    println!(
        "receive: {}, Stripe-signed {}-byte events to one source with one ingest endpoint",
        if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        args.payload_bytes
    );
    let provider = Provider { api, url, epoch, size: args.payload_bytes, next_event: Arc::new(AtomicU64::new(0)) };
    if args.rate > 0 {
        steady(&provider, &receiver, &args).await?;
    }
    if args.clients > 0 {
        max_rate(&provider, &receiver, &args).await?;
    }
    if let Some(duration) = args.forged {
        forged(&provider, args.clients.max(1), duration).await?;
    }
    println!("server RSS: {}", nodes.peak_rss_text()?);
    Ok(())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Waits until the receiver holds `want` requests in total.
async fn forwarded(receiver: &Receiver, want: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while receiver.received() < want {
        ensure!(
            Instant::now() < deadline,
            "only {} of {want} events were forwarded in {timeout:?}",
            receiver.received()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Prints one phase's figures once every accepted event has been forwarded.
async fn report(
    label: String,
    receiver: &Receiver,
    before: u64,
    to_2xx: &Histogram<u64>,
    failed: u64,
    elapsed: Duration,
    timeout: Duration,
) -> anyhow::Result<()> {
    let accepted = to_2xx.len();
    forwarded(receiver, before + accepted, timeout).await?;
    println!(
        "{label}: {accepted} accepted ({failed} failed), {:.0} accepted/s",
        accepted as f64 / elapsed.as_secs_f64()
    );
    print_latency("to 2xx:", to_2xx);
    print_latency("forwarded:", &receiver.take_latency());
    Ok(())
}

async fn steady(provider: &Provider, receiver: &Receiver, args: &ReceiveArgs) -> anyhow::Result<()> {
    let before = receiver.received();
    receiver.take_latency();
    let total = args.rate * args.steady.as_secs().max(1);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        ticker.tick().await;
        let provider = provider.clone();
        tasks.push(tokio::spawn(async move { provider.post_one().await }));
    }
    let mut to_2xx = histogram();
    let mut failed = 0u64;
    for task in tasks {
        match task.await.context("sender task")? {
            Some(us) => to_2xx.saturating_record(us),
            None => failed += 1,
        }
    }
    let label = format!("steady {} req/s for {:?}", args.rate, args.steady);
    report(label, receiver, before, &to_2xx, failed, started.elapsed(), args.timeout).await
}

async fn max_rate(provider: &Provider, receiver: &Receiver, args: &ReceiveArgs) -> anyhow::Result<()> {
    let before = receiver.received();
    receiver.take_latency();
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let mut to_2xx = histogram();
                let mut failed = 0u64;
                while Instant::now() < deadline {
                    match provider.post_one().await {
                        Some(us) => to_2xx.saturating_record(us),
                        None => failed += 1,
                    }
                }
                (to_2xx, failed)
            })
        })
        .collect();
    let mut to_2xx = histogram();
    let mut failed = 0u64;
    for task in tasks {
        let (h, f) = task.await.context("sender task")?;
        to_2xx.add(h)?;
        failed += f;
    }
    let label = format!("max rate, {} clients for {:?}", args.clients, args.duration);
    report(label, receiver, before, &to_2xx, failed, started.elapsed(), args.timeout).await
}

/// `clients` clients posting forged signatures for `duration`: how fast the source refuses.
async fn forged(provider: &Provider, clients: usize, duration: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let mut to_401 = histogram();
                let mut other = 0u64;
                while Instant::now() < deadline {
                    match provider.post_forged().await {
                        Some(us) => to_401.saturating_record(us),
                        None => other += 1,
                    }
                }
                (to_401, other)
            })
        })
        .collect();
    let mut to_401 = histogram();
    let mut other = 0u64;
    for task in tasks {
        let (h, o) = task.await.context("sender task")?;
        to_401.add(h)?;
        other += o;
    }
    let refused = to_401.len();
    println!(
        "forged flood, {clients} clients for {duration:?}: {refused} refused with 401 ({other} other), {:.0} refused/s",
        refused as f64 / started.elapsed().as_secs_f64()
    );
    print_latency("to 401:", &to_401);
    Ok(())
}
