//! The dispatcher thread: sole owner of the rooms and the client list.
//!
//! Connection threads talk to it only through one channel of [`Event`]s, so
//! events are handled one at a time, in the order they arrived, without a
//! lock. It sends to clients only through their bounded room queues and
//! never waits on one: a client whose queue is full is closed with 1008 and
//! everyone else carries on.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use tungstenite::Bytes;
use tungstenite::Utf8Bytes;

use crate::protocol::{self, Event as Out, Refusal};
use crate::queue::Outbox;
use crate::wire::Encoded;

/// Identifies a connection for its whole life; never reused.
pub type ClientId = u64;

/// Which protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/echo`: never in a room; registered only so that shutdown reaches it.
    Echo,
    /// No subprotocol: the tutorial's byte-for-byte relay.
    Raw,
    /// `wschat.v1` JSON frames.
    V1,
}

/// Everything the connection threads tell the dispatcher.
#[derive(Debug)]
pub enum Event {
    /// A client finished its handshake; it is not in a room yet.
    Connect {
        id: ClientId,
        peer: SocketAddr,
        mode: Mode,
        outbox: Outbox,
    },
    /// The client asks to enter a room (from the query or a `join` frame).
    Join {
        id: ClientId,
        room: Option<String>,
        name: Option<String>,
        since: Option<u64>,
    },
    /// A chat message: raw text, or a v1 `message` frame's text.
    Text {
        id: ClientId,
        text: Utf8Bytes,
    },
    /// A file, with its bytes. `raw_frame` is the sender's tutorial-format
    /// frame when it came from a raw client, relayed to raw clients as is.
    File {
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
    },
    Typing {
        id: ClientId,
    },
    /// The connection ended, for whatever reason.
    Leave {
        id: ClientId,
    },
    /// Close every client with 1001 and stop.
    Shutdown,
}

/// Limits the dispatcher applies.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Stored events kept per room.
    pub history: usize,
    /// Empty rooms remembered (for their history) before the oldest goes.
    pub max_idle_rooms: usize,
}

struct Client {
    peer: SocketAddr,
    mode: Mode,
    outbox: Outbox,
    /// Room and name, once joined.
    seat: Option<(String, String)>,
}

#[derive(Default)]
struct Room {
    /// In order of joining.
    members: Vec<ClientId>,
    history: VecDeque<Stored>,
    last_id: u64,
    /// When the last member left; `None` while occupied.
    emptied_at: Option<Instant>,
}

/// A message or file announcement kept for replay.
struct Stored {
    id: u64,
    from: String,
    ts: u64,
    body: StoredBody,
}

enum StoredBody {
    Text(String),
    File {
        name: String,
        size: u64,
        mime: String,
    },
}

impl Stored {
    fn event<'a>(&'a self, room: &'a str, replay: bool) -> Out<'a> {
        match &self.body {
            StoredBody::Text(text) => Out::Message {
                id: self.id,
                room,
                from: &self.from,
                text,
                ts: self.ts,
                replay,
            },
            StoredBody::File { name, size, mime } => Out::File {
                id: self.id,
                room,
                from: &self.from,
                name,
                size: *size,
                mime,
                ts: self.ts,
                replay,
            },
        }
    }
}

pub struct Dispatcher {
    limits: Limits,
    clients: HashMap<ClientId, Client>,
    rooms: HashMap<String, Room>,
    /// Source of `guest-N` names for raw clients that give none.
    guests: u64,
}

impl Dispatcher {
    pub fn new(limits: Limits) -> Dispatcher {
        Dispatcher {
            limits,
            clients: HashMap::new(),
            rooms: HashMap::new(),
            guests: 0,
        }
    }

    /// Handles events until `Shutdown` arrives or every sender is gone.
    pub fn run(mut self, events: Receiver<Event>) {
        for event in events {
            if let Event::Shutdown = event {
                self.shutdown();
                return;
            }
            self.handle(event);
            crate::metrics::get().rooms(self.rooms.len());
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connect {
                id,
                peer,
                mode,
                outbox,
            } => {
                let client = Client {
                    peer,
                    mode,
                    outbox,
                    seat: None,
                };
                self.clients.insert(id, client);
            }
            Event::Join {
                id,
                room,
                name,
                since,
            } => self.join(id, room, name, since),
            Event::Text { id, text } => self.text(id, text),
            Event::File {
                id,
                name,
                mime,
                data,
                raw_frame,
            } => self.file(id, name, mime, data, raw_frame),
            Event::Typing { id } => self.typing(id),
            Event::Leave { id } => {
                if let Some(client) = self.clients.remove(&id) {
                    self.vacate(id, client, None);
                }
            }
            Event::Shutdown => unreachable!("handled by run"),
        }
    }

    fn join(
        &mut self,
        id: ClientId,
        room: Option<String>,
        name: Option<String>,
        since: Option<u64>,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let mode = client.mode;
        if client.seat.is_some() {
            self.refuse(
                id,
                Refusal::new("already_joined", "this connection is already in a room"),
            );
            return;
        }
        let Some(room_name) = protocol::validate_name(room.as_deref().unwrap_or("lobby")) else {
            let why = "a room name must be 1-32 characters without control characters";
            self.refuse(id, Refusal::new("invalid_room", why));
            return;
        };
        let name = match (name, mode) {
            (Some(n), _) => n,
            (None, Mode::Raw) => self.guest_name(&room_name),
            (None, Mode::V1 | Mode::Echo) => {
                self.refuse(id, Refusal::new("bad_field", "missing field \"name\""));
                return;
            }
        };
        let Some(name) = protocol::validate_name(&name) else {
            let why = "a name must be 1-32 characters without control characters";
            self.refuse(id, Refusal::new("invalid_name", why));
            return;
        };
        if self.name_taken(&room_name, &name) {
            let why = format!("the name {name:?} is already used in room {room_name:?}");
            self.refuse(id, Refusal::new("name_taken", why));
            return;
        }
        let room = self.rooms.entry(room_name.clone()).or_default();
        room.members.push(id);
        room.emptied_at = None;
        let client = self.clients.get_mut(&id).expect("checked above");
        client.seat = Some((room_name.clone(), name.clone()));
        log::info!("event=join client={id} room={room_name:?}");
        log::debug!("event=join client={id} room={room_name:?} name={name:?}");

        if mode == Mode::V1 {
            self.greet(id, &room_name, &name, since);
        }
        let ts = now_ms();
        let joined = Encoded::text(protocol::encode(&Out::Join {
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
    /// history it asked for, in that order.
    fn greet(&mut self, id: ClientId, room_name: &str, name: &str, since: Option<u64>) {
        let room = &self.rooms[room_name];
        let mut frames = vec![
            Out::Welcome {
                name,
                room: room_name,
                last_id: room.last_id,
            },
            Out::Presence {
                room: room_name,
                users: room
                    .members
                    .iter()
                    .filter_map(|m| self.clients.get(m)?.seat.as_ref().map(|s| s.1.as_str()))
                    .collect(),
            },
        ];
        let replay_from = match since {
            None => 0,
            Some(since) => {
                let first = room.history.front().map_or(room.last_id + 1, |s| s.id);
                if since < room.last_id && first > since + 1 {
                    frames.push(Out::Gap {
                        room: room_name,
                        since,
                        first,
                    });
                }
                since
            }
        };
        frames.extend(
            room.history
                .iter()
                .filter(|s| s.id > replay_from)
                .map(|s| s.event(room_name, true)),
        );
        let encoded: Vec<Encoded> = frames
            .iter()
            .map(|f| Encoded::text(protocol::encode(f)))
            .collect();
        for frame in &encoded {
            if !self.send(id, frame) {
                return;
            }
        }
    }

    fn text(&mut self, id: ClientId, text: Utf8Bytes) {
        let Some((room_name, from, sender_mode)) = self.seated(id) else {
            return;
        };
        let live = self.record(
            &room_name,
            &from,
            StoredBody::Text(text.as_str().to_owned()),
        );
        let raw = match sender_mode {
            Mode::Raw | Mode::Echo => Encoded::text(text),
            Mode::V1 => Encoded::text(format!("{from}: {text}")),
        };
        let live = [live];
        self.fan_out(
            &room_name,
            Some(id),
            &Fanout {
                v1: &live,
                v1_sender: &live,
                raw: &[raw],
            },
        );
    }

    fn file(
        &mut self,
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
    ) {
        let Some((room_name, from, _)) = self.seated(id) else {
            return;
        };
        let size = data.len() as u64;
        let announcement = self.record(
            &room_name,
            &from,
            StoredBody::File {
                name: name.clone(),
                size,
                mime,
            },
        );
        let has_raw = self.rooms[&room_name]
            .members
            .iter()
            .any(|m| *m != id && self.clients.get(m).is_some_and(|c| c.mode == Mode::Raw));
        let raw: Vec<Encoded> = if has_raw {
            let frame = raw_frame.unwrap_or_else(|| protocol::file_frame(&name, &data).into());
            vec![Encoded::binary(frame)]
        } else {
            Vec::new()
        };
        let v1 = [announcement.clone(), Encoded::binary(data)];
        self.fan_out(
            &room_name,
            Some(id),
            &Fanout {
                v1: &v1,
                v1_sender: &[announcement],
                raw: &raw,
            },
        );
    }

    fn typing(&mut self, id: ClientId) {
        let Some((room, name, _)) = self.seated(id) else {
            return;
        };
        let frame = [Encoded::text(protocol::encode(&Out::Typing {
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

    fn shutdown(&mut self) {
        log::info!("event=close_all clients={}", self.clients.len());
        for (_, client) in self.clients.drain() {
            client.outbox.close(1001, "server shutting down");
        }
    }

    fn guest_name(&mut self, room: &str) -> String {
        loop {
            self.guests += 1;
            let name = format!("guest-{}", self.guests);
            if !self.name_taken(room, &name) {
                return name;
            }
        }
    }

    fn name_taken(&self, room: &str, name: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| {
            r.members.iter().any(|m| {
                self.clients
                    .get(m)
                    .and_then(|c| c.seat.as_ref())
                    .is_some_and(|s| s.1 == name)
            })
        })
    }

    /// The room, name and mode of a client that has joined. A v1 client that
    /// has not is told so.
    fn seated(&mut self, id: ClientId) -> Option<(String, String, Mode)> {
        let client = self.clients.get(&id)?;
        match client.seat.clone() {
            Some((room, name)) => Some((room, name, client.mode)),
            None => {
                let why = "join a room before sending messages, files or typing";
                self.refuse(id, Refusal::new("not_joined", why));
                None
            }
        }
    }

    /// Gives a message or file the room's next id, keeps it in history and
    /// returns its live event, encoded.
    fn record(&mut self, room_name: &str, from: &str, body: StoredBody) -> Encoded {
        let room = self
            .rooms
            .get_mut(room_name)
            .expect("senders are seated in a room");
        room.last_id += 1;
        let stored = Stored {
            id: room.last_id,
            from: from.to_owned(),
            ts: now_ms(),
            body,
        };
        let live = Encoded::text(protocol::encode(&stored.event(room_name, false)));
        if self.limits.history > 0 {
            if room.history.len() == self.limits.history {
                room.history.pop_front();
            }
            room.history.push_back(stored);
        }
        live
    }

    /// Queues `fanout`'s frames for every member of `room`. Clients whose
    /// queue is full are evicted after the loop.
    fn fan_out(&mut self, room: &str, sender: Option<ClientId>, fanout: &Fanout) {
        let _timer = crate::metrics::get().fanout_timer();
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let mut slow = Vec::new();
        for member in &r.members {
            let Some(client) = self.clients.get(member) else {
                continue;
            };
            let frames = match (client.mode, Some(*member) == sender) {
                (Mode::V1, false) => fanout.v1,
                (Mode::V1, true) => fanout.v1_sender,
                (Mode::Raw, false) => fanout.raw,
                (Mode::Raw, true) | (Mode::Echo, _) => &[],
            };
            if frames.iter().any(|f| client.outbox.push(f).is_err()) {
                slow.push(*member);
            }
        }
        for id in slow {
            self.evict(id);
        }
    }

    /// Queues one frame for one client, evicting it if its queue is full.
    /// Returns whether the client is still connected.
    fn send(&mut self, id: ClientId, frame: &Encoded) -> bool {
        let Some(client) = self.clients.get(&id) else {
            return false;
        };
        if client.outbox.push(frame).is_ok() {
            return true;
        }
        self.evict(id);
        false
    }

    fn evict(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            log::warn!(
                "event=evict client={id} peer={} code=1008 reason=\"too slow\" msg=\"outbound queue full\"",
                client.peer
            );
            crate::metrics::get().evicted();
            self.vacate(id, client, Some((1008, "too slow")));
        }
    }

    /// Tells a client why its frame was refused: an `error` event in v1, a
    /// close in raw mode (which has no way to carry an error).
    fn refuse(&mut self, id: ClientId, refusal: Refusal) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        match client.mode {
            Mode::V1 | Mode::Echo => {
                self.send(id, &Encoded::text(refusal.to_json()));
            }
            Mode::Raw => {
                let reason = match refusal.code {
                    "name_taken" => "name taken",
                    "invalid_name" => "invalid name",
                    "invalid_room" => "invalid room",
                    _ => "refused",
                };
                log::info!(
                    "event=refused client={id} peer={} code={}",
                    client.peer,
                    refusal.code
                );
                log::debug!("event=refused client={id} message={:?}", refusal.message);
                let client = self.clients.remove(&id).expect("looked up above");
                self.vacate(id, client, Some((1008, reason)));
            }
        }
    }

    /// Removes a client that has left the dispatcher's list from its room,
    /// tells the room, and closes its queue with `close` if given.
    fn vacate(&mut self, id: ClientId, client: Client, close: Option<(u16, &'static str)>) {
        if let Some((code, reason)) = close {
            client.outbox.close(code, reason);
        }
        let Some((room_name, name)) = client.seat else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        room.members.retain(|m| *m != id);
        if room.members.is_empty() {
            room.emptied_at = Some(Instant::now());
            if room.history.is_empty() {
                self.rooms.remove(&room_name);
            }
            self.forget_idle_rooms();
            return;
        }
        let left = [Encoded::text(protocol::encode(&Out::Leave {
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
            self.rooms.remove(&name);
        }
    }
}

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
