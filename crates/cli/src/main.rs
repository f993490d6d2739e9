//! `herald`: the one Herald binary. `main` parses the command line, loads and
//! validates the configuration, and hands over to `herald_server` (or to one of the
//! short commands in [`commands`]).
//!
//! Exit codes: 0 success, 1 failure, 2 bad configuration or usage.

use std::{collections::BTreeMap, path::Path, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use herald_server::{
    Config,
    config::{ConfigError, Overrides},
};
use tokio_util::sync::CancellationToken;

mod args;
mod commands;

use args::{Cli, Command, ServeArgs, TokenCommand};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = ProcessEnv::read();
    match dispatch(cli.command, &env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, env: &ProcessEnv) -> Result<(), Failure> {
    match command {
        Command::Serve(args) => serve(&args, env).await,
        Command::Migrate(args) => {
            let config = load(args.config.as_deref(), env, &args.overrides())?;
            Ok(commands::migrate(&config).await?)
        }
        Command::Token(TokenCommand::Create(args)) => {
            let config = load(args.store.config.as_deref(), env, &args.store.overrides())?;
            let token = commands::token_create(&config, args.app.as_deref()).await?;
            println!("{token}");
            Ok(())
        }
        Command::Healthcheck(args) => {
            let base = match args.url {
                Some(url) => url,
                None => commands::default_health_base(&load(args.config.as_deref(), env, &Overrides::default())?),
            };
            Ok(commands::healthcheck(&base)?)
        }
        Command::Verify(args) => commands::verify(&args).map_err(|e| match e {
            commands::VerifyFailure::Key(e) => Failure::Config(e),
            commands::VerifyFailure::Rejected(e) => Failure::Run(e),
        }),
    }
}

/// `herald serve`: config, tracing, listener, signals, then the server.
async fn serve(args: &ServeArgs, env: &ProcessEnv) -> Result<(), Failure> {
    let config = load(args.store.config.as_deref(), env, &args.overrides())?;
    herald_server::telemetry::init(config.log.format, env.rust_log.as_deref()).map_err(Failure::Config)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (HERALD_LISTEN)", config.server.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    herald_server::run(config, listener, shutdown).await?;
    Ok(())
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); only Ctrl-C stops Herald");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing open requests");
    token.cancel();
}

/// What went wrong, deciding the exit code.
enum Failure {
    /// Bad configuration: exit 2.
    Config(anyhow::Error),
    /// Anything else: exit 1.
    Run(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Run(e)
    }
}

fn load(file: Option<&Path>, env: &ProcessEnv, flags: &Overrides) -> Result<Config, Failure> {
    Config::load(file, &env.herald, flags).map_err(|e: ConfigError| Failure::Config(e.into()))
}

/// The process environment, read once at start-up.
struct ProcessEnv {
    /// Every `HERALD_*` variable.
    herald: BTreeMap<String, String>,
    rust_log: Option<String>,
}

impl ProcessEnv {
    fn read() -> Self {
        let herald = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with("HERALD_").then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect();
        let rust_log = std::env::var("RUST_LOG").ok();
        Self { herald, rust_log }
    }
}
