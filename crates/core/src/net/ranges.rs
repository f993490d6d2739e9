//! The range table of destinations Herald refuses, the cloud metadata addresses that
//! stay refused whatever the allow-list says, the operator's [`AllowList`], and
//! [`check_ip`], which combines them into one verdict for one address.
//!
//! Rust's `is_private`/`is_global` are not used: the first misses CGNAT, metadata and
//! the IPv6 transition ranges, and the second is unstable (SECURITY.md, "Outbound requests").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::cidr::{Cidr, CidrError};

/// Why a range is blocked; printed in refusals ("loopback address 127.0.0.1 …").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// `0.0.0.0/8`, `::/128`: "this host".
    Unspecified,
    /// `127.0.0.0/8`, `::1/128`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 carrier-grade NAT: `100.64/10`.
    SharedAddressSpace,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `192.0.0.0/24`: IETF protocol assignments.
    ProtocolAssignment,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`.
    Documentation,
    /// `192.88.99/24`: the retired 6to4 relay anycast.
    Relay6to4,
    /// `198.18/15`: benchmarking.
    Benchmarking,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `240/4`: reserved for future use.
    Reserved,
    /// `255.255.255.255`.
    Broadcast,
    /// `::/96`: deprecated IPv4-compatible IPv6, reachable only through tunnels.
    Ipv4Compatible,
    /// `64:ff9b::/96`, `64:ff9b:1::/48`: NAT64, which reaches any IPv4 including private.
    Nat64,
    /// `2002::/16`: 6to4, which embeds an IPv4 address.
    SixToFour,
    /// `2001::/32`: Teredo, which embeds an IPv4 address.
    Teredo,
    /// `100::/64`: discard-only.
    DiscardOnly,
    /// The rest of `100::/8`: unassigned, reserved by IANA.
    ReservedV6,
    /// `::ffff:0:0:0/96`: SIIT (IPv4-translated), which reaches any IPv4 through a
    /// stateless translator.
    Siit,
    /// `fc00::/7`, including AWS IMDS `fd00:ec2::254`.
    UniqueLocal,
    /// `fec0::/10`: deprecated site-local.
    SiteLocal,
}

impl AddressKind {
    /// A short phrase naming the kind, as used in refusal messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared (carrier-grade NAT)",
            Self::LinkLocal => "link-local",
            Self::ProtocolAssignment => "IETF protocol assignment",
            Self::Documentation => "documentation",
            Self::Relay6to4 => "6to4 relay anycast",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::Broadcast => "broadcast",
            Self::Ipv4Compatible => "IPv4-compatible IPv6",
            Self::Nat64 => "NAT64",
            Self::SixToFour => "6to4",
            Self::Teredo => "Teredo",
            Self::DiscardOnly => "discard-only",
            Self::ReservedV6 => "reserved IPv6",
            Self::Siit => "IPv4-translated (SIIT)",
            Self::UniqueLocal => "unique local",
            Self::SiteLocal => "site-local",
        }
    }
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// One row of the blocked-range table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedRange {
    /// The network refused.
    pub cidr: Cidr,
    /// Why it is refused.
    pub kind: AddressKind,
}

const fn row(cidr: Cidr, kind: AddressKind) -> BlockedRange {
    BlockedRange { cidr, kind }
}

/// Every range refused by default (SECURITY.md, "Outbound requests", plus the deprecated IPv6
/// transition and site-local ranges, refused for the same reason as NAT64 and 6to4).
/// An IPv4-mapped IPv6 address (`::ffff:0:0/96`) is classified by its IPv4 address.
pub const BLOCKED_RANGES: &[BlockedRange] = {
    use AddressKind as K;
    &[
        row(Cidr::v4([0, 0, 0, 0], 8), K::Unspecified),
        row(Cidr::v4([10, 0, 0, 0], 8), K::Private),
        row(Cidr::v4([100, 64, 0, 0], 10), K::SharedAddressSpace),
        row(Cidr::v4([127, 0, 0, 0], 8), K::Loopback),
        row(Cidr::v4([169, 254, 0, 0], 16), K::LinkLocal),
        row(Cidr::v4([172, 16, 0, 0], 12), K::Private),
        row(Cidr::v4([192, 0, 0, 0], 24), K::ProtocolAssignment),
        row(Cidr::v4([192, 0, 2, 0], 24), K::Documentation),
        row(Cidr::v4([192, 88, 99, 0], 24), K::Relay6to4),
        row(Cidr::v4([192, 168, 0, 0], 16), K::Private),
        row(Cidr::v4([198, 18, 0, 0], 15), K::Benchmarking),
        row(Cidr::v4([198, 51, 100, 0], 24), K::Documentation),
        row(Cidr::v4([203, 0, 113, 0], 24), K::Documentation),
        row(Cidr::v4([224, 0, 0, 0], 4), K::Multicast),
        row(Cidr::v4([255, 255, 255, 255], 32), K::Broadcast),
        row(Cidr::v4([240, 0, 0, 0], 4), K::Reserved),
        row(Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), K::Unspecified),
        row(Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), K::Loopback),
        row(Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96), K::Ipv4Compatible),
        row(Cidr::v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), K::Siit),
        row(Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), K::Nat64),
        row(Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), K::Nat64),
        row(Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), K::DiscardOnly),
        // After the discard-only /64: the first matching row names the kind.
        row(Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 8), K::ReservedV6),
        row(Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), K::Teredo),
        row(Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), K::Documentation),
        row(Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), K::SixToFour),
        row(Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), K::UniqueLocal),
        row(Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), K::LinkLocal),
        row(Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), K::SiteLocal),
        row(Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), K::Multicast),
    ]
};

/// Cloud metadata services, refused even when the allow-list covers them: AWS, GCP,
/// Azure and OpenStack IMDS (`169.254.169.254`), AWS ECS task metadata
/// (`169.254.170.2`), AWS IMDS over IPv6 (`fd00:ec2::254`), Alibaba Cloud
/// (`100.100.100.200`), GCP over IPv6 (`fd20:ce::254`) and Azure's WireServer
/// (`168.63.129.16`, a public address reachable only from inside Azure).
pub const CLOUD_METADATA: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)),
];

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The address is in a blocked range that the allow-list does not open.
    #[error("{kind} address {ip} is not allowed (HERALD_ALLOW_CIDRS can open {range})")]
    Blocked {
        /// The address as given (an IPv4-mapped address keeps its IPv6 form).
        ip: IpAddr,
        /// Why its range is blocked.
        kind: AddressKind,
        /// The blocked range it fell in.
        range: Cidr,
    },
    /// The address is (or embeds) a cloud metadata service; no allow-list opens it.
    #[error("cloud metadata address {ip} is never allowed")]
    CloudMetadata {
        /// The address as given.
        ip: IpAddr,
    },
}

/// The operator's allow-list (`HERALD_ALLOW_CIDRS`): exactly these ranges are opened,
/// and nothing else is relaxed. Cloud metadata addresses stay refused regardless.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Cidr>);

/// A bad entry in an allow-list string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR `{entry}` in the allow-list: {source}")]
pub struct AllowListError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    #[source]
    pub source: CidrError,
}

impl AllowList {
    /// An allow-list from already-parsed ranges.
    pub fn new(cidrs: impl IntoIterator<Item = Cidr>) -> Self {
        Self(cidrs.into_iter().collect())
    }

    /// Parses a comma-separated list such as `"10.1.0.0/16, 127.0.0.1/32"`. Blank
    /// entries are ignored, so an empty string is an empty list.
    ///
    /// # Errors
    /// [`AllowListError`] naming the first bad entry.
    pub fn parse(list: &str) -> Result<Self, AllowListError> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| Cidr::parse(entry).map_err(|source| AllowListError { entry: entry.to_owned(), source }))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The opened ranges.
    pub fn cidrs(&self) -> &[Cidr] {
        &self.0
    }

    /// True when some opened range contains `ip` (as given; see [`check_ip`]).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The verdict for one destination address.
///
/// An IPv4-mapped address is judged as its IPv4 address. Metadata addresses, and
/// transition addresses embedding one, are refused first; then an address inside the
/// allow-list passes; then one inside [`BLOCKED_RANGES`] is refused; anything else passes.
///
/// # Errors
/// The [`Refusal`] saying why the address may not be contacted.
pub fn check_ip(ip: IpAddr, allow: &AllowList) -> Result<(), Refusal> {
    let canonical = canonical(ip);
    if is_metadata(canonical) || embedded_ipv4(canonical).is_some_and(|v4| is_metadata(IpAddr::V4(v4))) {
        return Err(Refusal::CloudMetadata { ip });
    }
    if allow.contains(canonical) {
        return Ok(());
    }
    match blocked_range(canonical) {
        Some(range) => Err(Refusal::Blocked { ip, kind: range.kind, range: range.cidr }),
        None => Ok(()),
    }
}

/// The blocked range `ip` falls in, ignoring any allow-list; IPv4-mapped addresses are
/// looked up by their IPv4 address.
pub fn blocked_range(ip: IpAddr) -> Option<&'static BlockedRange> {
    let ip = canonical(ip);
    BLOCKED_RANGES.iter().find(|range| range.cidr.contains(ip))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    CLOUD_METADATA.contains(&ip)
}

/// The IPv4 address a transition-mechanism IPv6 address leads to, if any.
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let bits = v6.to_bits();
    let low32 = Ipv4Addr::from_bits(bits as u32);
    let s = v6.segments();
    match s {
        [0, 0, 0, 0, 0, 0, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low32),
        [0x2002, high, low, ..] => Some(Ipv4Addr::from_bits((u32::from(high) << 16) | u32::from(low))),
        // Teredo stores the client address inverted in the last 32 bits.
        [0x2001, 0, ..] => Some(Ipv4Addr::from_bits(!(bits as u32))),
        _ => None,
    }
}
