//! Addresses as the server reads and writes them: address ranges
//! (`--trusted-proxy`), the group an address counts in for per-address
//! limits, a peer as logged, and the `host:port` of a URL.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address range, like `10.0.0.0/8`, `::1/128` or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or an address/prefix"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.net.to_canonical(), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A client's address as logged: `ip:port`, or the address alone when the
/// port is not known (0: behind a proxy that did not say).
pub(crate) fn show_peer(addr: SocketAddr) -> String {
    match addr.port() {
        0 => addr.ip().to_string(),
        _ => addr.to_string(),
    }
}

/// The address whose share of the per-address limits a client counts
/// against: an IPv4 address is its own; an IPv6 address counts as its /64,
/// the block one host or one customer is usually given, so that a host
/// cannot multiply its share by picking new addresses. An IPv4 address
/// written as IPv6 (`::ffff:1.2.3.4`) is the IPv4 address.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The `host:port` of a public URL (`https://chat.example.com/` gives
/// `chat.example.com:443`).
pub(crate) fn public_authority(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "a URL like https://chat.example.com".to_owned())?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err("the scheme must be http or https".to_owned()),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err("a URL with a host, like https://chat.example.com".to_owned());
    }
    Ok(with_port(&authority.to_ascii_lowercase(), default))
}

/// `host:port`, with the scheme's default port when `authority` has none.
pub(crate) fn with_port(authority: &str, default: u16) -> String {
    // An IPv6 literal ends with `]` when it has no port.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !authority.ends_with(']'));
    if has_port && !authority.is_empty() {
        authority.to_owned()
    } else {
        format!("{authority}:{default}")
    }
}

pub(crate) fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no brackets.
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => authority,
    }
}
