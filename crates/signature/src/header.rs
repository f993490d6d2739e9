//! Reading request headers and timestamps: the header names, the lookup callers pass
//! in, and the tolerance window shared by every timestamped scheme.
//!
//! The crate does not depend on an HTTP library. A verifier takes a lookup
//! `&dyn Fn(&str) -> Option<&str>` that receives a lower-case header name and returns
//! its value; matching names case-insensitively, and deciding what to do with a header
//! sent twice, is the caller's job. With `http::HeaderMap` that is
//! `&|name: &str| map.get(name).and_then(|v| v.to_str().ok())`.

use crate::VerifyError;

/// Standard Webhooks message id header.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks timestamp header (unix seconds).
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks signature header (space-separated entries).
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Svix-branded name of [`WEBHOOK_ID`].
pub const SVIX_ID: &str = "svix-id";
/// Svix-branded name of [`WEBHOOK_TIMESTAMP`].
pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
/// Svix-branded name of [`WEBHOOK_SIGNATURE`].
pub const SVIX_SIGNATURE: &str = "svix-signature";

/// Default tolerance, in both directions, between a signed timestamp and `now`.
pub const DEFAULT_TOLERANCE_SECS: u32 = 300;

/// Most signature entries a verifier will look at in one header. Rotation keeps at
/// most about ten old keys, so anything past this is refused rather than processed.
pub const MAX_SIGNATURE_ENTRIES: usize = 32;

/// A header lookup over a list of `(name, value)` pairs, matching names
/// case-insensitively and returning the first match. Handy for tests and for callers
/// that hold headers as pairs.
pub fn from_pairs<'h>(pairs: &'h [(&'h str, &'h str)]) -> impl Fn(&str) -> Option<&'h str> + 'h {
    move |name: &str| pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| *value)
}

/// The first of `names` that is present and not blank, trimmed.
///
/// # Errors
/// [`VerifyError::MissingHeader`] with the first name when none is usable.
pub(crate) fn require<'h>(
    headers: &dyn Fn(&str) -> Option<&'h str>,
    names: &[&'static str],
) -> Result<&'h str, VerifyError> {
    names
        .iter()
        .filter_map(|name| headers(name))
        .map(str::trim)
        .find(|value| !value.is_empty())
        .ok_or(VerifyError::MissingHeader(names.first().copied().unwrap_or("")))
}

/// Parses unix seconds written as plain ASCII digits (no sign, no spaces, no fraction).
///
/// # Errors
/// [`VerifyError::InvalidTimestamp`] for anything else, including overflow.
pub(crate) fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    value.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

/// Checks `timestamp` lies within `tolerance_secs` of `now`, in either direction.
///
/// # Errors
/// [`VerifyError::TimestampTooOld`] or [`VerifyError::TimestampTooNew`].
pub(crate) fn check_window(timestamp: i64, now: i64, tolerance_secs: u32) -> Result<(), VerifyError> {
    // i128 so that no pair of i64 values can overflow the difference.
    let age = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance_secs);
    if age > tolerance {
        Err(VerifyError::TimestampTooOld)
    } else if -age > tolerance {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_require_skips_blank_values() {
        let pairs = [("Webhook-Id", "  "), ("SVIX-ID", " msg_1 ")];
        let lookup = from_pairs(&pairs);
        assert_eq!(lookup("webhook-id"), Some("  "));
        assert_eq!(require(&lookup, &[WEBHOOK_ID, SVIX_ID]), Ok("msg_1"));
        assert_eq!(
            require(&lookup, &[WEBHOOK_SIGNATURE, SVIX_SIGNATURE]),
            Err(VerifyError::MissingHeader(WEBHOOK_SIGNATURE))
        );
    }

    #[test]
    fn timestamps_are_plain_digits() {
        let table = [
            ("1649367553", Ok(1_649_367_553)),
            ("0", Ok(0)),
            ("", Err(VerifyError::InvalidTimestamp)),
            ("-1", Err(VerifyError::InvalidTimestamp)),
            ("+1", Err(VerifyError::InvalidTimestamp)),
            ("1.5", Err(VerifyError::InvalidTimestamp)),
            ("1e9", Err(VerifyError::InvalidTimestamp)),
            ("99999999999999999999", Err(VerifyError::InvalidTimestamp)),
            ("١٢٣", Err(VerifyError::InvalidTimestamp)),
        ];
        for (input, expected) in table {
            assert_eq!(parse_timestamp(input), expected, "{input:?}");
        }
    }

    #[test]
    fn window_is_inclusive_at_the_tolerance_in_both_directions() {
        let now = 1_000_000;
        let table = [
            (now, Ok(())),
            (now - 300, Ok(())),
            (now + 300, Ok(())),
            (now - 301, Err(VerifyError::TimestampTooOld)),
            (now + 301, Err(VerifyError::TimestampTooNew)),
            (i64::MIN, Err(VerifyError::TimestampTooOld)),
            (i64::MAX, Err(VerifyError::TimestampTooNew)),
        ];
        for (timestamp, expected) in table {
            assert_eq!(check_window(timestamp, now, 300), expected, "{timestamp}");
        }
        assert_eq!(check_window(0, i64::MIN, 300), Err(VerifyError::TimestampTooNew));
    }
}
