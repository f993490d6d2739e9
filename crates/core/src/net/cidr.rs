//! A small CIDR type: parse `a.b.c.d/n` or `v6::/n`, print it back, and test whether an
//! address falls inside. Nothing here knows which ranges are blocked; that table is in
//! [`super::ranges`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address with its host bits zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not a plain dotted-quad IPv4 or an IPv6 address.
    #[error("`{0}` is not an IP address")]
    InvalidAddress(String),
    /// The prefix is not a decimal number within the family's bit width.
    #[error("prefix `{0}` is not a number from 0 to the address width (32 or 128)")]
    InvalidPrefix(String),
    /// Bits beyond the prefix are set, so the intended range is ambiguous.
    #[error("host bits are set; did you mean {0}?")]
    HostBitsSet(Cidr),
}

impl Cidr {
    /// An IPv4 network, for constant tables; host bits must be zero.
    ///
    /// # Panics
    /// If `prefix` exceeds 32 or host bits are set (at compile time in a `const`).
    pub const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        assert!(prefix <= 32, "IPv4 prefix exceeds 32");
        let bits = u32::from_be_bytes(octets);
        assert!(bits & !mask_v4(prefix) == 0, "IPv4 network has host bits set");
        Self { network: IpAddr::V4(Ipv4Addr::from_bits(bits)), prefix }
    }

    /// An IPv6 network, for constant tables; host bits must be zero.
    ///
    /// # Panics
    /// If `prefix` exceeds 128 or host bits are set (at compile time in a `const`).
    pub const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        assert!(prefix <= 128, "IPv6 prefix exceeds 128");
        let [a, b, c, d, e, f, g, h] = segments;
        let address = Ipv6Addr::new(a, b, c, d, e, f, g, h);
        assert!(address.to_bits() & !mask_v6(prefix) == 0, "IPv6 network has host bits set");
        Self { network: IpAddr::V6(address), prefix }
    }

    /// Parses `address/prefix`, or a bare address as a single-address network. IPv4
    /// must be strict dotted-quad: the odd spellings that [`super::parse_host_literal`]
    /// accepts are refused here, since an operator's list should say what it means.
    ///
    /// # Errors
    /// A [`CidrError`]; [`CidrError::HostBitsSet`] suggests the network meant.
    pub fn parse(input: &str) -> Result<Self, CidrError> {
        let input = input.trim();
        let (address, prefix) = match input.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (input, None),
        };
        let address: IpAddr = address.parse().map_err(|_| CidrError::InvalidAddress(address.to_owned()))?;
        let width = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => width,
            Some(text) => text
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width && text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| CidrError::InvalidPrefix(text.to_owned()))?,
        };
        let masked = Self::masked(address, prefix);
        if masked.network != address {
            return Err(CidrError::HostBitsSet(masked));
        }
        Ok(masked)
    }

    /// True when `ip` is inside this network. IPv4 never matches an IPv6 network or
    /// the reverse; callers canonicalise IPv4-mapped addresses first.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => ip.to_bits() & mask_v4(self.prefix) == net.to_bits(),
            (IpAddr::V6(net), IpAddr::V6(ip)) => ip.to_bits() & mask_v6(self.prefix) == net.to_bits(),
            _ => false,
        }
    }

    /// The first address of the network.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    fn masked(address: IpAddr, prefix: u8) -> Self {
        let network = match address {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from_bits(ip.to_bits() & mask_v4(prefix))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from_bits(ip.to_bits() & mask_v6(prefix))),
        };
        Self { network, prefix }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

const fn mask_v4(prefix: u8) -> u32 {
    // checked_shl: a shift by the full width (prefix 0) yields an empty mask.
    match u32::MAX.checked_shl(32 - prefix as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

const fn mask_v6(prefix: u8) -> u128 {
    match u128::MAX.checked_shl(128 - prefix as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_both_families() {
        let table = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("127.0.0.1", "127.0.0.1/32"),
            (" 192.168.0.0/16 ", "192.168.0.0/16"),
            ("fc00::/7", "fc00::/7"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            ("2001:db8::/32", "2001:db8::/32"),
        ];
        for (input, printed) in table {
            assert_eq!(Cidr::parse(input).unwrap().to_string(), printed, "{input}");
        }
    }

    #[test]
    fn refuses_bad_entries_with_a_reason() {
        let table = [
            ("10.0.0.0/33", CidrError::InvalidPrefix("33".into())),
            ("::/129", CidrError::InvalidPrefix("129".into())),
            ("10.0.0.0/", CidrError::InvalidPrefix(String::new())),
            ("10.0.0.0/+8", CidrError::InvalidPrefix("+8".into())),
            ("10.0.0.0/8/8", CidrError::InvalidPrefix("8/8".into())),
            ("10.0.0/8", CidrError::InvalidAddress("10.0.0".into())),
            ("0177.0.0.1/32", CidrError::InvalidAddress("0177.0.0.1".into())),
            ("example.com/8", CidrError::InvalidAddress("example.com".into())),
            ("", CidrError::InvalidAddress(String::new())),
            ("10.0.0.5/8", CidrError::HostBitsSet(Cidr::v4([10, 0, 0, 0], 8))),
        ];
        for (input, expected) in table {
            assert_eq!(Cidr::parse(input), Err(expected), "{input}");
        }
        let message = Cidr::parse("10.0.0.5/8").unwrap_err().to_string();
        assert!(message.contains("10.0.0.0/8"), "{message}");
    }

    #[test]
    fn contains_respects_the_prefix_edges() {
        let net = Cidr::v4([172, 16, 0, 0], 12);
        assert!(net.contains(ip("172.16.0.0")));
        assert!(net.contains(ip("172.31.255.255")));
        assert!(!net.contains(ip("172.32.0.0")));
        assert!(!net.contains(ip("172.15.255.255")));
        assert!(!net.contains(ip("::ffff:172.16.0.1")), "families never mix");

        let any = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(any.contains(ip("255.255.255.255")));
        let host = Cidr::parse("127.0.0.1/32").unwrap();
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));

        let v6 = Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10);
        assert!(v6.contains(ip("febf:ffff::1")));
        assert!(!v6.contains(ip("fec0::")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2606:4700::1111")));
    }
}
