//! A stored record as a row: the columns both the writer and the reads
//! thread select, and how a row becomes a [`Record`].

use rusqlite::Row;

use super::{Body, Record};

/// The columns of a [`Record`], in the order [`record`] reads them.
pub(super) const RECORD: &str = "SELECT r.room, r.id, r.sender, r.ts, r.cid, r.text, r.file_name, \
    r.file_size, r.file_mime, \
    EXISTS (SELECT 1 FROM file_bytes f WHERE f.room = r.room AND f.id = r.id) \
    FROM records r";

/// [`RECORD`] through the index of `cid`s: without statistics SQLite would
/// rather walk the room's whole primary key than take that index.
pub(super) const RECORD_BY_CID: &str = "SELECT r.room, r.id, r.sender, r.ts, r.cid, r.text, \
    r.file_name, r.file_size, r.file_mime, \
    EXISTS (SELECT 1 FROM file_bytes f WHERE f.room = r.room AND f.id = r.id) \
    FROM records r INDEXED BY records_cid";

/// Reads a row of [`RECORD`].
pub(super) fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    let text: Option<String> = row.get(5)?;
    let body = match text {
        Some(text) => Body::Text(text),
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
