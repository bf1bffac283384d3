//! One bound on everything the store keeps (`retain_bytes`): messages, file
//! announcements and files' bytes together, so that no kind of record can
//! fill the disk past it.
//!
//! Each room's row counts the bytes it holds (`rooms.bytes`, schema
//! version 5): a record costs what it takes on disk (see [`cost`]): its
//! text, room key, sender, `cid`, file name and type in UTF-8 bytes plus 64
//! (its id, time and the b-tree's bookkeeping, roughly), or whole overflow
//! pages for a long one; the room's own row its key and name plus 128; and a file's bytes cost their
//! length. The count is kept in the same transaction as the records it counts.
//! When the total passes the bound, the room holding the most pays first:
//! its oldest files' bytes go (their announcements stay, marked
//! unavailable), then its oldest records; a room is only touched while it
//! holds the most. So one address filling rooms of its own cannot flush a
//! smaller room's history. A room this empties of records loses its row as
//! well (and so its epoch and last id): otherwise rows of rooms that once
//! had a record would pile up outside the bound.

use rusqlite::{Connection, OptionalExtension, params};

/// The bytes of a row of `records`' strings.
macro_rules! strings {
    () => {
        "(length(CAST(COALESCE(text, '') AS BLOB)) + length(CAST(sender AS BLOB)) \
         + length(CAST(room AS BLOB)) \
         + length(CAST(COALESCE(cid, '') AS BLOB)) \
         + length(CAST(COALESCE(file_name, '') AS BLOB)) \
         + length(CAST(COALESCE(file_mime, '') AS BLOB)))"
    };
}

/// A record's cost, in SQL over a row of `records`; the same expression
/// counts it in and out, so the count cannot drift. It is what the row
/// takes on disk: its strings plus 64 while it fits in its b-tree page;
/// past about 940 bytes (`records` is a `WITHOUT ROWID` table, whose rows
/// spill to overflow pages past 1,002 bytes of 4 KiB pages, keeping 489
/// in the page) every overflow page it needs, whole, and the part kept.
/// Without that, a ~1 KiB text, counted at its length, takes four times
/// as much disk. [`crate::limits::storerate::record_cost`] is the same in Rust.
macro_rules! record_row {
    () => {
        concat!(
            "(CASE WHEN ",
            strings!(),
            " > 940 THEN ((",
            strings!(),
            " - 489 + 4091) / 4092) * 4096 + 553 ELSE ",
            strings!(),
            " + 64 END)"
        )
    };
}

/// What a message's words take in the word index (schema version 6,
/// `lookups.rs`), in SQL over a row of `records`: its row in `search_rows`
/// and that table's index (about 48 bytes and the room key twice), and
/// its words (measured at about half its text, for chat messages). Since
/// version 9 (`index.rs`) there is no `search_rows` and the index keeps
/// less per row, so this counts more than it takes; it is kept as it was
/// so that no room's count has to be made again, and a bound that counts
/// more keeps the disk within it all the same.
macro_rules! index_cost {
    () => {
        "(CASE WHEN text IS NULL THEN 0 ELSE 48 + 2 * length(CAST(room AS BLOB)) \
         + length(CAST(text AS BLOB)) / 2 END)"
    };
}

/// A record's cost (see [`record_row`]), with its words in the index.
macro_rules! cost {
    () => {
        concat!("(", record_row!(), " + ", index_cost!(), ")")
    };
}

/// What a room's own row costs, in SQL over a row of `rooms`: its key and
/// name, and 128 for its epoch, counts and its entry in the index by
/// bytes. Counted while the row lasts, so that rooms of one tiny record
/// each cannot take more disk than is counted.
macro_rules! row_cost {
    () => {
        "(length(CAST(key AS BLOB)) + length(CAST(name AS BLOB)) + 128)"
    };
}

/// Version 5: every room's row counts its bytes (its own row's with
/// them), and an index finds the room holding the most.
pub const V5: &str = concat!(
    "ALTER TABLE rooms ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET bytes = ",
    row_cost!(),
    "
    + (SELECT COALESCE(SUM(",
    record_row!(),
    "), 0) FROM records WHERE room = rooms.key)
    + (SELECT COALESCE(SUM(size), 0) FROM file_bytes WHERE room = rooms.key);
CREATE INDEX rooms_by_bytes ON rooms (bytes);
"
);

/// Version 7: every room's count again, now that a message's words in the
/// index (version 6) count too.
pub const V7: &str = concat!(
    "UPDATE rooms SET bytes = ",
    row_cost!(),
    "
    + (SELECT COALESCE(SUM(",
    cost!(),
    "), 0) FROM records WHERE room = rooms.key)
    + (SELECT COALESCE(SUM(size), 0) FROM file_bytes WHERE room = rooms.key);
"
);

/// Counts a record just written (with `file` bytes of its file) in its
/// room's row; a row just made (whose count is 0) counts itself too.
pub fn count_in(conn: &Connection, key: &str, id: u64, file: u64) -> rusqlite::Result<()> {
    count_range(conn, key, id, id, file)
}

/// Counts the records of room `key` with ids `first` to `last`, just
/// written together (with `files` bytes of their files), in its row; a
/// row just made (whose count is 0) counts itself too.
pub fn count_range(
    conn: &Connection,
    key: &str,
    first: u64,
    last: u64,
    files: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE rooms SET bytes = bytes + ?4 + (SELECT COALESCE(SUM(",
        cost!(),
        "), 0) FROM records WHERE room = ?1 AND id BETWEEN ?2 AND ?3) \
         + CASE WHEN bytes = 0 THEN ",
        row_cost!(),
        " ELSE 0 END WHERE key = ?1"
    ))?
    .execute(params![key, first, last, files])?;
    Ok(())
}

/// How many records past `retain_messages` (`keep`) a room may hold
/// before its oldest are deleted, down to `keep`, in one chunk: a room
/// keeps at least `keep` and at most `keep + keep / 32` records (a bound
/// of 32 or less is kept exactly). Deleting a record or a few after every
/// group cost more than writing them (see `docs/DECISIONS.md`, "Retention
/// in chunks").
pub fn slack(keep: i64) -> i64 {
    keep / 32
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
        let (mut freed, files) = evict(conn, key, goal)?;
        // A room left without records gives up its row too, and what the
        // row counted, so that rows cannot pile up outside the bound; its
        // next record begins a new history, with a new epoch, which
        // resuming clients are told of.
        let emptied: Option<i64> = conn
            .prepare_cached(
                "DELETE FROM rooms WHERE key = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM records WHERE room = ?1) RETURNING bytes",
            )?
            .query_row([key], |row| row.get(0))
            .optional()?;
        if let Some(left) = emptied {
            freed += left.max(0) as u64;
        } else if freed == 0 {
            // Its count says more than it holds (a database edited by
            // hand): nothing more can be freed.
            break;
        }
        total = total.saturating_sub(freed);
        files_freed += files;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at the current schema with one room, `lobby`.
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, "test.db", super::super::schema::MIGRATIONS)
            .unwrap();
        conn.execute(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('lobby', 'lobby', '00', 0)",
            [],
        )
        .unwrap();
        conn
    }

    fn add(conn: &Connection, id: u64, text: &str) -> u64 {
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, text) VALUES ('lobby', ?1, 'ada', 0, ?2)",
            params![id, text],
        )
        .unwrap();
        count_in(conn, "lobby", id, 0).unwrap();
        total(conn).unwrap()
    }

    #[test]
    fn a_short_record_costs_its_strings_and_a_long_one_its_pages() {
        let conn = database();
        // "ada" + "lobby" + the text, plus 64; its words, 48, "lobby"
        // twice and half the text; and the room's row, "lobby" twice and
        // 128.
        assert_eq!(
            add(&conn, 1, "hello"),
            3 + 5 + 5 + 64 + (48 + 10 + 2) + (5 + 5 + 128)
        );
        // Past 940 bytes the row spills: one whole overflow page and the
        // part kept in the b-tree page.
        let before = total(&conn).unwrap();
        assert_eq!(
            add(&conn, 2, &"x".repeat(1000)) - before,
            4096 + 553 + (48 + 10 + 500)
        );
        let before = total(&conn).unwrap();
        assert_eq!(
            add(&conn, 3, &"x".repeat(5000)) - before,
            2 * 4096 + 553 + (48 + 10 + 2500)
        );
        // The store rate's estimate is never below what is counted for a
        // sender and cid of ordinary length.
        for len in [0u64, 100, 900, 1000, 4096, 5000] {
            let counted = {
                let strings = len + 3 + 5 + 16;
                let row = if strings > 940 {
                    (strings - 489).div_ceil(4092) * 4096 + 553
                } else {
                    strings + 64
                };
                row + 48 + 2 * 5 + len / 2
            };
            assert!(
                crate::limits::storerate::record_cost(len) >= counted,
                "{len}"
            );
        }
    }

    #[test]
    fn deleting_takes_off_what_was_counted() {
        let conn = database();
        add(&conn, 1, "a");
        add(&conn, 2, &"b".repeat(2000));
        add(&conn, 3, "c");
        delete_upto(&conn, "lobby", 2).unwrap();
        assert_eq!(
            total(&conn).unwrap(),
            3 + 5 + 1 + 64 + (48 + 10) + (5 + 5 + 128)
        );
        // Over a bound, the room's oldest go, and a room left without
        // records loses its row.
        let (_, after) = shrink(&conn, 10).unwrap();
        assert_eq!(after, 0);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM rooms", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }
}
