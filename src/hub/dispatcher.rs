//! The dispatcher thread: sole owner of the rooms and the client list.
//!
//! Connection threads talk to it only through one channel of [`Input`]s, so
//! events are handled one at a time, in the order they arrived, without a
//! lock. It takes every event already waiting (up to [`BATCH`]), decides
//! what each client receives, and only then writes: each client's share of
//! the batch goes out with one non-blocking vectored send through its
//! [`Outlet`]. It never waits on a client: a client whose backlog is full is
//! closed with 1008 and everyone else carries on. It also sends every
//! client's heartbeat ping, from one timer.

use crate::logs as log;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tungstenite::Bytes;
use tungstenite::Utf8Bytes;

use crate::history::redis::{self, ClusterHandle};
use crate::history::sqlite::{self, StoreHandle};
use crate::hub::moderation::{self, Bans};
use crate::hub::outlet::{CLOSE_TIMEOUT, Outlet};
use crate::limits::budget::Share;
use crate::proto::close::Close;
use crate::proto::names::{self, Owner};
use crate::proto::protocol::{self, ErrorCode, FrameRefusal, Mode};
use crate::proto::wire::Encoded;

mod moderate;
mod resumes;
mod shared;
mod weights;

pub use resumes::encode_replay;

/// Most events handled before the writes they caused are made. Larger
/// batches mean fewer system calls per delivery when the server is busy;
/// an idle server handles each event as it comes.
pub const BATCH: usize = 512;

pub use crate::hub::outlet::ClientId;

/// Everything the dispatcher is told, through its one channel: by the
/// readers, the admin view, the store and the server. (What it sends v1
/// clients is a `protocol::Event`.)
#[derive(Debug)]
pub enum Input {
    /// A chat-room client finished its handshake; it is not in a room
    /// yet. Sent by [`Membership::connect`], whose drop sends its `Leave`.
    Connect {
        id: ClientId,
        peer: SocketAddr,
        mode: Mode,
        outlet: Arc<Outlet>,
    },
    /// The client asks to enter a room (from the query or a `join` frame).
    Join(JoinRequest),
    /// A chat message: raw text, or a v1 `message` frame's text.
    Text {
        id: ClientId,
        text: Utf8Bytes,
        /// The sender's id for it, so that a resend is not delivered twice.
        cid: Option<String>,
    },
    /// A file, with its bytes. `raw_frame` is the sender's tutorial-format
    /// frame when it came from a raw client, relayed to raw clients as is.
    File {
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
        cid: Option<String>,
    },
    Typing {
        id: ClientId,
    },
    /// A v1 client asks for a fresh URL of file `file` of its room.
    FileUrl {
        id: ClientId,
        file: u64,
        name: String,
    },
    /// The connection ended, for whatever reason: sent when its
    /// [`Membership`] is dropped.
    Leave {
        id: ClientId,
    },
    /// A moderator's request (the admin view or API), answered on `reply`.
    Admin {
        request: moderation::Request,
        reply: crossbeam_channel::Sender<moderation::Reply>,
    },
    /// The history store answered (see `store.rs`).
    Store(sqlite::Reply),
    /// With `--redis`: a message, presence change or answer from the rooms
    /// shared with other instances (see `cluster.rs`).
    Cluster(redis::Note),
    /// Close every client (1001, or 1012 for a restart) and stop.
    Shutdown,
}

/// A chat-room client's place in the dispatcher's client list, from its
/// `Connect` to its `Leave`. Leaving is a guard, not a reminder: dropping
/// this sends the `Leave`, so a reader that returns early or panics leaves
/// no ghost in its room holding its name.
#[derive(Debug)]
pub struct Membership {
    id: ClientId,
    events: Sender<Input>,
}

/// The dispatcher has stopped: the server is shutting down.
#[derive(Debug)]
pub struct Stopped;

impl Membership {
    /// Tells the dispatcher of a new client.
    pub fn connect(
        events: &Sender<Input>,
        id: ClientId,
        peer: SocketAddr,
        mode: Mode,
        outlet: Arc<Outlet>,
    ) -> Result<Membership, Stopped> {
        let connect = Input::Connect {
            id,
            peer,
            mode,
            outlet,
        };
        events.send(connect).map_err(|_| Stopped)?;
        Ok(Membership {
            id,
            events: events.clone(),
        })
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Fails only when the dispatcher has stopped, which has then
        // closed the client itself.
        let _ = self.events.send(Input::Leave { id: self.id });
    }
}

/// A client's request to enter a room.
#[derive(Debug)]
pub struct JoinRequest {
    pub id: ClientId,
    pub room: Option<String>,
    pub name: Option<String>,
    pub since: Option<u64>,
    /// The room's epoch the client knew `since` in.
    pub epoch: Option<String>,
    /// Who asks: the same owner may hold one name from several connections.
    pub owner: Owner,
}

impl Input {
    /// What `wschat_received_total` counts this event as, if it counts it.
    pub(crate) fn metric(&self) -> Option<crate::metrics::Received> {
        use crate::metrics::Received;
        match self {
            Input::Text { .. } => Some(Received::Text),
            Input::File { .. } => Some(Received::File),
            Input::Typing { .. } => Some(Received::Typing),
            Input::Join(_) => Some(Received::Join),
            _ => None,
        }
    }

    /// The client an event comes from, if it comes from one.
    fn client(&self) -> Option<ClientId> {
        match self {
            Input::Join(JoinRequest { id, .. })
            | Input::Text { id, .. }
            | Input::File { id, .. }
            | Input::Typing { id }
            | Input::FileUrl { id, .. }
            | Input::Leave { id } => Some(*id),
            Input::Connect { .. }
            | Input::Admin { .. }
            | Input::Store(_)
            | Input::Cluster(_)
            | Input::Shutdown => None,
        }
    }
}

/// Limits and timings the dispatcher applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Stored events kept per room.
    pub history: usize,
    /// The memory budget's share for history, across every room: when it
    /// is full, the oldest stored event of any room goes first.
    pub history_share: Arc<Share>,
    /// Bytes of stored events kept per room, so that a joiner's replay fits
    /// in its outbound queue.
    pub room_history_bytes: usize,
    /// Empty rooms remembered (for their history) before the oldest goes.
    pub max_idle_rooms: usize,
    /// Every client is pinged this often.
    pub ping_interval: Duration,
    /// What a v1 client is told, in its welcome, that it may send.
    pub welcome: protocol::Limits,
    /// Frames that may wait for a client whose resume is read from the
    /// store (its `--queue-frames`).
    pub held_frames: usize,
    /// Signs the URLs that file events give for downloading the bytes.
    pub file_urls: crate::http::files::Signer,
}

/// A joined client's room, and the name it goes by there.
#[derive(Debug, Clone)]
struct Seat {
    room: String,
    name: String,
}

struct Client {
    peer: SocketAddr,
    mode: Mode,
    outlet: Arc<Outlet>,
    /// Where it sits, once joined.
    seat: Option<Seat>,
    /// When it joined, as a key of its room's member maps.
    joined: u64,
    /// This batch's frames for the client: indices into `Dispatcher::batch`.
    staged: Vec<u32>,
    /// While its resume is read from the store: what it is sent meanwhile,
    /// held back to follow the replay.
    held: Option<Vec<Encoded>>,
}

/// A resume that reaches further back than the room's history in memory:
/// the store is asked for the rest, and the client's welcome waits for it.
struct Catchup {
    client: ClientId,
    /// The client's address: it may have only so many resumes read at once.
    address: IpAddr,
    room: String,
    name: String,
    since: u64,
    /// A join without `since` whose room's recent history is partly no
    /// longer in memory: its welcome says nothing of a resume.
    fresh: bool,
    /// The room's last id when the client joined: the replay ends there.
    last_id: u64,
    /// The first id the room had in memory then, and the frames from it on.
    first: u64,
    cached: Vec<Encoded>,
}

/// What a welcome says of a resume (nothing without `since`), and the gap
/// that follows it when events were lost.
#[derive(Default)]
struct Resume {
    recovered: Option<bool>,
    reason: Option<&'static str>,
    gap: Option<(u64, u64)>,
}

impl Resume {
    fn recovered() -> Resume {
        Resume {
            recovered: Some(true),
            ..Resume::default()
        }
    }

    fn lost(reason: &'static str) -> Resume {
        Resume {
            recovered: Some(false),
            reason: Some(reason),
            gap: None,
        }
    }
}

/// Most events a resume reads back from the store; a client that missed
/// more is told `trimmed` and given a gap.
const RESUME_FROM_STORE: u64 = 1000;

#[derive(Default)]
struct Room {
    /// Everyone in the room, in order of joining (keyed by `Client::joined`).
    /// Maps rather than lists, so that joining and leaving cost the same in
    /// a room of 20,000 as in a room of 2.
    members: BTreeMap<u64, ClientId>,
    /// The v1 clients among them: events only v1 clients receive (joins,
    /// leaves, typing) visit only these.
    v1_members: BTreeMap<u64, ClientId>,
    /// Names in use, by skeleton: one entry per person, however many
    /// connections they have.
    people: names::People,
    history: VecDeque<Stored>,
    /// What `history` is charged to the budget.
    history_bytes: usize,
    last_id: u64,
    /// Names this room's history (see `store.rs`): ids compare only within
    /// one epoch.
    epoch: String,
    /// When the last member left; `None` while occupied.
    emptied_at: Option<Instant>,
    /// The history share took some of its recent history for other rooms
    /// (see `weights.rs`): a newcomer's replay reads the rest back from the
    /// store. Cleared once the room's own bounds trim it again.
    squeezed: bool,
    /// With `--redis`: people in the room on other instances only.
    remote: HashSet<String>,
    /// With `--redis`, while messages this instance missed are read back:
    /// what arrived meanwhile, to follow them.
    filling: Option<Vec<redis::Arrival>>,
}

/// A message or file announcement kept for replay: its event, encoded once
/// when it was sent, shared by every joiner it is replayed to.
struct Stored {
    id: u64,
    frame: Encoded,
    /// Who sent it with which `cid`, to know a resend when it comes.
    sent_as: Option<(Box<str>, Box<str>)>,
}

impl Stored {
    fn new(record: &sqlite::Record, urls: &crate::http::files::Signer) -> Stored {
        Stored {
            id: record.id,
            frame: replay_frame(record, urls),
            sent_as: record
                .cid
                .as_deref()
                .map(|cid| (record.from.as_str().into(), cid.into())),
        }
    }

    /// What keeping it costs the history share.
    fn cost(&self) -> usize {
        let sent_as = self.sent_as.as_ref().map_or(0, |(f, c)| f.len() + c.len());
        self.frame.len() + sent_as + std::mem::size_of::<Stored>()
    }
}

/// A message or file's event, as sent live (`replay` false) or replayed.
/// A replayed file whose bytes are kept says where to download them.
fn event<'a>(
    record: &'a sqlite::Record,
    replay: bool,
    url: Option<&'a str>,
) -> protocol::Event<'a> {
    let cid = record.cid.as_deref();
    match &record.body {
        sqlite::Body::Text(text) => protocol::Event::Message {
            id: record.id,
            room: &record.room,
            from: &record.from,
            text,
            ts: record.ts,
            cid,
            replay,
        },
        sqlite::Body::File {
            name,
            size,
            mime,
            available,
        } => protocol::Event::File {
            id: record.id,
            room: &record.room,
            from: &record.from,
            name,
            size: *size,
            mime,
            ts: record.ts,
            cid,
            url: url.filter(|_| *available),
            available: (!available).then_some(false),
            replay,
        },
    }
}

/// The replay frame of a record. A file's URL is signed for its room
/// (see `files::capability`); with `--auth-secret` it expires, and the
/// client asks for a fresh one with `file_url`.
fn replay_frame(record: &sqlite::Record, urls: &crate::http::files::Signer) -> Encoded {
    let url = match &record.body {
        sqlite::Body::File { name, .. } => {
            crate::http::files::signed_url(urls, &record.room, record.id, name)
        }
        sqlite::Body::Text(_) => None,
    };
    Encoded::text(protocol::encode(&event(record, true, url.as_deref())))
}

/// The chat's shared state: every chat-room client, the rooms with their
/// members, names and history, the bans, and the joins and acknowledgements
/// waiting for the store. It lives on the dispatcher thread ([`run`]) and
/// nothing else may touch it: other threads reach it only by sending an
/// [`Input`], and it reaches clients only through their [`Outlet`]s, with
/// sends that never block. That is why none of it needs a lock.
///
/// [`run`]: Dispatcher::run
pub struct Dispatcher {
    limits: Limits,
    clients: HashMap<ClientId, Client>,
    rooms: HashMap<String, Room>,
    /// Source of `guest-N` names for raw clients that give none.
    guests: u64,
    /// Which spelling of a room name is the room.
    room_names: names::Rooms,
    /// Names a moderator has banned, until when.
    bans: Bans,
    /// Counts joins, to keep each room's members in order of joining.
    joins: u64,
    /// Every frame the current batch of events produced, each encoded once
    /// and shared by all its receivers.
    batch: Vec<Encoded>,
    /// Clients with staged frames, to be written at the end of the batch.
    dirty: Vec<ClientId>,
    /// Every room's history bytes: when the history share is full, the
    /// heaviest room forgets first.
    weights: weights::Weights,
    /// Events stored in all rooms.
    stored: usize,
    /// Where every message and file is written; the dispatcher never waits
    /// for it.
    store: StoreHandle,
    /// Joins waiting for their room to be loaded from the store, by room,
    /// each followed by whatever its client sent meanwhile, in order.
    loading: HashMap<String, Vec<Input>>,
    /// The clients whose joins wait there, and for which room.
    waiting: HashMap<ClientId, String>,
    /// Resumes waiting for the store, by the token of their fetch.
    catchups: HashMap<u64, Catchup>,
    /// How many of them may be read at once, and those waiting their turn.
    resumes: resumes::Turns<Catchup>,
    next_token: u64,
    /// With `--redis`: the shared rooms (see `shared.rs`).
    cluster: Option<ClusterHandle>,
    /// Reads of missed messages under way, by token, and rooms whose read
    /// failed, to ask again at `next_fill_retry`.
    fills: HashMap<u64, String>,
    unfilled: HashSet<String>,
    next_fill_retry: Instant,
    /// Joins waiting for their name to be claimed in Redis, by token; and,
    /// while a claimed join is handled, whether the person is new to every
    /// instance.
    claims: HashMap<u64, JoinRequest>,
    claimed: HashMap<ClientId, bool>,
    closing: Closing,
    next_ping: Instant,
    ping: Encoded,
}

impl Dispatcher {
    /// `cluster` is given with `--redis`; `store` is then its command
    /// thread.
    pub fn new(limits: Limits, store: StoreHandle, cluster: Option<ClusterHandle>) -> Dispatcher {
        Dispatcher {
            store,
            cluster,
            fills: HashMap::new(),
            unfilled: HashSet::new(),
            next_fill_retry: Instant::now(),
            claims: HashMap::new(),
            claimed: HashMap::new(),
            loading: HashMap::new(),
            waiting: HashMap::new(),
            catchups: HashMap::new(),
            resumes: resumes::Turns::default(),
            next_token: 0,
            next_ping: Instant::now() + limits.ping_interval,
            limits,
            clients: HashMap::new(),
            rooms: HashMap::new(),
            guests: 0,
            room_names: names::Rooms::default(),
            bans: Bans::default(),
            joins: 0,
            batch: Vec::new(),
            dirty: Vec::new(),
            weights: weights::Weights::default(),
            stored: 0,
            closing: VecDeque::new(),
            ping: Encoded::ping(),
        }
    }

    /// Handles events until `Shutdown` arrives or every sender is gone, then
    /// closes every client. Returns the clients still to answer their close,
    /// with the time by which they must.
    pub fn run(mut self, events: Receiver<Input>) -> Closing {
        let mut open = true;
        while open {
            match events.recv_timeout(self.next_wake().saturating_duration_since(Instant::now())) {
                Ok(first) => {
                    // Everything already waiting joins the batch.
                    for event in std::iter::once(first).chain(events.try_iter().take(BATCH - 1)) {
                        if let Input::Shutdown = event {
                            open = false;
                            break;
                        }
                        self.handle(event);
                    }
                    crate::metrics::get().rooms(self.rooms.len());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            self.flush();
            self.on_timers();
        }
        self.shutdown();
        self.closing
    }

    /// When the next timer is due: a heartbeat or a close deadline.
    fn next_wake(&self) -> Instant {
        let mut wake = self.next_ping;
        if let Some((deadline, _)) = self.closing.front() {
            wake = wake.min(*deadline);
        }
        if !self.unfilled.is_empty() {
            wake = wake.min(self.next_fill_retry);
        }
        wake
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        self.expire_closes(now);
        self.retry_fills(now);
        if now >= self.next_ping {
            // One timer pings everyone: no thread wakes per connection.
            let ping = stage_frames(&mut self.batch, std::slice::from_ref(&self.ping));
            for (id, client) in &mut self.clients {
                client.stage(*id, ping.clone(), &mut self.dirty);
            }
            self.flush();
            self.next_ping = now + self.limits.ping_interval;
        }
    }

    /// Shuts the sockets of clients that have not answered our close in time.
    fn expire_closes(&mut self, now: Instant) {
        while let Some((deadline, _)) = self.closing.front() {
            if *deadline > now {
                break;
            }
            if let Some((_, outlet)) = self.closing.pop_front()
                && let Some(outlet) = outlet.upgrade()
            {
                outlet.end();
            }
        }
    }

    fn handle(&mut self, event: Input) {
        // A client whose join waits for its room: what it sends waits too,
        // behind the join, so that nothing it said is refused or reordered.
        // (Almost always nobody waits: no lookup then.)
        if !self.waiting.is_empty()
            && let Some(room) = event.client().and_then(|id| self.waiting.get(&id))
            && let Some(parked) = self.loading.get_mut(room)
        {
            parked.push(event);
            return;
        }
        match event {
            Input::Connect {
                id,
                peer,
                mode,
                outlet,
            } => {
                let client = Client {
                    peer,
                    mode,
                    outlet,
                    seat: None,
                    joined: 0,
                    staged: Vec::new(),
                    held: None,
                };
                self.clients.insert(id, client);
            }
            Input::Join(request) => self.join(request),
            Input::Text { id, text, cid } => self.text(id, text, cid),
            Input::Store(reply) => self.stored(reply),
            Input::Cluster(note) => self.noted(note),
            Input::File {
                id,
                name,
                mime,
                data,
                raw_frame,
                cid,
            } => self.file(id, name, mime, data, raw_frame, cid),
            Input::Typing { id } => self.typing(id),
            Input::FileUrl { id, file, name } => self.file_url(id, file, &name),
            Input::Leave { id } => {
                if let Some(client) = self.clients.remove(&id) {
                    self.vacate(client, None);
                }
            }
            Input::Admin { request, reply } => self.moderate(request, reply),
            Input::Shutdown => unreachable!("handled by run"),
        }
    }

    fn join(&mut self, request: JoinRequest) {
        let id = request.id;
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let mode = client.mode;
        if client.seat.is_some() {
            self.refuse(
                id,
                FrameRefusal::new(
                    ErrorCode::AlreadyJoined,
                    "this connection is already in a room",
                ),
            );
            return;
        }
        let room_name = match names::name(request.room.as_deref().unwrap_or("lobby")) {
            Ok(room) => {
                let (rooms, loading) = (&self.rooms, &self.loading);
                self.room_names
                    .resolve(room, |r| rooms.contains_key(r) || loading.contains_key(r))
            }
            Err(e) => {
                let why = format!("{e}; a room name must be 1-32 visible characters");
                self.refuse(id, FrameRefusal::new(ErrorCode::InvalidRoom, why));
                return;
            }
        };
        if !self.rooms.contains_key(&room_name) {
            // Its ids, epoch and recent history come from the store first.
            let parked = self.loading.entry(room_name.clone()).or_default();
            if parked.is_empty() {
                self.store.send(sqlite::Request::Open {
                    room: room_name.clone(),
                    recent: self.limits.history,
                });
            }
            parked.push(Input::Join(request));
            self.waiting.insert(id, room_name);
            return;
        }
        let name = match (request.name.clone(), mode) {
            (Some(n), _) => n,
            (None, Mode::Raw) => self.guest_name(&room_name),
            (None, Mode::V1) => {
                self.refuse(
                    id,
                    FrameRefusal::new(ErrorCode::BadField, "missing field \"name\""),
                );
                return;
            }
        };
        let name = match names::name(&name) {
            Ok(name) => name,
            Err(e) => {
                let why = format!("{e}; a name must be 1-32 visible characters");
                self.refuse(id, FrameRefusal::new(ErrorCode::InvalidName, why));
                return;
            }
        };
        if let Some(until) = self.banned_until(&name) {
            let why = format!("a moderator has banned the name {:?} for now", name.text);
            self.refuse(id, FrameRefusal::new(ErrorCode::Banned, why).until(until));
            return;
        }
        // With shared rooms, a person's first connection here claims the
        // name across instances first.
        let Some(request) = self.claim(request, &room_name, &name) else {
            return;
        };
        let JoinRequest {
            since,
            epoch,
            owner,
            ..
        } = request;
        let room = self.rooms.get_mut(&room_name).expect("loaded above");
        let seat = match room.people.admit(&name, &owner) {
            Ok(seat) => seat,
            Err(taken) => {
                let why = match taken.holder == name.text {
                    true => format!(
                        "the name {:?} is already used in room {room_name:?}",
                        name.text
                    ),
                    false => format!(
                        "{:?} looks the same as {:?}, who is in room {room_name:?}",
                        name.text, taken.holder
                    ),
                };
                self.refuse(id, FrameRefusal::new(ErrorCode::NameTaken, why));
                return;
            }
        };
        let name = seat.name;
        self.joins += 1;
        room.members.insert(self.joins, id);
        if mode == Mode::V1 {
            room.v1_members.insert(self.joins, id);
        }
        room.emptied_at = None;
        let client = self.clients.get_mut(&id).expect("checked above");
        client.seat = Some(Seat {
            room: room_name.clone(),
            name: name.clone(),
        });
        client.joined = self.joins;
        // One line per join; the name only where names are logged (debug).
        if log::log_enabled!(log::Level::Debug) {
            log::info!("event=join client={id} room={room_name:?} name={name:?}");
        } else {
            log::info!("event=join client={id} room={room_name:?}");
        }

        if mode == Mode::V1 {
            self.greet(id, &room_name, &name, since, epoch.as_deref());
        }
        if !self.first_anywhere(id, seat.first) {
            // Another connection of someone already here: the room knows.
            return;
        }
        let ts = now_ms();
        let joined = Encoded::text(protocol::encode(&protocol::Event::Join {
            room: &room_name,
            name: &name,
            ts,
        }));
        self.fan_out(
            &room_name,
            Some(id),
            &Fanout {
                v1: &[joined],
                ..Fanout::default()
            },
        );
    }

    /// Sends a newly joined v1 client its welcome, the presence list and the
    /// history it asked for, in that order. With `since`, the welcome says
    /// whether the replay is exactly what the client missed (see
    /// docs/PROTOCOL.md, "Resuming").
    fn greet(
        &mut self,
        id: ClientId,
        room_name: &str,
        name: &str,
        since: Option<u64>,
        epoch: Option<&str>,
    ) {
        let room = &self.rooms[room_name];
        let first = room.history.front().map_or(room.last_id + 1, |s| s.id);
        // Where the replay starts, and what the welcome says of it.
        let (replay_from, resume) = match since {
            // The history share made this room forget some of its recent
            // history in favour of others: the rest comes from the store,
            // so a newcomer still sees the room's last `--history` events.
            None if room.squeezed && room.history.len() < self.limits.history && first > 1 => {
                let missing = (self.limits.history - room.history.len()) as u64;
                let catchup = Catchup {
                    client: id,
                    address: self.clients.get(&id).map_or([0; 4].into(), |c| c.peer.ip()),
                    room: room_name.to_owned(),
                    name: name.to_owned(),
                    since: (first - 1).saturating_sub(missing),
                    fresh: true,
                    last_id: room.last_id,
                    first,
                    cached: room.history.iter().map(|s| s.frame.clone()).collect(),
                };
                self.catch_up(catchup);
                return;
            }
            None => (0, Resume::default()),
            // Another history, or ids it never gave: the client starts over.
            Some(since) if epoch.is_some_and(|e| e != room.epoch) || since > room.last_id => {
                (0, Resume::lost("epoch"))
            }
            // Missed more than memory holds, but not too much: the store is
            // asked for the rest, and the welcome waits for it.
            Some(since)
                if since < room.last_id
                    && first > since + 1
                    && first - 1 - since <= RESUME_FROM_STORE =>
            {
                let start = room.history.partition_point(|s| s.id <= since);
                let catchup = Catchup {
                    client: id,
                    address: self.clients.get(&id).map_or([0; 4].into(), |c| c.peer.ip()),
                    room: room_name.to_owned(),
                    name: name.to_owned(),
                    since,
                    fresh: false,
                    last_id: room.last_id,
                    first,
                    cached: room
                        .history
                        .range(start..)
                        .map(|s| s.frame.clone())
                        .collect(),
                };
                self.catch_up(catchup);
                return;
            }
            Some(since) if since < room.last_id && first > since + 1 => (
                since,
                Resume {
                    gap: Some((since, first)),
                    ..Resume::lost("trimmed")
                },
            ),
            Some(since) => (since, Resume::recovered()),
        };
        let mut frames = self.greeting(room_name, name, room.last_id, &resume);
        // The history was encoded when it was sent: a join costs a copy of
        // pointers, however large the room's history.
        let start = room.history.partition_point(|s| s.id <= replay_from);
        frames.extend(room.history.range(start..).map(|s| s.frame.clone()));
        let range = self.stage_frames(&frames);
        self.stage(id, range);
    }

    /// A joining v1 client's first frames: its welcome (saying what its
    /// resume recovered), the room's presence list and, if events were
    /// lost, the gap.
    fn greeting(&self, room_name: &str, name: &str, last_id: u64, resume: &Resume) -> Vec<Encoded> {
        let room = &self.rooms[room_name];
        // A person with two connections is one entry.
        let mut listed = HashSet::new();
        let mut users: Vec<&str> = room
            .members
            .values()
            .filter_map(|m| self.clients.get(m)?.seat.as_ref().map(|s| s.name.as_str()))
            .filter(|name| listed.insert(*name))
            .collect();
        users.extend(self.remote_names(room_name, &mut listed));
        let mut frames = vec![
            protocol::Event::Welcome {
                name,
                room: room_name,
                last_id,
                epoch: &room.epoch,
                recovered: resume.recovered,
                reason: resume.reason,
                limits: &self.limits.welcome,
            },
            protocol::Event::Presence {
                room: room_name,
                users,
            },
        ];
        if let Some((since, first)) = resume.gap {
            frames.push(protocol::Event::Gap {
                room: room_name,
                since,
                first,
            });
        }
        frames
            .iter()
            .map(|f| Encoded::text(protocol::encode(f)))
            .collect()
    }

    /// Asks the store for what a resuming client missed beyond the room's
    /// history in memory, when its turn comes (see `resumes.rs`); until the
    /// store answers, the client's frames are held.
    fn catch_up(&mut self, catchup: Catchup) {
        if let Some(client) = self.clients.get_mut(&catchup.client) {
            client.held = Some(Vec::new());
        }
        self.take_turn(catchup);
    }

    /// The store answered a resume: the client gets its welcome, the
    /// events it missed (from the store, then from memory) and then what
    /// was held back for it meanwhile. `frames` are the records' replay
    /// frames when the answering thread encoded them (`encode_replay`).
    fn caught_up(&mut self, token: u64, records: Vec<sqlite::Record>, frames: Vec<Encoded>) {
        let Some(c) = self.catchups.remove(&token) else {
            return;
        };
        self.pass_turn(c.address);
        let Some(held) = self
            .clients
            .get_mut(&c.client)
            .and_then(|cl| cl.held.take())
        else {
            return;
        };
        if !self.rooms.contains_key(&c.room) {
            return;
        }
        // The newest of what was read that fits, with what memory holds,
        // in the half of a client's queue that a room's replay may take.
        let mut room_left = self
            .limits
            .room_history_bytes
            .saturating_sub(c.cached.iter().map(Encoded::len).sum());
        let mut replay: VecDeque<Encoded> = VecDeque::new();
        let mut first = c.first;
        for (i, record) in records.iter().enumerate().rev() {
            if record.id + 1 != first {
                break;
            }
            let frame = frames
                .get(i)
                .cloned()
                .unwrap_or_else(|| replay_frame(record, &self.limits.file_urls));
            if frame.len() > room_left {
                break;
            }
            room_left -= frame.len();
            first = record.id;
            replay.push_front(frame);
        }
        // Whole from `since` on, or the store had lost some, or they were
        // too many to send.
        let resume = if c.fresh {
            Resume::default()
        } else if first == c.since + 1 {
            Resume::recovered()
        } else {
            Resume {
                gap: Some((c.since, first)),
                ..Resume::lost("trimmed")
            }
        };
        let mut frames = self.greeting(&c.room, &c.name, c.last_id, &resume);
        frames.extend(replay);
        frames.extend(c.cached);
        frames.extend(held);
        // What the room sent it earlier in this batch was staged while it
        // was held, and is not in `held` yet: it follows too, and the
        // client, already among this batch's dirty ones, is not added again.
        let Some(client) = self.clients.get_mut(&c.client) else {
            return;
        };
        let already_dirty = !client.staged.is_empty();
        let batch = &self.batch;
        frames.extend(client.staged.drain(..).map(|i| batch[i as usize].clone()));
        let range = stage_frames(&mut self.batch, &frames);
        let client = self.clients.get_mut(&c.client).expect("looked up above");
        client.staged.extend(range);
        if !already_dirty && !client.staged.is_empty() {
            self.dirty.push(c.client);
        }
    }

    fn text(&mut self, id: ClientId, text: Utf8Bytes, cid: Option<String>) {
        let Some((
            Seat {
                room: room_name,
                name: from,
            },
            _,
        )) = self.seated(id)
        else {
            return;
        };
        if self.answered_before(id, &room_name, &from, cid.as_deref()) {
            return;
        }
        let body = sqlite::Body::Text(text.as_str().to_owned());
        self.submit(id, &room_name, &from, cid, body, None, None);
    }

    fn file(
        &mut self,
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
        cid: Option<String>,
    ) {
        let Some((
            Seat {
                room: room_name,
                name: from,
            },
            _,
        )) = self.seated(id)
        else {
            return;
        };
        if self.answered_before(id, &room_name, &from, cid.as_deref()) {
            return;
        }
        let body = sqlite::Body::File {
            name,
            size: data.len() as u64,
            mime,
            available: true,
        };
        self.submit(id, &room_name, &from, cid, body, Some(data), raw_frame);
    }

    /// Hands a message or file to the store (or to Redis), which gives it
    /// its id. Nobody sees it before it is stored: it is delivered, its
    /// sender's copy being the acknowledgement, when the store says so
    /// ([`Dispatcher::deliver`]), so an id anyone has seen is always a
    /// stored record's and a replay never misses it.
    #[expect(
        clippy::too_many_arguments,
        reason = "one message's parts, passed on once"
    )]
    fn submit(
        &mut self,
        sender: ClientId,
        room: &str,
        from: &str,
        cid: Option<String>,
        body: sqlite::Body,
        data: Option<Bytes>,
        relay: Option<Bytes>,
    ) {
        let origin = self.origin(sender);
        let record = sqlite::Record {
            room: room.to_owned(),
            id: 0,
            from: from.to_owned(),
            ts: now_ms(),
            cid,
            body,
        };
        self.store.send(sqlite::Request::Append {
            record,
            data,
            origin,
            relay,
        });
    }

    /// Delivers a stored message or file to everyone in its room, keeps it
    /// for replay, and so acknowledges it to its sender (a v1 sender gets
    /// its own copy; a raw one nothing, as the tutorial's relay did).
    /// `relay` is a raw sender's own file frame, passed on to raw clients
    /// as it came.
    pub(super) fn deliver(
        &mut self,
        record: sqlite::Record,
        data: Option<Bytes>,
        relay: Option<Bytes>,
        sender: Option<ClientId>,
        sender_raw: bool,
    ) {
        let room_name = record.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else {
            // Everyone left while it was stored.
            return;
        };
        room.last_id = room.last_id.max(record.id);
        let raw_members = room.members.len() - room.v1_members.len();
        let live = Encoded::text(protocol::encode(&event(&record, false, None)));
        if self.limits.history > 0 {
            self.keep(&room_name, Stored::new(&record, &self.limits.file_urls));
        }
        let (v1, raw) = match record.body {
            sqlite::Body::Text(text) => {
                let raw = match sender_raw {
                    true => Encoded::text(text),
                    false => Encoded::text(format!("{}: {text}", record.from)),
                };
                (vec![live.clone()], vec![raw])
            }
            sqlite::Body::File { name, .. } => match data {
                Some(data) => {
                    // The raw form is built only for a room that has raw
                    // clients besides its sender.
                    let raw = match raw_members > usize::from(sender_raw && sender.is_some()) {
                        true => {
                            let frame =
                                relay.unwrap_or_else(|| protocol::file_frame(&name, &data).into());
                            vec![Encoded::binary(frame)]
                        }
                        false => Vec::new(),
                    };
                    (vec![live.clone(), Encoded::binary(data)], raw)
                }
                None => (vec![live.clone()], Vec::new()),
            },
        };
        self.fan_out(
            &room_name,
            sender,
            &Fanout {
                v1: &v1,
                v1_sender: std::slice::from_ref(&live),
                raw: &raw,
            },
        );
    }

    /// Whether `from` has already sent `cid` in this room (within the
    /// history kept): then the sender gets the stored event back as its
    /// acknowledgement, and nothing is delivered again.
    fn answered_before(&mut self, id: ClientId, room: &str, from: &str, cid: Option<&str>) -> bool {
        let Some(cid) = cid else {
            return false;
        };
        let Some(stored) = self.rooms.get(room).and_then(|r| {
            r.history.iter().rev().find(|s| {
                s.sent_as
                    .as_ref()
                    .is_some_and(|(f, c)| &**f == from && &**c == cid)
            })
        }) else {
            return false;
        };
        log::debug!("event=resend client={id} room={room:?} id={}", stored.id);
        let frame = stored.frame.clone();
        self.send(id, frame);
        true
    }

    fn typing(&mut self, id: ClientId) {
        let Some((Seat { room, name }, _)) = self.seated(id) else {
            return;
        };
        if let Some(cluster) = &self.cluster {
            cluster.send(redis::Command::Typing {
                room: room.clone(),
                name: name.clone(),
            });
        }
        let frame = [Encoded::text(protocol::encode(&protocol::Event::Typing {
            room: &room,
            name: &name,
        }))];
        self.fan_out(
            &room,
            Some(id),
            &Fanout {
                v1: &frame,
                ..Fanout::default()
            },
        );
    }

    /// Answers a `file_url`: a fresh signed URL for file `file` of the
    /// client's own room (a client never gets one for a room it is not in),
    /// if the room has given out that id. The name is the client's: the
    /// URL of a wrong one is not found.
    fn file_url(&mut self, id: ClientId, file: u64, name: &str) {
        let Some((Seat { room, .. }, _)) = self.seated(id) else {
            return;
        };
        let last_id = self.rooms.get(&room).map_or(0, |r| r.last_id);
        if file == 0 || file > last_id {
            let why = format!("room {room:?} has no file {file}");
            return self.refuse(id, FrameRefusal::new(ErrorCode::NoSuchFile, why));
        }
        let Some(url) = crate::http::files::signed_url(&self.limits.file_urls, &room, file, name)
        else {
            let why = "file URLs cannot be signed yet; ask again shortly";
            return self.refuse(id, FrameRefusal::new(ErrorCode::Unavailable, why));
        };
        let event = protocol::Event::FileUrl {
            id: file,
            room: &room,
            name,
            url: &url,
        };
        self.send(id, Encoded::text(protocol::encode(&event)));
    }

    /// Closes every client with 1001 (1012 for a restart, see
    /// `Close::shutdown`) behind what it still has to receive.
    fn shutdown(&mut self) {
        log::info!("event=close_all clients={}", self.clients.len());
        let clients: Vec<Client> = self.clients.drain().map(|(_, c)| c).collect();
        for client in clients {
            self.close(&client.outlet, &Close::shutdown());
        }
    }

    /// Sends a client a close frame after what it has queued, and gives it
    /// `CLOSE_TIMEOUT` to answer before its socket is shut.
    fn close(&mut self, outlet: &Arc<Outlet>, close: &Close) {
        outlet.close(close);
        self.closing
            .push_back((Instant::now() + CLOSE_TIMEOUT, Arc::downgrade(outlet)));
    }

    fn guest_name(&mut self, room: &str) -> String {
        loop {
            self.guests += 1;
            // Other instances count their own guests.
            let name = match &self.cluster {
                Some(c) => format!("guest-{}-{}", &c.instance[..4], self.guests),
                None => format!("guest-{}", self.guests),
            };
            if !self.name_taken(room, &name) {
                return name;
            }
        }
    }

    fn name_taken(&self, room: &str, name: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.people.holds(name))
    }

    /// The seat and mode of a client that has joined. A v1 client that has
    /// not is told so.
    fn seated(&mut self, id: ClientId) -> Option<(Seat, Mode)> {
        let client = self.clients.get(&id)?;
        match client.seat.clone() {
            Some(seat) => Some((seat, client.mode)),
            None => {
                let why = "join a room before sending messages, files or typing";
                self.refuse(id, FrameRefusal::new(ErrorCode::NotJoined, why));
                None
            }
        }
    }

    /// Who sends a message, as the store is told.
    fn origin(&self, sender: ClientId) -> sqlite::Origin {
        sqlite::Origin {
            client: sender,
            raw: self
                .clients
                .get(&sender)
                .is_some_and(|c| c.mode == Mode::Raw),
        }
    }

    /// What the store answered: a room loaded (its waiting joins go on), a
    /// record written (its sender's acknowledgement goes out).
    fn stored(&mut self, reply: sqlite::Reply) {
        match reply {
            sqlite::Reply::Opened {
                room: asked,
                spelling,
                epoch,
                last_id,
                recent,
                loaded,
                members,
            } => {
                if !loaded && self.cluster.is_some() {
                    // Shared rooms cannot start afresh on their own: the
                    // joins are refused, to be tried again.
                    self.unreachable(&asked);
                    return;
                }
                // The history's own spelling names the room, whichever
                // look-alike spelling asked for it.
                let name = self.room_names.settle(&asked, spelling);
                if !loaded {
                    log::error!(
                        "event=store_error room={name:?} msg=\"history could not be read; the room starts a new epoch\""
                    );
                }
                if !self.rooms.contains_key(&name) {
                    self.rooms.insert(
                        name.clone(),
                        Room {
                            last_id,
                            epoch,
                            emptied_at: Some(Instant::now()),
                            remote: members.into_iter().collect(),
                            ..Room::default()
                        },
                    );
                    for record in &recent {
                        self.keep(&name, Stored::new(record, &self.limits.file_urls));
                    }
                }
                let parked = self.loading.remove(&asked).unwrap_or_default();
                for event in &parked {
                    if let Input::Join(request) = event {
                        self.waiting.remove(&request.id);
                    }
                }
                for event in parked {
                    self.handle(event);
                }
                // A room whose joiners all left while it loaded, or were
                // all refused (banned, a bad name), is idle; one with
                // nothing in it either is dropped at once, as on a leave.
                // (A shared room's joiners may still be claiming their
                // names, and it knows of other instances' members.)
                if let Some(room) = self.rooms.get(&name)
                    && room.members.is_empty()
                {
                    if room.history.is_empty() && self.cluster.is_none() {
                        self.remove_room(&name);
                    }
                    self.forget_idle_rooms();
                }
            }
            sqlite::Reply::Appended {
                record,
                data,
                origin,
                relay,
                outcome,
                epoch,
            } => self.appended(record, data, origin, relay, (outcome, epoch)),
            sqlite::Reply::Fetched {
                token,
                records,
                frames,
            } => self.caught_up(token, records, frames),
        }
    }

    /// What the store made of a message: delivered once stored; a resend
    /// answered with what was stored before; a failure told to its sender
    /// (a v1 client keeps it and sends it again with the same `cid`; a raw
    /// client, which has no way to hear of it, is closed with 1013), never
    /// delivered, so no one sees an id that could be handed out again.
    fn appended(
        &mut self,
        record: sqlite::Record,
        data: Option<Bytes>,
        origin: sqlite::Origin,
        relay: Option<Bytes>,
        (outcome, epoch): (sqlite::Outcome, Option<String>),
    ) {
        match outcome {
            sqlite::Outcome::Stored => {
                // The room's history began again in the store (retention
                // emptied it): everyone here is told, as when Redis loses a
                // room, and resumes under the new epoch.
                if let Some(epoch) = epoch
                    && self
                        .rooms
                        .get(&record.room)
                        .is_some_and(|r| r.epoch != epoch)
                {
                    self.reset_room(&record.room, epoch);
                }
                self.deliver(record, data, relay, Some(origin.client), origin.raw);
            }
            sqlite::Outcome::Resent => {
                log::debug!(
                    "event=resend client={} room={:?} id={}",
                    origin.client,
                    record.room,
                    record.id
                );
                let frame = replay_frame(&record, &self.limits.file_urls);
                self.send(origin.client, frame);
            }
            sqlite::Outcome::Failed => {
                // The store logged the failure, once a second at most.
                log::debug!(
                    "event=not_stored client={} room={:?} cid={:?}",
                    origin.client,
                    record.room,
                    record.cid
                );
                let why = "the message could not be stored; send it again shortly";
                self.refuse(
                    origin.client,
                    FrameRefusal::new(ErrorCode::Unavailable, why).with_cid(record.cid),
                );
            }
        }
    }

    /// Keeps an event in its room's history, within the room's bounds and
    /// the history share, making room by forgetting the oldest events: the
    /// room's own first, then the heaviest room's (see `weights.rs`).
    fn keep(&mut self, room_name: &str, stored: Stored) {
        let cost = stored.cost();
        if cost > self.limits.room_history_bytes || cost > self.limits.history_share.limit() {
            log::debug!(
                "event=not_kept room={room_name:?} bytes={cost} msg=\"larger than a room's history\""
            );
            return;
        }
        let (share, history, room_bytes) = (
            self.limits.history_share.clone(),
            self.limits.history,
            self.limits.room_history_bytes,
        );
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        while room.history.len() >= history || room.history_bytes + cost > room_bytes {
            let Some(old) = room.history.pop_front() else {
                break;
            };
            room.history_bytes -= old.cost();
            share.give(old.cost());
            self.stored -= 1;
            room.squeezed = false;
        }
        self.weights.set(room_name, room.history_bytes);
        while !share.try_take(cost) {
            if !self.forget_heaviest() {
                return;
            }
        }
        let room = self.rooms.get_mut(room_name).expect("looked up above");
        room.history_bytes += cost;
        room.history.push_back(stored);
        self.stored += 1;
        self.weights.set(room_name, room.history_bytes);
    }

    /// Forgets the oldest event of the room whose history weighs the most,
    /// to make room in the history share; false if no room holds any.
    fn forget_heaviest(&mut self) -> bool {
        let Some(room_name) = self.weights.heaviest().map(str::to_owned) else {
            return false;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            self.weights.set(&room_name, 0);
            return true;
        };
        if let Some(old) = room.history.pop_front() {
            room.squeezed = true;
            room.history_bytes -= old.cost();
            self.limits.history_share.give(old.cost());
            self.stored -= 1;
            log::debug!("event=history_full room={room_name:?} forgot={}", old.id);
        }
        let bytes = match room.history.is_empty() {
            true => 0,
            false => room.history_bytes,
        };
        self.weights.set(&room_name, bytes);
        true
    }

    /// Forgets a room and gives its history's bytes back.
    fn remove_room(&mut self, name: &str) {
        if let Some(room) = self.rooms.remove(name) {
            self.limits.history_share.give(room.history_bytes);
            self.stored -= room.history.len();
            self.weights.set(name, 0);
        }
    }

    /// Stages `fanout`'s frames for every member of `room`.
    fn fan_out(&mut self, room: &str, sender: Option<ClientId>, fanout: &Fanout) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let _timer = crate::metrics::get().fanout_timer();
        let v1 = stage_frames(&mut self.batch, fanout.v1);
        let v1_sender = stage_frames(&mut self.batch, fanout.v1_sender);
        let raw = stage_frames(&mut self.batch, fanout.raw);
        // Raw clients get nothing of an event that has no raw form.
        let members = if fanout.raw.is_empty() {
            &r.v1_members
        } else {
            &r.members
        };
        for member in members.values() {
            let Some(client) = self.clients.get_mut(member) else {
                continue;
            };
            let frames = match (client.mode, Some(*member) == sender) {
                (Mode::V1, false) => v1.clone(),
                (Mode::V1, true) => v1_sender.clone(),
                (Mode::Raw, false) => raw.clone(),
                (Mode::Raw, true) => continue,
            };
            client.stage(*member, frames, &mut self.dirty);
        }
    }

    /// Adds frames to this batch; returns their indices.
    fn stage_frames(&mut self, frames: &[Encoded]) -> Range<u32> {
        stage_frames(&mut self.batch, frames)
    }

    /// Stages frames of this batch for one client.
    fn stage(&mut self, id: ClientId, frames: Range<u32>) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.stage(id, frames, &mut self.dirty);
        }
    }

    /// Sends one frame to one client.
    fn send(&mut self, id: ClientId, frame: Encoded) {
        let range = self.stage_frames(&[frame]);
        self.stage(id, range);
    }

    /// Writes every client's staged frames, each client's with one vectored
    /// send; evicts the clients that have fallen too far behind (which may
    /// stage `leave` events for others, written in the same call).
    fn flush(&mut self) {
        while let Some(id) = self.dirty.pop() {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            let staged = std::mem::take(&mut client.staged);
            let batch = &self.batch;
            if let Some(held) = &mut client.held {
                held.extend(staged.iter().map(|&i| batch[i as usize].clone()));
                let over = held.len() > self.limits.held_frames;
                client.staged = staged;
                client.staged.clear();
                if over {
                    self.evict(id);
                }
                continue;
            }
            let sent = client
                .outlet
                .send(staged.iter().map(|&i| &batch[i as usize]));
            client.staged = staged;
            client.staged.clear();
            if sent.is_err() {
                self.evict(id);
            }
        }
        self.batch.clear();
    }

    fn evict(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            log::warn!(
                "event=evict client={id} peer={} code=1008 reason=\"too slow\" msg=\"outbound backlog full\"",
                crate::http::proxy::show_peer(client.peer)
            );
            crate::metrics::get().evicted();
            // What it has not taken by now it will not get: its close goes
            // out next, and its backlog's memory is free for others.
            client.outlet.discard_backlog();
            self.vacate(client, Some(Close::policy("too slow")));
        }
    }

    /// Tells a client why its frame was refused: an `error` event in v1, a
    /// close in raw mode (which has no way to carry an error).
    fn refuse(&mut self, id: ClientId, refusal: FrameRefusal) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        match client.mode {
            Mode::V1 => {
                self.send(id, Encoded::text(refusal.to_json()));
            }
            Mode::Raw => {
                // The closes of docs/PROTOCOL.md ("Close codes").
                let close = match refusal.code {
                    ErrorCode::NameTaken => Close::policy("name taken"),
                    ErrorCode::InvalidName => Close::policy("invalid name"),
                    ErrorCode::InvalidRoom => Close::policy("invalid room"),
                    ErrorCode::Banned => Close::policy("banned"),
                    // Redis cannot be reached: come back later.
                    ErrorCode::Unavailable => Close::unavailable(),
                    _ => Close::policy("refused"),
                };
                log::info!(
                    "event=refused client={id} peer={} code={}",
                    crate::http::proxy::show_peer(client.peer),
                    refusal.code.as_str()
                );
                log::debug!("event=refused client={id} message={:?}", refusal.message);
                let client = self.clients.remove(&id).expect("looked up above");
                self.vacate(client, Some(close));
            }
        }
    }

    /// Removes a client that has left the dispatcher's list from its room,
    /// tells the room, and closes its queue with `close` if given.
    fn vacate(&mut self, client: Client, close: Option<Close>) {
        if let Some(close) = close {
            self.close(&client.outlet, &close);
        }
        let Some(Seat {
            room: room_name,
            name,
        }) = client.seat
        else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        room.members.remove(&client.joined);
        room.v1_members.remove(&client.joined);
        let gone = room.people.leave(&name);
        let empty = room.members.is_empty();
        if gone && self.cluster.is_some() {
            // The room hears of it when Redis says they left everywhere.
            self.release(&room_name, &name);
        }
        if empty {
            let room = self.rooms.get_mut(&room_name).expect("looked up above");
            room.emptied_at = Some(Instant::now());
            if room.history.is_empty() {
                self.remove_room(&room_name);
            }
            self.forget_idle_rooms();
            return;
        }
        if !gone {
            // The person is still here on another connection.
            return;
        }
        if self.cluster.is_some() {
            return;
        }
        let left = [Encoded::text(protocol::encode(&protocol::Event::Leave {
            room: &room_name,
            name: &name,
            ts: now_ms(),
        }))];
        self.fan_out(
            &room_name,
            None,
            &Fanout {
                v1: &left,
                ..Fanout::default()
            },
        );
    }

    /// Keeps at most `max_idle_rooms` empty rooms, forgetting the longest idle.
    fn forget_idle_rooms(&mut self) {
        let mut idle: Vec<(Instant, String)> = self
            .rooms
            .iter()
            .filter_map(|(name, r)| r.emptied_at.map(|t| (t, name.clone())))
            .collect();
        if idle.len() <= self.limits.max_idle_rooms {
            return;
        }
        idle.sort();
        let excess = idle.len() - self.limits.max_idle_rooms;
        for (_, name) in idle.into_iter().take(excess) {
            self.remove_room(&name);
        }
    }
}

impl Client {
    fn stage(&mut self, id: ClientId, frames: Range<u32>, dirty: &mut Vec<ClientId>) {
        if frames.is_empty() {
            return;
        }
        if self.staged.is_empty() {
            dirty.push(id);
        }
        self.staged.extend(frames);
    }
}

/// Adds frames to a batch; returns their indices.
fn stage_frames(batch: &mut Vec<Encoded>, frames: &[Encoded]) -> Range<u32> {
    let start = batch.len() as u32;
    batch.extend_from_slice(frames);
    start..batch.len() as u32
}

/// Clients we sent a close frame, with the time by which they must have
/// answered it, oldest first; past that their socket is shut. Weak, so that a
/// client that has gone does not keep its socket open here.
pub type Closing = VecDeque<(Instant, Weak<Outlet>)>;

/// What each kind of room member receives for one event. The frames are
/// encoded once and shared by every receiver. A raw sender never receives
/// its own frames (the tutorial's rule).
#[derive(Default)]
struct Fanout<'a> {
    v1: &'a [Encoded],
    v1_sender: &'a [Encoded],
    raw: &'a [Encoded],
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
