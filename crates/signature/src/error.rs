//! The one error type every verifier in this crate returns, so the ingest path can map
//! a rejection to a response without knowing which provider produced it.

/// Why a request's signature was rejected.
///
/// Every variant is a rejection: there is no "could not check, let it through".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or empty (the name is the one looked up first).
    #[error("missing or empty header `{0}`")]
    MissingHeader(&'static str),
    /// The timestamp is not a plain non-negative decimal number of seconds.
    #[error("the timestamp header is not a unix timestamp in seconds")]
    InvalidTimestamp,
    /// The timestamp is further in the past than the tolerance allows.
    #[error("the timestamp is too old")]
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("the timestamp is too far in the future")]
    TimestampTooNew,
    /// The signature header could not be read as the scheme's format, and held no
    /// well-formed entry to check.
    #[error("the signature header is malformed")]
    MalformedSignature,
    /// The signature header holds more entries than a verifier will try.
    #[error("the signature header holds too many entries")]
    TooManySignatures,
    /// Well-formed entries were present but none matched any configured secret.
    #[error("no signature matched")]
    NoMatchingSignature,
    /// The verifier was built without a secret that can check this scheme.
    #[error("no secret is configured to verify this signature")]
    NoSecrets,
}
