//! The address classifier behind the SSRF guard (SECURITY.md, "Outbound requests"), as pure functions.
//!
//! - [`Cidr`]: a network, parsed and matched without extra crates.
//! - [`BLOCKED_RANGES`], [`CLOUD_METADATA`], [`AllowList`] and [`check_ip`]: the verdict
//!   for one address (loopback, private, link-local, CGNAT, documentation, multicast,
//!   reserved, IPv6 transition ranges, metadata…), with IPv4-mapped addresses judged
//!   by their IPv4 address.
//! - [`parse_host_literal`]: every IPv4 spelling browsers accept, failing closed.
//! - [`check_url`]: scheme, host and port of an endpoint URL, with IP literals judged now.
//!
//! Resolving hostnames, filtering resolved addresses with [`check_ip`] and connecting
//! only to those (no second lookup) is the HTTP client's job in the worker: nothing
//! here does I/O.

mod cidr;
mod host;
mod ranges;
mod target;

pub use cidr::{Cidr, CidrError};
pub use host::{MalformedHost, parse_host_literal};
pub use ranges::{
    AddressKind, AllowList, AllowListError, BLOCKED_RANGES, BlockedRange, CLOUD_METADATA, Refusal, blocked_range,
    check_ip,
};
pub use target::{Host, Scheme, UrlRefusal, UrlTarget, check_url};

#[cfg(test)]
mod tests;
