//! The one listening socket: accepting connections, the connection caps,
//! reading each request head and routing it to the page or a WebSocket, and
//! the orderly shutdown of it all.
//!
//! The accept thread alone keeps the counts of open connections (total and
//! per IP) and of handshakes in progress; connection threads report their
//! end through a channel, so no count is shared behind a lock.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::config::Config;
use crate::connection::{Connection, THREAD_STACK};
use crate::dispatcher::{Dispatcher, Event, Limits};
use crate::handshake::{self, Endpoint, OriginPolicy, Refusal};
use crate::health::{Drain, Health};
use crate::http::{self, HeadError, Site};
use crate::metrics::{self, Refused};

/// Seconds a client refused for load is asked to wait (`Retry-After`).
const RETRY_AFTER: &str = "5";

/// Pause after `accept` fails for lack of file descriptors, so the loop does
/// not spin while connections close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Capacity of the dispatcher's event channel. Readers block when it is
/// full, which slows only the clients that are sending.
const EVENT_QUEUE: usize = 4096;

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    stop: Arc<AtomicBool>,
}

/// Stops a running server from another thread (the signal handler).
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ShutdownHandle {
    /// Makes `Server::run` stop accepting, close every client with 1001 and
    /// return once they are gone or the shutdown grace has passed.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// What the connection threads tell the accept thread.
enum Release {
    /// A connection has read its request head.
    HandshakeDone,
    /// A connection that counted against the caps has ended.
    Closed(IpAddr),
    /// A client from this address was closed for flooding or abuse.
    Abuse(IpAddr),
}

/// Held by a connection's thread; reports its stages to the accept thread.
struct Ticket {
    release: Sender<Release>,
    ip: IpAddr,
    counted: bool,
    in_handshake: bool,
    /// Dropped when the connection ends: `run` waits for all of these on shutdown.
    _alive: Sender<()>,
}

impl Ticket {
    fn report_abuse(&self) {
        let _ = self.release.send(Release::Abuse(self.ip));
    }

    fn handshake_done(&mut self) {
        if std::mem::take(&mut self.in_handshake) {
            let _ = self.release.send(Release::HandshakeDone);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.handshake_done();
        if self.counted {
            let _ = self.release.send(Release::Closed(self.ip));
        }
    }
}

/// The accept thread's counts.
#[derive(Default)]
struct Admission {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    handshakes: usize,
    /// Addresses refused until the given time, after abuse. Without this a
    /// flooder would reconnect at once with a fresh rate allowance.
    banned: HashMap<IpAddr, Instant>,
    ban: Duration,
}

/// Bans are swept out of the map once it holds this many.
const MAX_BANS_BEFORE_SWEEP: usize = 1024;

impl Admission {
    /// How long `ip` is still refused, if it is.
    fn banned_for(&mut self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        if self.banned.len() > MAX_BANS_BEFORE_SWEEP {
            self.banned.retain(|_, until| *until > now);
        }
        let left = self.banned.get(&ip)?.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    fn apply(&mut self, release: Release) {
        match release {
            Release::Abuse(ip) => {
                if !self.ban.is_zero() {
                    log::warn!(
                        "event=ban ip={ip} seconds={} msg=\"refusing new connections after abuse\"",
                        self.ban.as_secs_f64()
                    );
                    self.banned.insert(ip, Instant::now() + self.ban);
                }
            }
            Release::HandshakeDone => self.handshakes -= 1,
            Release::Closed(ip) => {
                self.total -= 1;
                if let Some(n) = self.per_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_ip.remove(&ip);
                    }
                }
            }
        }
    }
}

/// What every connection thread shares, read-only.
struct Shared {
    config: Arc<Config>,
    site: Site,
    origins: OriginPolicy,
    events: Sender<Event>,
    health: Health,
}

impl Server {
    pub fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        Ok(Server {
            listener,
            config: Arc::new(config),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn shutdown_handle(&self) -> io::Result<ShutdownHandle> {
        Ok(ShutdownHandle {
            stop: self.stop.clone(),
            addr: self.local_addr()?,
        })
    }

    /// Serves until shut down; returns when every connection has finished or
    /// the shutdown grace has passed. `ready` is called once every thread of
    /// the server is running, just before the first accept.
    pub fn run(self, ready: impl FnOnce()) -> io::Result<()> {
        let config = self.config.clone();
        let (events, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        let dispatcher = Dispatcher::new(Limits {
            history: config.history,
            max_idle_rooms: config.max_idle_rooms,
        });
        let health = Health::new(self.stop.clone());
        let running = health.dispatcher_running();
        let dispatcher = thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || {
                let _running = running;
                dispatcher.run(events_rx)
            })?;
        let shared = Arc::new(Shared {
            site: config.www.clone().map_or(Site::Embedded, Site::Dir),
            origins: OriginPolicy::new(&config.allow_origins),
            events: events.clone(),
            config: config.clone(),
            health: health.clone(),
        });
        let (alive, all_gone) = crossbeam_channel::bounded::<()>(0);
        ready();

        self.accept_loop(&shared, &alive);
        // Stop accepting clients; until the end, new connections are answered
        // 503 (and /readyz says so) by the drain thread.
        let draining = Drain::start(&self.listener, health);
        drop(self);

        log::info!(
            "event=shutdown grace={}s msg=\"closing clients\"",
            config.shutdown_grace.as_secs_f64()
        );
        drop(shared);
        let _ = events.send(Event::Shutdown);
        drop(events);
        if dispatcher.join().is_err() {
            log::error!("the dispatcher thread panicked");
        }
        drop(alive);
        wait_for_connections(&all_gone, config.shutdown_grace);
        drop(draining);
        Ok(())
    }

    fn accept_loop(&self, shared: &Arc<Shared>, alive: &Sender<()>) {
        let (release, released) = crossbeam_channel::unbounded();
        let mut admission = Admission {
            ban: self.config.flood_ban,
            ..Admission::default()
        };
        let mut next_id = 0u64;
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let sock = match stream {
                Ok(sock) => sock,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
            };
            let Ok(peer) = sock.peer_addr() else { continue };
            released.try_iter().for_each(|r| admission.apply(r));

            let ip = peer.ip();
            if let Some(left) = admission.banned_for(ip) {
                log::debug!(
                    "event=refused peer={peer} reason=rate banned_for={}s",
                    left.as_secs()
                );
                metrics::get().refused(Refused::Rate);
                let retry = left.as_secs().max(1).to_string();
                refuse_now(&sock, 429, "too many requests\n", &retry);
                continue;
            }
            if admission.handshakes >= self.config.max_handshakes {
                log::warn!(
                    "event=refused peer={peer} reason=busy handshakes={}",
                    admission.handshakes
                );
                metrics::get().refused(Refused::Busy);
                refuse_now(&sock, 503, "server busy\n", RETRY_AFTER);
                continue;
            }
            let per_ip = admission.per_ip.get(&ip).copied().unwrap_or(0);
            let over_cap = admission.total >= self.config.max_connections
                || per_ip >= self.config.max_connections_per_ip;
            admission.handshakes += 1;
            if !over_cap {
                admission.total += 1;
                *admission.per_ip.entry(ip).or_default() += 1;
            }
            let ticket = Ticket {
                release: release.clone(),
                ip,
                counted: !over_cap,
                in_handshake: true,
                _alive: alive.clone(),
            };
            next_id += 1;
            let id = next_id;
            let shared = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("conn-{id}"))
                .stack_size(THREAD_STACK)
                .spawn(move || handle(sock, peer, id, ticket, over_cap, &shared));
            if let Err(e) = spawned {
                // The ticket went down with the closure and released its counts.
                log::error!("{peer}: cannot start a thread: {e}");
            }
        }
    }
}

/// Refuses a connection from the accept thread without reading its request
/// or starting a thread: for banned addresses, and when too many handshakes
/// are in progress to start another.
fn refuse_now(sock: &TcpStream, status: u16, body: &str, retry_after: &str) {
    // A fresh socket's send buffer is empty: this small write cannot block
    // for long, and the timeout makes sure of it.
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    let response = http::error_response(status, body, &[("Retry-After", retry_after)]);
    let _ = http::respond(sock, response, false);
}

fn wait_for_connections(all_gone: &Receiver<()>, grace: Duration) {
    match all_gone.recv_timeout(grace) {
        Err(RecvTimeoutError::Disconnected) | Ok(()) => {
            log::info!("event=stopped msg=\"all connections closed\"")
        }
        Err(RecvTimeoutError::Timeout) => {
            log::warn!("event=stopped msg=\"shutdown grace over; exiting with connections open\"")
        }
    }
}

/// One connection's thread: reads the request head, then serves a file,
/// refuses, or becomes the WebSocket's reader.
fn handle(
    sock: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut ticket: Ticket,
    over_cap: bool,
    shared: &Shared,
) {
    let config = &shared.config;
    let head = http::read_head(&sock, config.handshake_timeout);
    ticket.handshake_done();
    if sock.set_write_timeout(Some(config.write_timeout)).is_err() {
        return;
    }
    let (head, early) = match head {
        Ok(h) => h,
        Err(e) => {
            log::debug!("event=no_request peer={peer} error={:?}", e.to_string());
            metrics::get().head_error(&e);
            let response = match e {
                HeadError::TooLarge => http::text_response(431, "request head too large\n"),
                HeadError::Malformed(_) => http::text_response(400, "malformed request\n"),
                HeadError::Timeout => {
                    http::text_response(408, "request head not received in time\n")
                }
                HeadError::Closed | HeadError::Io(_) => return,
            };
            let _ = http::respond(&sock, response, false);
            return;
        }
    };
    let result = if let Some(response) = shared.health.answer(&head) {
        http::respond_to(&sock, &head, response)
    } else if over_cap {
        log::info!(
            "event=refused peer={peer} reason=cap method={} path={:?}",
            head.method,
            head.path()
        );
        metrics::get().refused(Refused::Cap);
        let body = "too many connections; retry later\n";
        http::respond_to(
            &sock,
            &head,
            http::error_response(503, body, &[("Retry-After", RETRY_AFTER)]),
        )
    } else if handshake::endpoint_path(&head) {
        match handshake::accept(&sock, &head, &shared.origins) {
            Ok(endpoint) => {
                let (mode, room) = match &endpoint {
                    Endpoint::Echo => ("echo", None),
                    Endpoint::Room(mode, query) => {
                        (metrics::mode_label(*mode), query.room.as_ref())
                    }
                };
                let room = room.map_or(String::new(), |r| format!(" room={r:?}"));
                log::info!(
                    "event=connect client={id} peer={peer} mode={mode} path={}{room}",
                    head.path()
                );
                Connection {
                    id,
                    peer,
                    sock,
                    early,
                    endpoint,
                    config: config.clone(),
                    events: shared.events.clone(),
                }
                .serve(|| ticket.report_abuse());
                return;
            }
            Err(refusal) => refuse_upgrade(&sock, &head, peer, refusal),
        }
    } else if head.method == "GET" || head.method == "HEAD" {
        shared.site.serve(&sock, &head)
    } else {
        let response = http::error_response(405, "method not allowed\n", &[("Allow", "GET, HEAD")]);
        http::respond_to(&sock, &head, response)
    };
    if let Err(e) = result {
        log::debug!("event=write_failed peer={peer} error={:?}", e.to_string());
    }
}

fn refuse_upgrade(
    sock: &TcpStream,
    head: &http::Head,
    peer: SocketAddr,
    refusal: Refusal,
) -> io::Result<()> {
    metrics::get().refused(refusal.metric());
    let response = match refusal {
        Refusal::NotUpgrade => http::error_response(
            426,
            "this endpoint speaks WebSocket only\n",
            &[("Upgrade", "websocket")],
        ),
        Refusal::Origin(origin) => {
            log::info!("event=refused peer={peer} reason=origin origin={origin:?}");
            http::text_response(403, "origin not allowed\n")
        }
        Refusal::Invalid(why) => {
            log::debug!("event=refused peer={peer} reason=bad_request why={why:?}");
            http::text_response(400, &format!("bad WebSocket upgrade: {why}\n"))
        }
    };
    http::respond_to(sock, head, response)
}
