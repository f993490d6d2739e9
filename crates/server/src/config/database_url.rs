//! [`DatabaseUrl`]: where the store lives.

use std::{fmt, path::PathBuf, str::FromStr};

/// A database location, by scheme. `Debug` and `Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (created with its schema when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (not supported by this release; the store says so at start).
    Postgres(String),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite://").or_else(|| s.strip_prefix("sqlite:")) {
            if path.is_empty() || path.contains('?') {
                return Err(
                    "expected sqlite://PATH, such as sqlite://herald.db or sqlite:///var/lib/herald.db".to_owned()
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        Err("expected sqlite://PATH or postgres://…".to_owned())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        // Cannot fail: a URL with a password has a host.
                        let _ = parsed.set_password(Some("REDACTED"));
                    }
                    f.write_str(parsed.as_str())
                }
                Err(_) => f.write_str("postgres://(unparsable, hidden)"),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}
