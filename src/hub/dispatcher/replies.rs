//! The history backend's replies: a room opened, a message stored (then
//! delivered), or refused.

use super::{Dispatcher, Input, Room, Stored, replay_frame};
use crate::history::sqlite;
use crate::logs as log;
use crate::proto::protocol::{ErrorCode, FrameRefusal};
use std::time::Instant;
use tungstenite::Bytes;

impl Dispatcher {
    /// What the store answered: a room loaded (its waiting joins go on), a
    /// record written (its sender's acknowledgement goes out).
    pub(super) fn stored(&mut self, reply: sqlite::Reply) {
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
                if !loaded && !self.backend.may_start_afresh() {
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
                if self.let_go(&name) {
                    return;
                }
                if let Some(room) = self.rooms.get(&name)
                    && room.members.is_empty()
                {
                    if room.history.is_empty() && self.backend.keeps_idle_rooms() {
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
            } => {
                self.appending = self.appending.saturating_sub(1);
                self.appended(record, data, origin, relay, (outcome, epoch))
            }
            sqlite::Reply::Fetched {
                token,
                records,
                frames,
                ..
            } => match token {
                sqlite::FetchFor::Resume(token) => self.caught_up(token, records, frames),
                // Fills are answered by Redis, as `Note::Filled`.
                sqlite::FetchFor::Fill(_) => {}
            },
        }
    }

    /// What the store made of a message: delivered once stored; a resend
    /// answered with what was stored before; a failure told to its sender
    /// (a v1 client keeps it and sends it again with the same `cid`; a raw
    /// client, which has no way to hear of it, is closed with 1013), never
    /// delivered, so no one sees an id that could be handed out again.
    pub(super) fn appended(
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
            sqlite::Outcome::Refused(why) => {
                if let sqlite::Body::Change { target, change, .. } = &record.body {
                    let refusal = why.to_frame(*target, change).with_cid(record.cid.clone());
                    self.refuse(origin.client, refusal);
                }
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
}
