//! Table tests for the whole classifier: every blocked range with an address inside
//! and, where it matters, just outside; the IPv4-mapped, NAT64 and 6to4 forms; the
//! allow-list's exactness; URL tricks; and properties over random addresses.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|_| panic!("test address {text}"))
}

fn kind_of(text: &str) -> Option<AddressKind> {
    match check_ip(ip(text), &AllowList::default()) {
        Ok(()) => None,
        Err(Refusal::Blocked { kind, .. }) => Some(kind),
        Err(Refusal::CloudMetadata { .. }) => panic!("{text} is metadata"),
    }
}

#[test]
fn every_blocked_range_refuses_inside_and_passes_just_outside() {
    use AddressKind as K;
    let table: &[(&str, Option<AddressKind>)] = &[
        ("0.0.0.0", Some(K::Unspecified)),
        ("0.255.255.255", Some(K::Unspecified)),
        ("1.0.0.0", None),
        ("10.0.0.1", Some(K::Private)),
        ("10.255.255.255", Some(K::Private)),
        ("9.255.255.255", None),
        ("11.0.0.0", None),
        ("100.64.0.0", Some(K::SharedAddressSpace)),
        ("100.127.255.255", Some(K::SharedAddressSpace)),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("127.0.0.1", Some(K::Loopback)),
        ("127.255.255.254", Some(K::Loopback)),
        ("128.0.0.0", None),
        ("169.254.0.1", Some(K::LinkLocal)),
        ("169.253.255.255", None),
        ("169.255.0.0", None),
        ("172.16.0.0", Some(K::Private)),
        ("172.31.255.255", Some(K::Private)),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("192.0.0.8", Some(K::ProtocolAssignment)),
        ("192.0.1.0", None),
        ("192.0.2.1", Some(K::Documentation)),
        ("192.0.3.0", None),
        ("192.88.99.1", Some(K::Relay6to4)),
        ("192.88.98.255", None),
        ("192.168.1.1", Some(K::Private)),
        ("192.167.255.255", None),
        ("192.169.0.0", None),
        ("198.18.0.1", Some(K::Benchmarking)),
        ("198.19.255.255", Some(K::Benchmarking)),
        ("198.17.255.255", None),
        ("198.20.0.0", None),
        ("198.51.100.7", Some(K::Documentation)),
        ("198.51.101.0", None),
        ("203.0.113.9", Some(K::Documentation)),
        ("203.0.114.0", None),
        ("224.0.0.1", Some(K::Multicast)),
        ("239.255.255.255", Some(K::Multicast)),
        ("223.255.255.255", None),
        ("240.0.0.1", Some(K::Reserved)),
        ("255.255.255.254", Some(K::Reserved)),
        ("255.255.255.255", Some(K::Broadcast)),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("::", Some(K::Unspecified)),
        ("::1", Some(K::Loopback)),
        ("::2", Some(K::Ipv4Compatible)),
        ("::7f00:1", Some(K::Ipv4Compatible)),
        ("::1:0:0:0", None),
        ("::ffff:127.0.0.1", Some(K::Loopback)),
        ("::ffff:7f00:1", Some(K::Loopback)),
        ("::ffff:10.1.2.3", Some(K::Private)),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::7f00:1", Some(K::Nat64)),
        ("64:ff9b::808:808", Some(K::Nat64)),
        ("64:ff9b:1::1", Some(K::Nat64)),
        ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2002:7f00:1::", Some(K::SixToFour)),
        ("2002::1", Some(K::SixToFour)),
        ("2003::", None),
        ("2001:db8::1", Some(K::Documentation)),
        ("2001:db9::", None),
        ("2001::1", Some(K::Teredo)),
        ("100::1", Some(K::DiscardOnly)),
        ("100:0:0:1::", Some(K::ReservedV6)),
        ("1ff:ffff::1", Some(K::ReservedV6)),
        ("200::1", None),
        ("::ffff:0:7f00:1", Some(K::Siit)),
        ("::ffff:0:808:808", Some(K::Siit)),
        ("0:0:0:0:ffff:0:127.0.0.1", Some(K::Siit)),
        ("::fffe:0:7f00:1", None),
        ("::1:ffff:0:7f00:1", None),
        ("fc00::1", Some(K::UniqueLocal)),
        ("fdff:ffff::1", Some(K::UniqueLocal)),
        ("fbff:ffff::1", None),
        ("fe80::1", Some(K::LinkLocal)),
        ("febf:ffff::1", Some(K::LinkLocal)),
        ("fec0::1", Some(K::SiteLocal)),
        ("ff02::1", Some(K::Multicast)),
        ("feff:ffff::1", Some(K::SiteLocal)),
        ("2606:4700::1111", None),
        ("2001:4860:4860::8888", None),
    ];
    for (address, expected) in table {
        assert_eq!(kind_of(address), *expected, "{address}");
    }
}

#[test]
fn refusals_read_on_their_own() {
    let none = AllowList::default();
    let message = check_ip(ip("127.0.0.1"), &none).unwrap_err().to_string();
    assert_eq!(message, "loopback address 127.0.0.1 is not allowed (HERALD_ALLOW_CIDRS can open 127.0.0.0/8)");
    let message = check_ip(ip("::ffff:7f00:1"), &none).unwrap_err().to_string();
    assert_eq!(message, "loopback address ::ffff:127.0.0.1 is not allowed (HERALD_ALLOW_CIDRS can open 127.0.0.0/8)");
    let message = check_ip(ip("169.254.169.254"), &none).unwrap_err().to_string();
    assert_eq!(message, "cloud metadata address 169.254.169.254 is never allowed");
    let refusal = check_ip(ip("100.70.0.1"), &none).unwrap_err();
    assert!(matches!(refusal, Refusal::Blocked { range, .. } if range.to_string() == "100.64.0.0/10"));
}

#[test]
fn metadata_stays_blocked_in_every_form_and_under_any_allow_list() {
    let allow_all = AllowList::parse("0.0.0.0/0, ::/0").unwrap();
    let forms = [
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
        "fd00:ec2::254",
        "fd20:ce::254",
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
    ];
    for address in forms {
        let expected = Err(Refusal::CloudMetadata { ip: ip(address) });
        assert_eq!(check_ip(ip(address), &AllowList::default()), expected, "{address}");
        assert_eq!(check_ip(ip(address), &allow_all), expected, "{address} with everything allowed");
    }
    let link_local = AllowList::parse("169.254.0.0/16").unwrap();
    assert!(check_ip(ip("169.254.1.1"), &link_local).is_ok());
    assert!(matches!(check_ip(ip("169.254.169.254"), &link_local), Err(Refusal::CloudMetadata { .. })));
}

#[test]
fn allow_list_opens_exactly_its_ranges() {
    let allow = AllowList::parse("127.0.0.1/32").unwrap();
    assert_eq!(check_ip(ip("127.0.0.1"), &allow), Ok(()));
    assert_eq!(check_ip(ip("::ffff:127.0.0.1"), &allow), Ok(()), "same destination");
    for refused in ["127.0.0.2", "10.0.0.1", "::1", "64:ff9b::7f00:1", "2002:7f00:1::"] {
        assert!(check_ip(ip(refused), &allow).is_err(), "{refused}");
    }
    let allow = AllowList::parse(" 10.1.0.0/16 , fd12::/16,").unwrap();
    assert_eq!(allow.cidrs().len(), 2);
    assert_eq!(check_ip(ip("10.1.200.3"), &allow), Ok(()));
    assert_eq!(check_ip(ip("fd12::5"), &allow), Ok(()));
    assert!(check_ip(ip("10.2.0.1"), &allow).is_err());
    assert!(check_ip(ip("fd13::5"), &allow).is_err());
    assert_eq!(AllowList::parse(""), Ok(AllowList::default()));
}

#[test]
fn allow_list_errors_name_the_bad_entry() {
    let error = AllowList::parse("10.0.0.0/8, 192.168.1.1/24, nonsense").unwrap_err();
    assert_eq!(error.entry, "192.168.1.1/24");
    assert!(error.to_string().contains("`192.168.1.1/24`"), "{error}");
    let error = AllowList::parse("10.0.0.0/8,nonsense").unwrap_err();
    assert_eq!(error.entry, "nonsense");
    assert!(matches!(error.source, CidrError::InvalidAddress(_)));
}

#[test]
fn urls_are_judged_by_their_real_host() {
    let none = AllowList::default();
    let refused = [
        "http://127.0.0.1/",
        "http://user@127.0.0.1/",
        "http://user:pass@127.0.0.1:8080/hook",
        "http://127.0.0.1#@example.com/",
        "http://127.0.0.1\\@example.com/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0x7f.1/",
        "http://127.0.0.1./",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xA9FEA9FE/",
        "https://10.0.0.1/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost:3000/",
        "http://ⓛocalhost/",
        "http://%6c%6fcalhost/",
        "http://0/",
    ];
    for url in refused {
        // Each is a well-formed URL refused for where it points, not for its syntax.
        let refusal = check_url(url, &none).expect_err(url);
        assert!(matches!(refusal, UrlRefusal::Blocked(_) | UrlRefusal::LoopbackName(_)), "{url}: {refusal:?}");
    }
}

#[test]
fn url_refusals_say_why() {
    let none = AllowList::default();
    type IsExpected = fn(&UrlRefusal) -> bool;
    let table: &[(&str, IsExpected)] = &[
        ("ftp://example.com/", |r| matches!(r, UrlRefusal::UnsupportedScheme(s) if s == "ftp")),
        ("file:///etc/passwd", |r| matches!(r, UrlRefusal::UnsupportedScheme(_))),
        ("gopher://127.0.0.1/", |r| matches!(r, UrlRefusal::UnsupportedScheme(_))),
        ("not a url", |r| matches!(r, UrlRefusal::Unparseable(_))),
        ("http://", |r| matches!(r, UrlRefusal::Unparseable(_))),
        ("http://1.2.3.256/", |r| matches!(r, UrlRefusal::Unparseable(_))),
        ("http://foo.08/", |r| matches!(r, UrlRefusal::Unparseable(_))),
        ("http://127.0.0.1/", |r| {
            matches!(r, UrlRefusal::Blocked(Refusal::Blocked { kind: AddressKind::Loopback, .. }))
        }),
        ("http://localhost/", |r| matches!(r, UrlRefusal::LoopbackName(n) if n == "localhost")),
        ("http://169.254.169.254/", |r| matches!(r, UrlRefusal::Blocked(Refusal::CloudMetadata { .. }))),
    ];
    for (url, expected) in table {
        let refusal = check_url(url, &none).unwrap_err();
        assert!(expected(&refusal), "{url}: {refusal:?}");
    }
}

#[test]
fn public_urls_pass_with_their_port() {
    let none = AllowList::default();
    let table = [
        ("https://example.com/hook", Scheme::Https, Host::Name("example.com".into()), 443),
        ("http://Example.COM:8080/x?y#z", Scheme::Http, Host::Name("example.com".into()), 8080),
        ("http://user@hooks.example/", Scheme::Http, Host::Name("hooks.example".into()), 80),
        ("http://8.8.8.8/", Scheme::Http, Host::Ip(ip("8.8.8.8")), 80),
        ("https://1.1.1.1:8443/", Scheme::Https, Host::Ip(ip("1.1.1.1")), 8443),
        ("https://[2606:4700::1111]/", Scheme::Https, Host::Ip(ip("2606:4700::1111")), 443),
        ("http://0x08080808/", Scheme::Http, Host::Ip(ip("8.8.8.8")), 80),
        ("http://127.0.0.1.nip.io/", Scheme::Http, Host::Name("127.0.0.1.nip.io".into()), 80),
    ];
    for (url, scheme, host, port) in table {
        assert_eq!(check_url(url, &none), Ok(UrlTarget { scheme, host, port }), "{url}");
    }
}

#[test]
fn allow_list_opens_loopback_urls_for_tests() {
    let allow = AllowList::parse("127.0.0.1/32").unwrap();
    assert_eq!(check_url("http://127.0.0.1:4000/", &allow).map(|t| t.host), Ok(Host::Ip(ip("127.0.0.1"))));
    assert_eq!(check_url("http://localhost:4000/", &allow).map(|t| t.host), Ok(Host::Name("localhost".into())));
    assert!(check_url("http://127.0.0.2/", &allow).is_err());
    assert!(check_url("http://0x7f000002/", &allow).is_err());
}

/// Spellings of one IPv4 address that browsers and `inet_aton` all read the same way.
fn spellings(address: Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = address.octets();
    let bits = address.to_bits();
    vec![
        address.to_string(),
        bits.to_string(),
        format!("0x{bits:08x}"),
        format!("0X{bits:X}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{b}.{}", (u32::from(c) << 8) | u32::from(d)),
        format!("{a}.{}", bits & 0x00ff_ffff),
        format!("0x{a:x}.{b}.0{c:o}.{d}"),
        format!("{address}."),
    ]
}

fn blocked_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    let ranges: Vec<Cidr> =
        BLOCKED_RANGES.iter().map(|range| range.cidr).filter(|cidr| cidr.network().is_ipv4()).collect();
    (prop::sample::select(ranges), any::<u32>()).prop_map(|(cidr, noise)| {
        let IpAddr::V4(network) = cidr.network() else { unreachable!("filtered to IPv4") };
        let host_mask = u32::MAX.checked_shr(u32::from(cidr.prefix_len())).unwrap_or(0);
        Ipv4Addr::from_bits(network.to_bits() | (noise & host_mask))
    })
}

fn verdict_for_spelling(spelling: &str, allow: &AllowList) -> Result<(), String> {
    check_url(&format!("http://{spelling}/"), allow).map(|_| ()).map_err(|e| e.to_string())
}

proptest! {
    #[test]
    fn every_spelling_of_a_blocked_address_is_refused_alike(address in blocked_ipv4()) {
        let none = AllowList::default();
        let expected = check_ip(IpAddr::V4(address), &none).map_err(|e| UrlRefusal::from(e).to_string());
        prop_assert!(expected.is_err());
        for spelling in spellings(address) {
            prop_assert_eq!(parse_host_literal(&spelling), Ok(Some(IpAddr::V4(address))), "{}", spelling);
            prop_assert_eq!(verdict_for_spelling(&spelling, &none), expected.clone(), "{}", spelling);
        }
    }

    #[test]
    fn every_spelling_of_any_address_gets_the_same_verdict(bits in any::<u32>()) {
        let address = Ipv4Addr::from_bits(bits);
        let allow = AllowList::parse("10.0.0.0/8").unwrap();
        let expected = check_ip(IpAddr::V4(address), &allow).map_err(|e| UrlRefusal::from(e).to_string());
        for spelling in spellings(address) {
            prop_assert_eq!(parse_host_literal(&spelling), Ok(Some(IpAddr::V4(address))), "{}", spelling);
            prop_assert_eq!(verdict_for_spelling(&spelling, &allow), expected.clone(), "{}", spelling);
        }
    }

    #[test]
    fn ipv4_mapped_form_gets_the_ipv4_verdict(bits in any::<u32>()) {
        let v4 = Ipv4Addr::from_bits(bits);
        let none = AllowList::default();
        prop_assert_eq!(
            check_ip(IpAddr::V6(v4.to_ipv6_mapped()), &none).is_ok(),
            check_ip(IpAddr::V4(v4), &none).is_ok()
        );
    }

    #[test]
    fn check_url_never_panics(input in any::<String>()) {
        let _ = check_url(&input, &AllowList::default());
    }

    #[test]
    fn check_url_never_panics_on_url_shaped_input(
        scheme in "(https?|ftp|HTTP)",
        userinfo in "([a-z:@]{0,6}@)?",
        host in "[0-9a-fA-FxX.:\\[\\]%]{0,30}",
        rest in "(:[0-9]{0,6})?(/[a-z#@?]{0,8})?",
    ) {
        let _ = check_url(&format!("{scheme}://{userinfo}{host}{rest}"), &AllowList::default());
    }

    #[test]
    fn cidr_and_allow_list_parsing_never_panics(input in any::<String>()) {
        let _ = Cidr::parse(&input);
        let _ = AllowList::parse(&input);
    }
}
