//! `herald-bench compare`: the same scenarios against the no-storage forwarder and
//! Herald (SQLite, and PostgreSQL with `--postgres`) in one run, printed side by side
//! with each figure's ratio to the forwarder's. On a shared machine absolute figures
//! move from run to run; ratios measured in one run are what compare.
//!
//! Scenarios, each on a fresh server and receiver:
//! - **ingest**: `--messages` creates from `--clients` clients to one endpoint, sent as
//!   fast as they are answered: accepted/s, deliveries/s (first create to last receipt),
//!   and create-to-receipt p99;
//! - **fan-out**: `--fanout-messages` creates to `--fanout-endpoints` endpoints:
//!   deliveries/s;
//! - **steady**: `--rate` creates per second for `--steady`: create-to-receipt p50/p99
//!   and the server's CPU time per message (its own process only: PostgreSQL's work is
//!   not in it).
//!
//! `--json FILE` writes the figures for scripts (plots in BENCHMARKS.md).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::{
    api::Api,
    deliver::{Load, wait_for},
    server::{ChildServer, Nodes, Receiver},
};

#[derive(Args)]
pub struct CompareArgs {
    /// The `herald` binary to start [default: `herald` next to this binary].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Also run Herald on a fresh schema of this PostgreSQL server (e.g.
    /// `postgres://postgres@127.0.0.1:5432/test`).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Messages in the ingest scenario.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Messages in the fan-out scenario.
    #[arg(long, default_value_t = 5_000)]
    fanout_messages: u64,
    /// Endpoints per message in the fan-out scenario.
    #[arg(long, default_value_t = 10)]
    fanout_endpoints: usize,
    /// Messages per second in the steady scenario (0 skips it).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long the steady scenario sends.
    #[arg(long, default_value = "10s", value_parser = crate::parse_run_time)]
    steady: Duration,
    /// Concurrent clients (requests in flight) in the ingest and fan-out scenarios.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Size of each message's payload in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Longest wait for deliveries to arrive after a scenario's sending.
    #[arg(long, default_value = "300s", value_parser = crate::parse_run_time)]
    timeout: Duration,
    /// Write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// What a scenario runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Forwarder,
    Sqlite,
    Postgres,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Forwarder => "forwarder",
            Self::Sqlite => "Herald SQLite",
            Self::Postgres => "Herald PostgreSQL",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Forwarder => "forwarder",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A running target: the forwarder, or Herald nodes with their database.
enum Running {
    Forwarder(ChildServer),
    Herald(Nodes),
}

impl Running {
    async fn start(target: Target, args: &CompareArgs) -> anyhow::Result<Self> {
        if target == Target::Forwarder {
            return Ok(Self::Forwarder(ChildServer::start_forwarder()?));
        }
        let postgres = args.postgres.as_deref().filter(|_| target == Target::Postgres);
        Ok(Self::Herald(Nodes::start(args.server_bin.clone(), postgres, "all", 0).await?))
    }

    fn server(&self) -> &ChildServer {
        match self {
            Self::Forwarder(server) => server,
            Self::Herald(nodes) => &nodes.api,
        }
    }
}

/// One scenario's figures for one target, named as they are printed and written.
type Figures = Vec<(&'static str, f64)>;

pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let mut targets = vec![Target::Forwarder, Target::Sqlite];
    if args.postgres.is_some() {
        targets.push(Target::Postgres);
    }
    println!(
        "compare: {} clients, {}-byte payloads; targets: {}",
        args.clients,
        args.payload_bytes,
        targets.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
    );

    let mut report = serde_json::Map::new();
    let scenarios: [(&str, String); 3] = [
        ("ingest", format!("ingest, {} messages, 1 endpoint", args.messages)),
        ("fanout", format!("fan-out, {} messages x {} endpoints", args.fanout_messages, args.fanout_endpoints)),
        ("steady", format!("steady {} msg/s for {:?}", args.rate, args.steady)),
    ];
    for (key, title) in scenarios {
        if key == "steady" && args.rate == 0 {
            continue;
        }
        let mut rows = Vec::new();
        for &target in &targets {
            let figures = match key {
                "ingest" => ingest(target, &args).await,
                "fanout" => fanout(target, &args).await,
                _ => steady(target, &args).await,
            }
            .with_context(|| format!("{title} on {}", target.name()))?;
            rows.push((target, figures));
        }
        print_table(&title, &rows);
        report.insert(key.to_owned(), to_json(&rows));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&serde_json::Value::Object(report))?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// A fresh target, a receiver and an application with `endpoints` endpoints on it.
async fn prepare(
    target: Target,
    args: &CompareArgs,
    endpoints: usize,
) -> anyhow::Result<(Running, Receiver, Api, String, Load)> {
    let epoch = Instant::now();
    let running = Running::start(target, args).await?;
    let receiver = Receiver::start(epoch).await?;
    let server = running.server();
    let api = Api::new(&format!("http://{}", server.addr), &server.token, args.clients)?;
    let url = api.setup(endpoints, &receiver.url()).await?;
    let load = Load { clients: args.clients, payload_bytes: args.payload_bytes, epoch };
    Ok((running, receiver, api, url, load))
}

fn per_second(count: u64, took: Duration) -> f64 {
    count as f64 / took.max(Duration::from_millis(1)).as_secs_f64()
}

fn millis(hist: &hdrhistogram::Histogram<u64>, quantile: f64) -> f64 {
    hist.value_at_quantile(quantile) as f64 / 1000.0
}

async fn ingest(target: Target, args: &CompareArgs) -> anyhow::Result<Figures> {
    let (_running, receiver, api, url, load) = prepare(target, args, 1).await?;
    let started = Instant::now();
    let accepted = load.post_many(&api, &url, args.messages, None).await;
    let accepting = started.elapsed();
    let (_, last) = wait_for(&receiver, accepted, args.timeout).await?;
    let latency = receiver.take_latency();
    Ok(vec![
        ("accepted/s", per_second(accepted, accepting)),
        ("deliveries/s", per_second(accepted, last.duration_since(started))),
        ("e2e p99 ms", millis(&latency, 0.99)),
    ])
}

async fn fanout(target: Target, args: &CompareArgs) -> anyhow::Result<Figures> {
    let (_running, receiver, api, url, load) = prepare(target, args, args.fanout_endpoints).await?;
    let started = Instant::now();
    let accepted = load.post_many(&api, &url, args.fanout_messages, None).await;
    let want = accepted * args.fanout_endpoints as u64;
    let (_, last) = wait_for(&receiver, want, args.timeout).await?;
    Ok(vec![("deliveries/s", per_second(want, last.duration_since(started)))])
}

async fn steady(target: Target, args: &CompareArgs) -> anyhow::Result<Figures> {
    let (running, receiver, api, url, load) = prepare(target, args, 1).await?;
    let cpu_before = running.server().cpu_time()?;
    let accepted = load.post_steady(&api, &url, args.rate, args.steady).await?;
    wait_for(&receiver, accepted, args.timeout).await?;
    let cpu = running.server().cpu_time()?.saturating_sub(cpu_before);
    let latency = receiver.take_latency();
    Ok(vec![
        ("e2e p50 ms", millis(&latency, 0.50)),
        ("e2e p99 ms", millis(&latency, 0.99)),
        ("CPU ms/msg", cpu.as_secs_f64() * 1000.0 / accepted.max(1) as f64),
    ])
}

/// Prints a scenario's figures, one line per figure, each Herald value with its ratio
/// to the forwarder's value of the same run.
fn print_table(title: &str, rows: &[(Target, Figures)]) {
    println!("\n{title}");
    let mut header = format!("  {:<14}", "");
    for (target, _) in rows {
        header.push_str(&format!("{:>26}", target.name()));
    }
    println!("{header}");
    let Some((_, baseline)) = rows.iter().find(|(t, _)| *t == Target::Forwarder) else { return };
    for (i, (name, base)) in baseline.iter().enumerate() {
        let mut line = format!("  {name:<14}");
        for (target, figures) in rows {
            let value = figures[i].1;
            let cell = if *target == Target::Forwarder || *base == 0.0 {
                format_value(value)
            } else {
                format!("{} ({:.2}x)", format_value(value), value / base)
            };
            line.push_str(&format!("{cell:>26}"));
        }
        println!("{line}");
    }
}

fn format_value(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.2}") }
}

fn to_json(rows: &[(Target, Figures)]) -> serde_json::Value {
    let mut scenario = serde_json::Map::new();
    for (target, figures) in rows {
        let values: serde_json::Map<_, _> = figures.iter().map(|(name, v)| ((*name).to_owned(), json!(v))).collect();
        scenario.insert(target.key().to_owned(), serde_json::Value::Object(values));
    }
    serde_json::Value::Object(scenario)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_become_json_per_target() {
        let rows =
            vec![(Target::Forwarder, vec![("deliveries/s", 100.0)]), (Target::Sqlite, vec![("deliveries/s", 50.0)])];
        assert_eq!(to_json(&rows), json!({"forwarder": {"deliveries/s": 100.0}, "sqlite": {"deliveries/s": 50.0}}));
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(1.234), "1.23");
    }
}
