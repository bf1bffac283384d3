//! What a seated client sends: messages, files, typing notices and file
//! URLs, each checked and handed to the history to be stored.

use super::{ClientId, Dispatcher, Fanout, Seat, now_ms};
use crate::history::sqlite;
use crate::logs as log;
use crate::proto::protocol::{self, ErrorCode, FrameRefusal, Mode};
use crate::proto::wire::Encoded;
use tungstenite::Bytes;
use tungstenite::Utf8Bytes;

impl Dispatcher {
    pub(super) fn text(&mut self, id: ClientId, text: Utf8Bytes, cid: Option<String>) {
        let body = sqlite::Body::Text(text.as_str().to_owned());
        self.submit(id, cid, body, None, None);
    }

    pub(super) fn file(
        &mut self,
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
        cid: Option<String>,
    ) {
        let body = sqlite::Body::File {
            name,
            size: data.len() as u64,
            mime,
            available: true,
        };
        self.submit(id, cid, body, Some(data), raw_frame);
    }

    /// Hands a seated client's message or file to the store (or to Redis),
    /// which gives it its id, unless it is a resend this room still holds.
    /// Nobody sees it before it is stored: it is delivered, its sender's
    /// copy being the acknowledgement, when the store says so
    /// ([`Dispatcher::deliver`]), so an id anyone has seen is always a
    /// stored record's and a replay never misses it.
    pub(super) fn submit(
        &mut self,
        sender: ClientId,
        cid: Option<String>,
        body: sqlite::Body,
        data: Option<Bytes>,
        relay: Option<Bytes>,
    ) {
        let Some((Seat { room, name: from }, _)) = self.seated(sender) else {
            return;
        };
        if self.answered_before(sender, &room, &from, cid.as_deref()) {
            return;
        }
        let origin = self.origin(sender);
        if self.backend.delivers_when_stored() {
            self.appending += 1;
        }
        let record = sqlite::Record {
            room,
            id: 0,
            from,
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

    /// Whether `from` has already sent `cid` in this room (within the
    /// history kept): then the sender gets the stored event back as its
    /// acknowledgement, and nothing is delivered again.
    pub(super) fn answered_before(
        &mut self,
        id: ClientId,
        room: &str,
        from: &str,
        cid: Option<&str>,
    ) -> bool {
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

    pub(super) fn typing(&mut self, id: ClientId) {
        let Some((Seat { room, name }, _)) = self.seated(id) else {
            return;
        };
        self.backend.typing(&room, &name);
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
    pub(super) fn file_url(&mut self, id: ClientId, file: u64, name: &str) {
        let Some((Seat { room, .. }, _)) = self.seated(id) else {
            return;
        };
        let last_id = self.rooms.get(&room).map_or(0, |r| r.last_id);
        if file == 0 || file > last_id {
            let why = format!("room {room:?} has no file {file}");
            return self.refuse(id, FrameRefusal::new(ErrorCode::NoSuchFile, why));
        }
        let Some(url) =
            crate::proto::capability::signed_url(&self.limits.file_urls, &room, file, name)
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

    /// The seat and mode of a client that has joined. A v1 client that has
    /// not is told so.
    pub(super) fn seated(&mut self, id: ClientId) -> Option<(Seat, Mode)> {
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
    pub(super) fn origin(&self, sender: ClientId) -> sqlite::Origin {
        sqlite::Origin {
            client: sender,
            raw: self
                .clients
                .get(&sender)
                .is_some_and(|c| c.mode == Mode::Raw),
        }
    }
}
