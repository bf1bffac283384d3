//! What a hub's dispatcher is told, through its one channel (a reader's
//! thread takes its place there with a `hub::hubs::Link`).

use std::net::SocketAddr;
use std::sync::Arc;

use tungstenite::{Bytes, Utf8Bytes};

use super::ClientId;
use crate::history::{redis, sqlite};
use crate::hub::moderation;
use crate::hub::outlet::Outlet;
use crate::proto::names::Owner;
use crate::proto::protocol::Mode;

/// Everything the dispatcher is told, through its one channel: by the
/// readers, the admin view, the store and the server. (What it sends v1
/// clients is a `protocol::Event`.)
#[derive(Debug)]
pub enum Input {
    /// A chat-room client finished its handshake; it is not in a room
    /// yet. Sent when a `Link` enters its hub (`Link::new`, then
    /// `enter`); its drop sends its `Leave`.
    Connect {
        id: ClientId,
        peer: SocketAddr,
        mode: Mode,
        outlet: Arc<Outlet>,
    },
    /// The client asks to enter a room (from the query or a `join` frame).
    Join(JoinRequest),
    /// A chat message: raw text, or a v1 `message` frame's text.
    Text {
        id: ClientId,
        text: Utf8Bytes,
        /// The sender's id for it, so that a resend is not delivered twice.
        cid: Option<String>,
    },
    /// A file, with its bytes. `raw_frame` is the sender's tutorial-format
    /// frame when it came from a raw client, relayed to raw clients as is.
    File {
        id: ClientId,
        name: String,
        mime: String,
        data: Bytes,
        raw_frame: Option<Bytes>,
        cid: Option<String>,
    },
    Typing {
        id: ClientId,
    },
    /// A v1 client asks for a fresh URL of file `file` of its room.
    FileUrl {
        id: ClientId,
        file: u64,
        name: String,
    },
    /// A v1 client reads its room's history: an older page or a search
    /// (answered by `lookups.rs`).
    Lookup {
        id: ClientId,
        ask: crate::proto::lookup::Ask,
    },
    /// A v1 client edits, deletes or reacts to message `target` of its room.
    Change {
        id: ClientId,
        target: u64,
        change: crate::proto::protocol::changes::Change,
        cid: Option<String>,
    },
    /// The connection ended, for whatever reason: sent when its
    /// `Link` is dropped.
    Leave {
        id: ClientId,
    },
    /// A moderator's request (the admin view or API), answered on `reply`.
    Admin {
        request: moderation::Request,
        reply: crossbeam_channel::Sender<moderation::Reply>,
    },
    /// The history store answered (see `history/sqlite.rs`).
    Store(sqlite::Reply),
    /// With `--redis`: a message, presence change or answer from the rooms
    /// shared with other instances (see `history/redis.rs`).
    Cluster(redis::Note),
    /// Close every client (1001, or 1012 for a restart) and stop.
    Shutdown,
}

/// A client's request to enter a room.
#[derive(Debug)]
pub struct JoinRequest {
    pub id: ClientId,
    pub room: Option<String>,
    pub name: Option<String>,
    pub since: Option<u64>,
    /// The room's epoch the client knew `since` in.
    pub epoch: Option<String>,
    /// Who asks: the same owner may hold one name from several connections.
    pub owner: Owner,
    /// Its identity token's `mod` claim: it may delete anyone's message.
    pub moderator: bool,
}

impl Input {
    /// What `wschat_received_total` counts this event as, if it counts it.
    pub(crate) fn metric(&self) -> Option<crate::metrics::Received> {
        use crate::metrics::Received;
        match self {
            Input::Text { .. } | Input::Change { .. } => Some(Received::Text),
            Input::File { .. } => Some(Received::File),
            Input::Typing { .. } => Some(Received::Typing),
            Input::Join(_) => Some(Received::Join),
            _ => None,
        }
    }

    /// The client an event comes from, if it comes from one.
    pub(super) fn client(&self) -> Option<ClientId> {
        match self {
            Input::Join(JoinRequest { id, .. })
            | Input::Text { id, .. }
            | Input::File { id, .. }
            | Input::Typing { id }
            | Input::FileUrl { id, .. }
            | Input::Lookup { id, .. }
            | Input::Change { id, .. }
            | Input::Leave { id } => Some(*id),
            Input::Connect { .. }
            | Input::Admin { .. }
            | Input::Store(_)
            | Input::Cluster(_)
            | Input::Shutdown => None,
        }
    }
}
