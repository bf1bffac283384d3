//! A stored record as clients see it: the event of a message or file, live
//! or replayed, and the frame kept for replaying it.

use crate::history::sqlite;
use crate::proto::protocol;
use crate::proto::wire::Encoded;

/// A message or file announcement kept for replay: its event, encoded once
/// when it was sent, shared by every joiner it is replayed to.
pub(super) struct Stored {
    pub(super) id: u64,
    pub(super) frame: Encoded,
    /// Who sent it with which `cid`, to know a resend when it comes.
    pub(super) sent_as: Option<(Box<str>, Box<str>)>,
}

impl Stored {
    pub(super) fn new(record: &sqlite::Record, urls: &crate::proto::capability::Signer) -> Stored {
        Stored {
            id: record.id,
            frame: replay_frame(record, urls),
            sent_as: record
                .cid
                .as_deref()
                .map(|cid| (record.from.as_str().into(), cid.into())),
        }
    }

    /// What keeping it costs the history share.
    pub(super) fn cost(&self) -> usize {
        let sent_as = self.sent_as.as_ref().map_or(0, |(f, c)| f.len() + c.len());
        self.frame.len() + sent_as + std::mem::size_of::<Stored>()
    }
}

/// A message or file's event, as sent live (`replay` false) or replayed.
/// A replayed file whose bytes are kept says where to download them.
pub(super) fn event<'a>(
    record: &'a sqlite::Record,
    replay: bool,
    url: Option<&'a str>,
) -> protocol::Event<'a> {
    let cid = record.cid.as_deref();
    match &record.body {
        sqlite::Body::File {
            name,
            size,
            mime,
            available,
        } => protocol::Event::File {
            id: record.id,
            room: &record.room,
            from: &record.from,
            name,
            size: *size,
            mime,
            ts: record.ts,
            cid,
            url: url.filter(|_| *available),
            available: (!available).then_some(false),
            replay,
        },
        // A change's own frame is encoded by `changes.rs` (see
        // `replay_frame`, `deliver`); as a message it is its text.
        body @ (sqlite::Body::Text(_) | sqlite::Body::Changed(_) | sqlite::Body::Change { .. }) => {
            protocol::Event::Message {
                id: record.id,
                room: &record.room,
                from: &record.from,
                text: body.text().unwrap_or_default(),
                ts: record.ts,
                cid,
                edited: false,
                deleted: false,
                reactions: None,
                replay,
            }
        }
    }
}

/// The replay frame of a record. A file's URL is signed for its room
/// (see `proto::capability`); with `--auth-secret` it expires, and the
/// client asks for a fresh one with `file_url`.
pub(super) fn replay_frame(
    record: &sqlite::Record,
    urls: &crate::proto::capability::Signer,
) -> Encoded {
    let url = match &record.body {
        sqlite::Body::File { name, .. } => {
            crate::proto::capability::signed_url(urls, &record.room, record.id, name)
        }
        sqlite::Body::Change { target, change, .. } => {
            return Encoded::text(super::changes::encode(record, *target, change, true));
        }
        sqlite::Body::Changed(changed) => {
            return Encoded::text(super::changes::encode_changed(record, changed, true));
        }
        sqlite::Body::Text(_) => None,
    };
    Encoded::text(protocol::encode(&event(record, true, url.as_deref())))
}
