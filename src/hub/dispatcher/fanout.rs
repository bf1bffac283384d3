//! Delivering: the frames staged for each room member, flushed with one
//! vectored send per client at the end of a batch, and the clients evicted,
//! refused or gone.

use super::{Client, ClientId, Dispatcher, Seat, now_ms};
use crate::logs as log;
use crate::proto::close::Close;
use crate::proto::protocol::{self, ErrorCode, FrameRefusal, Mode};
use crate::proto::wire::Encoded;
use std::ops::Range;
use std::time::Instant;

impl Dispatcher {
    /// Stages `fanout`'s frames for every member of `room`.
    pub(super) fn fan_out(&mut self, room: &str, sender: Option<ClientId>, fanout: &Fanout) {
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
    pub(super) fn stage_frames(&mut self, frames: &[Encoded]) -> Range<u32> {
        stage_frames(&mut self.batch, frames)
    }

    /// Stages frames of this batch for one client.
    pub(super) fn stage(&mut self, id: ClientId, frames: Range<u32>) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.stage(id, frames, &mut self.dirty);
        }
    }

    /// Sends one frame to one client.
    pub(super) fn send(&mut self, id: ClientId, frame: Encoded) {
        let range = self.stage_frames(&[frame]);
        self.stage(id, range);
    }

    /// Writes every client's staged frames, each client's with one vectored
    /// send; evicts the clients that have fallen too far behind (which may
    /// stage `leave` events for others, written in the same call).
    pub(super) fn flush(&mut self) {
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

    pub(super) fn evict(&mut self, id: ClientId) {
        if let Some(client) = self.clients.remove(&id) {
            log::warn!(
                "event=evict client={id} peer={} code=1008 reason=\"too slow\" msg=\"outbound backlog full\"",
                crate::proto::addr::show_peer(client.peer)
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
    pub(super) fn refuse(&mut self, id: ClientId, refusal: FrameRefusal) {
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
                    crate::proto::addr::show_peer(client.peer),
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
    pub(super) fn vacate(&mut self, client: Client, close: Option<Close>) {
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
        // Whether the room is told now; with shared rooms, it hears of it
        // when Redis says they left everywhere.
        let tell = gone && self.backend.release(&room_name, &name);
        if empty && self.let_go(&room_name) {
            return;
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
        if !tell {
            // The person is still here on another connection, or the
            // backend tells the room later.
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
}

impl Client {
    pub(super) fn stage(&mut self, id: ClientId, frames: Range<u32>, dirty: &mut Vec<ClientId>) {
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
pub(super) fn stage_frames(batch: &mut Vec<Encoded>, frames: &[Encoded]) -> Range<u32> {
    let start = batch.len() as u32;
    batch.extend_from_slice(frames);
    start..batch.len() as u32
}

/// What each kind of room member receives for one event. The frames are
/// encoded once and shared by every receiver. A raw sender never receives
/// its own frames (the tutorial's rule).
#[derive(Default)]
pub(super) struct Fanout<'a> {
    pub(super) v1: &'a [Encoded],
    pub(super) v1_sender: &'a [Encoded],
    pub(super) raw: &'a [Encoded],
}
