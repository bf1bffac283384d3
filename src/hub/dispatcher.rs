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
//!
//! It is one room engine for local and shared rooms: what differs between
//! the embedded store alone and rooms shared through Redis is asked of its
//! `backend`, never branched on here.
//!
//! This file holds the dispatcher's state and its loop; the rest is in
//! files by role: `input` (what it is told), `join` (a seat, a name, the
//! greeting and the catch-up), `messages` (what seated clients send),
//! `replies` (what the store answers), `deliver` (a stored record's way
//! to its room, the acknowledgement), `fanout` (staging, flushing,
//! evicting), `keep` (the history kept in memory), `records` (a stored
//! record's event and replay frame), `resumes` (reads from the store, a
//! few at a time), `backend` (local or shared rooms), `shared` (what the
//! Redis bus tells) and `moderate`.

use crate::logs as log;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::history::redis::{self, ClusterHandle};
use crate::history::sqlite::StoreHandle;
use crate::hub::moderation::Bans;
use crate::hub::outlet::{CLOSE_TIMEOUT, Outlet};
use crate::limits::budget::Share;
use crate::proto::close::Close;
use crate::proto::names;
use crate::proto::protocol::{self, Mode, now_ms};
use crate::proto::wire::Encoded;
use backend::Backend;

mod backend;
mod changes;
mod deliver;
mod fanout;
mod input;
mod records;
use fanout::{Fanout, stage_frames};
use records::{Stored, replay_frame};
use resumes::{Catchup, RESUME_FROM_STORE, Resume};
mod join;
mod keep;
mod lookups;
mod messages;
mod moderate;
mod replies;
mod resumes;
mod shared;
mod weights;

pub use input::{Input, JoinRequest};
pub use resumes::encode_replay;

/// Most events handled before the writes they caused are made. Larger
/// batches mean fewer system calls per delivery when the server is busy;
/// an idle server handles each event as it comes.
pub const BATCH: usize = 512;

pub use crate::hub::outlet::ClientId;

/// What a client's join waits for; its later events wait behind it.
#[derive(Debug)]
enum Wait {
    /// Its room, being loaded from the store (`loading`).
    Room(String),
    /// Its name, being claimed in Redis, by the claim's token (`claiming`).
    Claim(u64),
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
    pub welcome: protocol::WelcomeLimits,
    /// Frames that may wait for a client whose resume is read from the
    /// store (its `--queue-frames`).
    pub held_frames: usize,
    /// Signs the URLs that file events give for downloading the bytes.
    pub file_urls: crate::proto::capability::Signer,
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

/// How long a hub waits at shutdown for the store's answers to the
/// appends it sent before, to deliver them.
const APPEND_DRAIN: Duration = Duration::from_secs(2);

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
    /// Names this room's history (see `history/sqlite.rs`): ids compare only within
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
    /// With `--redis`: names whose presence was heard while `filling`, so
    /// that the read's list of members does not undo what came after it.
    heard: HashSet<String>,
    /// With `--redis`: this instance asked for the room's events (someone
    /// is in it through this instance; see `shared.rs`).
    subscribed: bool,
    /// With `--redis`: joins waiting for their name's claim.
    claims: usize,
    /// With `--redis`: the room's channel was (re)subscribed while a read
    /// was under way, which may have begun before: read again after it.
    refill: bool,
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
    /// Which hub this is (see `hub::hubs`): hub 0 speaks for all of them
    /// where one voice is wanted (a moderator's action told to Redis).
    hub: usize,
    /// The rooms it last counted in the metrics' gauge, which adds up the
    /// hubs'.
    counted_rooms: usize,
    limits: Limits,
    /// Looked up once per delivery, so hashed with foldhash rather than
    /// the default SipHash (which was 3.6 % of the server's CPU in a
    /// fan-out): ids are the server's own, no client can aim at the hash.
    /// Rooms, named by clients, keep SipHash.
    clients: HashMap<ClientId, Client, foldhash::fast::RandomState>,
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
    /// Appends sent to the embedded store and not yet answered.
    appending: usize,
    /// Where every message and file is written; the dispatcher never waits
    /// for it.
    store: StoreHandle,
    /// Joins waiting for their room to be loaded from the store, by room,
    /// each followed by whatever its client sent meanwhile, in order.
    loading: HashMap<String, Vec<Input>>,
    /// The clients whose joins wait, and for what.
    waiting: HashMap<ClientId, Wait>,
    /// Resumes waiting for the store, by the token of their fetch.
    catchups: HashMap<u64, Catchup>,
    /// How many of them may be read at once, and those waiting their turn.
    resumes: resumes::Turns<Catchup>,
    next_token: u64,
    /// Where the rooms live: this instance alone, or shared through Redis
    /// (`backend.rs`; what the bus tells is handled in `shared.rs`).
    backend: Backend,
    /// Reads of missed messages under way, by token, and rooms whose read
    /// failed, to ask again at `next_fill_retry`.
    fills: HashMap<u64, String>,
    unfilled: HashSet<String>,
    next_fill_retry: Instant,
    /// Joins waiting for their name to be claimed in Redis, by token; and,
    /// while a claimed join is handled, whether the person is new to every
    /// instance.
    claims: HashMap<u64, JoinRequest>,
    /// Whatever the clients whose joins wait for their claim sent
    /// meanwhile, by the claim's token, in order.
    claiming: HashMap<u64, Vec<Input>>,
    claimed: HashMap<ClientId, bool>,
    closing: Closing,
    next_ping: Instant,
    ping: Encoded,
    /// Clients whose identity token says they are moderators.
    moderators: HashSet<ClientId>,
}

impl Dispatcher {
    /// `cluster` is given with `--redis`; `store` is then its command
    /// thread.
    pub fn new(limits: Limits, store: StoreHandle, cluster: Option<ClusterHandle>) -> Dispatcher {
        Dispatcher {
            hub: 0,
            counted_rooms: 0,
            store,
            backend: Backend::new(cluster),
            fills: HashMap::new(),
            unfilled: HashSet::new(),
            next_fill_retry: Instant::now(),
            claims: HashMap::new(),
            claiming: HashMap::new(),
            claimed: HashMap::new(),
            loading: HashMap::new(),
            waiting: HashMap::new(),
            catchups: HashMap::new(),
            resumes: resumes::Turns::default(),
            next_token: 0,
            next_ping: Instant::now() + limits.ping_interval,
            limits,
            clients: HashMap::default(),
            rooms: HashMap::new(),
            guests: 0,
            room_names: names::Rooms::default(),
            bans: Bans::default(),
            joins: 0,
            batch: Vec::new(),
            dirty: Vec::new(),
            weights: weights::Weights::default(),
            stored: 0,
            appending: 0,
            closing: VecDeque::new(),
            ping: Encoded::ping(),
            moderators: HashSet::new(),
        }
    }

    /// The dispatcher of hub `hub` of `hubs` (see `hub::hubs`). The bounds
    /// on resumes read at once are the server's, so each hub takes its
    /// part of them: what answers in flight hold stays bounded whatever
    /// the number of hubs.
    pub fn on_hub(mut self, hub: usize, hubs: usize) -> Dispatcher {
        self.hub = hub;
        self.resumes = resumes::Turns::new(
            resumes::PER_ADDRESS.div_ceil(hubs),
            resumes::TOTAL.div_ceil(hubs),
        );
        self
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
                    self.count_rooms();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            self.flush();
            self.on_timers();
        }
        self.finish_appends(&events);
        self.shutdown();
        self.closing
    }

    /// At shutdown, delivers what the store is still writing, so that a
    /// message sent before the signal reaches the room before the close
    /// (within [`APPEND_DRAIN`]; past that, it is stored and a resume
    /// gets it). Nothing new is taken meanwhile.
    fn finish_appends(&mut self, events: &Receiver<Input>) {
        let deadline = Instant::now() + APPEND_DRAIN;
        while self.appending > 0 {
            match events.recv_deadline(deadline) {
                Ok(event @ Input::Store(_)) => {
                    self.handle(event);
                    self.flush();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    fn count_rooms(&mut self) {
        let rooms = self.rooms.len();
        if rooms != self.counted_rooms {
            crate::metrics::get().rooms(rooms as i64 - self.counted_rooms as i64);
            self.counted_rooms = rooms;
        }
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
            && let Some(wait) = event.client().and_then(|id| self.waiting.get(&id))
            && let Some(parked) = match wait {
                Wait::Room(room) => self.loading.get_mut(room),
                Wait::Claim(token) => self.claiming.get_mut(token),
            }
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
            Input::Join(request) => self.join_as_moderator(request),
            Input::Change {
                id,
                target,
                change,
                cid,
            } => self.change(id, target, change, cid),
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
            Input::Lookup { id, ask } => self.lookup(id, ask),
            Input::Leave { id } => {
                self.moderators.remove(&id);
                if let Some(client) = self.clients.remove(&id) {
                    self.vacate(client, None);
                }
            }
            Input::Admin { request, reply } => self.moderate(request, reply),
            Input::Shutdown => unreachable!("handled by run"),
        }
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
}

/// Clients we sent a close frame, with the time by which they must have
/// answered it, oldest first; past that their socket is shut. Weak, so that a
/// client that has gone does not keep its socket open here.
pub type Closing = VecDeque<(Instant, Weak<Outlet>)>;

#[cfg(test)]
mod tests;
