//! Inbound verifiers for providers that do not speak Standard Webhooks: Stripe,
//! GitHub, Shopify and Slack. Each lives in its own module with the same shape, a
//! struct built from the provider's secret(s) that implements [`InboundVerifier`].
//!
//! Provider secrets are used as the raw bytes of the string the provider shows
//! (Stripe's `whsec_…` included: Stripe does not base64-decode it). Several secrets
//! cover a rotation on the provider's side. What happens after a rejection (status
//! codes, dedupe, storage) is left to the ingest path.

use std::fmt;

use crate::VerifyError;

pub mod github;
pub mod shopify;
pub mod slack;
pub mod stripe;

pub use github::GitHub;
pub use shopify::Shopify;
pub use slack::Slack;
pub use stripe::Stripe;

/// Something that checks a raw inbound request: the Standard Webhooks
/// [`Verifier`](crate::Verifier) and every provider here.
///
/// `headers` receives lower-case header names (see [`crate::header`]); `now_secs` is
/// the current unix time, ignored by schemes that sign no timestamp (GitHub, Shopify).
pub trait InboundVerifier: Send + Sync {
    /// Checks `body` (the exact bytes received, before any parsing) against the headers.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the request was rejected.
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        now_secs: i64,
    ) -> Result<(), VerifyError>;
}

/// A provider's shared secrets, kept out of `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderSecrets(Vec<Vec<u8>>);

impl ProviderSecrets {
    /// Collects secrets as raw bytes, dropping empty ones (an empty HMAC key would
    /// let anyone who guesses it forge requests).
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self(secrets.into_iter().map(|secret| secret.as_ref().to_vec()).filter(|secret| !secret.is_empty()).collect())
    }

    /// How many secrets are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no secret is held; every verification then fails with
    /// [`VerifyError::NoSecrets`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Fails with [`VerifyError::NoSecrets`] when empty, else yields the keys.
    pub(crate) fn keys(&self) -> Result<impl Iterator<Item = &[u8]>, VerifyError> {
        if self.0.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        Ok(self.0.iter().map(Vec::as_slice))
    }
}

impl fmt::Debug for ProviderSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderSecrets({} redacted)", self.0.len())
    }
}

/// True when any key's HMAC-SHA256 over `parts` equals `candidate`.
pub(crate) fn any_key_matches(
    secrets: &ProviderSecrets,
    parts: &[&[u8]],
    candidate: &[u8],
) -> Result<bool, VerifyError> {
    Ok(secrets.keys()?.any(|key| crate::digest::tag_matches(&crate::digest::hmac_sha256(key, parts), candidate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secrets_are_dropped_and_debug_is_redacted() {
        let secrets = ProviderSecrets::new(["", "s3cret-value"]);
        assert_eq!(secrets.len(), 1);
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(ProviderSecrets::new(Vec::<String>::new()).is_empty());
    }
}

/// Independent helpers for provider tests: they call the `hmac` crate directly rather
/// than this crate's signing code, so a test checks the scheme, not an echo of itself.
#[cfg(test)]
pub(crate) mod test_support {
    use base64::Engine as _;
    use hmac::{Hmac, Mac as _};
    use sha2::Sha256;

    fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// Lower-case hex HMAC-SHA256 of `message`.
    pub(crate) fn hex_hmac(key: &[u8], message: &[u8]) -> String {
        mac(key, message).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Standard base64 HMAC-SHA256 of `message`.
    pub(crate) fn base64_hmac(key: &[u8], message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(mac(key, message))
    }
}
