//! A stored record's way to its room, the same for every backend: the
//! room's sequence moves past it, it is kept for replay, each kind of
//! member's frames are encoded once, and they are fanned out; the sender's
//! own copy is its acknowledgement.

use tungstenite::Bytes;

use super::records::event;
use super::{ClientId, Dispatcher, Fanout, Stored};
use crate::history::sqlite;
use crate::proto::protocol;
use crate::proto::wire::Encoded;

impl Dispatcher {
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
        // Every kind of record is kept for replay the same way.
        if self.limits.history > 0 {
            self.keep(&room_name, Stored::new(&record, &self.limits.file_urls));
        }
        if let sqlite::Body::Change { .. } = record.body {
            return self.deliver_change(record, sender);
        }
        let live = Encoded::text(protocol::encode(&event(&record, false, None)));
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
            sqlite::Body::Change { .. } | sqlite::Body::Changed(_) => {
                (vec![live.clone()], Vec::new())
            }
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
}
