//! Stripe webhooks: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where
//! each `v1` is the hex HMAC-SHA256 of `{t}.{body}` keyed with the endpoint's
//! `whsec_…` string as raw bytes. Several `v1` entries appear while Stripe rolls a
//! secret; other schemes (`v0`, test-mode extras) are ignored.

use crate::VerifyError;
use crate::digest::{self, Tag};
use crate::header::{self, DEFAULT_TOLERANCE_SECS, MAX_SIGNATURE_ENTRIES};
use crate::providers::{InboundVerifier, ProviderSecrets};

/// The header Stripe puts its timestamp and signatures in.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Verifies Stripe webhook events against the endpoint's signing secret(s).
#[derive(Debug, Clone)]
pub struct Stripe {
    secrets: ProviderSecrets,
    tolerance_secs: u32,
}

impl Stripe {
    /// A verifier accepting events signed with any of `secrets` (the `whsec_…`
    /// strings exactly as Stripe shows them), with a 300 s tolerance.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self { secrets: ProviderSecrets::new(secrets), tolerance_secs: DEFAULT_TOLERANCE_SECS }
    }

    /// Replaces the tolerance (seconds either side of `now`).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance_secs: u32) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }
}

impl InboundVerifier for Stripe {
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        let value = header::require(headers, &[SIGNATURE_HEADER])?;
        let parsed = ParsedHeader::parse(value)?;
        let timestamp = header::parse_timestamp(parsed.timestamp)?;
        header::check_window(timestamp, now_secs, self.tolerance_secs)?;
        if parsed.signatures.is_empty() {
            return Err(if parsed.saw_malformed {
                VerifyError::MalformedSignature
            } else {
                VerifyError::NoMatchingSignature
            });
        }
        // Stripe signs the timestamp exactly as it appears in the header.
        let parts: [&[u8]; 3] = [parsed.timestamp.as_bytes(), b".", body];
        for key in self.secrets.keys()? {
            let expected = digest::hmac_sha256(key, &parts);
            if parsed.signatures.iter().any(|candidate| digest::tag_matches(&expected, candidate)) {
                return Ok(());
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }
}

/// The parts of a `Stripe-Signature` value this verifier uses.
struct ParsedHeader<'a> {
    timestamp: &'a str,
    signatures: Vec<Tag>,
    saw_malformed: bool,
}

impl<'a> ParsedHeader<'a> {
    fn parse(value: &'a str) -> Result<Self, VerifyError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        let mut saw_malformed = false;
        for (index, item) in value.split(',').enumerate() {
            if index >= MAX_SIGNATURE_ENTRIES {
                return Err(VerifyError::TooManySignatures);
            }
            let Some((key, value)) = item.trim().split_once('=') else {
                saw_malformed = true;
                continue;
            };
            match key {
                // Two timestamps would leave it unclear which one was signed.
                "t" if timestamp.replace(value).is_some() => return Err(VerifyError::MalformedSignature),
                "t" => {}
                "v1" => match digest::decode_hex_tag(value) {
                    Some(tag) => signatures.push(tag),
                    None => saw_malformed = true,
                },
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(VerifyError::MalformedSignature)?;
        Ok(Self { timestamp, signatures, saw_malformed })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::header::from_pairs;
    use crate::providers::test_support::hex_hmac;

    const SECRET: &str = "whsec_test_secret";
    const TIMESTAMP: i64 = 1_492_774_577;
    const BODY: &str = r#"{"id":"evt_test_webhook","object":"event"}"#;
    // Computed outside Rust:
    // `printf '%s' "1492774577.$BODY" | openssl dgst -sha256 -hmac whsec_test_secret`.
    const GOLDEN: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

    fn check(verifier: &Stripe, body: &str, header: &str, now: i64) -> Result<(), VerifyError> {
        let pairs = [("Stripe-Signature", header)];
        verifier.verify(body.as_bytes(), &from_pairs(&pairs), now)
    }

    fn golden_header() -> String {
        format!("t={TIMESTAMP},v1={GOLDEN}")
    }

    #[test]
    fn golden_vector_verifies() {
        let signed = format!("{TIMESTAMP}.{BODY}");
        assert_eq!(hex_hmac(SECRET.as_bytes(), signed.as_bytes()), GOLDEN);
        assert_eq!(check(&Stripe::new([SECRET]), BODY, &golden_header(), TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_v1_entry_may_match_and_other_schemes_are_ignored() {
        let other = hex_hmac(b"other", format!("{TIMESTAMP}.{BODY}").as_bytes());
        let header = format!("t={TIMESTAMP},v1={other},v0={other},v1={GOLDEN},scheme=x");
        assert_eq!(check(&Stripe::new([SECRET]), BODY, &header, TIMESTAMP), Ok(()));
        assert_eq!(check(&Stripe::new(["other", SECRET]), BODY, &golden_header(), TIMESTAMP), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_window_are_rejected_both_ways() {
        let verifier = Stripe::new([SECRET]);
        let header = golden_header();
        let table = [
            (TIMESTAMP + 300, Ok(())),
            (TIMESTAMP - 300, Ok(())),
            (TIMESTAMP + 301, Err(VerifyError::TimestampTooOld)),
            (TIMESTAMP - 301, Err(VerifyError::TimestampTooNew)),
        ];
        for (now, expected) in table {
            assert_eq!(check(&verifier, BODY, &header, now), expected, "now {now}");
        }
    }

    #[test]
    fn bad_headers_are_rejected() {
        let verifier = Stripe::new([SECRET]);
        let table = [
            (golden_header(), "{}", Err(VerifyError::NoMatchingSignature)),
            (format!("t={TIMESTAMP},v1={}", &GOLDEN[..32]), BODY, Err(VerifyError::MalformedSignature)),
            (format!("t={TIMESTAMP},v1={}", &GOLDEN[..63]), BODY, Err(VerifyError::MalformedSignature)),
            (format!("t={TIMESTAMP},v1="), BODY, Err(VerifyError::MalformedSignature)),
            (format!("t={TIMESTAMP}"), BODY, Err(VerifyError::NoMatchingSignature)),
            (format!("t={TIMESTAMP},v0={GOLDEN}"), BODY, Err(VerifyError::NoMatchingSignature)),
            (format!("v1={GOLDEN}"), BODY, Err(VerifyError::MalformedSignature)),
            (format!("t={TIMESTAMP},t={TIMESTAMP},v1={GOLDEN}"), BODY, Err(VerifyError::MalformedSignature)),
            (format!("t=-{TIMESTAMP},v1={GOLDEN}"), BODY, Err(VerifyError::InvalidTimestamp)),
            (format!("t=abc,v1={GOLDEN}"), BODY, Err(VerifyError::InvalidTimestamp)),
            (",,,".to_owned(), BODY, Err(VerifyError::MalformedSignature)),
            (String::new(), BODY, Err(VerifyError::MissingHeader(SIGNATURE_HEADER))),
        ];
        for (header, body, expected) in table {
            assert_eq!(check(&verifier, body, &header, TIMESTAMP), expected, "{header:?}");
        }
        let many = format!("t={TIMESTAMP}{}", ",v1=00".repeat(MAX_SIGNATURE_ENTRIES));
        assert_eq!(check(&verifier, BODY, &many, TIMESTAMP), Err(VerifyError::TooManySignatures));
        assert_eq!(check(&Stripe::new([""; 0]), BODY, &golden_header(), TIMESTAMP), Err(VerifyError::NoSecrets));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_header(value in any::<String>(), now in any::<i64>()) {
            let pairs = [(SIGNATURE_HEADER, value.as_str())];
            let _ = Stripe::new([SECRET]).verify(BODY.as_bytes(), &from_pairs(&pairs), now);
        }

        #[test]
        fn never_panics_on_structured_headers(
            t in "[0-9-]{0,22}",
            entries in prop::collection::vec(("[a-z0-9]{0,3}", "[0-9a-fA-F=,]{0,70}"), 0..6),
        ) {
            let mut header = format!("t={t}");
            for (key, value) in entries {
                header.push_str(&format!(",{key}={value}"));
            }
            let pairs = [(SIGNATURE_HEADER, header.as_str())];
            let _ = Stripe::new([SECRET]).verify(BODY.as_bytes(), &from_pairs(&pairs), TIMESTAMP);
        }
    }
}
