//! Reading a URL host as an IP literal the way browsers and `inet_aton` do: decimal
//! (`2130706433`), hex (`0x7f000001`), octal (`0177.0.0.1`), short (`127.1`,
//! `127.0.1`) and mixed forms, plus bracketed or bare IPv6. A host that ends in a
//! number but does not form a valid IPv4 address is malformed rather than a hostname,
//! so it can never slip past the classifier as "a name to resolve later".
//!
//! The rules follow the WHATWG URL standard's IPv4 parser, which is also what the
//! `url` crate (and so reqwest) applies to http(s) URLs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest DNS name, in bytes, without the trailing root dot.
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;

/// A host that is neither a valid IP literal nor a valid hostname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed host `{host}`: {reason}")]
pub struct MalformedHost {
    /// The host as given.
    pub host: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Reads `host` as an IP literal.
///
/// Returns `Ok(Some(ip))` for any IPv4 spelling or IPv6 literal (bracketed or not),
/// `Ok(None)` for a syntactically valid hostname (ASCII letters, digits, `-`, `_`,
/// dot-separated, one trailing dot allowed), which the caller must resolve and check.
///
/// # Errors
/// [`MalformedHost`] for everything else, notably numeric-looking hosts that are not
/// valid addresses (`1.2.3.256`, `08`, `1.2.3.4.5`, `foo.0x`): fail closed.
pub fn parse_host_literal(host: &str) -> Result<Option<IpAddr>, MalformedHost> {
    let malformed = |reason| MalformedHost { host: host.to_owned(), reason };
    if host.is_empty() {
        return Err(malformed("the host is empty"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| malformed("unclosed `[`"))?;
        return parse_ipv6(inner).ok_or_else(|| malformed("not a valid IPv6 address"));
    }
    if host.contains(':') {
        return parse_ipv6(host).ok_or_else(|| malformed("not a valid IPv6 address"));
    }
    // One trailing dot names the DNS root: `127.0.0.1.` is still 127.0.0.1.
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|label| label.is_empty()) {
        return Err(malformed("empty label"));
    }
    if labels.last().is_some_and(|last| is_numeric_label(last)) {
        return parse_ipv4(&labels)
            .map(|ip| Some(IpAddr::V4(ip)))
            .ok_or_else(|| malformed("ends in a number but is not a valid IPv4 address"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(malformed("longer than 253 bytes"));
    }
    if labels.iter().any(|label| label.len() > MAX_LABEL_LEN) {
        return Err(malformed("a label is longer than 63 bytes"));
    }
    let valid_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !name.bytes().all(|b| b == b'.' || valid_byte(b)) {
        return Err(malformed("only ASCII letters, digits, `-`, `_` and `.` are allowed"));
    }
    Ok(None)
}

fn parse_ipv6(text: &str) -> Option<Option<IpAddr>> {
    text.parse::<Ipv6Addr>().ok().map(|ip| Some(IpAddr::V6(ip)))
}

/// WHATWG "ends in a number": all decimal digits, or `0x` followed by hex digits.
fn is_numeric_label(label: &str) -> bool {
    if label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    hex_digits(label).is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hex_digits(label: &str) -> Option<&str> {
    label.strip_prefix("0x").or_else(|| label.strip_prefix("0X"))
}

/// Up to four parts; each but the last is one byte, the last fills the remaining bytes.
fn parse_ipv4(parts: &[&str]) -> Option<Ipv4Addr> {
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 {
        return None;
    }
    let mut address: u64 = 0;
    for (index, part) in leading.iter().enumerate() {
        let value = parse_number(part)?;
        if value > 255 {
            return None;
        }
        address |= value << (8 * (3 - index));
    }
    let last = parse_number(last)?;
    let remaining_bits = 8 * (4 - leading.len());
    if last >= 1u64 << remaining_bits {
        return None;
    }
    u32::try_from(address | last).ok().map(Ipv4Addr::from_bits)
}

/// One part: `0x…` hex (`0x` alone is zero), a leading `0` octal, otherwise decimal.
fn parse_number(part: &str) -> Option<u64> {
    let (radix, digits) = if let Some(hex) = hex_digits(part) {
        (16, hex)
    } else if part.len() > 1 && part.starts_with('0') {
        (8, &part[1..])
    } else {
        (10, part)
    };
    digits.bytes().try_fold(0u64, |value, byte| {
        let digit = char::from(byte).to_digit(radix)?;
        value.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v4(text: &str) -> Result<Option<IpAddr>, MalformedHost> {
        Ok(Some(IpAddr::V4(text.parse().unwrap())))
    }

    #[test]
    fn odd_ipv4_spellings_map_to_one_address() {
        let table = [
            ("127.0.0.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0X7F000001", "127.0.0.1"),
            ("0x00007f000001", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("0177.0000.0.01", "127.0.0.1"),
            ("0x7f.0.0.1", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1"),
            ("0x7f.0.0x0.01", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("0x", "0.0.0.0"),
            ("0xA9FEA9FE", "169.254.169.254"),
            ("169.254.43518", "169.254.169.254"),
            ("169.16689662", "169.254.169.254"),
            ("4294967295", "255.255.255.255"),
            ("010.0.0.1", "8.0.0.1"),
            ("8.8.8.8", "8.8.8.8"),
        ];
        for (host, expected) in table {
            assert_eq!(parse_host_literal(host), v4(expected), "{host}");
        }
    }

    #[test]
    fn ipv6_literals_parse_with_or_without_brackets() {
        let table = [
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
            ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),
            ("[2606:4700::1111]", "2606:4700::1111"),
        ];
        for (host, expected) in table {
            let expected: Ipv6Addr = expected.parse().unwrap();
            assert_eq!(parse_host_literal(host), Ok(Some(IpAddr::V6(expected))), "{host}");
        }
    }

    #[test]
    fn hostnames_are_left_for_the_resolver() {
        let names = [
            "example.com",
            "example.com.",
            "localhost",
            "a-b_c.example",
            "127.0.0.1.nip.io",
            "0x7f.example",
            "1a",
            "0xg1",
            "xn--bcher-kva.example",
        ];
        for host in names {
            assert_eq!(parse_host_literal(host), Ok(None), "{host}");
        }
    }

    #[test]
    fn numeric_or_garbled_hosts_fail_closed() {
        let malformed = [
            "",
            ".",
            "256.0.0.1",
            "1.2.3.256",
            "1.2.65536",
            "1.16777216",
            "4294967296",
            "0x100000000",
            "1.2.3.4.5",
            "08",
            "0179.0.0.1",
            "1..1",
            "foo.123",
            "foo.0x",
            "example..com",
            "99999999999999999999999999",
            "[::1",
            "[127.0.0.1]",
            "[fe80::1%25eth0]",
            "fe80::1%eth0",
            "::g",
            "exa mple.com",
            "user@example.com",
            "ex%61mple.com",
            "bücher.example",
        ];
        for host in malformed {
            assert!(parse_host_literal(host).is_err(), "{host:?} should be malformed");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(parse_host_literal(&long_label).is_err());
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert!(parse_host_literal(&long_name).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(host in any::<String>()) {
            let _ = parse_host_literal(&host);
        }

        #[test]
        fn never_panics_on_dotted_numbers(host in "[0-9xXa-fA-F.]{0,40}") {
            let _ = parse_host_literal(&host);
        }
    }
}
