//! Rooms shared with other instances through Redis (`--redis`; see
//! `history/redis.rs`): what the dispatcher does with what the cluster tells it.
//!
//! A message is delivered here when it comes back from Redis, never when it
//! is sent: every instance then delivers every room's messages in the one
//! order Redis gave them. Each room's messages are taken strictly by id;
//! one that skips ahead (a subscription was lost) makes the room wait
//! while the missing ones are read from its stream.
//!
//! A room's events reach this instance only while it hosts the room: its
//! first member here subscribes to the room's channel ([`Order::Subscribe`]),
//! and once Redis confirms ([`Note::Subscribed`]) the room reads from its
//! stream whatever was published before, as after a lost subscription.
//! When its last member here leaves, the room unsubscribes and is
//! forgotten (its history here could not be kept up to date); the next
//! join loads it again from Redis.

use crate::logs as log;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::history::redis::{Arrival, Change, ClaimOutcome, Note};
use crate::history::sqlite;
use crate::proto::protocol::{self, ErrorCode, FrameRefusal};
use crate::proto::wire::Encoded;

use super::{ClientId, Dispatcher, Fanout, Input, JoinRequest, Wait, now_ms, replay_frame};

/// Most messages read back for one gap.
const FILL_LIMIT: u64 = 100_000;

/// How long a room waits before a failed read of its missed messages is
/// tried again.
pub const FILL_RETRY: Duration = Duration::from_secs(1);

impl Dispatcher {
    /// Handles what the cluster told.
    pub(super) fn noted(&mut self, mut note: Note) {
        // Redis keys a room by its skeleton, so another instance's events
        // may spell it another way: they are told under this one's.
        if let Some(room) = note.room_mut()
            && let Some(here) = self.room_names.spelled_here(room)
            && here != room
        {
            here.clone_into(room);
        }
        if let Some(room) = note.room()
            && let Some(parked) = self.loading.get_mut(room)
        {
            // The room is being loaded: this follows once it is.
            parked.push(Input::Cluster(note));
            return;
        }
        match note {
            Note::Arrived(arrival) => self.arrived(arrival),
            Note::Filled {
                token,
                room,
                epoch,
                arrivals,
                members,
            } => {
                let reconciled = members.is_some();
                self.filled(token, &room, epoch, arrivals);
                if reconciled {
                    self.reconcile(&room, members.unwrap_or_default());
                }
                if self.rooms.get(&room).is_some_and(|r| r.refill) {
                    self.catch_up_room(&room);
                }
            }
            Note::Presence {
                room,
                name,
                change,
                own,
            } => self.presence(&room, &name, change, own),
            Note::Claimed {
                token,
                room,
                outcome,
            } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.claims = r.claims.saturating_sub(1);
                }
                self.claimed(token, outcome);
                self.let_go(&room);
            }
            Note::Unavailable { room, client, cid } => {
                log::warn!("event=unavailable client={client} room={room:?} cid={cid:?}");
                let why = "the message could not be stored; send it again shortly";
                self.refuse(
                    client,
                    FrameRefusal::new(ErrorCode::Unavailable, why).with_cid(cid),
                );
            }
            Note::Duplicate {
                room,
                id,
                client,
                record,
            } => {
                // Read back from Redis; else from memory, should the read
                // have failed.
                let frame = record
                    .map(|r| replay_frame(&r, &self.limits.file_urls))
                    .or_else(|| {
                        self.rooms.get(&room).and_then(|r| {
                            r.history
                                .iter()
                                .rev()
                                .find(|s| s.id == id)
                                .map(|s| s.frame.clone())
                        })
                    });
                match frame {
                    Some(frame) => self.send(client, frame),
                    None => log::debug!("event=resend_not_kept client={client} id={id}"),
                }
            }
            Note::Moderated(action) => {
                self.carry_out(&action);
            }
            Note::Subscribed { room } => {
                // Whatever was published before the subscription was made
                // (or while it was down) is read from the room's stream.
                if self.rooms.get(&room).is_some_and(|r| r.subscribed) {
                    self.catch_up_room(&room);
                }
            }
        }
    }

    fn arrived(&mut self, arrival: Arrival) {
        let name = arrival.record.room.clone();
        let Some(room) = self.rooms.get_mut(&name) else {
            // Nobody here is in that room.
            return;
        };
        if room.epoch != arrival.epoch {
            self.reset_room(&name, arrival.epoch.clone());
        }
        // A reset closes everyone here; the room may have gone with them.
        let Some(room) = self.rooms.get_mut(&name) else {
            return;
        };
        if let Some(waiting) = &mut room.filling {
            waiting.push(arrival);
            return;
        }
        let id = arrival.record.id;
        if id <= room.last_id {
            return;
        }
        if id > room.last_id + 1 {
            let after = room.last_id;
            room.filling = Some(vec![arrival]);
            self.fill(&name, after, id - 1);
            return;
        }
        self.deliver_arrival(arrival);
    }

    /// Reads a room's messages after its last id up to the newest, holding
    /// back what arrives meanwhile.
    fn catch_up_room(&mut self, name: &str) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if room.filling.is_some() {
            room.refill = true;
            return;
        }
        room.refill = false;
        room.filling = Some(Vec::new());
        room.heard.clear();
        let after = room.last_id;
        self.fill(name, after, u64::MAX);
    }

    /// Someone joined the room through this instance: its events are
    /// wanted here, if they were not already.
    pub(super) fn host(&mut self, name: &str) {
        if let Some(room) = self.rooms.get_mut(name)
            && !room.subscribed
        {
            room.subscribed = self.backend.subscribe(name);
        }
    }

    /// With shared rooms, a room with nobody in it here is no longer
    /// listened to, and is forgotten unless joins wait for their names in
    /// it. True when it was forgotten.
    pub(super) fn let_go(&mut self, name: &str) -> bool {
        if self.backend.keeps_idle_rooms() {
            return false;
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return false;
        };
        if !room.members.is_empty() {
            return false;
        }
        if room.subscribed {
            room.subscribed = false;
            self.backend.unsubscribe(name);
        }
        if room.claims > 0 {
            return false;
        }
        self.remove_room(name);
        true
    }

    /// A read of the room's stream said who is in it on live instances:
    /// joins and leaves published before the room's channel was
    /// subscribed, never heard here, are told now. Names heard of since the
    /// read began are left as they were heard.
    fn reconcile(&mut self, room_name: &str, members: Vec<String>) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let heard = std::mem::take(&mut room.heard);
        let members: HashSet<String> = members.into_iter().collect();
        let mut events = Vec::new();
        for name in &members {
            if !heard.contains(name) && room.remote.insert(name.clone()) && !room.people.holds(name)
            {
                events.push((name.clone(), true));
            }
        }
        let gone: Vec<String> = room
            .remote
            .iter()
            .filter(|n| !members.contains(*n) && !heard.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            room.remote.remove(&name);
            if !room.people.holds(&name) {
                events.push((name, false));
            }
        }
        let ts = now_ms();
        let frames: Vec<Encoded> = events
            .iter()
            .map(|(name, joined)| {
                let event = match joined {
                    true => protocol::Event::Join {
                        room: room_name,
                        name,
                        ts,
                    },
                    false => protocol::Event::Leave {
                        room: room_name,
                        name,
                        ts,
                    },
                };
                Encoded::text(protocol::encode(&event))
            })
            .collect();
        if frames.is_empty() {
            return;
        }
        self.fan_out(
            room_name,
            None,
            &Fanout {
                v1: &frames,
                ..Fanout::default()
            },
        );
    }

    fn fill(&mut self, room: &str, after: u64, upto: u64) {
        let token = self.next_token;
        self.next_token += 1;
        self.fills.insert(token, room.to_owned());
        self.store.send(sqlite::Request::Fetch {
            room: room.to_owned(),
            after,
            upto,
            limit: upto.saturating_sub(after).min(FILL_LIMIT) as usize,
            token: sqlite::FetchFor::Fill(token),
            asker: None,
        });
    }

    /// Tries again the reads that failed, once Redis may be back.
    pub(super) fn retry_fills(&mut self, now: Instant) {
        if self.unfilled.is_empty() || now < self.next_fill_retry {
            return;
        }
        self.next_fill_retry = now + FILL_RETRY;
        for name in std::mem::take(&mut self.unfilled) {
            if let Some(room) = self.rooms.get(&name) {
                let after = room.last_id;
                self.fill(&name, after, u64::MAX);
            }
        }
    }

    /// The missed messages were read: they go out in order, then what
    /// arrived meanwhile.
    fn filled(
        &mut self,
        token: u64,
        name: &str,
        epoch: Option<String>,
        arrivals: Option<Vec<Arrival>>,
    ) {
        if self.fills.remove(&token).is_none() {
            return;
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let (Some(epoch), Some(arrivals)) = (epoch, arrivals) else {
            // Redis did not answer: the room keeps waiting, and asks again.
            self.unfilled.insert(name.to_owned());
            return;
        };
        let waiting = room.filling.take().unwrap_or_default();
        if room.epoch != epoch {
            self.reset_room(name, epoch);
        }
        // Whatever the stream no longer holds (trimmed to
        // `--retain-messages` while this instance could not hear) is gone:
        // the room moves past it rather than asking again.
        // The stream holds each message as its sender's instance spelled
        // the room: they are told under this one's spelling.
        let read = arrivals.into_iter().map(|mut arrival| {
            if arrival.record.room != name {
                name.clone_into(&mut arrival.record.room);
            }
            arrival
        });
        for arrival in read.chain(waiting) {
            let Some(room) = self.rooms.get_mut(name) else {
                return;
            };
            if room.filling.is_some() || arrival.epoch != room.epoch {
                self.arrived(arrival);
                continue;
            }
            let id = arrival.record.id;
            if id <= room.last_id {
                continue;
            }
            if id > room.last_id + 1 {
                log::warn!(
                    "event=messages_lost room={name:?} after={} first={id} msg=\"no longer in Redis\"",
                    room.last_id
                );
            }
            self.deliver_arrival(arrival);
        }
    }

    /// Delivers the room's next message to everyone here in the room: its
    /// sender's copy is the acknowledgement that Redis has it.
    fn deliver_arrival(&mut self, arrival: Arrival) {
        let Arrival {
            record,
            instance,
            client,
            raw,
            data,
            ..
        } = arrival;
        let sender = (*instance == *self.backend.instance()).then_some(client);
        self.deliver(record, data, None, sender, raw);
    }

    /// Someone joined, left or is typing on another instance (or, for a
    /// leave, on this one, once Redis knows they left every instance).
    fn presence(&mut self, room_name: &str, name: &str, change: Change, own: bool) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        if room.filling.is_some() && change != Change::Typing {
            room.heard.insert(name.to_owned());
        }
        let frame = match change {
            Change::Joined if !own => {
                if !room.remote.insert(name.to_owned()) || room.people.holds(name) {
                    return;
                }
                protocol::Event::Join {
                    room: room_name,
                    name,
                    ts: now_ms(),
                }
            }
            Change::Left => {
                room.remote.remove(name);
                if room.people.holds(name) {
                    // Back on this instance meanwhile.
                    return;
                }
                protocol::Event::Leave {
                    room: room_name,
                    name,
                    ts: now_ms(),
                }
            }
            Change::Typing if !own => protocol::Event::Typing {
                room: room_name,
                name,
            },
            Change::Joined | Change::Typing => return,
        };
        let frame = [Encoded::text(protocol::encode(&frame))];
        self.fan_out(
            room_name,
            None,
            &Fanout {
                v1: &frame,
                ..Fanout::default()
            },
        );
    }

    /// With shared rooms, asks Redis for a name before seating its first
    /// connection here; the join and whatever its client sends meanwhile
    /// wait for the answer. Gives the request back when no claim is
    /// needed (names held here alone, or already by this instance).
    pub(super) fn claim(
        &mut self,
        request: JoinRequest,
        room: &str,
        name: &crate::proto::names::Name,
    ) -> Option<JoinRequest> {
        if self.claimed.contains_key(&request.id)
            || self
                .rooms
                .get(room)
                .is_some_and(|r| r.people.holds(&name.text))
        {
            return Some(request);
        }
        let token = self.next_token;
        if !self.backend.claim(token, room, name, request.owner.key()) {
            // Names are held here alone: the room's own list decides.
            return Some(request);
        }
        self.next_token += 1;
        if let Some(r) = self.rooms.get_mut(room) {
            r.claims += 1;
        }
        self.waiting.insert(request.id, Wait::Claim(token));
        self.claiming.insert(token, Vec::new());
        self.claims.insert(token, request);
        None
    }

    fn claimed(&mut self, token: u64, outcome: ClaimOutcome) {
        let Some(request) = self.claims.remove(&token) else {
            return;
        };
        let id = request.id;
        self.waiting.remove(&id);
        let parked = self.claiming.remove(&token).unwrap_or_default();
        match outcome {
            ClaimOutcome::Held { first, .. } => {
                self.claimed.insert(id, first);
                self.join(request);
                self.claimed.remove(&id);
            }
            ClaimOutcome::Taken(holder) => {
                let why = format!("{holder:?} is already used in this room, on another server");
                self.refuse(id, FrameRefusal::new(ErrorCode::NameTaken, why));
            }
            ClaimOutcome::Unavailable => {
                let why = "the room cannot be reached; try again shortly";
                self.refuse(id, FrameRefusal::new(ErrorCode::Unavailable, why));
            }
        }
        for event in parked {
            self.handle(event);
        }
    }

    /// Redis could not load a room: its waiting joins are refused, to be
    /// tried again, and what their clients sent meanwhile is handled as
    /// from clients not in a room.
    pub(super) fn unreachable(&mut self, room: &str) {
        let parked = self.loading.remove(room).unwrap_or_default();
        let mut rest = Vec::new();
        for event in parked {
            match event {
                Input::Join(request) => {
                    self.waiting.remove(&request.id);
                    let why = "the room cannot be reached; try again shortly";
                    self.refuse(request.id, FrameRefusal::new(ErrorCode::Unavailable, why));
                }
                other => rest.push(other),
            }
        }
        for event in rest {
            self.handle(event);
        }
    }

    /// Whether the person's join is news to the room: with shared rooms,
    /// only when nobody held the name on any instance.
    pub(super) fn first_anywhere(&self, id: ClientId, first_here: bool) -> bool {
        first_here
            && (!self.backend.shares_names() || self.claimed.get(&id).copied().unwrap_or(false))
    }

    /// Names in the room on other instances, for a joiner's presence list.
    pub(super) fn remote_names<'a>(
        &'a self,
        room: &str,
        listed: &mut HashSet<&'a str>,
    ) -> Vec<&'a str> {
        self.rooms
            .get(room)
            .map(|r| {
                r.remote
                    .iter()
                    .map(String::as_str)
                    .filter(|n| listed.insert(n))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Note {
    /// The room of a note that may come from another instance.
    fn room_mut(&mut self) -> Option<&mut String> {
        match self {
            Note::Arrived(a) => Some(&mut a.record.room),
            Note::Presence { room, .. } => Some(room),
            _ => None,
        }
    }

    /// The room a note is about, when it must wait for that room to load.
    fn room(&self) -> Option<&str> {
        match self {
            Note::Arrived(a) => Some(&a.record.room),
            Note::Presence { room, .. } => Some(room),
            _ => None,
        }
    }
}
