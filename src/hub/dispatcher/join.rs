//! Joining a room: taking a seat and a name, the greeting, and catching
//! a newcomer up on the history it missed.

use super::Wait;
use super::fanout::stage_frames;
use super::{
    Catchup, ClientId, Dispatcher, Fanout, Input, JoinRequest, RESUME_FROM_STORE, Resume, Seat,
    now_ms, replay_frame,
};
use crate::history::sqlite;
use crate::logs as log;
use crate::proto::names;
use crate::proto::protocol::{self, ErrorCode, FrameRefusal, Mode};
use crate::proto::wire::Encoded;
use std::collections::{HashSet, VecDeque};

impl Dispatcher {
    pub(super) fn join(&mut self, request: JoinRequest) {
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
            self.waiting.insert(id, Wait::Room(room_name));
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
        client.outlet.mark_seated();
        client.joined = self.joins;
        // With shared rooms, the room's events are wanted here now.
        self.host(&room_name);
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
    pub(super) fn greet(
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
    pub(super) fn greeting(
        &self,
        room_name: &str,
        name: &str,
        last_id: u64,
        resume: &Resume,
    ) -> Vec<Encoded> {
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
    pub(super) fn catch_up(&mut self, catchup: Catchup) {
        if let Some(client) = self.clients.get_mut(&catchup.client) {
            client.held = Some(Vec::new());
        }
        self.take_turn(catchup);
    }

    /// The store answered a resume: the client gets its welcome, the
    /// events it missed (from the store, then from memory) and then what
    /// was held back for it meanwhile. `frames` are the records' replay
    /// frames when the answering thread encoded them (`encode_replay`).
    pub(super) fn caught_up(
        &mut self,
        token: u64,
        records: Vec<sqlite::Record>,
        frames: Vec<Encoded>,
    ) {
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

    pub(super) fn guest_name(&mut self, room: &str) -> String {
        loop {
            self.guests += 1;
            let name = self.backend.guest_name(self.guests);
            if !self.name_taken(room, &name) {
                return name;
            }
        }
    }

    pub(super) fn name_taken(&self, room: &str, name: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.people.holds(name))
    }
}
