//! A stored record as a row: the columns both the writer and the reads
//! thread select, and how a row becomes a [`Record`].

use rusqlite::Row;

use super::{Body, Record};
use crate::history::{Change, Changed};

/// The columns of a [`Record`], in the order [`record`] reads them.
pub(super) const RECORD: &str = "SELECT r.room, r.id, r.sender, r.ts, r.cid, r.text, r.file_name, \
    r.file_size, r.file_mime, \
    EXISTS (SELECT 1 FROM file_bytes f WHERE f.room = r.room AND f.id = r.id), \
    r.kind, r.target, r.edited, r.deleted, \
    (SELECT json_group_array(json_array(q.emoji, q.name)) FROM (SELECT emoji, name FROM reactions x \
     WHERE x.room = r.room AND x.target = r.id ORDER BY x.seq) q) \
    FROM records r";

/// [`RECORD`] through the index of `cid`s: without statistics SQLite would
/// rather walk the room's whole primary key than take that index.
pub(super) const RECORD_BY_CID: &str = "SELECT r.room, r.id, r.sender, r.ts, r.cid, r.text, \
    r.file_name, r.file_size, r.file_mime, \
    EXISTS (SELECT 1 FROM file_bytes f WHERE f.room = r.room AND f.id = r.id), \
    r.kind, r.target, r.edited, r.deleted, \
    (SELECT json_group_array(json_array(q.emoji, q.name)) FROM (SELECT emoji, name FROM reactions x \
     WHERE x.room = r.room AND x.target = r.id ORDER BY x.seq) q) \
    FROM records r INDEXED BY records_cid";

/// Reads a row of [`RECORD`].
pub(super) fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    let text: Option<String> = row.get(5)?;
    let kind: Option<String> = row.get(10)?;
    let body = match text {
        Some(text) => match kind.as_deref() {
            Some(kind) => Body::Change {
                target: row.get(11)?,
                change: Change::from_stored(kind, text).ok_or_else(|| {
                    rusqlite::Error::InvalidColumnType(
                        10,
                        "kind".into(),
                        rusqlite::types::Type::Text,
                    )
                })?,
                moderator: false,
            },
            None => changed(text, row.get(12)?, row.get(13)?, row.get(14)?),
        },
        None => Body::File {
            name: row.get(6)?,
            size: row.get(7)?,
            mime: row.get(8)?,
            available: row.get(9)?,
        },
    };
    Ok(Record {
        room: row.get(0)?,
        id: row.get(1)?,
        from: row.get(2)?,
        ts: row.get(3)?,
        cid: row.get(4)?,
        body,
    })
}

/// A message's body: `Text` unless it was edited, deleted or reacted to.
fn changed(text: String, edited: bool, deleted: bool, reactions: String) -> Body {
    let pairs: Vec<(String, String)> = serde_json::from_str(&reactions).unwrap_or_default();
    if !edited && !deleted && pairs.is_empty() {
        return Body::Text(text);
    }
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (emoji, name) in pairs {
        match grouped.iter_mut().find(|(e, _)| *e == emoji) {
            Some((_, names)) => names.push(name),
            None => grouped.push((emoji, vec![name])),
        }
    }
    Body::Changed(Box::new(Changed {
        text,
        edited,
        deleted,
        reactions: grouped,
    }))
}
