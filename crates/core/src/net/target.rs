//! [`check_url`]: the write-time (and send-time) verdict on an endpoint URL. It
//! accepts only http and https, classifies IP literals in any spelling now, refuses
//! `localhost` names, and hands real hostnames back for the caller to resolve and
//! check address by address with [`super::check_ip`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::host::{MalformedHost, parse_host_literal};
use super::ranges::{AllowList, Refusal, check_ip};

/// The URL schemes Herald sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http => "http",
            Self::Https => "https",
        })
    }
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal, already checked.
    Ip(IpAddr),
    /// A hostname (lower-case ASCII, as the URL parser normalised it) that the caller
    /// must resolve, checking every address before connecting to one of them.
    Name(String),
}

/// A URL that passed [`check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTarget {
    /// http or https.
    pub scheme: Scheme,
    /// The host to connect to.
    pub host: Host,
    /// The explicit port, or the scheme's default.
    pub port: u16,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// The text is not a URL.
    #[error("not a valid URL: {0}")]
    Unparseable(#[source] url::ParseError),
    /// A scheme other than http or https.
    #[error("scheme `{0}` is not allowed; use http or https")]
    UnsupportedScheme(String),
    /// The URL has no host.
    #[error("the URL has no host")]
    MissingHost,
    /// The host is neither an IP literal nor a valid hostname.
    #[error(transparent)]
    MalformedHost(#[from] MalformedHost),
    /// `localhost` or a name under `.localhost`, which always means loopback.
    #[error("`{0}` is a loopback name, which is not allowed")]
    LoopbackName(String),
    /// The host is an IP literal whose address is refused.
    #[error(transparent)]
    Blocked(#[from] Refusal),
}

/// Checks an endpoint URL without any I/O.
///
/// `user@127.0.0.1` and fragments do not change the verdict: the host is taken from the
/// WHATWG parse (the one reqwest uses), then IP literals are classified whatever their
/// spelling. A `localhost` name is refused unless the allow-list opens `127.0.0.1` or `::1`.
///
/// # Errors
/// An [`UrlRefusal`] saying why the URL may not be used.
pub fn check_url(input: &str, allow: &AllowList) -> Result<UrlTarget, UrlRefusal> {
    let url = url::Url::parse(input).map_err(UrlRefusal::Unparseable)?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(UrlRefusal::UnsupportedScheme(other.to_owned())),
    };
    let host = match url.host().ok_or(UrlRefusal::MissingHost)? {
        url::Host::Ipv4(ip) => checked(IpAddr::V4(ip), allow)?,
        url::Host::Ipv6(ip) => checked(IpAddr::V6(ip), allow)?,
        // The parser already turned IPv4 spellings into addresses; reading the name
        // again guards against a parser that did not.
        url::Host::Domain(name) => match parse_host_literal(name)? {
            Some(ip) => checked(ip, allow)?,
            None => named(name, allow)?,
        },
    };
    let port = url.port_or_known_default().unwrap_or(match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    });
    Ok(UrlTarget { scheme, host, port })
}

fn checked(ip: IpAddr, allow: &AllowList) -> Result<Host, UrlRefusal> {
    check_ip(ip, allow)?;
    Ok(Host::Ip(ip))
}

fn named(name: &str, allow: &AllowList) -> Result<Host, UrlRefusal> {
    if is_localhost(name) {
        let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        if !loopback.into_iter().any(|ip| check_ip(ip, allow).is_ok()) {
            return Err(UrlRefusal::LoopbackName(name.to_owned()));
        }
    }
    Ok(Host::Name(name.to_owned()))
}

/// RFC 6761: `localhost` and every name under it resolve to loopback.
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}
