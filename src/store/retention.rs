//! One bound on everything the store keeps (`retain_bytes`): messages, file
//! announcements and files' bytes together, so that no kind of record can
//! fill the disk past it.
//!
//! Each room's row counts the bytes it holds (`rooms.bytes`, schema
//! version 3): a record costs its text, room key, sender, `cid`, file name and type in
//! UTF-8 bytes plus 64 (its key, id, time and the b-tree's bookkeeping,
//! roughly), and a file's bytes cost their
//! length. The count is kept in the same savepoint as the record it counts.
//! When the total passes the bound, the room holding the most pays first:
//! its oldest files' bytes go (their announcements stay, marked
//! unavailable), then its oldest records; a room is only touched while it
//! holds the most. So one address filling rooms of its own cannot flush a
//! smaller room's history. A room this empties of records loses its row as
//! well (and so its epoch and last id): otherwise rows of rooms that once
//! had a record would pile up outside the bound.

use rusqlite::{Connection, params};

/// A record's cost, in SQL over a row of `records`; the same expression
/// counts it in and out, so the count cannot drift.
macro_rules! cost {
    () => {
        "(length(CAST(COALESCE(text, '') AS BLOB)) + length(CAST(sender AS BLOB)) \
         + length(CAST(room AS BLOB)) \
         + length(CAST(COALESCE(cid, '') AS BLOB)) \
         + length(CAST(COALESCE(file_name, '') AS BLOB)) \
         + length(CAST(COALESCE(file_mime, '') AS BLOB)) + 64)"
    };
}

/// Version 3: every room's row counts its bytes, and an index finds the
/// room holding the most.
pub const V3: &str = concat!(
    "ALTER TABLE rooms ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET bytes =
    (SELECT COALESCE(SUM(",
    cost!(),
    "), 0) FROM records WHERE room = rooms.key)
    + (SELECT COALESCE(SUM(size), 0) FROM file_bytes WHERE room = rooms.key);
CREATE INDEX rooms_by_bytes ON rooms (bytes);
"
);

/// Counts a record just written (with `file` bytes of its file) in its
/// room's row.
pub fn count_in(conn: &Connection, key: &str, id: u64, file: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE rooms SET bytes = bytes + ?3 + (SELECT ",
        cost!(),
        " FROM records WHERE room = ?1 AND id = ?2) WHERE key = ?1"
    ))?
    .execute(params![key, id, file])?;
    Ok(())
}

/// Deletes the records of room `key` up to and with id `upto`, with their
/// files' bytes, and takes them off the room's count. Returns the file
/// bytes freed.
pub fn delete_upto(conn: &Connection, key: &str, upto: i64) -> rusqlite::Result<u64> {
    let records: i64 = conn
        .prepare_cached(concat!(
            "SELECT COALESCE(SUM(",
            cost!(),
            "), 0) FROM records WHERE room = ?1 AND id <= ?2"
        ))?
        .query_row(params![key, upto], |row| row.get(0))?;
    let files: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(size), 0) FROM file_bytes WHERE room = ?1 AND id <= ?2",
        )?
        .query_row(params![key, upto], |row| row.get(0))?;
    conn.prepare_cached("DELETE FROM file_bytes WHERE room = ?1 AND id <= ?2")?
        .execute(params![key, upto])?;
    conn.prepare_cached("DELETE FROM records WHERE room = ?1 AND id <= ?2")?
        .execute(params![key, upto])?;
    uncount(conn, key, records + files)?;
    Ok(files.max(0) as u64)
}

/// Everything stored now, as counted against the bound.
pub fn total(conn: &Connection) -> rusqlite::Result<u64> {
    let total: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(bytes), 0) FROM rooms")?
        .query_row([], |row| row.get(0))?;
    Ok(total.max(0) as u64)
}

/// Brings the total under `limit`, the room holding the most paying first
/// (see the module's comment). Returns the file bytes freed and the total
/// after.
pub fn shrink(conn: &Connection, limit: u64) -> rusqlite::Result<(u64, u64)> {
    let mut total = total(conn)?;
    let mut files_freed = 0;
    while total > limit {
        let top: Vec<(String, i64)> = conn
            .prepare_cached("SELECT key, bytes FROM rooms ORDER BY bytes DESC LIMIT 2")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some((key, most)) = top.first() else {
            break;
        };
        let next = top.get(1).map_or(0, |(_, bytes)| *bytes);
        if *most <= 0 {
            break;
        }
        // Only as much as keeps it the biggest, so that rooms of one size
        // pay in turn.
        let goal = (total - limit).min((most - next + 1).max(1) as u64);
        let (freed, files) = evict(conn, key, goal)?;
        if freed == 0 {
            // Its count says more than it holds (a database edited by
            // hand): set it right and look again.
            conn.prepare_cached("UPDATE rooms SET bytes = 0 WHERE key = ?1")?
                .execute([key])?;
            total = self::total(conn)?;
            continue;
        }
        total = total.saturating_sub(freed);
        files_freed += files;
        // A room left without records gives up its row too, so that rows
        // cannot pile up outside the bound; its next record begins a new
        // history, with a new epoch, which resuming clients are told of.
        conn.prepare_cached(
            "DELETE FROM rooms WHERE key = ?1 \
             AND NOT EXISTS (SELECT 1 FROM records WHERE room = ?1)",
        )?
        .execute([key])?;
    }
    Ok((files_freed, total))
}

/// Frees at least `goal` bytes of room `key` if it has them: its oldest
/// files' bytes first, then its oldest records. Returns the bytes freed
/// and the file bytes among them.
fn evict(conn: &Connection, key: &str, goal: u64) -> rusqlite::Result<(u64, u64)> {
    let mut files = 0;
    let mut upto = None;
    {
        let mut oldest =
            conn.prepare_cached("SELECT id, size FROM file_bytes WHERE room = ?1 ORDER BY id")?;
        let mut rows = oldest.query([key])?;
        while files < goal {
            let Some(row) = rows.next()? else {
                break;
            };
            upto = Some(row.get::<_, i64>(0)?);
            files += row.get::<_, u64>(1)?;
        }
    }
    if let Some(upto) = upto {
        conn.prepare_cached("DELETE FROM file_bytes WHERE room = ?1 AND id <= ?2")?
            .execute(params![key, upto])?;
        uncount(conn, key, files as i64)?;
    }
    if files >= goal {
        return Ok((files, files));
    }
    let mut records = 0;
    let mut upto = None;
    {
        let mut oldest = conn.prepare_cached(concat!(
            "SELECT id, ",
            cost!(),
            " FROM records WHERE room = ?1 ORDER BY id"
        ))?;
        let mut rows = oldest.query([key])?;
        while files + records < goal {
            let Some(row) = rows.next()? else {
                break;
            };
            upto = Some(row.get::<_, i64>(0)?);
            records += row.get::<_, u64>(1)?;
        }
    }
    let Some(upto) = upto else {
        return Ok((files, files));
    };
    let more_files = delete_upto(conn, key, upto)?;
    Ok((files + records + more_files, files + more_files))
}

fn uncount(conn: &Connection, key: &str, bytes: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE rooms SET bytes = max(bytes - ?2, 0) WHERE key = ?1")?
        .execute(params![key, bytes])?;
    Ok(())
}
