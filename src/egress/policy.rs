//! The egress policy of the forward proxy for hosts that no route serves: an allow-list of host
//! names and suffixes with ports, and the special-address rule (loopback, private, link-local,
//! CGNAT, metadata, multicast... are refused unless explicitly allowed).
//!
//! Pure: the caller resolves the name once, asks [`Policy::address_allowed`] about each address
//! and connects to exactly the address it was told is allowed, so a DNS answer that changes
//! between check and connect (rebinding) cannot smuggle a private address in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ports an allow-list entry opens when it lists none: HTTPS (CONNECT) and plain HTTP.
pub const DEFAULT_ALLOW_PORTS: [u16; 2] = [443, 80];

/// How an allow-list entry matches a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// This exact name (or IP literal), case-insensitive.
    Exact(String),
    /// Any name ending in this suffix, which starts with `.`: `.example.org` matches
    /// `api.example.org`, not `example.org` itself.
    Suffix(String),
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// Which hosts.
    pub host: HostMatch,
    /// Which destination ports.
    pub ports: Vec<u16>,
    /// Whether this entry may reach special (loopback, private, ...) addresses.
    pub allow_private: bool,
}

/// An IP network, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Hosts that may be tunnelled; empty: nothing without a route leaves.
    pub allow: Vec<AllowEntry>,
    /// Special-address networks that any allowed host may reach.
    pub allow_private: Vec<Cidr>,
}

/// Why a destination was refused; the `reason` label of the refusal metric and the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No allow-list entry matches the host and port.
    NotAllowed,
    /// Every address the name resolved to is special and not allowed.
    PrivateAddress,
}

impl Refusal {
    /// The problem's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "EGRESS_DENIED",
            Refusal::PrivateAddress => "EGRESS_PRIVATE_ADDRESS",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "denied",
            Refusal::PrivateAddress => "private_address",
        }
    }
}

// === impl Cidr ===

impl Cidr {
    /// Parses `addr/prefix` (or a bare address, a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a network like 10.0.0.0/8 or fd00::/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside (IPv4-mapped IPv6 addresses count as their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_prefix(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                in_prefix(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn in_prefix(net: u128, ip: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    net & mask == ip & mask
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address; others unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether an address is one an egress proxy must not reach by default: unspecified, loopback,
/// private (RFC 1918, ULA fc00::/7), link-local (incl. the cloud metadata address
/// 169.254.169.254 and fe80::/10), CGNAT 100.64.0.0/10, IETF-reserved, benchmarking,
/// documentation, multicast and broadcast; IPv4-mapped and NAT64 (64:ff9b::/96) addresses are
/// judged by the IPv4 address inside.
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || o[0] == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF 192.0.0.0/24
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // TEST-NET-1
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || (o[0] == 198 && o[1] == 51 && o[2] == 100) // TEST-NET-2
        || (o[0] == 203 && o[1] == 0 && o[2] == 113) // TEST-NET-3
        || o[0] >= 224 // multicast, reserved, broadcast
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64: the IPv4 address in the last 32 bits decides.
        let v4 = Ipv4Addr::new(
            (s[6] >> 8) as u8,
            (s[6] & 0xff) as u8,
            (s[7] >> 8) as u8,
            (s[7] & 0xff) as u8,
        );
        return is_special_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0 && s[1..6] == [0, 0, 0, 0, 0]) // IPv4-compatible (deprecated) and ::/96
}

/// A host name as compared: lower case, no trailing dot, no IPv6 brackets.
pub fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

// === impl Policy ===

impl Policy {
    /// The allow-list entry letting `host:port` through, or [`Refusal::NotAllowed`].
    pub fn check_host(&self, host: &str, port: u16) -> Result<&AllowEntry, Refusal> {
        let host = normalize_host(host);
        self.allow
            .iter()
            .find(|e| e.ports.contains(&port) && e.host.matches(&host))
            .ok_or(Refusal::NotAllowed)
    }

    /// Whether the proxy may connect to `ip` for a host `entry` allowed.
    pub fn address_allowed(&self, entry: &AllowEntry, ip: IpAddr) -> bool {
        !is_special(ip) || entry.allow_private || self.allow_private.iter().any(|c| c.contains(ip))
    }
}

// === impl HostMatch ===

impl HostMatch {
    /// Whether a normalized host name matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h == host,
            HostMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn entry(h: HostMatch, ports: &[u16], private: bool) -> AllowEntry {
        AllowEntry {
            host: h,
            ports: ports.to_vec(),
            allow_private: private,
        }
    }

    #[test]
    fn exact_host_matches_case_insensitively_and_only_on_its_ports() {
        let p = Policy {
            allow: vec![entry(
                HostMatch::Exact("api.example.com".into()),
                &[443],
                false,
            )],
            allow_private: vec![],
        };
        assert!(p.check_host("API.Example.COM", 443).is_ok());
        assert!(p.check_host("api.example.com.", 443).is_ok());
        assert_eq!(
            p.check_host("api.example.com", 80),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            p.check_host("x.api.example.com", 443),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(p.check_host("example.com", 443), Err(Refusal::NotAllowed));
    }

    #[test]
    fn suffix_matches_subdomains_not_the_bare_name_or_lookalikes() {
        let p = Policy {
            allow: vec![entry(
                HostMatch::Suffix(".example.org".into()),
                &[443, 8443],
                false,
            )],
            allow_private: vec![],
        };
        assert!(p.check_host("a.example.org", 443).is_ok());
        assert!(p.check_host("a.b.example.org", 8443).is_ok());
        assert!(p.check_host("example.org", 443).is_err());
        assert!(p.check_host("badexample.org", 443).is_err());
        assert!(p.check_host("a.example.org.evil.com", 443).is_err());
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert_eq!(
            Policy::default().check_host("example.com", 443),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn special_ipv4_ranges() {
        for s in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
        ] {
            assert!(is_special(ip(s)), "{s} should be special");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
        ] {
            assert!(!is_special(ip(s)), "{s} should be public");
        }
    }

    #[test]
    fn special_ipv6_ranges_and_mapped_addresses() {
        for s in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_special(ip(s)), "{s} should be special");
        }
        for s in [
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "fec0::1",
        ] {
            let special = is_special(ip(s));
            assert_eq!(special, s == "fec0::1", "{s}");
        }
    }

    #[test]
    fn private_addresses_need_an_explicit_allowance() {
        let plain = entry(HostMatch::Exact("localhost".into()), &[80], false);
        let flagged = entry(HostMatch::Exact("localhost".into()), &[80], true);
        let p = Policy {
            allow: vec![],
            allow_private: vec![Cidr::parse("10.0.0.0/8").expect("cidr")],
        };
        assert!(!p.address_allowed(&plain, ip("127.0.0.1")));
        assert!(!p.address_allowed(&plain, ip("::1")));
        assert!(!p.address_allowed(&plain, ip("::ffff:127.0.0.1")));
        assert!(p.address_allowed(&flagged, ip("127.0.0.1")));
        assert!(p.address_allowed(&plain, ip("10.9.9.9")));
        assert!(p.address_allowed(&plain, ip("::ffff:10.9.9.9")));
        assert!(!p.address_allowed(&plain, ip("172.16.0.1")));
        assert!(p.address_allowed(&plain, ip("8.8.8.8")));
    }

    #[test]
    fn cidr_parsing_and_containment() {
        let c = Cidr::parse("fd00::/8").expect("v6");
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fc00::1")));
        assert!(Cidr::parse("127.0.0.1")
            .expect("bare")
            .contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1")
            .expect("bare")
            .contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0")
            .expect("all")
            .contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").expect("all").contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense/8").is_err());
        assert!(Cidr::parse("::/129").is_err());
    }
}
