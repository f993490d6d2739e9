//! Standard Webhooks key material: parsing, generating and encoding `whsec_`, `whsk_`
//! and `whpk_` secrets.
//!
//! This module owns the formats and their invariants (lengths, valid curve points) and
//! keeps key bytes out of `Debug` output. Using the keys (signing, verifying) is left
//! to [`crate::standard`].
//!
//! Accepted encodings, all standard base64 with padding:
//! - `whsec_` + 24 to 64 random bytes: an HMAC-SHA256 key. A bare base64 string
//!   without a prefix is read the same way, as the Standard Webhooks libraries do.
//! - `whsk_` + either the 32-byte ed25519 seed or the 64-byte keypair (seed followed
//!   by the public key, the form Go's `crypto/ed25519` and Svix use). A keypair whose
//!   public half does not belong to its seed is refused. Herald writes the 64-byte form.
//! - `whpk_` + the 32-byte ed25519 public key. Weak (small-order) keys are refused.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// Prefix of a symmetric (HMAC-SHA256) secret.
pub const SYMMETRIC_PREFIX: &str = "whsec_";
/// Prefix of an ed25519 signing (secret) key.
pub const SIGNING_KEY_PREFIX: &str = "whsk_";
/// Prefix of an ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// Fewest bytes a symmetric secret may hold.
pub const MIN_SYMMETRIC_LEN: usize = 24;
/// Most bytes a symmetric secret may hold.
pub const MAX_SYMMETRIC_LEN: usize = 64;
/// Bytes in a symmetric secret that Herald generates.
const GENERATED_SYMMETRIC_LEN: usize = 32;

/// Why a secret string was refused.
///
/// Variants never carry key bytes, so the error can be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The string (after its prefix) was empty.
    #[error("the secret is empty")]
    Empty,
    /// The part after the prefix is not standard padded base64. The decoder's own error
    /// is dropped on purpose: it quotes the offending byte, which is key material.
    #[error("the secret is not valid base64")]
    InvalidBase64,
    /// A symmetric secret decoded to a length outside 24..=64 bytes.
    #[error("a whsec_ secret must hold 24 to 64 bytes, this one holds {0}")]
    SymmetricLength(usize),
    /// A `whsk_` key decoded to neither 32 nor 64 bytes.
    #[error("a whsk_ key must hold a 32-byte seed or a 64-byte keypair, this one holds {0}")]
    SigningKeyLength(usize),
    /// A 64-byte `whsk_` keypair whose public half does not match its seed.
    #[error("the whsk_ keypair's public half does not belong to its seed")]
    KeypairMismatch,
    /// A `whpk_` key decoded to something other than 32 bytes.
    #[error("a whpk_ key must hold 32 bytes, this one holds {0}")]
    PublicKeyLength(usize),
    /// A `whpk_` key that is not a usable ed25519 point (undecodable or small order).
    #[error("the whpk_ key is not a valid ed25519 public key")]
    InvalidPublicKey,
    /// A public key was given where a signing secret is needed.
    #[error("a whpk_ public key can verify signatures but cannot sign")]
    PublicKeyCannotSign,
}

/// An HMAC-SHA256 key of 24 to 64 bytes (`whsec_`).
#[derive(Clone)]
pub struct SymmetricKey(Vec<u8>);

impl SymmetricKey {
    /// Generates a fresh 32-byte key from the thread's cryptographic RNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; GENERATED_SYMMETRIC_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps raw key bytes.
    ///
    /// # Errors
    /// [`SecretError::SymmetricLength`] unless the key holds 24 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if !(MIN_SYMMETRIC_LEN..=MAX_SYMMETRIC_LEN).contains(&bytes.len()) {
            return Err(SecretError::SymmetricLength(bytes.len()));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The raw key bytes; keep them out of logs.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `whsec_…` string form, for showing once to the endpoint's owner.
    pub fn expose_encoded(&self) -> String {
        format!("{SYMMETRIC_PREFIX}{}", STANDARD.encode(&self.0))
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time, in case a caller ever compares a key with untrusted input.
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKey({} bytes, redacted)", self.0.len())
    }
}

/// An ed25519 signing key (`whsk_`).
#[derive(Clone)]
pub struct Ed25519SecretKey(SigningKey);

impl Ed25519SecretKey {
    /// Generates a fresh key from the thread's cryptographic RNG.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self(SigningKey::from_bytes(&seed))
    }

    /// Builds the key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The matching public key.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey(self.0.verifying_key())
    }

    /// The `whsk_…` string form (64-byte keypair), for showing once to its owner.
    pub fn expose_encoded(&self) -> String {
        format!("{SIGNING_KEY_PREFIX}{}", STANDARD.encode(self.0.to_keypair_bytes()))
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl PartialEq for Ed25519SecretKey {
    fn eq(&self, other: &Self) -> bool {
        // SigningKey's own PartialEq compares in constant time.
        self.0 == other.0
    }
}

impl Eq for Ed25519SecretKey {}

impl fmt::Debug for Ed25519SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The public half identifies the key without revealing it.
        write!(f, "Ed25519SecretKey(public {}, redacted)", self.public_key().to_encoded())
    }
}

/// An ed25519 public key (`whpk_`), used to verify `v1a` signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(VerifyingKey);

impl Ed25519PublicKey {
    /// The `whpk_…` string form; public, safe to show and log.
    pub fn to_encoded(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey({})", self.to_encoded())
    }
}

/// Any Standard Webhooks key, as parsed from its string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// `whsec_` (or bare base64): signs and verifies `v1`.
    Symmetric(SymmetricKey),
    /// `whsk_`: signs `v1a`, and verifies it through its public half.
    Ed25519(Ed25519SecretKey),
    /// `whpk_`: verifies `v1a` only.
    Ed25519Public(Ed25519PublicKey),
}

impl Secret {
    /// Parses a `whsec_`, `whsk_` or `whpk_` string, or bare base64 as a symmetric key.
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// A [`SecretError`] naming what is wrong with the encoding or the key length.
    pub fn parse(input: &str) -> Result<Self, SecretError> {
        let input = input.trim();
        if let Some(rest) = input.strip_prefix(SIGNING_KEY_PREFIX) {
            parse_signing_key(rest).map(Self::Ed25519)
        } else if let Some(rest) = input.strip_prefix(PUBLIC_KEY_PREFIX) {
            parse_public_key(rest).map(Self::Ed25519Public)
        } else {
            let rest = input.strip_prefix(SYMMETRIC_PREFIX).unwrap_or(input);
            SymmetricKey::from_bytes(&decode(rest)?).map(Self::Symmetric)
        }
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A key that can sign: everything but a public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningSecret {
    /// Produces `v1,<base64 HMAC-SHA256>` entries.
    Symmetric(SymmetricKey),
    /// Produces `v1a,<base64 ed25519 signature>` entries.
    Ed25519(Ed25519SecretKey),
}

impl SigningSecret {
    /// Parses a `whsec_` (or bare base64) or `whsk_` string.
    ///
    /// # Errors
    /// [`SecretError::PublicKeyCannotSign`] for a `whpk_` key, otherwise as [`Secret::parse`].
    pub fn parse(input: &str) -> Result<Self, SecretError> {
        Secret::parse(input)?.try_into()
    }
}

impl FromStr for SigningSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<Secret> for SigningSecret {
    type Error = SecretError;

    fn try_from(secret: Secret) -> Result<Self, Self::Error> {
        match secret {
            Secret::Symmetric(key) => Ok(Self::Symmetric(key)),
            Secret::Ed25519(key) => Ok(Self::Ed25519(key)),
            Secret::Ed25519Public(_) => Err(SecretError::PublicKeyCannotSign),
        }
    }
}

impl From<SigningSecret> for Secret {
    fn from(secret: SigningSecret) -> Self {
        match secret {
            SigningSecret::Symmetric(key) => Self::Symmetric(key),
            SigningSecret::Ed25519(key) => Self::Ed25519(key),
        }
    }
}

fn decode(encoded: &str) -> Result<Vec<u8>, SecretError> {
    if encoded.is_empty() {
        return Err(SecretError::Empty);
    }
    STANDARD.decode(encoded).map_err(|_| SecretError::InvalidBase64)
}

fn parse_signing_key(encoded: &str) -> Result<Ed25519SecretKey, SecretError> {
    let bytes = decode(encoded)?;
    if let Ok(seed) = <&[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(Ed25519SecretKey::from_seed(seed));
    }
    let keypair = <&[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| SecretError::SigningKeyLength(bytes.len()))?;
    SigningKey::from_keypair_bytes(keypair).map(Ed25519SecretKey).map_err(|_| SecretError::KeypairMismatch)
}

fn parse_public_key(encoded: &str) -> Result<Ed25519PublicKey, SecretError> {
    let bytes = decode(encoded)?;
    let raw = <&[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| SecretError::PublicKeyLength(bytes.len()))?;
    let key = VerifyingKey::from_bytes(raw).map_err(|_| SecretError::InvalidPublicKey)?;
    if key.is_weak() {
        return Err(SecretError::InvalidPublicKey);
    }
    Ok(Ed25519PublicKey(key))
}

#[cfg(test)]
#[path = "secret_tests.rs"]
mod tests;
