//! The admin view and its JSON API, on the chat's port, for whoever holds
//! `--admin-token`: `GET /admin` (a page like the chat's, which asks for the
//! token and then uses the API), `GET /api/rooms`, `POST /api/kick`,
//! `POST /api/ban` and `POST /api/unban`, each with
//! `Authorization: Bearer TOKEN`. Without `--admin-token` all of these
//! answer 404, as if they did not exist.
//!
//! The hubs own the rooms: every request becomes an `Input::Admin` to each
//! hub, answered from its thread, and their answers are added up
//! (`hub::hubs`). With shared rooms (`--redis`) the request is asked of
//! every live instance, each answering from its own hubs, and the answer
//! says which instances answered and which did not (`hub::everywhere`).
//! Every
//! action is logged with who did it (the peer address, and the
//! `X-Admin-Name` label the request gave). `/api/info`, which the chat page
//! reads, is not one of these: anyone may read it (`router.rs`).

use crate::logs as log;

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::config::secret::Secret;
use crate::history::redis::Everywhere;
use crate::http::{self, Head, Site};
use crate::hub::everywhere::{self, Reach};
use crate::hub::hubs::Hubs;
use crate::hub::moderation::{MAX_BAN_MINUTES, Reply, Request};
use crate::limits::lockout::{self, Lockout};

/// Largest request body the API reads.
const MAX_BODY: usize = 4096;

/// How long a request waits for the dispatcher's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest `X-Admin-Name` kept for the log.
const MAX_LABEL: usize = 64;

/// What the admin routes need, shared by every connection thread.
pub struct Admin {
    token: Option<Secret>,
    hubs: Hubs,
    /// With shared rooms: asks every instance.
    everywhere: Option<Everywhere>,
    site: Site,
    body_timeout: Duration,
    /// Wrong tokens per address (see `lockout`).
    lockout: Lockout,
}

/// What the page may ask before joining (docs/PROTOCOL.md, "Before
/// joining"): public, unlike the rest of `/api/`.
pub(crate) const INFO_PATH: &str = "/api/info";

/// Whether `path` is one of the admin routes (answered 404 when there is
/// no admin token, so that they cannot be told from paths that do not
/// exist).
pub fn is_admin_path(path: &str) -> bool {
    matches!(path, "/admin" | "/admin.html" | "/admin.js" | "/admin.css")
        || path == "/api"
        || (path.starts_with("/api/") && path != INFO_PATH)
}

/// Why an API request is not carried out; each is one HTTP answer.
#[derive(Debug)]
enum Failure {
    NotFound,
    Method(&'static str),
    Unauthorized(&'static str),
    /// 429: too many wrong tokens from this address; try again after this.
    Limited(Duration),
    LengthRequired,
    TooLarge,
    BadBody(String),
    Unavailable,
    /// 503: Redis did not answer, so the other instances could not be
    /// asked.
    Unreachable(String),
    Io(io::Error),
}

/// The body of `POST /api/kick`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickBody {
    name: String,
    room: Option<String>,
}

/// The body of `POST /api/ban`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BanBody {
    name: String,
    minutes: u64,
}

/// The body of `POST /api/unban`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnbanBody {
    name: String,
}

impl Admin {
    pub fn new(
        token: Option<Secret>,
        (hubs, everywhere): (Hubs, Option<Everywhere>),
        site: Site,
        body_timeout: Duration,
    ) -> Admin {
        Admin {
            token,
            hubs,
            everywhere,
            site,
            body_timeout,
            lockout: Lockout::default(),
        }
    }

    /// Answers a request for an admin route. `early` is what the client
    /// sent after its request head: the start of a body.
    // Out of line: a connection's thread keeps every stack page it touched.
    #[inline(never)]
    pub fn answer(&self, sock: &TcpStream, peer: SocketAddr, head: &Head, early: &[u8]) {
        let locked = self.lockout.check(peer.ip(), Instant::now());
        let result = match (&self.token, head.path()) {
            (None, _) => Err(Failure::NotFound),
            (Some(_), _) if let Err(wait) = locked => {
                log::debug!(
                    "event=admin peer={} path={:?} outcome=limited retry_after={}",
                    crate::proto::addr::show_peer(peer),
                    head.path(),
                    wait.as_secs() + 1
                );
                Err(Failure::Limited(wait))
            }
            (Some(_), "/admin.html" | "/admin.js" | "/admin.css") => self.page(sock, head, None),
            (Some(_), "/admin") => self.page(sock, head, Some("/admin.html")),
            (Some(token), _) => self.api(sock, peer, head, early, token),
        };
        if let Err(failure) = result
            && let Err(e) = self.fail(sock, head, failure)
        {
            let peer = crate::proto::addr::show_peer(peer);
            log::debug!("event=write_failed peer={peer} error={:?}", e.to_string());
        }
    }

    /// Serves the page's files: static, holding no data, so served without
    /// the token (a browser cannot send a bearer token when it navigates);
    /// the page asks for the token and sends it with each API request.
    fn page(&self, sock: &TcpStream, head: &Head, file: Option<&str>) -> Result<(), Failure> {
        if head.method != "GET" && head.method != "HEAD" {
            return Err(Failure::Method("GET, HEAD"));
        }
        let mut head = head.clone();
        if let Some(file) = file {
            head.target = file.to_owned();
        }
        self.site.serve(sock, &head).map_err(Failure::Io)
    }

    fn api(
        &self,
        sock: &TcpStream,
        peer: SocketAddr,
        head: &Head,
        early: &[u8],
        token: &Secret,
    ) -> Result<(), Failure> {
        let action = match head.path() {
            "/api/rooms" => "rooms",
            "/api/metrics" => "metrics",
            "/api/kick" => "kick",
            "/api/ban" => "ban",
            "/api/unban" => "unban",
            _ => return Err(Failure::NotFound),
        };
        let allowed = if matches!(action, "rooms" | "metrics") {
            "GET"
        } else {
            "POST"
        };
        if head.method != allowed {
            return Err(Failure::Method(allowed));
        }
        let by = label(head);
        let presented = head
            .header("Authorization")
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented else {
            log::warn!(
                "event=admin action={action} peer={} by={by:?} outcome=denied why=\"no token\"",
                crate::proto::addr::show_peer(peer)
            );
            return Err(Failure::Unauthorized("an admin token is required"));
        };
        if !token.matches(presented.as_bytes()) {
            let failures = self.lockout.failed(peer.ip(), Instant::now());
            let shown = crate::proto::addr::show_peer(peer);
            log::warn!(
                "event=admin action={action} peer={shown} by={by:?} outcome=denied why=\"wrong token\" failures={failures}"
            );
            if failures == lockout::MAX_FAILURES {
                log::warn!(
                    "event=admin_lockout peer={shown} failures={failures} window={}s msg=\"wrong admin tokens: this address gets 429 until the window ends\"",
                    lockout::WINDOW.as_secs()
                );
            }
            return Err(Failure::Unauthorized("wrong admin token"));
        }
        let request = match action {
            // `/metrics` as the admin view may read it through a proxy that
            // keeps `/metrics` itself off the public side (docs/DEPLOY.md).
            "metrics" => {
                let body = crate::metrics::get().render().into_bytes();
                let headers = [
                    ("Content-Type", crate::metrics::TEXT),
                    ("Cache-Control", "no-store"),
                ];
                let response = http::data_response(200, body, &headers);
                return http::respond_to(sock, head, response).map_err(Failure::Io);
            }
            "rooms" => Request::Overview,
            "kick" => {
                let body: KickBody = self.body(sock, head, early)?;
                Request::Kick {
                    name: body.name,
                    room: body.room,
                }
            }
            "ban" => {
                let body: BanBody = self.body(sock, head, early)?;
                if body.minutes == 0 || body.minutes > MAX_BAN_MINUTES {
                    return Err(Failure::BadBody(format!(
                        "\"minutes\" must be 1 to {MAX_BAN_MINUTES}"
                    )));
                }
                Request::Ban {
                    name: body.name,
                    minutes: body.minutes,
                    until: crate::hub::moderation::now_ms() + body.minutes * 60_000,
                }
            }
            _ => {
                let body: UnbanBody = self.body(sock, head, early)?;
                Request::Unban { name: body.name }
            }
        };
        let (reply, reach) = self.ask(&request)?;
        log_action(peer, &by, &request, &reply, reach.as_ref());
        let status = match reply {
            Reply::Refused { .. } => 400,
            _ => 200,
        };
        let mut body = serde_json::to_value(&reply).expect("replies are plain data");
        if let (Some(reach), serde_json::Value::Object(fields)) = (reach, &mut body)
            && !matches!(reply, Reply::Refused { .. })
        {
            fields.insert("instances".into(), json!(reach.instances));
            fields.insert("missing".into(), json!(reach.missing));
        }
        let body = serde_json::to_vec(&body).expect("replies are plain data");
        json_response(sock, head, status, body).map_err(Failure::Io)
    }

    /// Reads and parses a JSON body of at most `MAX_BODY` bytes, announced
    /// by `Content-Length`, within the handshake timeout.
    fn body<T: for<'de> Deserialize<'de>>(
        &self,
        sock: &TcpStream,
        head: &Head,
        early: &[u8],
    ) -> Result<T, Failure> {
        let length: usize = head
            .header("Content-Length")
            .ok_or(Failure::LengthRequired)?
            .trim()
            .parse()
            .map_err(|_| Failure::BadBody("Content-Length is not a number".into()))?;
        if length > MAX_BODY {
            return Err(Failure::TooLarge);
        }
        let mut body = early[..early.len().min(length)].to_vec();
        let deadline = Instant::now() + self.body_timeout;
        let mut chunk = vec![0; MAX_BODY];
        while body.len() < length {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::BadBody("the body did not arrive in time".into()));
            }
            sock.set_read_timeout(Some(left)).map_err(Failure::Io)?;
            match (&*sock).read(&mut chunk[..length - body.len()]) {
                Ok(0) => return Err(Failure::BadBody("the body ended early".into())),
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::BadBody("the body did not arrive in time".into())),
            }
        }
        serde_json::from_slice(&body).map_err(|e| Failure::BadBody(e.to_string()))
    }

    /// Asks every hub (of every instance, with shared rooms) and waits for
    /// their answers, put together; with shared rooms, also which
    /// instances answered.
    fn ask(&self, request: &Request) -> Result<(Reply, Option<Reach>), Failure> {
        let Some(everywhere) = &self.everywhere else {
            let reply = self.hubs.moderate(request.clone(), ANSWER_TIMEOUT);
            return Ok((reply.ok_or(Failure::Unavailable)?, None));
        };
        let (reply, reach) = everywhere::ask(everywhere, request)
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        if !reach.missing.is_empty() {
            log::warn!(
                "event=admin_partial answered={} missing={:?} msg=\"instances did not answer: their clients are left out\"",
                reach.instances.len(),
                reach.missing.join(",")
            );
        }
        Ok((reply, Some(reach)))
    }

    fn fail(&self, sock: &TcpStream, head: &Head, failure: Failure) -> io::Result<()> {
        let (status, error, message) = match failure {
            Failure::NotFound => {
                // As for any path that does not exist.
                return http::respond_to(sock, head, http::text_response(404, "not found\n"));
            }
            Failure::Method(allow) => {
                let response =
                    http::error_response(405, "method not allowed\n", &[("Allow", allow)]);
                return http::respond_to(sock, head, response);
            }
            Failure::Unauthorized(why) => {
                let body = json!({"error": "unauthorized", "message": why}).to_string();
                let response = http::data_response(
                    401,
                    body.into_bytes(),
                    &[
                        ("Content-Type", "application/json"),
                        ("Cache-Control", "no-store"),
                        ("WWW-Authenticate", "Bearer realm=\"wschat admin\""),
                    ],
                );
                return http::respond_to(sock, head, response);
            }
            Failure::Limited(wait) => {
                let body = json!({
                    "error": "too_many_attempts",
                    "message": "too many wrong admin tokens from this address; try again later",
                })
                .to_string();
                let retry = (wait.as_secs() + 1).to_string();
                let response = http::data_response(
                    429,
                    body.into_bytes(),
                    &[
                        ("Content-Type", "application/json"),
                        ("Cache-Control", "no-store"),
                        ("Retry-After", &retry),
                    ],
                );
                return http::respond_to(sock, head, response);
            }
            Failure::LengthRequired => (411, "length_required", "send a Content-Length".into()),
            Failure::TooLarge => (
                413,
                "too_large",
                format!("a body is {MAX_BODY} bytes at most"),
            ),
            Failure::BadBody(why) => (400, "bad_request", why),
            Failure::Unavailable => (503, "unavailable", "the server is shutting down".into()),
            Failure::Unreachable(why) => (
                503,
                "unavailable",
                format!("Redis did not answer, so no instance was asked: {why}"),
            ),
            Failure::Io(e) => return Err(e),
        };
        let body = json!({"error": error, "message": message}).to_string();
        json_response(sock, head, status, body.into_bytes())
    }
}

/// The `X-Admin-Name` label of a request, for the log: at most 64
/// characters, without control characters; `-` when none is given.
fn label(head: &Head) -> String {
    let label: String = head
        .header("X-Admin-Name")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL)
        .collect();
    match label.trim() {
        "" => "-".to_owned(),
        label => label.to_owned(),
    }
}

/// One line per moderator's request. These name the person acted on at
/// `info`, unlike the chat's own lines: they are the record of who removed
/// whom, which an operator must be able to read back.
fn log_action(peer: SocketAddr, by: &str, request: &Request, reply: &Reply, reach: Option<&Reach>) {
    let peer = crate::proto::addr::show_peer(peer);
    // With shared rooms: how many instances carried it out, and how many
    // did not answer.
    let reach = reach.map_or(String::new(), |r| {
        format!(
            " instances={} missing={}",
            r.instances.len(),
            r.missing.len()
        )
    });
    let outcome = match reply {
        Reply::Refused { error, .. } => format!("refused error={error}"),
        _ => "done".to_owned(),
    };
    match (request, reply) {
        (Request::Overview, _) => {
            log::debug!("event=admin action=rooms peer={peer} by={by:?} outcome={outcome}{reach}")
        }
        (Request::Kick { name, room }, reply) => {
            let kicked = match reply {
                Reply::Kicked { kicked, .. } => *kicked,
                _ => 0,
            };
            log::info!(
                "event=admin action=kick peer={peer} by={by:?} name={name:?} room={:?} kicked={kicked} outcome={outcome}{reach}",
                room.as_deref().unwrap_or("*")
            );
        }
        (Request::Ban { name, minutes, .. }, reply) => {
            let (until, kicked) = match reply {
                Reply::Banned { until, kicked, .. } => (*until, *kicked),
                _ => (0, 0),
            };
            log::info!(
                "event=admin action=ban peer={peer} by={by:?} name={name:?} minutes={minutes} until={} kicked={kicked} outcome={outcome}{reach}",
                crate::hub::moderation::rfc3339(until)
            );
        }
        (Request::Unban { name }, reply) => {
            let lifted = matches!(reply, Reply::Unbanned { unbanned: true, .. });
            log::info!(
                "event=admin action=unban peer={peer} by={by:?} name={name:?} lifted={lifted} outcome={outcome}{reach}"
            );
        }
    }
}

fn json_response(sock: &TcpStream, head: &Head, status: u16, body: Vec<u8>) -> io::Result<()> {
    let headers = [
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
    ];
    http::respond_to(sock, head, http::data_response(status, body, &headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths() {
        for p in ["/admin", "/admin.js", "/api/rooms", "/api/x", "/api"] {
            assert!(is_admin_path(p), "{p}");
        }
        for p in [
            "/",
            "/app.js",
            "/apiary",
            "/administrator",
            "/ws",
            "/api/info",
        ] {
            assert!(!is_admin_path(p), "{p}");
        }
    }

    #[test]
    fn labels_are_short_and_plain() {
        let head = |v: &str| Head {
            method: "GET".into(),
            target: "/".into(),
            version: 1,
            headers: vec![("X-Admin-Name".into(), v.into())],
        };
        assert_eq!(label(&head("  ")), "-");
        assert_eq!(label(&head("mod\u{7}erator")), "moderator");
        assert_eq!(label(&head(&"x".repeat(100))).len(), MAX_LABEL);
    }
}
