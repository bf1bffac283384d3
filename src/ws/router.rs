//! One connection's thread, from its first byte: reads the request head,
//! applies the checks every request meets (`admission`), and routes it: to
//! the operator's endpoints, the admin view, a file or the page, or through
//! the WebSocket upgrade to the connection's reader.

use crate::logs as log;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use crate::config::Config;
use crate::http::files;
use crate::http::health::Health;
use crate::http::proxy::{Hosts, Proxies, Seen};
use crate::http::{self, Head, HeadError, Site};
use crate::hub::hubs::Hubs;
use crate::hub::outlet::writer::Writers;
use crate::limits::budget::Budget;
use crate::metrics;
use crate::net::admission::{self, Admission, Ticket};
use crate::ws::echo::EchoClients;
use crate::ws::handshake::{self, Endpoint, OriginPolicy, UpgradeRefusal};
use crate::ws::reader::{self, Connection, Served};

/// What every connection thread shares, read-only.
pub(crate) struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) site: Site,
    pub(crate) origins: OriginPolicy,
    /// The hub threads, which own the rooms.
    pub(crate) hubs: Hubs,
    pub(crate) echoes: EchoClients,
    pub(crate) writers: Arc<Writers>,
    pub(crate) budget: Budget,
    /// Serves `/files/…` downloads.
    pub(crate) files: crate::http::files::Downloads,
    pub(crate) health: Health,
    pub(crate) admission: Admission,
    pub(crate) proxies: Proxies,
    pub(crate) hosts: Hosts,
    pub(crate) admin: crate::http::admin::Admin,
}

/// One connection's thread: reads the request head, then serves a file or
/// refuses, or upgrades to a WebSocket, which it returns to be served (the
/// connection holds the ticket until it ends).
///
/// Each step is out of line and hands on what it made boxed: a connection's
/// thread keeps every stack page it ever touched, and this frame is below
/// every call the handshake makes (the admission's channel, the accept key),
/// so it holds little more than pointers (see "Limits" in
/// docs/ARCHITECTURE.md).
#[inline(never)]
pub(crate) fn handle(mut job: Box<Accepted>, shared: &Shared) -> Option<Box<Served>> {
    let request = read_request(&job.sock, job.peer, &mut job.ticket, shared)?;
    let sock = &job.sock;
    if !admit(sock, &request, &mut job.ticket, shared) || !route(&job.sock, &request, shared) {
        return None;
    }
    let endpoint = upgrade(&job.sock, job.id, &request, shared)?;
    connection(job, request, endpoint, shared)
}

/// A connection as the accept loop hands it to its thread: boxed, so that
/// the frames under the whole handshake hold a pointer to it only.
pub(crate) struct Accepted {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    /// The connection's id, for the logs and the hubs.
    pub id: u64,
    /// Its place among the connections admitted, held until it ends.
    pub ticket: Ticket,
}

/// A request head read whole, and who sent it.
struct Request {
    head: Head,
    /// Bytes the client sent after its request head.
    early: Vec<u8>,
    /// The real client (behind a trusted proxy, the one it names).
    client: SocketAddr,
    /// The scheme and host the client used.
    seen: Seen,
}

/// Reads the request head; answers one that cannot be read, and the
/// operator's health checks.
#[inline(never)]
fn read_request(
    sock: &TcpStream,
    peer: SocketAddr,
    ticket: &mut Ticket,
    shared: &Shared,
) -> Option<Box<Request>> {
    let config = &shared.config;
    let head = http::read_head(sock, config.handshake_timeout);
    ticket.head_done();
    if sock.set_write_timeout(Some(config.write_timeout)).is_err() {
        return None;
    }
    let (head, early) = match head {
        Ok(h) => h,
        Err(e) => {
            answer_bad_head(sock, peer, e);
            return None;
        }
    };
    if let Some(response) = shared.health.answer(&head) {
        // Health checks come from the operator's tools, by any name.
        let _ = http::respond_to(sock, &head, response);
        return None;
    }
    // Behind a trusted proxy: the real client, and the address it used.
    let client = shared.proxies.client_addr(peer, &head);
    let seen = shared.proxies.seen(peer.ip(), &head);
    Some(Box::new(Request {
        head,
        early,
        client,
        seen,
    }))
}

/// The checks every request meets; refuses it if they fail.
#[inline(never)]
fn admit(sock: &TcpStream, request: &Request, ticket: &mut Ticket, shared: &Shared) -> bool {
    let Request {
        head, client, seen, ..
    } = request;
    match admission::check(
        ticket,
        (*client, seen),
        head,
        &shared.hosts,
        &shared.admission,
    ) {
        Ok(()) => true,
        Err(denial) => {
            admission::refuse(sock, head, *client, denial);
            false
        }
    }
}

/// Answers what is not a WebSocket endpoint; true for what is.
#[inline(never)]
fn route(sock: &TcpStream, request: &Request, shared: &Shared) -> bool {
    let Request {
        head,
        early,
        client,
        ..
    } = request;
    if head.path() == crate::http::admin::INFO_PATH {
        answer_info(sock, head, &shared.config);
    } else if crate::http::admin::is_admin_path(head.path()) {
        shared.admin.answer(sock, *client, head, early);
    } else if !handshake::endpoint_path(head) {
        answer_http(sock, *client, head, shared);
    } else {
        return true;
    }
    false
}

/// The WebSocket handshake: answers 101, or refuses the upgrade.
#[inline(never)]
fn upgrade(sock: &TcpStream, id: u64, request: &Request, shared: &Shared) -> Option<Box<Endpoint>> {
    let Request {
        head, client, seen, ..
    } = request;
    match handshake::accept(sock, head, seen, &shared.origins, &shared.config) {
        Ok(mut endpoint) => {
            if let Endpoint::Room(_, query) = &mut endpoint {
                query.client = Some(*client);
            }
            log_connect(id, request, &endpoint);
            Some(Box::new(endpoint))
        }
        Err(refusal) => {
            refuse_upgrade(sock, head, *client, refusal);
            None
        }
    }
}

/// Logs a WebSocket's start.
#[inline(never)]
fn log_connect(id: u64, request: &Request, endpoint: &Endpoint) {
    let mode = metrics::mode_label(endpoint.kind().metric());
    let room = match endpoint {
        Endpoint::Echo => None,
        Endpoint::Room(_, query) => query.room.as_ref(),
    };
    let room = room.map_or(String::new(), |r| format!(" room={r:?}"));
    log::info!(
        "event=connect client={id} peer={} mode={mode} path={}{room}",
        crate::proto::addr::show_peer(request.client),
        request.head.path()
    );
}

/// What the connection's reader keeps, made from what the handshake
/// gathered; `None` if its socket cannot be set up.
#[inline(never)]
#[allow(
    clippy::boxed_local,
    reason = "boxed by the steps before, whose values must not stay in handle's frame"
)]
fn connection(
    job: Box<Accepted>,
    request: Box<Request>,
    endpoint: Box<Endpoint>,
    shared: &Shared,
) -> Option<Box<Served>> {
    let Accepted {
        sock, id, ticket, ..
    } = *job;
    let Request { early, client, .. } = *request;
    let mut session = reader::new_session(
        id,
        endpoint,
        &shared.config,
        shared.hubs.clone(),
        &shared.budget,
        shared.health.cluster(),
    );
    session.store_rate = ticket.store_rate.clone();
    reader::open(Connection {
        id,
        peer: client,
        sock,
        early,
        session,
        config: shared.config.clone(),
        echoes: shared.echoes.clone(),
        writers: shared.writers.clone(),
        budget: shared.budget.clone(),
        ticket,
    })
}

// The answers below are kept out of line (as is `refuse_upgrade`): their
// responses are large values, and a connection's thread keeps every stack
// page it ever touched, so they must not widen the frame a WebSocket lives in.

/// Answers `GET /api/info`: whether this server needs an identity token,
/// so that the page can say so before the visitor presses Join.
#[inline(never)]
fn answer_info(sock: &TcpStream, head: &Head, config: &Config) {
    let response = if head.method == "GET" || head.method == "HEAD" {
        let body = serde_json::json!({
            "token_required": crate::ws::auth::secret(config).is_some(),
        });
        http::data_response(
            200,
            body.to_string().into_bytes(),
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
            ],
        )
    } else {
        http::error_response(405, "method not allowed\n", &[("Allow", "GET, HEAD")])
    };
    let _ = http::respond_to(sock, head, response);
}

/// Answers a request head that could not be read.
#[inline(never)]
fn answer_bad_head(sock: &TcpStream, peer: SocketAddr, e: HeadError) {
    log::debug!("event=no_request peer={peer} error={:?}", e.to_string());
    if let Some(why) = e.metric() {
        metrics::get().refused(why);
    }
    let response = match e {
        HeadError::TooLarge => http::text_response(431, "request head too large\n"),
        HeadError::Malformed(_) => http::text_response(400, "malformed request\n"),
        HeadError::Timeout => http::text_response(408, "request head not received in time\n"),
        HeadError::Closed | HeadError::Io(_) => return,
    };
    let _ = http::respond(sock, response, false);
}

/// Answers plain HTTP: the page, or 405.
#[inline(never)]
fn answer_http(sock: &TcpStream, client: SocketAddr, head: &Head, shared: &Shared) {
    let result = if files::is_files_path(head.path()) {
        files::serve(sock, head, &shared.files)
    } else if head.method == "GET" || head.method == "HEAD" {
        shared.site.serve(sock, head)
    } else {
        let response = http::error_response(405, "method not allowed\n", &[("Allow", "GET, HEAD")]);
        http::respond_to(sock, head, response)
    };
    if let Err(e) = result {
        let client = crate::proto::addr::show_peer(client);
        log::debug!("event=write_failed peer={client} error={:?}", e.to_string());
    }
}

/// Answers an upgrade request that was refused.
#[inline(never)]
fn refuse_upgrade(sock: &TcpStream, head: &Head, client: SocketAddr, refusal: UpgradeRefusal) {
    let peer = crate::proto::addr::show_peer(client);
    metrics::get().refused(refusal.metric());
    // `Upgrade` is one of the headers tiny_http will not set itself.
    let mut upgrade: &[(&str, &str)] = &[];
    let response = match refusal {
        UpgradeRefusal::NotUpgrade => {
            upgrade = &[("Upgrade", "websocket")];
            http::text_response(426, "this endpoint speaks WebSocket only\n")
        }
        UpgradeRefusal::Origin(origin) => {
            log::info!("event=refused peer={peer} reason=origin origin={origin:?}");
            http::text_response(403, "origin not allowed\n")
        }
        UpgradeRefusal::Version => http::error_response(
            426,
            "this server speaks WebSocket version 13\n",
            &[("Sec-WebSocket-Version", "13")],
        ),
        UpgradeRefusal::Invalid(why) => {
            log::debug!("event=refused peer={peer} reason=bad_request why={why:?}");
            http::text_response(400, &format!("bad WebSocket upgrade: {why}\n"))
        }
        UpgradeRefusal::Unauthorized(e) => {
            crate::ws::auth::log_refused(Some(client), "upgrade", &e);
            http::text_response(e.status(), &format!("{}: {e}\n", e.code().as_str()))
        }
    };
    if let Err(e) = http::respond_to_with(sock, head, response, upgrade) {
        log::debug!("event=write_failed peer={peer} error={:?}", e.to_string());
    }
}
