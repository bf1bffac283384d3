//! Edits, deletions and reactions. Each is a record of its own, submitted
//! and delivered like a message (`messages.rs`, `Dispatcher::deliver`),
//! once the history has checked and stored it: the embedded store checks
//! the target in the database (`history/sqlite/writer/changes.rs`); with
//! `--redis` the target must be in the room's recent history here. Once
//! stored, the room hears of it, raw clients an edit as `name (edited):
//! text`, and the target's replay frame kept in memory is changed to the
//! message as it stands, as the store changed its row.

use super::{ClientId, Dispatcher, Fanout, JoinRequest, Seat};
use crate::history::sqlite;
use crate::proto::protocol::changes::{self, Change, Head, Refusal};
use crate::proto::wire::Encoded;

impl Dispatcher {
    /// A join, whose client is a moderator if its token says so.
    pub(super) fn join_as_moderator(&mut self, request: JoinRequest) {
        if request.moderator {
            self.moderators.insert(request.id);
        }
        self.join(request);
    }

    pub(super) fn change(
        &mut self,
        id: ClientId,
        target: u64,
        change: Change,
        cid: Option<String>,
    ) {
        let Some((Seat { room, name }, _)) = self.seated(id) else {
            return;
        };
        let moderator = self.moderators.contains(&id);
        if !self.backend.store_checks_changes()
            && let Err(why) = self.check_in_memory(&room, target, &change, &name, moderator)
        {
            return self.refuse(id, why.to_frame(target, &change).with_cid(cid));
        }
        let body = sqlite::Body::Change {
            target,
            change,
            moderator,
        };
        self.submit(id, cid, body, None, None);
    }

    /// Where the store cannot check it (`--redis`), whether the change may be made, from the target's
    /// frame in the room's recent history.
    fn check_in_memory(
        &self,
        room: &str,
        target: u64,
        change: &Change,
        actor: &str,
        moderator: bool,
    ) -> Result<(), Refusal> {
        let stored = self
            .rooms
            .get(room)
            .and_then(|r| r.history.iter().find(|s| s.id == target))
            .ok_or(Refusal::NoSuchMessage)?;
        let frame: serde_json::Value =
            serde_json::from_slice(payload(&stored.frame)).map_err(|_| Refusal::NoSuchMessage)?;
        if frame["type"] != "message" || frame["deleted"] == true {
            return Err(Refusal::NoSuchMessage);
        }
        let sender = frame["from"].as_str().unwrap_or_default();
        changes::allowed(change, sender, actor, moderator)
    }

    /// Delivers a stored change: its event to every v1 client (the
    /// sender's copy its acknowledgement), an edit's text to raw clients,
    /// and the target's frame in memory changed. (`deliver` has kept the
    /// change itself, as it keeps every record.)
    pub(super) fn deliver_change(&mut self, record: sqlite::Record, sender: Option<ClientId>) {
        let sqlite::Body::Change { target, change, .. } = &record.body else {
            return;
        };
        let live = Encoded::text(encode(&record, *target, change, false));
        let raw = match change {
            Change::Edit(text) => vec![Encoded::text(format!("{} (edited): {text}", record.from))],
            _ => Vec::new(),
        };
        self.amend_kept(&record.room, *target, change, &record.from);
        self.fan_out(
            &record.room,
            sender,
            &Fanout {
                v1: std::slice::from_ref(&live),
                v1_sender: std::slice::from_ref(&live),
                raw: &raw,
            },
        );
    }

    /// Changes the target's replay frame kept in memory; a deletion also
    /// turns the kept edits of it into deletions, so that no replay gives
    /// its text again.
    fn amend_kept(&mut self, room_name: &str, target: u64, change: &Change, from: &str) {
        let share = self.limits.history_share.clone();
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        for stored in room.history.iter_mut().filter(|s| s.id >= target) {
            let json = payload(&stored.frame);
            let amended = match stored.id == target {
                true => changes::amend(json, change, from),
                false if *change == Change::Delete && json.starts_with(b"{\"type\":\"edit\"") => {
                    changes::scrub_edit(json, target)
                }
                false => None,
            };
            let Some(amended) = amended else {
                continue;
            };
            let before = stored.cost();
            stored.frame = Encoded::text(amended);
            let after = stored.cost();
            match after >= before {
                // A few bytes more, at most an edit's text: taken even
                // past the share, which the next message's keeping
                // brings back within it.
                true => share.take_anyway(after - before),
                false => share.give(before - after),
            }
            room.history_bytes = room.history_bytes + after - before;
        }
    }
}

/// A change record's event.
pub(super) fn encode(
    record: &sqlite::Record,
    target: u64,
    change: &Change,
    replay: bool,
) -> String {
    changes::encode_change(&head(record, replay), target, change)
}

/// A changed message's event.
pub(super) fn encode_changed(
    record: &sqlite::Record,
    changed: &changes::Changed,
    replay: bool,
) -> String {
    changes::encode_changed(&head(record, replay), changed)
}

fn head(record: &sqlite::Record, replay: bool) -> Head<'_> {
    Head {
        id: record.id,
        room: &record.room,
        from: &record.from,
        ts: record.ts,
        cid: record.cid.as_deref(),
        replay,
    }
}

/// The payload of a server's text frame (unmasked: only the header's
/// length says where it starts).
fn payload(frame: &Encoded) -> &[u8] {
    let bytes = frame.as_bytes();
    let start = match bytes.get(1).map(|b| b & 0x7F) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    bytes.get(start..).unwrap_or_default()
}
