//! Slack requests: `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`, with the
//! timestamp in `X-Slack-Request-Timestamp` and the app's signing secret as the key.

use crate::VerifyError;
use crate::digest;
use crate::header::{self, DEFAULT_TOLERANCE_SECS};
use crate::providers::{InboundVerifier, ProviderSecrets, any_key_matches};

/// The header Slack puts its signature in.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header Slack puts the signed timestamp in.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

const PREFIX: &str = "v0=";

/// Verifies Slack requests against the app's signing secret(s).
#[derive(Debug, Clone)]
pub struct Slack {
    secrets: ProviderSecrets,
    tolerance_secs: u32,
}

impl Slack {
    /// A verifier accepting requests signed with any of `secrets`, with a 300 s tolerance.
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

impl InboundVerifier for Slack {
    fn verify<'h>(
        &self,
        body: &[u8],
        headers: &dyn Fn(&str) -> Option<&'h str>,
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        let timestamp_text = header::require(headers, &[TIMESTAMP_HEADER])?;
        let value = header::require(headers, &[SIGNATURE_HEADER])?;
        let timestamp = header::parse_timestamp(timestamp_text)?;
        header::check_window(timestamp, now_secs, self.tolerance_secs)?;
        let candidate =
            value.strip_prefix(PREFIX).and_then(digest::decode_hex_tag).ok_or(VerifyError::MalformedSignature)?;
        // Slack signs the timestamp exactly as it appears in the header.
        let parts: [&[u8]; 4] = [b"v0:", timestamp_text.as_bytes(), b":", body];
        if any_key_matches(&self.secrets, &parts, &candidate)? { Ok(()) } else { Err(VerifyError::NoMatchingSignature) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::header::from_pairs;
    use crate::providers::test_support::hex_hmac;

    // Slack's documented example ("Verifying requests from Slack").
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const DOC_NOW: i64 = 1_531_420_618;

    fn check(verifier: &Slack, body: &str, timestamp: &str, signature: &str, now: i64) -> Result<(), VerifyError> {
        let pairs = [("X-Slack-Request-Timestamp", timestamp), ("X-Slack-Signature", signature)];
        verifier.verify(body.as_bytes(), &from_pairs(&pairs), now)
    }

    #[test]
    fn documented_example_verifies() {
        let verifier = Slack::new([DOC_SECRET]);
        assert_eq!(check(&verifier, DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW), Ok(()));
    }

    #[test]
    fn independently_computed_signature_verifies_with_a_rotated_secret() {
        let body = r#"{"type":"event_callback"}"#;
        let signature = format!("v0={}", hex_hmac(b"new", format!("v0:{DOC_TIMESTAMP}:{body}").as_bytes()));
        let verifier = Slack::new(["old", "new"]);
        assert_eq!(check(&verifier, body, DOC_TIMESTAMP, &signature, DOC_NOW), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_window_are_rejected_both_ways() {
        let verifier = Slack::new([DOC_SECRET]);
        let table = [
            (DOC_NOW + 300, Ok(())),
            (DOC_NOW - 300, Ok(())),
            (DOC_NOW + 301, Err(VerifyError::TimestampTooOld)),
            (DOC_NOW - 301, Err(VerifyError::TimestampTooNew)),
        ];
        for (now, expected) in table {
            assert_eq!(check(&verifier, DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, now), expected, "now {now}");
        }
    }

    #[test]
    fn bad_headers_are_rejected() {
        let verifier = Slack::new([DOC_SECRET]);
        let truncated = &DOC_SIGNATURE[..DOC_SIGNATURE.len() - 1];
        let table = [
            (DOC_TIMESTAMP, DOC_SIGNATURE, "x", Err(VerifyError::NoMatchingSignature)),
            ("01531420618", DOC_SIGNATURE, DOC_BODY, Err(VerifyError::NoMatchingSignature)),
            (DOC_TIMESTAMP, truncated, DOC_BODY, Err(VerifyError::MalformedSignature)),
            (DOC_TIMESTAMP, "v0=", DOC_BODY, Err(VerifyError::MalformedSignature)),
            (DOC_TIMESTAMP, &DOC_SIGNATURE[3..], DOC_BODY, Err(VerifyError::MalformedSignature)),
            ("1531420618.5", DOC_SIGNATURE, DOC_BODY, Err(VerifyError::InvalidTimestamp)),
            ("", DOC_SIGNATURE, DOC_BODY, Err(VerifyError::MissingHeader(TIMESTAMP_HEADER))),
            (DOC_TIMESTAMP, "", DOC_BODY, Err(VerifyError::MissingHeader(SIGNATURE_HEADER))),
        ];
        for (timestamp, signature, body, expected) in table {
            assert_eq!(check(&verifier, body, timestamp, signature, DOC_NOW), expected, "{timestamp:?} {signature:?}");
        }
        assert_eq!(
            check(&Slack::new([""; 0]), DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW),
            Err(VerifyError::NoSecrets)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_header(timestamp in any::<String>(), signature in any::<String>(), now in any::<i64>()) {
            let _ = check(&Slack::new([DOC_SECRET]), DOC_BODY, &timestamp, &signature, now);
        }
    }
}
