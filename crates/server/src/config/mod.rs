//! Herald's configuration: one typed [`Config`] with a section per part of the server,
//! merged from four layers, later ones winning:
//!
//! 1. the built-in defaults, [`DEFAULT_TOML`] (`config.default.toml`, the commented
//!    reference of every key),
//! 2. an optional TOML file with the same keys,
//! 3. environment variables (passed in as a map, so nothing here reads the process
//!    environment and tests never touch it),
//! 4. command-line flags ([`Overrides`]).
//!
//! Every setting is validated once, at start-up, and a bad one is reported by the name
//! it was given under (`HERALD_RETRY_SCHEDULE`, `--listen`, or the key in a file).

mod database_url;
mod error;
mod layers;
mod parse;
mod settings;
#[cfg(test)]
mod tests;
mod typed;

pub use herald_api::RateLimit;

pub use self::{
    database_url::DatabaseUrl,
    error::{ConfigError, Origin},
    settings::{Overrides, SETTINGS, Setting, long_env_name},
    typed::{
        ApiSettings, AuthConfig, Config, ConnectionLimits, LogConfig, LogFormat, NetConfig, RetentionConfig, Role,
        ServerConfig, StoreConfig, WorkerConfig,
    },
};

/// The commented reference configuration, built into the binary as the lowest layer.
pub const DEFAULT_TOML: &str = include_str!("../../config.default.toml");

/// Shortest accepted `HERALD_ADMIN_TOKEN`, so a guessable bootstrap token is refused.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
