//! HMAC-SHA256 over several parts, constant-time comparison of decoded tags, and
//! the strict hex and base64 decoding every scheme uses for the tag it receives.
//!
//! Comparisons are always between decoded bytes of a fixed, checked length
//! (CVE-2024-21491: a comparison that ignored length accepted a shorter prefix).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Bytes in an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// An HMAC-SHA256 tag.
pub(crate) type Tag = [u8; TAG_LEN];

/// HMAC-SHA256 of the concatenation of `parts`, without joining them in memory.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Tag {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts keys of every length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// True when `candidate` is exactly `expected`: lengths checked first, then bytes
/// compared in constant time.
pub(crate) fn tag_matches(expected: &Tag, candidate: &[u8]) -> bool {
    candidate.len() == expected.len() && bool::from(expected.as_slice().ct_eq(candidate))
}

/// Decodes exactly 64 hex digits (either case) into a tag; anything else is `None`.
pub(crate) fn decode_hex_tag(text: &str) -> Option<Tag> {
    let bytes = text.as_bytes();
    if bytes.len() != TAG_LEN * 2 {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    for (out, pair) in tag.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(tag)
}

/// Decodes canonical padded base64 of exactly `N` bytes; anything else is `None`.
pub(crate) fn decode_base64_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    // A quick bound before decoding, so a huge header is not decoded just to be refused.
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    STANDARD.decode(text).ok()?.try_into().ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tag_matching_requires_the_full_length() {
        let tag = [0xabu8; TAG_LEN];
        assert!(tag_matches(&tag, &tag));
        assert!(!tag_matches(&tag, &tag[..31]));
        assert!(!tag_matches(&tag, &tag[..1]));
        assert!(!tag_matches(&tag, &[]));
        let mut longer = tag.to_vec();
        longer.push(0);
        assert!(!tag_matches(&tag, &longer));
    }

    #[test]
    fn hex_decoding_is_exact() {
        let text = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let tag = decode_hex_tag(text).unwrap();
        assert_eq!(tag[0], 0x75);
        assert_eq!(decode_hex_tag(&text.to_uppercase()), Some(tag));
        assert_eq!(decode_hex_tag(&text[..62]), None);
        assert_eq!(decode_hex_tag(&format!("{text}00")), None);
        assert_eq!(decode_hex_tag(&text.replace('7', "g")), None);
        assert_eq!(decode_hex_tag("é7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"), None);
    }

    #[test]
    fn base64_decoding_is_exact() {
        let text = "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert!(decode_base64_exact::<32>(text).is_some());
        assert!(decode_base64_exact::<32>(&text[..43]).is_none());
        assert!(decode_base64_exact::<32>("tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkx=").is_none());
        assert!(decode_base64_exact::<64>(text).is_none());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(text in any::<String>()) {
            let _ = decode_hex_tag(&text);
            let _ = decode_base64_exact::<32>(&text);
            let _ = decode_base64_exact::<64>(&text);
        }
    }
}
