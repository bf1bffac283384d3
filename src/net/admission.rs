//! Who may connect: the connection caps and the connect rate.
//!
//! Two owners, each of its own counts, so that no count sits behind a lock:
//! - the accept thread's [`Gate`] counts open connections and request heads
//!   being read, in total and per TCP peer, and decides before a thread is
//!   started for a connection;
//! - the admission thread ([`Clients`]) counts connections and connection
//!   attempts per *client* address, which is known only once the request
//!   head is read (behind a trusted proxy it comes from `X-Forwarded-For`).
//!   Connection threads ask it over a channel and wait for the answer, a
//!   few microseconds once per connection.
//!
//! A connection's [`Ticket`] gives back everything it took when it is
//! dropped, on every path.
//!
//! What is refused here is answered here too: 503 from the accept thread,
//! and once the head is read, 400, 421, 503 or 429 ([`Denial`]).

use crate::logs as log;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::http::proxy::{Hosts, Seen};
use crate::http::{self, Head};
use crate::limits::ratelimit::TokenBucket;
use crate::limits::storerate::StoreRate;
use crate::metrics::{self, RefusalReason};

/// Connect-rate buckets are swept of full (idle) ones once there are this
/// many, which bounds the map by the addresses active in the last
/// `burst / rate` seconds.
const SWEEP_BUCKETS_AT: usize = 4096;

/// The accept thread's counts.
#[derive(Debug)]
pub struct Gate {
    pub total: usize,
    pub handshakes: usize,
    handshakes_per_peer: HashMap<IpAddr, usize>,
    max_connections: usize,
    max_handshakes: usize,
    max_handshakes_per_peer: usize,
}

/// What the accept thread decides for a new TCP connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// Start a thread to read its request head; `counted` says whether it
    /// holds a place under `--max-connections` (if not, it gets 503 once
    /// its head is read).
    Read { counted: bool },
    /// Too many request heads are being read, in total or from this peer:
    /// answer 503 at once.
    Busy,
}

impl Gate {
    pub fn new(max_connections: usize, max_handshakes: usize, per_peer: usize) -> Gate {
        Gate {
            total: 0,
            handshakes: 0,
            handshakes_per_peer: HashMap::new(),
            max_connections,
            max_handshakes,
            max_handshakes_per_peer: per_peer.max(1),
        }
    }

    /// Decides for a connection from `peer`. A trusted proxy is not held to
    /// the per-peer share of request heads: it reads whole heads itself
    /// before it connects, and all its clients share its address.
    pub fn enter(&mut self, peer: IpAddr, trusted: bool) -> Entry {
        let mine = self.handshakes_per_peer.get(&peer).copied().unwrap_or(0);
        if self.handshakes >= self.max_handshakes
            || (!trusted && mine >= self.max_handshakes_per_peer)
        {
            return Entry::Busy;
        }
        self.handshakes += 1;
        *self.handshakes_per_peer.entry(peer).or_default() += 1;
        let counted = self.total < self.max_connections;
        if counted {
            self.total += 1;
        }
        Entry::Read { counted }
    }

    pub fn apply(&mut self, release: Release) {
        match release {
            Release::HeadDone(peer) => {
                self.handshakes -= 1;
                if let Some(n) = self.handshakes_per_peer.get_mut(&peer) {
                    *n -= 1;
                    if *n == 0 {
                        self.handshakes_per_peer.remove(&peer);
                    }
                }
            }
            Release::Closed => self.total -= 1,
        }
    }
}

/// What a connection's ticket gives back to the accept thread.
#[derive(Debug)]
pub enum Release {
    /// The request head from this TCP peer has been read (or not).
    HeadDone(IpAddr),
    /// A connection that held a place under `--max-connections` ended.
    Closed,
}

/// What the admission thread answers for a client address.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// `--max-connections-per-ip` reached: 503.
    OverCap,
    /// Over `--connect-rate`: 429, retry after this long.
    TooFast(Duration),
}

enum Ask {
    Admit { ip: IpAddr, reply: Arc<Reply> },
    Closed(IpAddr),
}

/// Where the admission thread puts its answer for one connection thread.
/// A mutex and condition variable rather than a channel: waiting on a
/// channel takes the connection's thread a stack page deeper, a page it
/// would keep for its whole life.
/// An admitted connection is also handed its address's [`StoreRate`].
#[derive(Default)]
struct Reply {
    verdict: Mutex<Option<(Verdict, Option<Arc<StoreRate>>)>>,
    ready: Condvar,
}

impl Reply {
    fn give(&self, verdict: (Verdict, Option<Arc<StoreRate>>)) {
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        self.ready.notify_one();
    }

    fn wait(&self) -> (Verdict, Option<Arc<StoreRate>>) {
        let mut slot = self.verdict.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(verdict) = slot.take() {
                return verdict;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The admission thread's counts, per client address.
struct Clients {
    open: HashMap<IpAddr, usize>,
    attempts: HashMap<IpAddr, TokenBucket>,
    max_per_ip: usize,
    rate: f64,
    burst: u32,
    /// Each address's allowance of bytes to store, shared by its
    /// connections; kept after they close until it is whole again, so
    /// that reconnecting does not refill it.
    stores: HashMap<IpAddr, Arc<StoreRate>>,
    /// `--store-rate` and its burst, in bytes; `None` without a limit.
    store_rate: Option<(u64, u64)>,
}

impl Clients {
    /// The allowance of bytes to store of an address just admitted.
    fn store_rate(&mut self, ip: IpAddr) -> Option<Arc<StoreRate>> {
        let (rate, burst) = self.store_rate?;
        if self.stores.len() >= SWEEP_BUCKETS_AT {
            self.stores
                .retain(|_, r| Arc::strong_count(r) > 1 || !r.is_full());
        }
        let shared = self
            .stores
            .entry(ip)
            .or_insert_with(|| Arc::new(StoreRate::new(rate, burst)));
        Some(shared.clone())
    }

    fn admit(&mut self, ip: IpAddr) -> Verdict {
        if self.attempts.len() >= SWEEP_BUCKETS_AT {
            self.attempts.retain(|_, bucket| !bucket.is_full());
        }
        let bucket = self
            .attempts
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst));
        if let Some(wait) = bucket.take_or_wait() {
            return Verdict::TooFast(wait);
        }
        let open = self.open.entry(ip).or_default();
        if *open >= self.max_per_ip {
            return Verdict::OverCap;
        }
        *open += 1;
        Verdict::Admit
    }

    fn closed(&mut self, ip: IpAddr) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

/// The connection threads' way to the admission thread.
#[derive(Clone)]
pub struct Admission {
    asks: Sender<Ask>,
}

impl Admission {
    /// Starts the admission thread; it ends when every handle is gone.
    #[cfg(test)]
    pub fn start(max_per_ip: usize, rate: f64, burst: u32) -> std::io::Result<Admission> {
        Admission::start_with(max_per_ip, rate, burst, None)
    }

    /// As `start`, handing each admitted connection its address's
    /// allowance of `store_rate` (bytes a second, burst), when given.
    pub fn start_with(
        max_per_ip: usize,
        rate: f64,
        burst: u32,
        store_rate: Option<(u64, u64)>,
    ) -> std::io::Result<Admission> {
        let (asks, inbox) = crossbeam_channel::unbounded();
        let clients = Clients {
            open: HashMap::new(),
            attempts: HashMap::new(),
            max_per_ip,
            rate,
            burst,
            stores: HashMap::new(),
            store_rate,
        };
        thread::Builder::new()
            .name("admission".into())
            .spawn(move || serve(clients, inbox))?;
        Ok(Admission { asks })
    }

    /// Asks whether client `ip` may have a connection; if so, the ticket
    /// gives its place back when dropped.
    pub fn admit(&self, ticket: &mut Ticket, ip: IpAddr) -> Verdict {
        // IPv6 clients share by /64 (see `address_group`).
        let ip = crate::proto::addr::address_group(ip);
        let reply = Arc::new(Reply::default());
        let ask = Ask::Admit {
            ip,
            reply: reply.clone(),
        };
        if self.asks.send(ask).is_err() {
            return Verdict::Admit;
        }
        let (verdict, store_rate) = reply.wait();
        if verdict == Verdict::Admit {
            ticket.client = Some((ip, self.clone()));
            ticket.store_rate = store_rate;
        }
        verdict
    }
}

fn serve(mut clients: Clients, inbox: Receiver<Ask>) {
    for ask in inbox {
        match ask {
            Ask::Admit { ip, reply } => {
                let verdict = clients.admit(ip);
                let store_rate = match verdict {
                    Verdict::Admit => clients.store_rate(ip),
                    _ => None,
                };
                reply.give((verdict, store_rate));
            }
            Ask::Closed(ip) => clients.closed(ip),
        }
    }
}

/// Held by a connection's thread; gives back its places when dropped.
pub struct Ticket {
    release: Sender<Release>,
    peer: IpAddr,
    pub counted: bool,
    reading_head: bool,
    /// The client address it holds a place for at the admission thread.
    client: Option<(IpAddr, Admission)>,
    /// The allowance of bytes to store of that address, once admitted.
    pub store_rate: Option<Arc<StoreRate>>,
    /// Dropped when the connection ends: shutdown waits for all of these.
    _alive: Sender<()>,
}

impl Ticket {
    pub fn new(release: Sender<Release>, peer: IpAddr, counted: bool, alive: Sender<()>) -> Ticket {
        Ticket {
            release,
            peer,
            counted,
            reading_head: true,
            client: None,
            store_rate: None,
            _alive: alive,
        }
    }

    /// The request head has been read (or failed): its slot is free.
    pub fn head_done(&mut self) {
        if std::mem::take(&mut self.reading_head) {
            let _ = self.release.send(Release::HeadDone(self.peer));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.head_done();
        if self.counted {
            let _ = self.release.send(Release::Closed);
        }
        if let Some((ip, admission)) = self.client.take() {
            let _ = admission.asks.send(Ask::Closed(ip));
        }
    }
}

/// Seconds a client refused for load is asked to wait (`Retry-After`).
pub(crate) const RETRY_AFTER: &str = "5";

/// Refuses a connection from the accept thread without reading its request
/// or starting a thread: for banned addresses, and when too many handshakes
/// are in progress to start another.
pub(crate) fn refuse_now(sock: &TcpStream, status: u16, body: &str, retry_after: &str) {
    // A fresh socket's send buffer is empty: this small write cannot block
    // for long, and the timeout makes sure of it.
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    let response = http::error_response(status, body, &[("Retry-After", retry_after)]);
    let _ = http::respond(sock, response, false);
}

/// Why a request is refused before it is served.
pub(crate) enum Denial {
    BadRequest(&'static str),
    WrongHost,
    OverCap,
    TooFast(Duration),
}

/// The checks every request meets once its head is read: well-formed
/// framing, a host this server answers for, and the caps and connect rate
/// of its client's address. Admitted, the ticket holds the client's place.
#[inline(never)]
pub(crate) fn check(
    ticket: &mut Ticket,
    (client, seen): (SocketAddr, &Seen),
    head: &Head,
    hosts: &Hosts,
    admission: &Admission,
) -> Result<(), Denial> {
    head.check().map_err(Denial::BadRequest)?;
    if !hosts.allows(seen) {
        return Err(Denial::WrongHost);
    }
    if !ticket.counted {
        return Err(Denial::OverCap);
    }
    match admission.admit(ticket, client.ip()) {
        Verdict::Admit => Ok(()),
        Verdict::OverCap => Err(Denial::OverCap),
        Verdict::TooFast(wait) => Err(Denial::TooFast(wait)),
    }
}

/// Answers a request that was denied, and counts and logs why.
#[inline(never)]
pub(crate) fn refuse(sock: &TcpStream, head: &Head, client: SocketAddr, refusal: Denial) {
    let client = crate::proto::addr::show_peer(client);
    let response = match refusal {
        Denial::BadRequest(why) => {
            log::debug!("event=refused peer={client} reason=bad_request why={why:?}");
            metrics::get().refused(RefusalReason::BadRequest);
            http::text_response(400, &format!("{why}\n"))
        }
        Denial::WrongHost => {
            log::info!(
                "event=refused peer={client} reason=host host={:?}",
                head.header("Host").unwrap_or("")
            );
            metrics::get().refused(RefusalReason::BadRequest);
            http::text_response(421, "this server does not answer for that host\n")
        }
        Denial::OverCap => {
            log::info!(
                "event=refused peer={client} reason=cap method={} path={:?}",
                head.method,
                head.path()
            );
            metrics::get().refused(RefusalReason::Cap);
            let body = "too many connections; retry later\n";
            http::error_response(503, body, &[("Retry-After", RETRY_AFTER)])
        }
        Denial::TooFast(wait) => {
            log::info!("event=refused peer={client} reason=rate");
            metrics::get().refused(RefusalReason::Rate);
            let retry = wait.as_secs_f64().ceil().max(1.0).to_string();
            http::error_response(
                429,
                "too many new connections; retry later\n",
                &[("Retry-After", &retry)],
            )
        }
    };
    if let Err(e) = http::respond_to(sock, head, response) {
        log::debug!("event=write_failed peer={client} error={:?}", e.to_string());
    }
}

#[cfg(test)]
mod tests;
