//! The WebSocket upgrade of `/ws` and `/echo`: which endpoint, which origin,
//! which subprotocol, and the 101 response (its accept key derived by
//! tungstenite).

use std::io::Write;
use std::net::TcpStream;

use tungstenite::handshake::derive_accept_key;

use crate::http::proxy::Seen;
use crate::http::{Head, query_pairs};
use crate::proto::addr::with_port;
use crate::proto::protocol::{self, Mode};
use crate::ws::auth::RoomQuery;

/// What a WebSocket connection is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Endpoint {
    /// `/echo`: every frame back to its sender.
    Echo,
    /// `/ws`: the chat room.
    Room(Mode, RoomQuery),
}

/// What a connection is for, without the details of its query: what the
/// reader's rules and the metrics go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/echo`.
    Echo,
    /// `/ws`, speaking this protocol.
    Room(Mode),
}

impl Kind {
    /// The mode the metrics and log lines label this connection with.
    pub(crate) fn metric(self) -> crate::metrics::ClientMode {
        match self {
            Kind::Room(Mode::Raw) => crate::metrics::ClientMode::Raw,
            Kind::Room(Mode::V1) => crate::metrics::ClientMode::V1,
            Kind::Echo => crate::metrics::ClientMode::Echo,
        }
    }
}

impl Endpoint {
    /// What the endpoint is for.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Endpoint::Echo => Kind::Echo,
            Endpoint::Room(mode, _) => Kind::Room(*mode),
        }
    }
}

/// Why an upgrade was refused; each becomes an HTTP error response.
#[derive(Debug)]
pub(crate) enum UpgradeRefusal {
    /// 426: a plain request to a WebSocket endpoint.
    NotUpgrade,
    /// 403: the Origin is not allowed.
    Origin(String),
    /// 426 with `Sec-WebSocket-Version: 13`: a WebSocket version we do not
    /// speak (RFC 6455 §4.4).
    Version,
    /// 400: the upgrade request is invalid.
    Invalid(String),
    /// 401 or 403: no identity token, a bad one, or one that does not
    /// allow the room or name asked for.
    Unauthorized(crate::ws::auth::AuthError),
}

impl UpgradeRefusal {
    /// The reason counted in `wschat_handshakes_refused_total`.
    pub(crate) fn metric(&self) -> crate::metrics::RefusalReason {
        match self {
            UpgradeRefusal::Origin(_) => crate::metrics::RefusalReason::Origin,
            UpgradeRefusal::Unauthorized(_) => crate::metrics::RefusalReason::Auth,
            UpgradeRefusal::NotUpgrade | UpgradeRefusal::Version | UpgradeRefusal::Invalid(_) => {
                crate::metrics::RefusalReason::BadRequest
            }
        }
    }
}

/// Which browser origins may open WebSockets (see `--allow-origin`).
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// The policy of `--allow-origin`'s list (`*` allows any).
    pub fn new(allow: &[String]) -> OriginPolicy {
        OriginPolicy {
            any: allow.iter().any(|a| a == "*"),
            allowed: allow.iter().map(|a| normalize_origin(a)).collect(),
        }
    }

    /// Clients that send no Origin (not browsers) are allowed; a browser is
    /// allowed from the server's own origin (the Origin's scheme, host and
    /// port equal those the client used: `seen`, from the Host header or a
    /// trusted proxy's X-Forwarded-Proto/-Host) or from a listed one.
    /// Anything else could be a page the user merely visited, opening a
    /// socket into their chat as them.
    pub fn allows(&self, origin: Option<&str>, seen: &Seen) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any || self.allowed.contains(&normalize_origin(origin)) {
            return true;
        }
        let default = if seen.scheme == "https" { 443 } else { 80 };
        let own = seen.host.as_deref().map(|h| {
            format!(
                "{}://{}",
                seen.scheme,
                with_port(&h.trim().to_ascii_lowercase(), default)
            )
        });
        match (origin_with_port(origin), own) {
            (Some(from), Some(own)) => from == own,
            _ => false,
        }
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `scheme://host:port` of an Origin like `http://example.com`, with the
/// scheme's default port filled in.
fn origin_with_port(origin: &str) -> Option<String> {
    let origin = normalize_origin(origin);
    let (scheme, authority) = origin.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(format!("{scheme}://{}", with_port(authority, default)))
}

/// Whether this request is for a WebSocket endpoint at all.
pub fn endpoint_path(head: &Head) -> bool {
    matches!(head.path(), "/ws" | "/echo")
}

/// Checks an upgrade request and writes the 101 response. On success the
/// socket speaks WebSocket from the next byte on.
pub(crate) fn accept(
    sock: &TcpStream,
    head: &Head,
    seen: &Seen,
    origins: &OriginPolicy,
    config: &crate::config::Config,
) -> Result<Endpoint, UpgradeRefusal> {
    if !head.header_has_token("Upgrade", "websocket") {
        return Err(UpgradeRefusal::NotUpgrade);
    }
    if head.header("Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return Err(UpgradeRefusal::Version);
    }
    if !origins.allows(head.header("Origin"), seen) {
        return Err(UpgradeRefusal::Origin(
            head.header("Origin").unwrap_or("").to_owned(),
        ));
    }
    let accept_key = validate(head).map_err(UpgradeRefusal::Invalid)?;
    let mut endpoint = if head.path() == "/echo" {
        Endpoint::Echo
    } else {
        let v1 = head.header_has_token("Sec-WebSocket-Protocol", protocol::V1);
        let mode = if v1 { Mode::V1 } else { Mode::Raw };
        Endpoint::Room(mode, room_query(head.query()))
    };
    if let Endpoint::Room(mode, query) = &mut endpoint {
        crate::ws::auth::admit_upgrade(config, *mode, query)
            .map_err(UpgradeRefusal::Unauthorized)?;
    }
    // Written in one piece, with one system call, from a buffer of the
    // size the request head was read into: too large for the thread's malloc
    // cache, so that it goes back to the shared heap (see `HEAD_BUFFER`).
    let mut response = String::with_capacity(crate::http::HEAD_BUFFER);
    response.push_str("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
    response.push_str("Upgrade: websocket\r\nSec-WebSocket-Accept: ");
    response.push_str(&accept_key);
    if let Endpoint::Room(Mode::V1, _) = endpoint {
        response.push_str("\r\nSec-WebSocket-Protocol: ");
        response.push_str(protocol::V1);
    }
    response.push_str("\r\n\r\n");
    (&*sock)
        .write_all(response.as_bytes())
        .map_err(|e| UpgradeRefusal::Invalid(e.to_string()))?;
    Ok(endpoint)
}

/// Checks the upgrade request (RFC 6455 §4.2.1) and returns the
/// `Sec-WebSocket-Accept` value, derived by tungstenite. Checked here rather
/// than by building an `http::Request` for tungstenite's `create_response`:
/// that costs each connection's thread a page of stack it would keep.
fn validate(head: &Head) -> Result<String, String> {
    if head.method != "GET" {
        return Err(format!("method {} (an upgrade must be GET)", head.method));
    }
    if head.version < 1 {
        return Err("HTTP/1.0 (an upgrade needs HTTP/1.1)".into());
    }
    if !head.header_has_token("Connection", "upgrade") {
        return Err("no \"Connection: upgrade\"".into());
    }
    match head.header("Sec-WebSocket-Key").map(str::trim) {
        Some(key) if is_nonce(key) => Ok(derive_accept_key(key.as_bytes())),
        Some(_) => Err("Sec-WebSocket-Key is not the base64 of 16 bytes".into()),
        None => Err("no Sec-WebSocket-Key".into()),
    }
}

/// Whether `key` is what RFC 6455 §4.1 asks a client to send: 16 bytes in
/// base64, which is always 22 characters of the alphabet and `==`.
fn is_nonce(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

fn room_query(query: &str) -> RoomQuery {
    let mut q = RoomQuery::default();
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "room" => q.room = Some(value),
            "name" => q.name = Some(value),
            "since" => q.since = value.parse().ok(),
            "token" => q.token = Some(value),
            _ => {}
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(scheme: &str, host: Option<&str>) -> Seen {
        Seen {
            scheme: scheme.into(),
            host: host.map(str::to_owned),
        }
    }

    #[test]
    fn same_origin_and_listed_origins() {
        let p = OriginPolicy::new(&["https://chat.example.com/".into()]);
        let http = |h| seen("http", Some(h));
        assert!(p.allows(None, &http("x")));
        assert!(p.allows(Some("http://127.0.0.1:8080"), &http("127.0.0.1:8080")));
        assert!(p.allows(Some("http://example.com"), &http("example.com")));
        assert!(p.allows(Some("http://example.com"), &http("example.com:80")));
        assert!(p.allows(Some("https://chat.example.com"), &http("other:1")));
        assert!(!p.allows(Some("http://evil.example"), &http("127.0.0.1:8080")));
        assert!(!p.allows(Some("http://127.0.0.1:9999"), &http("127.0.0.1:8080")));
        assert!(!p.allows(Some("null"), &http("127.0.0.1:8080")));
        assert!(
            OriginPolicy::new(&["*".into()])
                .allows(Some("http://evil.example"), &seen("http", None))
        );
    }

    #[test]
    fn behind_a_tls_proxy_the_scheme_gives_the_default_port() {
        let p = OriginPolicy::new(&[]);
        let tls = seen("https", Some("chat.example.com"));
        assert!(p.allows(Some("https://chat.example.com"), &tls));
        assert!(p.allows(Some("https://chat.example.com:443"), &tls));
        assert!(!p.allows(Some("http://chat.example.com"), &tls));
        assert!(!p.allows(
            Some("https://127.0.0.1:8080"),
            &seen("http", Some("127.0.0.1:8080"))
        ));
    }

    #[test]
    fn keys_are_base64_of_16_bytes() {
        assert!(is_nonce("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_nonce("AAAAAAAAAAAAAAAAAAAA+/=="));
        for bad in [
            "",
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZQ===",
            "AAAAAAAAAAAAAAAAAAAA",
            "dGhlIHNhbXBsZSBub25j!Q==",
            "dGhlIHNhbXBsZSBub25jZQAAAAA=",
        ] {
            assert!(!is_nonce(bad), "{bad}");
        }
    }

    #[test]
    fn query_fields() {
        let q = room_query("room=dev+ops&name=al%C3%ADce&since=7&x=1");
        assert_eq!(q.room.as_deref(), Some("dev ops"));
        assert_eq!(q.name.as_deref(), Some("alíce"));
        assert_eq!(q.since, Some(7));
    }
}
