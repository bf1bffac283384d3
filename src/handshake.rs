//! The WebSocket upgrade of `/ws` and `/echo`: which endpoint, which origin,
//! which subprotocol, and the 101 response (built by tungstenite).

use std::net::TcpStream;

use tungstenite::handshake::server::{create_response, write_response};
use tungstenite::http;

use crate::dispatcher::Mode;
use crate::http::{Head, query_pairs};
use crate::protocol;

/// What a WebSocket connection is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// `/echo`: every frame back to its sender.
    Echo,
    /// `/ws`: the chat room.
    Room(Mode, RoomQuery),
}

/// What the `/ws` query asks for; validated later by the dispatcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomQuery {
    pub room: Option<String>,
    pub name: Option<String>,
    pub since: Option<u64>,
}

/// Why an upgrade was refused; each becomes an HTTP error response.
#[derive(Debug)]
pub enum Refusal {
    /// 426: a plain request to a WebSocket endpoint.
    NotUpgrade,
    /// 403: the Origin is not allowed.
    Origin(String),
    /// 400: the upgrade request is invalid.
    Invalid(String),
}

impl Refusal {
    /// The reason counted in `wschat_handshakes_refused_total`.
    pub fn metric(&self) -> crate::metrics::Refused {
        match self {
            Refusal::Origin(_) => crate::metrics::Refused::Origin,
            Refusal::NotUpgrade | Refusal::Invalid(_) => crate::metrics::Refused::BadRequest,
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
    pub fn new(allow: &[String]) -> OriginPolicy {
        OriginPolicy {
            any: allow.iter().any(|a| a == "*"),
            allowed: allow.iter().map(|a| normalize_origin(a)).collect(),
        }
    }

    /// Clients that send no Origin (not browsers) are allowed; a browser is
    /// allowed from the server's own origin (the Origin's host and port equal
    /// the Host header) or from a listed one. Anything else could be a page
    /// the user merely visited, opening a socket into their chat as them.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        if self.any || self.allowed.contains(&normalize_origin(origin)) {
            return true;
        }
        match (origin_authority(origin), host) {
            (Some(from), Some(host)) => from == with_default_port(&host.to_ascii_lowercase(), 80),
            _ => false,
        }
    }
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `host:port` of an Origin like `http://example.com`, with the scheme's
/// default port filled in.
fn origin_authority(origin: &str) -> Option<String> {
    let origin = normalize_origin(origin);
    let (scheme, authority) = origin.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(with_default_port(authority, default))
}

fn with_default_port(authority: &str, default: u16) -> String {
    // An IPv6 literal ends with `]` when it has no port.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !authority.ends_with(']'));
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default}")
    }
}

/// Whether this request is for a WebSocket endpoint at all.
pub fn endpoint_path(head: &Head) -> bool {
    matches!(head.path(), "/ws" | "/echo")
}

/// Checks an upgrade request and writes the 101 response. On success the
/// socket speaks WebSocket from the next byte on.
pub fn accept(sock: &TcpStream, head: &Head, origins: &OriginPolicy) -> Result<Endpoint, Refusal> {
    if !head.header_has_token("Upgrade", "websocket") {
        return Err(Refusal::NotUpgrade);
    }
    if !origins.allows(head.header("Origin"), head.header("Host")) {
        return Err(Refusal::Origin(
            head.header("Origin").unwrap_or("").to_owned(),
        ));
    }
    let request = to_http_request(head).map_err(|e| Refusal::Invalid(e.to_string()))?;
    let mut response = create_response(&request).map_err(|e| Refusal::Invalid(e.to_string()))?;

    let endpoint = if head.path() == "/echo" {
        Endpoint::Echo
    } else {
        let v1 = head.header_has_token("Sec-WebSocket-Protocol", protocol::V1);
        if v1 {
            response.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                http::HeaderValue::from_static(protocol::V1),
            );
        }
        let mode = if v1 { Mode::V1 } else { Mode::Raw };
        Endpoint::Room(mode, room_query(head.query()))
    };
    write_response(sock, &response).map_err(|e| Refusal::Invalid(e.to_string()))?;
    Ok(endpoint)
}

fn to_http_request(head: &Head) -> Result<http::Request<()>, http::Error> {
    let version = if head.version == 0 {
        http::Version::HTTP_10
    } else {
        http::Version::HTTP_11
    };
    let builder = http::Request::builder()
        .method(head.method.as_str())
        .uri(head.target.as_str())
        .version(version);
    head.headers
        .iter()
        .fold(builder, |b, (k, v)| b.header(k.as_str(), v.as_str()))
        .body(())
}

fn room_query(query: &str) -> RoomQuery {
    let mut q = RoomQuery::default();
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "room" => q.room = Some(value),
            "name" => q.name = Some(value),
            "since" => q.since = value.parse().ok(),
            _ => {}
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_and_listed_origins() {
        let p = OriginPolicy::new(&["https://chat.example.com/".into()]);
        assert!(p.allows(None, Some("x")));
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(p.allows(Some("http://example.com"), Some("example.com")));
        assert!(p.allows(Some("http://example.com"), Some("example.com:80")));
        assert!(p.allows(Some("https://chat.example.com"), Some("other:1")));
        assert!(!p.allows(Some("http://evil.example"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("null"), Some("127.0.0.1:8080")));
        assert!(OriginPolicy::new(&["*".into()]).allows(Some("http://evil.example"), None));
    }

    #[test]
    fn query_fields() {
        let q = room_query("room=dev+ops&name=al%C3%ADce&since=7&x=1");
        assert_eq!(q.room.as_deref(), Some("dev ops"));
        assert_eq!(q.name.as_deref(), Some("alíce"));
        assert_eq!(q.since, Some(7));
    }
}
