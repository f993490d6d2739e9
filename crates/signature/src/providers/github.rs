//! GitHub webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! GitHub signs no timestamp, so replay protection rests on deduplicating
//! `X-GitHub-Delivery`, which the ingest path owns.

use crate::VerifyError;
use crate::digest;
use crate::header;
use crate::providers::{InboundVerifier, ProviderSecrets, any_key_matches};

/// The header GitHub puts its SHA-256 signature in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";

/// Verifies GitHub webhook deliveries against the webhook's secret(s).
#[derive(Debug, Clone)]
pub struct GitHub {
    secrets: ProviderSecrets,
}

impl GitHub {
    /// A verifier accepting deliveries signed with any of `secrets`.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self { secrets: ProviderSecrets::new(secrets) }
    }
}

impl InboundVerifier for GitHub {
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        _now_secs: i64,
    ) -> Result<(), VerifyError> {
        let value = header::require(headers, &[SIGNATURE_HEADER])?;
        let candidate =
            value.strip_prefix(PREFIX).and_then(digest::decode_hex_tag).ok_or(VerifyError::MalformedSignature)?;
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
    use crate::providers::test_support::hex_hmac;

    // GitHub's documented example ("Validating webhook deliveries").
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_BODY: &str = "Hello, World!";
    const DOC_SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn check(verifier: &GitHub, body: &str, signature: &str) -> Result<(), VerifyError> {
        let pairs = [("X-Hub-Signature-256", signature)];
        verifier.verify(body.as_bytes(), &from_pairs(&pairs), 0)
    }

    #[test]
    fn documented_example_verifies() {
        assert_eq!(check(&GitHub::new([DOC_SECRET]), DOC_BODY, DOC_SIGNATURE), Ok(()));
    }

    #[test]
    fn independently_computed_signature_verifies_with_a_rotated_secret() {
        let body = r#"{"action":"opened","number":1}"#;
        let signature = format!("sha256={}", hex_hmac(b"new-secret", body.as_bytes()));
        assert_eq!(check(&GitHub::new(["old-secret", "new-secret"]), body, &signature), Ok(()));
        assert_eq!(check(&GitHub::new(["old-secret"]), body, &signature), Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn bad_signatures_are_rejected() {
        let verifier = GitHub::new([DOC_SECRET]);
        let hex = &DOC_SIGNATURE[PREFIX.len()..];
        let table = [
            (DOC_SIGNATURE.to_owned(), "Hello, World?", Err(VerifyError::NoMatchingSignature)),
            (DOC_SIGNATURE[..DOC_SIGNATURE.len() - 2].to_owned(), DOC_BODY, Err(VerifyError::MalformedSignature)),
            (format!("sha256={}", &hex[..8]), DOC_BODY, Err(VerifyError::MalformedSignature)),
            ("sha256=".to_owned(), DOC_BODY, Err(VerifyError::MalformedSignature)),
            (hex.to_owned(), DOC_BODY, Err(VerifyError::MalformedSignature)),
            (format!("sha1={hex}"), DOC_BODY, Err(VerifyError::MalformedSignature)),
            (format!("{DOC_SIGNATURE}00"), DOC_BODY, Err(VerifyError::MalformedSignature)),
            (String::new(), DOC_BODY, Err(VerifyError::MissingHeader(SIGNATURE_HEADER))),
            ("   ".to_owned(), DOC_BODY, Err(VerifyError::MissingHeader(SIGNATURE_HEADER))),
        ];
        for (signature, body, expected) in table {
            assert_eq!(check(&verifier, body, &signature), expected, "{signature:?}");
        }
    }

    #[test]
    fn absent_header_and_absent_secret_are_rejections() {
        let verifier = GitHub::new([DOC_SECRET]);
        assert_eq!(
            verifier.verify(DOC_BODY.as_bytes(), &from_pairs(&[]), 0),
            Err(VerifyError::MissingHeader(SIGNATURE_HEADER))
        );
        assert_eq!(check(&GitHub::new([""]), DOC_BODY, DOC_SIGNATURE), Err(VerifyError::NoSecrets));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_header(value in any::<String>(), body in any::<Vec<u8>>()) {
            let pairs = [(SIGNATURE_HEADER, value.as_str())];
            let _ = GitHub::new([DOC_SECRET]).verify(&body, &from_pairs(&pairs), 0);
        }
    }
}
