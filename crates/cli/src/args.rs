//! The command line, as clap derives it.
//!
//! Flags are plain strings here: every value is validated once, by
//! `herald_server::config`, so a bad value gets the same message whichever layer
//! (file, environment or flag) it came from. Environment variables are merged there
//! too rather than by clap, so the layering is one piece of code that tests drive with
//! an explicit map; the help text names each variable.

use std::{fmt::Write, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use herald_server::config::{Overrides, SETTINGS, long_env_name};

/// Herald: a self-hosted webhook platform with a Svix-compatible API.
#[derive(Debug, Parser)]
#[command(name = "herald", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Herald server (API on HERALD_LISTEN, data in HERALD_DATABASE_URL).
    ///
    /// On first start with no HERALD_ADMIN_TOKEN, an admin token is generated and
    /// printed once. The bound address is printed as `Herald listening on http://ADDR`.
    #[command(after_help = settings_help())]
    Serve(ServeArgs),
    /// Create the database and its schema, or bring it up to date, then exit.
    Migrate(StoreArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check that a server answers GET /api/v1/health: exit 0 when healthy, 1 if not.
    Healthcheck(HealthcheckArgs),
    /// Check a Standard Webhooks signature (`v1` HMAC or `v1a` ed25519) over a body
    /// read byte for byte from a file or standard input: exit 0 when it verifies, 1
    /// with the reason when it does not, 2 for a malformed key.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A key the sender may have signed with: whsec_… (v1), whpk_… or whsk_… (v1a).
    /// Repeat it while a secret is being rotated. The environment keeps it out of the
    /// process list.
    #[arg(long = "secret", value_name = "KEY", env = "WEBHOOK_SECRET", required = true, hide_env_values = true)]
    pub secrets: Vec<String>,
    /// The `webhook-id` header.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// The `webhook-timestamp` header (unix seconds).
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: String,
    /// The `webhook-signature` header, e.g. "v1,K5oZ… v1,Mg8L…".
    #[arg(long, value_name = "HEADER")]
    pub signature: String,
    /// The request body; standard input when absent or `-`.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// How far the timestamp may be from now, either way, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub tolerance: u32,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (only its hash is stored).
    ///
    /// Without --app the token is server-wide (admin); with --app it can only reach
    /// that application.
    Create(TokenCreateArgs),
}

/// Where the configuration comes from, shared by every command that reads it.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// TOML config file (keys as in config.default.toml); flags and environment
    /// variables override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH, sqlite:PATH or postgres://USER:PASSWORD@HOST/DB
    /// [env: HERALD_DATABASE_URL] [default: sqlite://herald.db]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The flag layer of the configuration.
    pub fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.set("store.database_url", self.database_url.as_deref());
        o
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on; port 0 picks a free one [env: HERALD_LISTEN]
    /// [default: 127.0.0.1:8071]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Base URL for links Herald returns [env: HERALD_PUBLIC_URL] [default: derived
    /// from the bound address]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// What this node runs: all (API and delivery), api or worker
    /// [env: HERALD_ROLE] [default: all]
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Longest a request may take before a 408 answer
    /// [env: HERALD_SERVER__REQUEST_TIMEOUT] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Largest request body, e.g. 1048576, 512KiB, 1MiB [env: HERALD_MAX_BODY_BYTES]
    /// [default: 1MiB]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<String>,
    /// Per-token rate limit: off, RATE/s or RATE/m, optionally ,burst=N
    /// [env: HERALD_RATE_LIMIT] [default: off]
    #[arg(long, value_name = "LIMIT")]
    pub rate_limit: Option<String>,
    /// Comma-separated CIDRs outbound delivery may reach despite the SSRF guard
    /// [env: HERALD_ALLOW_CIDRS] [default: none]
    #[arg(long, value_name = "CIDRS")]
    pub allow_cidrs: Option<String>,
    /// Comma-separated delays between delivery attempts
    /// [env: HERALD_RETRY_SCHEDULE] [default: 0s,5s,5m,30m,2h,5h,10h,10h]
    #[arg(long, value_name = "DELAYS")]
    pub retry_schedule: Option<String>,
    /// Log format on stderr: human or json [env: HERALD_LOG_FORMAT] [default: human]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

impl ServeArgs {
    /// The flag layer of the configuration.
    pub fn overrides(&self) -> Overrides {
        let mut o = self.store.overrides();
        o.set("server.listen", self.listen.as_deref())
            .set("server.public_url", self.public_url.as_deref())
            .set("server.request_timeout", self.request_timeout.as_deref())
            .set("server.role", self.role.as_deref())
            .set("api.max_body_bytes", self.max_body_bytes.as_deref())
            .set("api.rate_limit", self.rate_limit.as_deref())
            .set("net.allow_cidrs", self.allow_cidrs.as_deref())
            .set("worker.retry_schedule", self.retry_schedule.as_deref())
            .set("log.format", self.log_format.as_deref());
        o
    }
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Scope the token to this application (id or uid); it must exist.
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// TOML config file, read for its listen address when --url is not given.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Base URL of the server (http only) [default: http:// + HERALD_LISTEN, with
    /// 127.0.0.1 for an all-interfaces address]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// The settings table shown after `herald serve --help`.
fn settings_help() -> String {
    let mut out =
        String::from("Settings (a flag beats the environment, which beats --config FILE, which beats the defaults):\n");
    for s in SETTINGS {
        let flag = s.flag.map_or_else(|| "(env only)".to_owned(), |f| format!("--{f}"));
        let _ = writeln!(out, "  {:<32} {:<20} {}", s.env, flag, s.key);
    }
    let _ = write!(
        out,
        "\nEvery key can also be set as HERALD_<SECTION>__<KEY>, e.g. {}.\n\
         RUST_LOG sets the log filter (default: info). Environment variables are read once, at start-up.",
        long_env_name("api.max_body_bytes"),
    );
    out
}
