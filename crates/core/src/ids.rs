//! Prefixed, KSUID-style identifiers (`app_`, `ep_`, `msg_`, `atmpt_`, `src_`, `log_`).
//!
//! The 20 id bytes are 4 bytes of seconds since the KSUID epoch, 2 bytes of
//! milliseconds-within-the-second and 14 random bytes, printed as 27 base62 digits.
//! Because the alphabet is in ASCII order and the timestamp leads, ids sort by
//! creation time (to the millisecond) as plain strings; list cursors rely on that.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;

/// KSUID epoch (2014-05-13T16:53:20Z) in unix seconds.
const EPOCH: i64 = 1_400_000_000;
const RAW_LEN: usize = 20;
/// Length of the base62 body of an id.
pub const BODY_LEN: usize = 27;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The prefix is missing or names another kind of id.
    #[error("expected an id starting with `{0}`")]
    WrongPrefix(&'static str),
    /// The body is not 27 base62 digits.
    #[error("malformed id body")]
    Malformed,
}

fn encode(raw: [u8; RAW_LEN]) -> [u8; BODY_LEN] {
    // Big-number base conversion: 20 bytes (160 bits) fit in 27 base62 digits.
    let mut digits = [b'0'; BODY_LEN];
    let mut num = raw.to_vec();
    for slot in digits.iter_mut().rev() {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    digits
}

fn is_body(body: &str) -> bool {
    body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Makes the body of a new id for the given creation time.
pub fn new_body(now: DateTime<Utc>, rng: &mut impl RngCore) -> String {
    let mut raw = [0u8; RAW_LEN];
    let secs = (now.timestamp() - EPOCH).clamp(0, i64::from(u32::MAX)) as u32;
    raw[..4].copy_from_slice(&secs.to_be_bytes());
    let millis = now.timestamp_subsec_millis().min(999) as u16;
    raw[4..6].copy_from_slice(&millis.to_be_bytes());
    rng.fill_bytes(&mut raw[6..]);
    String::from_utf8(encode(raw).to_vec()).expect("base62 alphabet is ASCII")
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Makes a fresh id for something created at `now`.
            pub fn generate(now: DateTime<Utc>, rng: &mut impl RngCore) -> Self {
                Self(format!("{}{}", $prefix, new_body(now, rng)))
            }

            /// Parses an id, checking its prefix and body.
            ///
            /// # Errors
            /// [`IdError`] when the string is not an id of this kind.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let body = s.strip_prefix($prefix).ok_or(IdError::WrongPrefix($prefix))?;
                if is_body(body) { Ok(Self(s.to_owned())) } else { Err(IdError::Malformed) }
            }

            /// Whether `s` looks like an id of this kind (as opposed to a `uid`).
            pub fn is_id(s: &str) -> bool {
                Self::parse(s).is_ok()
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(/// An application.
    AppId, "app_");
prefixed_id!(/// An endpoint of an application.
    EndpointId, "ep_");
prefixed_id!(/// A message (event) sent to an application.
    MessageId, "msg_");
prefixed_id!(/// One delivery attempt.
    AttemptId, "atmpt_");
prefixed_id!(/// An ingest source.
    SourceId, "src_");
prefixed_id!(/// One entry of an ingest source's request log.
    IngestLogId, "log_");
prefixed_id!(/// An API token.
    TokenId, "tok_");
prefixed_id!(/// A background task (recover, replay) as the API reports it.
    TaskId, "qtask_");

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn generated_ids_have_prefix_and_27_digit_body() {
        let mut rng = StdRng::seed_from_u64(1);
        let id = MessageId::generate(Utc::now(), &mut rng);
        assert!(id.as_str().starts_with("msg_"));
        assert_eq!(id.as_str().len(), 4 + BODY_LEN);
        assert_eq!(MessageId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn parse_rejects_other_kinds_and_bad_bodies() {
        assert_eq!(AppId::parse("ep_27UH4WbU6Z5A5EzD8u03UvzRbpk"), Err(IdError::WrongPrefix("app_")));
        assert_eq!(AppId::parse("app_short"), Err(IdError::Malformed));
        assert_eq!(AppId::parse("app_27UH4WbU6Z5A5EzD8u03Uvz-bpk"), Err(IdError::Malformed));
        assert!(MessageId::parse("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk").is_ok());
    }

    #[test]
    fn zero_and_max_bytes_encode_at_both_ends() {
        assert_eq!(encode([0; RAW_LEN]), [b'0'; BODY_LEN]);
        // KSUID's documented maximum.
        assert_eq!(&encode([0xff; RAW_LEN]), b"aWgEPTl1tmebfsQzFP4bxwgy80V");
    }

    proptest! {
        #[test]
        fn ids_sort_by_creation_millisecond(a in 0i64..4_000_000_000_000, b in 0i64..4_000_000_000_000, seed: u64) {
            let mut rng = StdRng::seed_from_u64(seed);
            let ta = Utc.timestamp_millis_opt(EPOCH * 1000 + a).unwrap();
            let tb = Utc.timestamp_millis_opt(EPOCH * 1000 + b).unwrap();
            let ia = AppId::generate(ta, &mut rng);
            let ib = AppId::generate(tb, &mut rng);
            if a < b { prop_assert!(ia < ib); }
            if a > b { prop_assert!(ia > ib); }
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = EndpointId::parse(&s);
        }
    }
}
