//! Standard Webhooks signing and verification: the signed content
//! `{id}.{timestamp}.{body}`, `v1` (HMAC-SHA256) and `v1a` (ed25519) entries, the
//! space-separated multi-signature header used during key rotation, and the
//! receiver-side [`Verifier`] with its timestamp tolerance.
//!
//! Key formats live in [`crate::secret`]; header names and the tolerance window in
//! [`crate::header`]. Neither signing nor verifying reads the clock: callers pass time in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _};

use crate::VerifyError;
use crate::digest::{self, Tag};
use crate::header::{self, DEFAULT_TOLERANCE_SECS, MAX_SIGNATURE_ENTRIES};
use crate::providers::InboundVerifier;
use crate::secret::{Ed25519PublicKey, Secret, SecretError, SigningSecret, SymmetricKey};

/// Version tag of an HMAC-SHA256 entry.
pub const VERSION_SYMMETRIC: &str = "v1";
/// Version tag of an ed25519 entry.
pub const VERSION_ED25519: &str = "v1a";

const ED25519_SIGNATURE_LEN: usize = 64;

/// Signs one message with one secret, giving `v1,<base64>` or `v1a,<base64>`.
///
/// `msg_id` must be Herald-generated (no `.`), and `timestamp_secs` is the attempt
/// time in unix seconds; verifiers only accept non-negative timestamps.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let timestamp = timestamp_secs.to_string();
    sign_entry(secret, &SignedContent::new(msg_id, &timestamp, body))
}

/// Signs one message with every given secret and joins the entries with spaces, in
/// the order given: the current secret plus the unexpired old ones during a rotation.
/// With no secrets the result is empty, which no verifier accepts.
pub fn sign_all<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp_secs.to_string();
    let content = SignedContent::new(msg_id, &timestamp, body);
    secrets.into_iter().map(|secret| sign_entry(secret, &content)).collect::<Vec<_>>().join(" ")
}

fn sign_entry(secret: &SigningSecret, content: &SignedContent<'_>) -> String {
    match secret {
        SigningSecret::Symmetric(key) => {
            format!("{VERSION_SYMMETRIC},{}", STANDARD.encode(content.hmac(key)))
        }
        SigningSecret::Ed25519(key) => {
            let signature = key.signing_key().sign(&content.joined());
            format!("{VERSION_ED25519},{}", STANDARD.encode(signature.to_bytes()))
        }
    }
}

/// The three signed parts; HMAC streams them, ed25519 needs them joined.
struct SignedContent<'a> {
    id: &'a str,
    timestamp: &'a str,
    body: &'a [u8],
}

impl<'a> SignedContent<'a> {
    fn new(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> Self {
        Self { id, timestamp, body }
    }

    fn hmac(&self, key: &SymmetricKey) -> Tag {
        digest::hmac_sha256(key.expose_bytes(), &[self.id.as_bytes(), b".", self.timestamp.as_bytes(), b".", self.body])
    }

    fn joined(&self) -> Vec<u8> {
        let mut joined = Vec::with_capacity(self.id.len() + self.timestamp.len() + self.body.len() + 2);
        joined.extend_from_slice(self.id.as_bytes());
        joined.push(b'.');
        joined.extend_from_slice(self.timestamp.as_bytes());
        joined.push(b'.');
        joined.extend_from_slice(self.body);
        joined
    }
}

/// Verifies Standard Webhooks requests against one or more secrets.
///
/// A request passes when its timestamp is within the tolerance (300 s by default, in
/// both directions) and any one entry of its signature header matches any one secret:
/// `v1` entries against symmetric secrets, `v1a` entries against ed25519 public keys
/// (a `whsk_` secret verifies through its public half). Entries with other version tags
/// are skipped. Several secrets cover a rotation on the sender's side.
#[derive(Debug, Clone)]
pub struct Verifier {
    symmetric: Vec<SymmetricKey>,
    public: Vec<Ed25519PublicKey>,
    tolerance_secs: u32,
}

impl Verifier {
    /// A verifier accepting signatures from any of `secrets`.
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut verifier = Self { symmetric: Vec::new(), public: Vec::new(), tolerance_secs: DEFAULT_TOLERANCE_SECS };
        for secret in secrets {
            match secret {
                Secret::Symmetric(key) => verifier.symmetric.push(key),
                Secret::Ed25519(key) => verifier.public.push(key.public_key()),
                Secret::Ed25519Public(key) => verifier.public.push(key),
            }
        }
        verifier
    }

    /// A verifier from secret strings (`whsec_`, `whsk_`, `whpk_` or bare base64).
    ///
    /// # Errors
    /// The first [`SecretError`] met.
    pub fn parse<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Result<Self, SecretError> {
        let parsed = secrets.into_iter().map(|secret| Secret::parse(secret.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(parsed))
    }

    /// Replaces the tolerance (seconds either side of `now`).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance_secs: u32) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    /// Verifies a request from its raw body and headers, reading `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature`, or their `svix-` names.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the request was rejected.
    pub fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        let id = header::require(headers, &[header::WEBHOOK_ID, header::SVIX_ID])?;
        let timestamp = header::require(headers, &[header::WEBHOOK_TIMESTAMP, header::SVIX_TIMESTAMP])?;
        let signature = header::require(headers, &[header::WEBHOOK_SIGNATURE, header::SVIX_SIGNATURE])?;
        self.verify_parts(id, timestamp, signature, body, now_secs)
    }

    /// Verifies already-extracted header values, e.g. for a command-line checker.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the values were rejected.
    pub fn verify_parts(
        &self,
        msg_id: &str,
        timestamp: &str,
        signature_header: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        if self.symmetric.is_empty() && self.public.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        let timestamp_secs = header::parse_timestamp(timestamp)?;
        header::check_window(timestamp_secs, now_secs, self.tolerance_secs)?;
        if signature_header.split(' ').filter(|e| !e.is_empty()).count() > MAX_SIGNATURE_ENTRIES {
            return Err(VerifyError::TooManySignatures);
        }
        // The signed timestamp is the number re-printed, as the reference libraries do,
        // so `0001649367553` signs as `1649367553`.
        let timestamp = timestamp_secs.to_string();
        let content = SignedContent::new(msg_id, &timestamp, body);
        self.match_entries(signature_header, &content)
    }

    fn match_entries(&self, signature_header: &str, content: &SignedContent<'_>) -> Result<(), VerifyError> {
        // Computed on first use: a header with only v1a entries never hashes for v1.
        let mut tags: Option<Vec<Tag>> = None;
        let mut joined: Option<Vec<u8>> = None;
        let mut saw_well_formed = false;
        let mut saw_malformed = false;
        for entry in signature_header.split(' ').filter(|e| !e.is_empty()) {
            let Some((version, encoded)) = entry.split_once(',') else {
                saw_malformed = true;
                continue;
            };
            let matched = match version {
                VERSION_SYMMETRIC => {
                    let Some(candidate) = digest::decode_base64_exact::<{ digest::TAG_LEN }>(encoded) else {
                        saw_malformed = true;
                        continue;
                    };
                    saw_well_formed = true;
                    let tags = tags.get_or_insert_with(|| self.symmetric.iter().map(|k| content.hmac(k)).collect());
                    tags.iter().any(|tag| digest::tag_matches(tag, &candidate))
                }
                VERSION_ED25519 => {
                    let Some(raw) = digest::decode_base64_exact::<ED25519_SIGNATURE_LEN>(encoded) else {
                        saw_malformed = true;
                        continue;
                    };
                    saw_well_formed = true;
                    let signature = Signature::from_bytes(&raw);
                    let message = joined.get_or_insert_with(|| content.joined());
                    self.public.iter().any(|key| key.verifying_key().verify_strict(message, &signature).is_ok())
                }
                // Unknown versions are skipped, so senders can add schemes.
                _ => continue,
            };
            if matched {
                return Ok(());
            }
        }
        if saw_malformed && !saw_well_formed {
            Err(VerifyError::MalformedSignature)
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

impl InboundVerifier for Verifier {
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        Verifier::verify(self, body, headers, now_secs)
    }
}

#[cfg(test)]
#[path = "standard_tests.rs"]
mod tests;
