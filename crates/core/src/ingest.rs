//! Ingest sources (the receiving half): a source is a URL providers post to, the
//! scheme that proves each request genuine, and a hidden application whose endpoints
//! are where verified events are forwarded. The request log records what each POST
//! to the source's URL came to.
//!
//! Which schemes exist and how they verify is the API's business (it builds the
//! verifiers from `herald-signature`); here a source's type is its contract name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    ids::{AppId, IngestLogId, MessageId, SourceId},
    model::Metadata,
};

/// An ingest source as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub id: SourceId,
    pub uid: Option<String>,
    pub name: String,
    /// The contract's type name (`generic-webhook`, `stripe`, `github`, …).
    pub kind: String,
    /// The provider's signing secret; `None` only for types that verify nothing.
    pub secret: Option<String>,
    /// The secret replaced by the last change of `secret`, still accepted until its
    /// expiry, so a provider rolling its secret is not refused meanwhile.
    pub previous_secret: Option<PreviousSecret>,
    /// The hidden application whose endpoints are the source's ingest endpoints.
    pub app_id: AppId,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("previous_secret", &self.previous_secret.as_ref().map(|s| s.expires_at))
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// A replaced source secret and when it stops being accepted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

impl Source {
    /// The secrets a request may be signed with at `now`: the current one, then the
    /// previous one until it expires.
    pub fn secrets_at(&self, now: DateTime<Utc>) -> Vec<&str> {
        let previous = self.previous_secret.as_ref().filter(|p| p.expires_at > now).map(|p| p.key.as_str());
        self.secret.as_deref().into_iter().chain(previous).collect()
    }

    /// Replaces the secret with `new`; the one in use until now stays accepted until
    /// `previous_until`. Setting the same secret again changes nothing.
    pub fn replace_secret(&mut self, new: Option<String>, previous_until: DateTime<Utc>) {
        if new == self.secret {
            return;
        }
        let old = std::mem::replace(&mut self.secret, new);
        self.previous_secret = old.map(|key| PreviousSecret { key, expires_at: previous_until });
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_replaced_secret_is_accepted_until_it_expires() {
        let now = Utc::now();
        let mut source = Source {
            id: SourceId::generate(now, &mut rand::rng()),
            uid: None,
            name: "s".into(),
            kind: "stripe".into(),
            secret: Some("one".into()),
            previous_secret: None,
            app_id: AppId::generate(now, &mut rand::rng()),
            metadata: Metadata::new(),
            created_at: now,
            updated_at: now,
        };
        assert_eq!(source.secrets_at(now), ["one"]);
        source.replace_secret(Some("one".into()), now + TimeDelta::hours(1));
        assert!(source.previous_secret.is_none(), "the same secret is no rotation");
        source.replace_secret(Some("two".into()), now + TimeDelta::hours(1));
        assert_eq!(source.secrets_at(now), ["two", "one"]);
        assert_eq!(source.secrets_at(now + TimeDelta::hours(1)), ["two"]);
        source.replace_secret(Some("three".into()), now + TimeDelta::hours(2));
        assert_eq!(source.secrets_at(now), ["three", "two"], "only the last replaced secret is kept");
        assert!(!format!("{source:?}").contains("two"));
    }
}

/// What became of one request to a source's URL, as its log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestLog {
    pub id: IngestLogId,
    pub source_id: SourceId,
    /// The status Herald answered the provider with.
    pub status_code: u16,
    /// Why the request was rejected, or what was done with it.
    pub error_text: String,
    /// The message a verified request became (or duplicated), if any.
    pub msg_id: Option<MessageId>,
    pub created_at: DateTime<Utc>,
}
