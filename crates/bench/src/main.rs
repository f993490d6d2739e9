//! `herald-bench`: load generators that print figures (never assert on them).
//!
//! Each bench starts the release `herald` binary (next to this one, or `--server-bin`)
//! as a child process on a temp SQLite file (or, with `--postgres URL`, on a fresh
//! PostgreSQL schema that is dropped afterwards), plus an in-process receiver for webhooks;
//! everything talks over 127.0.0.1 only, and every loop is bounded in count and time.
//! Figures and the commands that produced them are kept in BENCHMARKS.md.

mod api;
mod compare;
mod deliver;
mod forwarder;
mod ingest;
mod postgres;
mod receive;
mod server;
mod stream;

use std::time::Duration;

use clap::{Parser, Subcommand};
use herald_core::retry::parse_duration;

/// Longest run accepted, so a typo cannot start an endless load.
const MAX_DURATION: Duration = Duration::from_secs(600);

#[derive(Parser)]
#[command(name = "herald-bench", about = "Load generators for Herald; they print figures.")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Concurrent message creation against one application with one endpoint.
    Ingest(ingest::IngestArgs),
    /// Delivery throughput (1 and 10 endpoints), steady-rate latency, backlog memory.
    Deliver(deliver::DeliverArgs),
    /// Stripe-signed requests to one ingest source URL, forwarded to a local receiver.
    Receive(receive::ReceiveArgs),
    /// Live stream (SSE): create-to-receipt latency, memory of idle subscribers.
    Stream(stream::StreamArgs),
    /// Ingest, fan-out and steady-rate scenarios against the no-storage forwarder and
    /// Herald in one run, each figure with its ratio to the forwarder's.
    Compare(compare::CompareArgs),
    /// The no-storage forwarder that `compare` measures Herald against (run by it).
    #[command(hide = true)]
    Forwarder(forwarder::ForwarderArgs),
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
        Bench::Ingest(args) => ingest::run(args).await,
        Bench::Deliver(args) => deliver::run(args).await,
        Bench::Receive(args) => receive::run(args).await,
        Bench::Stream(args) => stream::run(args).await,
        Bench::Compare(args) => compare::run(args).await,
        Bench::Forwarder(args) => forwarder::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_time_is_bounded() {
        assert_eq!(parse_run_time("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_run_time("0s").is_err());
        assert!(parse_run_time("2h").is_err());
    }
}
