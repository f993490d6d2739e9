//! Where a value came from and why the configuration cannot be used.

use std::path::PathBuf;

use super::Setting;

/// Where a value came from, to name it in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in `config.default.toml`.
    Default,
    /// A config file given with `--config`.
    File(PathBuf),
    /// An environment variable, by the name it was set under.
    Env(String),
    /// A command-line flag (without dashes).
    Flag(&'static str),
}

/// Why the configuration cannot be used. Every variant names the offending setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid config file {}: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    /// A `HERALD_<SECTION>__<KEY>` variable names no setting.
    #[error("{0} is not a Herald setting (see `herald serve --help`)")]
    UnknownEnv(String),
    /// A setting was given under both its short and its long environment name.
    #[error("both {0} and {1} are set; keep one")]
    DuplicateEnv(String, String),
    /// A value does not parse or is out of range.
    #[error("invalid {}: {reason}", describe(setting, origin, value.as_deref()))]
    Invalid {
        setting: &'static Setting,
        origin: Origin,
        /// The offending value, `None` for secrets.
        value: Option<String>,
        reason: String,
    },
}

fn describe(setting: &Setting, origin: &Origin, value: Option<&str>) -> String {
    let name = match origin {
        Origin::Env(name) => name.clone(),
        Origin::Flag(flag) => format!("--{flag} ({})", setting.env),
        Origin::File(path) => format!("`{}` in {} ({})", setting.key, path.display(), setting.env),
        Origin::Default => format!("built-in default `{}` ({})", setting.key, setting.env),
    };
    match value {
        Some(v) => format!("{name} {v:?}"),
        None => name,
    }
}
