//! Behind a reverse proxy: which peers are trusted to say who the client is
//! and what address it used, and which hosts this server answers for.
//!
//! Only a peer inside a `--trusted-proxy` range is believed. From it, the
//! client is the right-most address in `X-Forwarded-For` (or `Forwarded:
//! for=`) that is not itself trusted: each proxy appends the address it
//! received from, so everything left of the first untrusted hop could have
//! been written by the client. From any other peer those headers are
//! ignored, so a client cannot claim another address by sending them.

use std::net::{IpAddr, SocketAddr};

use crate::http::Head;
use crate::proto::addr::{Cidr, public_authority, strip_port, with_port};

/// The trusted proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proxies {
    ranges: Vec<Cidr>,
}

/// What the client used to reach us: the scheme and the `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`, if the request said.
    pub host: Option<String>,
}

impl Proxies {
    /// Trusts the peers in `ranges` (`--trusted-proxy`).
    pub(crate) fn new(ranges: &[Cidr]) -> Proxies {
        Proxies {
            ranges: ranges.to_vec(),
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The client's address: for a trusted peer, the right-most forwarded
    /// address that is not itself trusted (the left-most if all are);
    /// otherwise, or when the headers say nothing usable, the peer.
    pub(crate) fn client(&self, peer: IpAddr, head: &Head) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(head);
        hops.iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }

    /// The client's address and port, for the log and the per-address
    /// limits: the peer itself, or behind a trusted proxy the client it
    /// names, with the port the proxy gives (in its `X-Forwarded-For` or
    /// `Forwarded: for=` entry, or `X-Forwarded-Port`), else port 0, which
    /// [`show_peer`](crate::proto::addr::show_peer) leaves out: the proxy's own port says nothing of the
    /// client.
    pub(crate) fn client_addr(&self, peer: SocketAddr, head: &Head) -> SocketAddr {
        let ip = self.client(peer.ip(), head);
        if !self.trusts(peer.ip()) || ip == peer.ip() && forwarded_for(head).is_empty() {
            return SocketAddr::new(ip, peer.port());
        }
        let in_entry = forwarded_entries(head)
            .iter()
            .rev()
            .find(|e| parse_node(e) == Some(ip))
            .and_then(|e| node_port(e));
        let port = in_entry
            .or_else(|| last_value(head, "X-Forwarded-Port").and_then(|p| p.parse().ok()))
            .unwrap_or(0);
        SocketAddr::new(ip, port)
    }

    /// The scheme and host the client used: from a trusted peer, what the
    /// proxy says it received (`X-Forwarded-Proto`/`-Host`, or `Forwarded`);
    /// otherwise plain `http` and the `Host` header.
    pub(crate) fn seen(&self, peer: IpAddr, head: &Head) -> Seen {
        let mut seen = Seen {
            scheme: "http".to_owned(),
            host: head.header("Host").map(str::to_owned),
        };
        if self.trusts(peer) {
            let forwarded = forwarded_pairs(head);
            let pick = |x: &str, key: &str| {
                last_value(head, x).or_else(|| {
                    forwarded
                        .iter()
                        .rev()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                })
            };
            if let Some(proto) = pick("X-Forwarded-Proto", "proto") {
                seen.scheme = proto.to_ascii_lowercase();
            }
            if let Some(host) = pick("X-Forwarded-Host", "host") {
                seen.host = Some(host);
            }
        }
        seen
    }
}

/// The last (right-most) comma-separated value of a header, across all its
/// occurrences: the one the nearest proxy wrote.
fn last_value(head: &Head, name: &str) -> Option<String> {
    head.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The addresses of `X-Forwarded-For`, or else of `Forwarded: for=`, in
/// order (left-most first). Entries that are not addresses (`unknown`,
/// obfuscated names) end the list at that point, since nothing to their
/// left can be placed.
fn forwarded_for(head: &Head) -> Vec<IpAddr> {
    let entries = forwarded_entries(head);
    let mut hops = Vec::new();
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(ip) => hops.push(ip),
            None => break,
        }
    }
    hops.reverse();
    hops
}

/// The entries of `X-Forwarded-For`, or else the `for=` values of
/// `Forwarded`, as written.
fn forwarded_entries(head: &Head) -> Vec<String> {
    let xff: Vec<String> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("X-Forwarded-For"))
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_owned()))
        .collect();
    if xff.is_empty() {
        forwarded_pairs(head)
            .into_iter()
            .filter(|(k, _)| k == "for")
            .map(|(_, v)| v)
            .collect()
    } else {
        xff
    }
}

/// The port of a node written with one (`1.2.3.4:80`, `[::1]:80`).
fn node_port(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.parse::<IpAddr>().is_ok() {
        return None;
    }
    let port = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:")?.1,
        None => s.rsplit_once(':')?.1,
    };
    port.parse().ok().filter(|&p| p != 0)
}

/// `key=value` pairs of every `Forwarded` header (RFC 7239), in order, keys
/// lowercased, quotes removed.
fn forwarded_pairs(head: &Head) -> Vec<(String, String)> {
    head.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Forwarded"))
        .flat_map(|(_, v)| v.split([',', ';']))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    s.rsplit_once(':')?.0.parse().ok()
}

/// Which `Host` values this server answers for (`--public-url`), against
/// DNS rebinding: a page on another site whose name is made to resolve to
/// this server would otherwise count as same-origin.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hosts {
    /// `host:port` of each public URL, lowercased; empty when none is set.
    public: Vec<String>,
    /// The machine's own name, accepted when no public URL is set.
    hostname: Option<String>,
}

impl Hosts {
    /// The hosts of `--public-url`s, and this machine's name; an error
    /// says what is wrong with a URL.
    pub(crate) fn new(public_urls: &[String]) -> Result<Hosts, String> {
        let public = public_urls
            .iter()
            .map(|url| public_authority(url))
            .collect::<Result<Vec<_>, _>>()?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        Ok(Hosts { public, hostname })
    }

    /// Whether a request that reached us as `seen` is for this server. With
    /// public URLs, only their hosts; without, IP literals (which no DNS
    /// can rebind), `localhost` and the machine's own name.
    pub(crate) fn allows(&self, seen: &Seen) -> bool {
        let Some(host) = seen.host.as_deref() else {
            return false;
        };
        let host = host.trim().to_ascii_lowercase();
        let default = if seen.scheme == "https" { 443 } else { 80 };
        if !self.public.is_empty() {
            // A Host without a port names the host alone: a client that
            // reached a TLS proxy at https://chat.example.com may arrive
            // here as plain http with `Host: chat.example.com`.
            let name = strip_port(&host);
            return self.public.iter().any(|public| {
                if name == host {
                    strip_port(public) == name
                } else {
                    *public == with_port(&host, default)
                }
            });
        }
        let name = strip_port(&host);
        name.parse::<IpAddr>().is_ok()
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
            || name == "localhost"
            || self.hostname.as_deref() == Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::addr::{address_group, show_peer};

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            method: "GET".into(),
            target: "/".into(),
            version: 1,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(address_group(ip("10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(address_group(ip("2001:db8::1")), ip("2001:db8::"));
        assert_eq!(
            address_group(ip("2001:db8:0:0:ffff:1:2:3")),
            ip("2001:db8::")
        );
        assert_eq!(address_group(ip("2001:db8:0:1::1")), ip("2001:db8:0:1::"));
        assert_eq!(address_group(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
    }

    #[test]
    fn the_logged_client_port_is_the_one_the_proxy_gives() {
        let proxies = Proxies::new(&["127.0.0.1".parse().unwrap()]);
        let nginx: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let client =
            |headers: &[(&str, &str)]| show_peer(proxies.client_addr(nginx, &head(headers)));
        assert_eq!(client(&[("X-Forwarded-For", "10.0.0.7")]), "10.0.0.7");
        assert_eq!(
            client(&[
                ("X-Forwarded-For", "10.0.0.7"),
                ("X-Forwarded-Port", "5123")
            ]),
            "10.0.0.7:5123"
        );
        assert_eq!(
            client(&[("Forwarded", "for=\"[2001:db8::7]:4711\"")]),
            "[2001:db8::7]:4711"
        );
        assert_eq!(client(&[]), "127.0.0.1:40000");
        let direct: SocketAddr = "10.9.9.9:1234".parse().unwrap();
        let forged = head(&[("X-Forwarded-For", "1.1.1.1")]);
        assert_eq!(
            show_peer(proxies.client_addr(direct, &forged)),
            "10.9.9.9:1234"
        );
    }

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let p = Proxies::new(&["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
        let h = head(&[("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.5")]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("1.2.3.4"));
        // From an untrusted peer the header is ignored.
        assert_eq!(p.client(ip("127.0.0.9"), &h), ip("127.0.0.9"));
        // Several headers read as one list; ports and brackets are allowed.
        let h = head(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "[2001:db8::1]:4711"),
        ]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("2001:db8::1"));
        let h = head(&[("Forwarded", "for=192.0.2.60;proto=https, for=\"10.0.0.2\"")]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("192.0.2.60"));
        let h = head(&[]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn what_the_client_used() {
        let p = Proxies::new(&["127.0.0.1".parse().unwrap()]);
        let h = head(&[
            ("Host", "127.0.0.1:8080"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "chat.example.com"),
        ]);
        let seen = p.seen(ip("127.0.0.1"), &h);
        assert_eq!(seen.scheme, "https");
        assert_eq!(seen.host.as_deref(), Some("chat.example.com"));
        let direct = p.seen(ip("127.0.0.2"), &h);
        assert_eq!(direct.scheme, "http");
        assert_eq!(direct.host.as_deref(), Some("127.0.0.1:8080"));
    }

    #[test]
    fn hosts_without_and_with_public_urls() {
        let any = Hosts::new(&[]).unwrap();
        let seen = |host: &str| Seen {
            scheme: "http".into(),
            host: Some(host.into()),
        };
        assert!(any.allows(&seen("127.0.0.1:8080")));
        assert!(any.allows(&seen("[::1]:8080")));
        assert!(any.allows(&seen("localhost:8080")));
        assert!(any.allows(&seen("192.168.1.5")));
        assert!(!any.allows(&seen("attacker.example:8080")));
        let public = Hosts::new(&["https://chat.example.com/".into()]).unwrap();
        let https = Seen {
            scheme: "https".into(),
            host: Some("chat.example.com".into()),
        };
        assert!(public.allows(&https));
        assert!(!public.allows(&seen("127.0.0.1:8080")));
        assert!(Hosts::new(&["chat.example.com".into()]).is_err());
    }
}
