//! Shopify webhooks: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`, keyed
//! with the app's client secret.
//!
//! Shopify signs no timestamp, so replay protection rests on deduplicating
//! `X-Shopify-Event-Id`, which the ingest path owns.

use crate::VerifyError;
use crate::digest::{self, TAG_LEN};
use crate::header;
use crate::providers::{InboundVerifier, ProviderSecrets, any_key_matches};

/// The header Shopify puts its signature in.
pub const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";

/// Verifies Shopify webhooks against the app's client secret(s).
#[derive(Debug, Clone)]
pub struct Shopify {
    secrets: ProviderSecrets,
}

impl Shopify {
    /// A verifier accepting webhooks signed with any of `secrets`.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self { secrets: ProviderSecrets::new(secrets) }
    }
}

impl InboundVerifier for Shopify {
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        _now_secs: i64,
    ) -> Result<(), VerifyError> {
        let value = header::require(headers, &[SIGNATURE_HEADER])?;
        let candidate = digest::decode_base64_exact::<TAG_LEN>(value).ok_or(VerifyError::MalformedSignature)?;
        if any_key_matches(&self.secrets, &[body], &candidate)? {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::header::from_pairs;
    use crate::providers::test_support::base64_hmac;

    const SECRET: &str = "shpss_test_secret";
    const BODY: &str = r#"{"id":1,"topic":"orders/create"}"#;
    // Computed outside Rust: `printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64`.
    const GOLDEN: &str = "k72tceQzwLrcNoh8q2ZaNlbbj/oVrcHNV4qHTP1iWNs=";

    fn check(verifier: &Shopify, body: &str, signature: &str) -> Result<(), VerifyError> {
        let pairs = [("X-Shopify-Hmac-Sha256", signature)];
        verifier.verify(body.as_bytes(), &from_pairs(&pairs), 0)
    }

    #[test]
    fn golden_vector_verifies() {
        assert_eq!(base64_hmac(SECRET.as_bytes(), BODY.as_bytes()), GOLDEN);
        assert_eq!(check(&Shopify::new([SECRET]), BODY, GOLDEN), Ok(()));
    }

    #[test]
    fn rotated_secret_verifies() {
        let signature = base64_hmac(b"second", BODY.as_bytes());
        assert_eq!(check(&Shopify::new(["first", "second"]), BODY, &signature), Ok(()));
    }

    #[test]
    fn bad_signatures_are_rejected() {
        let verifier = Shopify::new([SECRET]);
        let table = [
            (GOLDEN.to_owned(), "{}", Err(VerifyError::NoMatchingSignature)),
            (GOLDEN[..43].to_owned(), BODY, Err(VerifyError::MalformedSignature)),
            (GOLDEN[..20].to_owned(), BODY, Err(VerifyError::MalformedSignature)),
            (GOLDEN.trim_end_matches('=').to_owned(), BODY, Err(VerifyError::MalformedSignature)),
            (format!("{GOLDEN}AAAA"), BODY, Err(VerifyError::MalformedSignature)),
            (format!("sha256={GOLDEN}"), BODY, Err(VerifyError::MalformedSignature)),
            (String::new(), BODY, Err(VerifyError::MissingHeader(SIGNATURE_HEADER))),
        ];
        for (signature, body, expected) in table {
            assert_eq!(check(&verifier, body, &signature), expected, "{signature:?}");
        }
        assert_eq!(
            verifier.verify(BODY.as_bytes(), &from_pairs(&[]), 0),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(check(&Shopify::new([""; 0]), BODY, GOLDEN), Err(VerifyError::NoSecrets));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_header(value in any::<String>(), body in any::<Vec<u8>>()) {
            let pairs = [(SIGNATURE_HEADER, value.as_str())];
            let _ = Shopify::new([SECRET]).verify(&body, &from_pairs(&pairs), 0);
        }
    }
}
