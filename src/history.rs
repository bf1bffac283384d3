//! Where rooms' messages and files outlive the process: `sqlite`, the
//! store thread over one SQLite database, or `redis`, rooms shared by
//! several servers through Redis.
//!
//! Both speak the interface below: the dispatcher sends [`Request`]s and
//! is answered with [`Reply`]s about [`Record`]s, whichever backend holds
//! them.

use std::net::IpAddr;

use tungstenite::Bytes;

use crate::proto::wire::Encoded;

pub(crate) mod lookup;
pub(crate) mod redis;
pub mod sqlite;

/// A message or file announcement, as the dispatcher keeps it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    /// The room it was said in.
    pub(crate) room: String,
    /// Given by the dispatcher, one more than the room's last; never reused.
    pub(crate) id: u64,
    /// Who sent it.
    pub(crate) from: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) ts: u64,
    /// The sender's own id for the message (at most 64 characters), so that
    /// a client that sends again after a reconnect can recognise it.
    pub(crate) cid: Option<String>,
    /// What was sent.
    pub(crate) body: Body,
}

/// What a record holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    /// A message's text.
    Text(String),
    /// A file's announcement. `available` says whether its bytes are still
    /// stored; it is ignored in an append.
    File {
        /// The file's name.
        name: String,
        /// Its length in bytes.
        size: u64,
        /// Its media type.
        mime: String,
        /// Whether its bytes are still stored.
        available: bool,
    },
    /// A change to the message `target` of the same room (an edit, a
    /// deletion, a reaction), kept as a record of its own so that a resume
    /// delivers it in order; storing it also changes the target (see
    /// `changes.rs`). `moderator` says the sender may delete anyone's
    /// message; it is not stored.
    Change {
        /// The message's id.
        target: u64,
        /// What changes.
        change: Change,
        /// Whether its sender is a moderator.
        moderator: bool,
    },
    /// A message as it stands after changes: read from the store instead
    /// of `Text` once it was edited, deleted or reacted to.
    Changed(Box<Changed>),
}

pub(crate) use crate::proto::protocol::changes::{Change, Changed, Refusal};

impl Body {
    /// What its row keeps as text: a message's (as it stands), a change's
    /// (an edit's text, a reaction's emoji); none for a file.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Body::Text(text) => Some(text),
            Body::Changed(changed) => Some(&changed.text),
            Body::Change { change, .. } => Some(change.text()),
            Body::File { .. } => None,
        }
    }

    /// A change's kind and target, as its row keeps them.
    pub(crate) fn change_columns(&self) -> (Option<&'static str>, Option<u64>) {
        match self {
            Body::Change { target, change, .. } => (Some(change.kind()), Some(*target)),
            _ => (None, None),
        }
    }
}

/// What a [`Request::Fetch`] is for, with the number its answer comes back
/// under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FetchFor {
    /// A client's resume: answered with [`Reply::Fetched`].
    Resume(u64),
    /// Messages a shared room missed: with `--redis`, answered with the
    /// senders in a `Note::Filled`.
    Fill(u64),
}

/// What the dispatcher asks of the store thread.
#[derive(Debug)]
pub(crate) enum Request {
    /// Load a room: its epoch, last id, and its most recent `recent` records,
    /// oldest first. A room without history gets a new epoch, the same for
    /// every `Open` until its first record writes it down with the room's
    /// row; so a room that is only visited leaves nothing in the database.
    Open {
        /// The room.
        room: String,
        /// How many of its newest records to read.
        recent: usize,
    },
    /// Append a record; the store gives it its id (one more than the
    /// room's last ever stored; the record's own `id` is ignored), and a
    /// room never opened gets its row (and epoch) now. A record with a
    /// `cid` that its sender already stored in the room is not stored
    /// again: it is answered with the stored one. Appends waiting together
    /// (up to 256) are written in one transaction, then answered with one
    /// [`Reply::Appended`] each, in order. `data` is a file's bytes; it is
    /// kept only for a file.
    Append {
        /// What to write.
        record: Record,
        /// A file's bytes.
        data: Option<Bytes>,
        /// Who sent it. With `--redis` the sender's instance and client
        /// travel with the message; the embedded store hands it back.
        origin: Origin,
        /// A raw client's file frame as it sent it, handed back untouched
        /// so that raw receivers get it byte for byte.
        relay: Option<Bytes>,
    },
    /// Records of `room` with `after < id <= upto`, oldest first, at most
    /// `limit` (the oldest if more), then at most `FETCH_BYTES` (`sqlite/reads.rs`) of them
    /// (the newest); `token` is echoed back. It sees every append sent
    /// before it, and is read beside the store thread, never holding up
    /// writes; its answer may come before answers to requests sent earlier.
    Fetch {
        /// The room.
        room: String,
        /// Read ids above this one...
        after: u64,
        /// ...up to and with this one...
        upto: u64,
        /// ...at most this many, the oldest if more.
        limit: usize,
        /// What the fetch is for, echoed back with the answer.
        token: FetchFor,
        /// The address of the client it is for: the embedded store reads
        /// fetches for different addresses in turn (see `sqlite/pace.rs`).
        asker: Option<IpAddr>,
    },
    /// A client's page of older history or search (see `lookup`): read
    /// beside the writes, like a `Fetch`, seeing every append sent before
    /// it, and answered through its own callback.
    Lookup(lookup::Lookup),
    /// Stop once everything already sent has been written and answered.
    Shutdown,
}

/// The client a message came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    /// The connection's id.
    pub client: u64,
    /// It speaks the raw protocol.
    pub raw: bool,
}

/// The store thread's answers, in the order of the requests (but a
/// `Fetched`, which comes from the reads thread, may overtake others).
#[derive(Debug)]
pub(crate) enum Reply {
    /// `loaded` is false when the database could not be read: then `epoch`
    /// is a fresh one, `last_id` 0 and `recent` empty, and appends to the
    /// room will fail if it has history (their ids are taken); the failure
    /// was logged and counted. Ask again with another `Open`.
    Opened {
        /// The room asked for.
        room: String,
        /// The spelling the room's history is shown by, when it is not the
        /// one asked for: the first one stored. The store keys rooms by
        /// their names' skeleton (see `fold`), so a look-alike spelling
        /// reaches the same history, and should then join the room by this
        /// name. `None` for a room without history (and with `--redis`).
        spelling: Option<String>,
        /// Names the room's history.
        epoch: String,
        /// The room's newest id.
        last_id: u64,
        /// Its newest records, oldest first.
        recent: Vec<Record>,
        /// Whether the database could be read.
        loaded: bool,
        /// People in the room on other instances (with `--redis`; always
        /// empty for the embedded store).
        members: Vec<String>,
    },
    /// An append was decided: only a record that is [`Outcome::Stored`]
    /// may be delivered, since only then can its id never be handed out
    /// again and a replay never miss it.
    Appended {
        /// As stored, with its id; for a resend, the record stored before;
        /// for a failure, as it was sent (its id means nothing).
        record: Record,
        /// The file's bytes, handed back for delivery.
        data: Option<Bytes>,
        /// Who sent it.
        origin: Origin,
        /// A raw sender's own file frame, handed back.
        relay: Option<Bytes>,
        /// What became of it.
        outcome: Outcome,
        /// For a record stored: the epoch of the room's history it joined.
        /// It differs from the one the room was opened with only when the
        /// room's history began again meanwhile (retention emptied the room
        /// and gave up its row), so that ids count from 1 again.
        epoch: Option<String>,
    },
    /// Empty also when the database could not be read (logged and counted
    /// in [`sqlite::Stats::read_errors`]).
    Fetched {
        /// The room of the `Fetch`, whose hub the answer goes to.
        room: String,
        /// The token of the `Fetch`, which says what it was for.
        token: FetchFor,
        /// What was read, oldest first.
        records: Vec<Record>,
        /// Their replay frames, one per record, or none: the store leaves
        /// this empty, and whoever hands the answer to the dispatcher may
        /// encode them on its own thread (see `dispatcher::encode_replay`).
        frames: Vec<Encoded>,
    },
}

impl Reply {
    /// The room it is about: the answer goes to that room's hub.
    pub(crate) fn room(&self) -> &str {
        match self {
            Reply::Opened { room, .. } | Reply::Fetched { room, .. } => room,
            Reply::Appended { record, .. } => &record.room,
        }
    }
}

/// What became of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed under its new id.
    Stored,
    /// Its sender had already stored this `cid` in the room: nothing new
    /// was written, and the record is the one stored then.
    Resent,
    /// It could not be written (a full disk, an I/O error): nothing was
    /// stored and no id was used. Logged and counted in
    /// [`sqlite::Stats::write_errors`].
    Failed,
    /// A change its sender may not make, or to a message the room does not
    /// have: nothing was stored.
    Refused(Refusal),
}
