//! A v1 client's `history` and `search`: the dispatcher only checks where
//! the client sits and hands the history backend a `Lookup` for that room,
//! carrying the client's outlet. The backend reads beside its writes and
//! the answer goes from its thread straight to the client: the dispatcher
//! neither waits for it nor sees it.

use std::sync::Arc;

use super::records::event;
use super::{ClientId, Dispatcher};
use crate::history::lookup::{Ask, Found, Lookup};
use crate::history::sqlite::{self, Request};
use crate::hub::outlet::Outlet;
use crate::proto::capability::Signer;
use crate::proto::close::Close;
use crate::proto::lookup::{Hit, history_event, search_event};
use crate::proto::protocol::{self, ErrorCode, FrameRefusal};
use crate::proto::wire::Encoded;

impl Dispatcher {
    /// Asks the history backend for what the client wants to read of its
    /// own room (no client reads another room's). A `history` without
    /// `before` starts at the room's newest.
    pub(super) fn lookup(&mut self, id: ClientId, ask: Ask) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let Some(seat) = &client.seat else {
            let why = "join a room before reading its history or searching it";
            return self.refuse(id, FrameRefusal::new(ErrorCode::NotJoined, why));
        };
        if client.held.is_some() {
            // Its welcome waits for its resume; the answer must not come
            // before it.
            let why = "the room's history is still being sent to you; ask again shortly";
            return self.refuse(id, FrameRefusal::new(ErrorCode::Unavailable, why));
        }
        let room = seat.room.clone();
        let ask = match ask {
            Ask::History {
                before: None,
                limit,
            } => {
                let last_id = self.rooms.get(&room).map_or(0, |r| r.last_id);
                Ask::History {
                    before: Some(last_id.saturating_add(1)),
                    limit,
                }
            }
            ask => ask,
        };
        let answer = {
            let (outlet, urls, room, ask) = (
                client.outlet.clone(),
                self.limits.file_urls.clone(),
                room.clone(),
                ask.clone(),
            );
            Box::new(move |found| answer(&outlet, &urls, &room, &ask, found))
        };
        let sent = self
            .store
            .send(Request::Lookup(Lookup { room, ask, answer }));
        if !sent {
            let why = "the history cannot be read now; ask again shortly";
            self.refuse(id, FrameRefusal::new(ErrorCode::Unavailable, why));
        }
    }
}

/// Sends the client what was found, on the backend's thread.
fn answer(outlet: &Arc<Outlet>, urls: &Signer, room: &str, ask: &Ask, found: Found) {
    let text = match (found, ask) {
        (Found::History { records, complete }, Ask::History { before, .. }) => {
            let events: Vec<String> = records.iter().map(|r| replayed(r, urls)).collect();
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            history_event(room, before.unwrap_or(u64::MAX), &events, complete)
        }
        (Found::Search(records), Ask::Search { q, .. }) => {
            let hits: Vec<Hit> = records
                .iter()
                .filter_map(|r| match &r.body {
                    sqlite::Body::Text(text) => Some(Hit {
                        id: r.id,
                        from: &r.from,
                        ts: r.ts,
                        text,
                    }),
                    // As it stands, unless it was deleted.
                    sqlite::Body::Changed(changed) if !changed.deleted => Some(Hit {
                        id: r.id,
                        from: &r.from,
                        ts: r.ts,
                        text: &changed.text,
                    }),
                    sqlite::Body::File { .. }
                    | sqlite::Body::Changed(_)
                    | sqlite::Body::Change { .. } => None,
                })
                .collect();
            search_event(room, q, &hits)
        }
        _ => {
            let why = "the room's history could not be read; ask again shortly";
            FrameRefusal::new(ErrorCode::Unavailable, why).to_json()
        }
    };
    if outlet.send(std::iter::once(&Encoded::text(text))).is_err() {
        // Its backlog is full: as when the dispatcher finds it so, what it
        // has not taken it will not get, and it is closed.
        outlet.discard_backlog();
        outlet.close(&Close::policy("too slow"));
    }
}

/// A record's event as a replay sends it, a file's URL signed alike, a
/// message as it stands after its changes.
fn replayed(record: &sqlite::Record, urls: &Signer) -> String {
    let url = match &record.body {
        sqlite::Body::File { name, .. } => {
            crate::proto::capability::signed_url(urls, &record.room, record.id, name)
        }
        sqlite::Body::Change { target, change, .. } => {
            return super::changes::encode(record, *target, change, true);
        }
        sqlite::Body::Changed(changed) => {
            return super::changes::encode_changed(record, changed, true);
        }
        sqlite::Body::Text(_) => None,
    };
    protocol::encode(&event(record, true, url.as_deref()))
}
