//! Clients' lookups in the embedded store: an older page of a room's
//! history, and a search of its messages through a full-text index.
//! They are read on the reads thread (`reads.rs`), on a read-only
//! connection, never on the store thread.
//!
//! The index is SQLite's FTS5, kept in step with `records` by triggers,
//! so that a message is findable in the same transaction that stores it
//! (before its sender's acknowledgement is sent) and is no longer found
//! once retention (or anything else) deletes it. Version 6 below made
//! it; version 9 (`index`) keys it by room ranges, as it is now.

use crate::logs as log;

use std::sync::atomic::Ordering;

use rusqlite::params;

use super::index::ID_BITS;
use super::rows::{RECORD, record};
use super::{Reader, Record, Stats};
use crate::history::lookup::{Ask, Found, Lookup, within_bytes};

/// Version 6: the full-text index of messages, as it was (version 9,
/// `index`, replaced it).
///
/// - `search_rows` gives each indexed message (by room key and id) an
///   integer, the index's row id: `records` has no row id of its own.
///   Row ids grow as messages are stored, so the newest come first when
///   read backwards.
/// - `search_text` is a contentless FTS5 table (it keeps the words, not
///   the texts, which `records` has), whose rows can be deleted; its
///   tokenizer splits on anything but letters and digits, folds case and
///   removes diacritics; it keeps no word positions (`detail=column`),
///   which a search of whole words does not need. Its `room` column holds one word naming the room
///   (`r` and the room key's bytes in hex), so that a search looks only
///   at its room's rows: a word common in other rooms costs it nothing.
/// - Triggers add a message's words when it is stored and remove them
///   when its row is deleted (retention, a room forgotten).
/// - The messages already stored are indexed now, oldest first per room.
pub const V6: &str = "
CREATE TABLE search_rows (
    seq INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    id INTEGER NOT NULL,
    UNIQUE (room, id)
);

CREATE VIRTUAL TABLE search_text USING fts5(
    text,
    room,
    content = '',
    contentless_delete = 1,
    detail = column,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER records_search_insert AFTER INSERT ON records
WHEN new.text IS NOT NULL
BEGIN
    INSERT INTO search_rows (room, id) VALUES (new.room, new.id);
    INSERT INTO search_text (rowid, text, room)
        SELECT seq, new.text, 'r' || hex(new.room) FROM search_rows
        WHERE room = new.room AND id = new.id;
END;

CREATE TRIGGER records_search_delete AFTER DELETE ON records
WHEN old.text IS NOT NULL
BEGIN
    DELETE FROM search_text WHERE rowid =
        (SELECT seq FROM search_rows WHERE room = old.room AND id = old.id);
    DELETE FROM search_rows WHERE room = old.room AND id = old.id;
END;

INSERT INTO search_rows (room, id)
    SELECT room, id FROM records WHERE text IS NOT NULL ORDER BY room, id;
INSERT INTO search_text (rowid, text, room)
    SELECT s.seq, r.text, 'r' || hex(r.room)
    FROM search_rows s JOIN records r ON r.room = s.room AND r.id = s.id;
";

/// Reads what `lookup` asks and hands it its answer. A failure to read is
/// logged, counted, and answered [`Found::Failed`].
pub(super) fn answer(reader: &Reader, stats: &Stats, path: &str, lookup: Lookup) {
    let key = super::fold::room_key(&lookup.room);
    let read = match &lookup.ask {
        Ask::History { before, limit } => {
            let before = before.unwrap_or(u64::MAX);
            reader.with(|conn| page(conn, &key, before, *limit))
        }
        Ask::Search { words, limit, .. } => reader.with(|conn| search(conn, &key, words, *limit)),
    };
    let found = match read {
        Ok(found) => found,
        Err(e) => {
            stats.read_errors.fetch_add(1, Ordering::Relaxed);
            log::error!(
                "event=store_error op=lookup path={path:?} room={:?} error={:?}",
                lookup.room,
                e.to_string()
            );
            Found::Failed
        }
    };
    let found = match found {
        Found::History {
            mut records,
            complete,
        } => {
            named(&mut records, &lookup.room);
            Found::History { records, complete }
        }
        Found::Search(mut records) => {
            named(&mut records, &lookup.room);
            Found::Search(records)
        }
        Found::Failed => Found::Failed,
    };
    (lookup.answer)(found);
}

/// Records carry the room's key; they are given the asker's spelling.
fn named(records: &mut [Record], room: &str) {
    for record in records {
        room.clone_into(&mut record.room);
    }
}

/// The newest `limit` records of the room below `before`, oldest first,
/// and whether nothing older is kept.
fn page(
    conn: &mut rusqlite::Connection,
    key: &str,
    before: u64,
    limit: usize,
) -> rusqlite::Result<Found> {
    let before = before.min(i64::MAX as u64);
    // One more than asked says whether anything older is kept.
    let mut records = conn
        .prepare_cached(&format!(
            "{RECORD} WHERE r.room = ?1 AND r.id < ?2 AND r.kind IS NULL \
             ORDER BY r.id DESC LIMIT ?3"
        ))?
        .query_map(params![key, before, limit + 1], record)?
        .collect::<rusqlite::Result<Vec<Record>>>()?;
    let mut complete = records.len() <= limit;
    records.truncate(limit);
    if within_bytes(&mut records) {
        complete = false;
    }
    records.reverse();
    Ok(Found::History { records, complete })
}

/// The room's newest `limit` messages holding every one of `words`: the
/// index read backwards within the room's range of row ids (version 9,
/// `index`), the records then read by their keys.
fn search(
    conn: &mut rusqlite::Connection,
    key: &str,
    words: &[String],
    limit: usize,
) -> rusqlite::Result<Found> {
    // The room's number is read in the same statement, so in the same
    // snapshot, as its rows: a room without a row (and so without records)
    // or without a number (past 2^23 - 1 rooms, not indexed) finds nothing.
    let mut records = conn
        .prepare_cached(&format!(
            "{RECORD} WHERE r.room = ?2 AND r.id IN \
             (SELECT rowid & {mask} FROM search_text WHERE search_text MATCH ?1 \
              AND rowid BETWEEN (SELECT num << {ID_BITS} FROM rooms WHERE key = ?2) \
              AND (SELECT num << {ID_BITS} | {mask} FROM rooms WHERE key = ?2) \
              ORDER BY rowid DESC LIMIT ?3) \
             ORDER BY r.id DESC",
            mask = (1u64 << ID_BITS) - 1
        ))?
        .query_map(params![match_query(words), key, limit], record)?
        .collect::<rusqlite::Result<Vec<Record>>>()?;
    within_bytes(&mut records);
    Ok(Found::Search(records))
}

/// An FTS5 query matching the rows whose text holds every word: each word
/// quoted (a quote doubled), so nothing a client writes is taken as query
/// syntax.
fn match_query(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<String>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_as_phrases() {
        let q = match_query(&["deploy".into(), "a\"b".into(), "or".into()]);
        assert_eq!(q, "\"deploy\" AND \"a\"\"b\" AND \"or\"");
    }

    #[test]
    fn the_index_follows_inserts_and_deletes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, "t.db", super::super::schema::MIGRATIONS).unwrap();
        conn.execute_batch(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('a', 'a', '00', 3);
             INSERT INTO rooms (key, name, epoch, last_id) VALUES ('b', 'b', '00', 1);",
        )
        .unwrap();
        let add = |conn: &rusqlite::Connection, room: &str, id: i64, text: &str| {
            conn.execute(
                "INSERT INTO records (room, id, sender, ts, text) VALUES (?1, ?2, 'ann', 0, ?3)",
                params![room, id, text],
            )
            .unwrap();
        };
        add(&conn, "a", 1, "Déployé the server");
        add(&conn, "a", 2, "lunch now");
        add(&conn, "b", 1, "deploye elsewhere");
        add(&conn, "a", 3, "deploye again, server up");
        let ids = |conn: &mut rusqlite::Connection, room: &str, words: &[&str]| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            match search(conn, room, &words, 10).unwrap() {
                Found::Search(records) => records.iter().map(|r| r.id).collect::<Vec<u64>>(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(ids(&mut conn, "a", &["deploye"]), [3, 1]);
        assert_eq!(ids(&mut conn, "a", &["deploye", "server"]), [3, 1]);
        assert_eq!(
            ids(&mut conn, "a", &["deploye", "lunch"]),
            Vec::<u64>::new()
        );
        assert_eq!(ids(&mut conn, "b", &["deploye"]), [1]);
        conn.execute("DELETE FROM records WHERE room = 'a' AND id <= 1", [])
            .unwrap();
        assert_eq!(ids(&mut conn, "a", &["deploye"]), [3]);
        // The index itself forgot the deleted message's words.
        let indexed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM search_text WHERE search_text MATCH '\"the\"'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 0);
        assert_eq!(ids(&mut conn, "c", &["deploye"]), Vec::<u64>::new());
    }

    #[test]
    fn an_existing_database_is_indexed_when_it_migrates() {
        use super::super::schema::{MIGRATIONS, migrate};
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&mut conn, "t.db", &MIGRATIONS[..5]).unwrap();
        conn.execute(
            "INSERT INTO rooms (key, name, epoch, last_id, bytes) VALUES ('a', 'a', '00', 2, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, text) VALUES ('a', 1, 'ann', 0, 'old deploy')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, file_name, file_size, file_mime) \
             VALUES ('a', 2, 'ann', 0, 'deploy.txt', 1, 'text/plain')",
            [],
        )
        .unwrap();
        migrate(&mut conn, "t.db", MIGRATIONS).unwrap();
        let found = |conn: &mut rusqlite::Connection| match search(conn, "a", &["deploy".into()], 5)
            .unwrap()
        {
            Found::Search(records) => records.iter().map(|r| r.id).collect::<Vec<u64>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(found(&mut conn), [1]);
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, text) VALUES ('a', 3, 'ann', 0, 'new deploy')",
            [],
        )
        .unwrap();
        assert_eq!(found(&mut conn), [3, 1]);
    }

    #[test]
    fn a_page_says_when_it_reaches_the_first_record() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, "t.db", super::super::schema::MIGRATIONS).unwrap();
        for id in 3..=9 {
            conn.execute(
                "INSERT INTO records (room, id, sender, ts, text) VALUES ('a', ?1, 'ann', 0, 'x')",
                [id],
            )
            .unwrap();
        }
        let read =
            |conn: &mut rusqlite::Connection, before, limit| match page(conn, "a", before, limit)
                .unwrap()
            {
                Found::History { records, complete } => {
                    (records.iter().map(|r| r.id).collect::<Vec<u64>>(), complete)
                }
                other => panic!("{other:?}"),
            };
        assert_eq!(read(&mut conn, 10, 3), (vec![7, 8, 9], false));
        assert_eq!(read(&mut conn, 7, 3), (vec![4, 5, 6], false));
        assert_eq!(read(&mut conn, 4, 3), (vec![3], true));
        assert_eq!(read(&mut conn, 6, 3), (vec![3, 4, 5], true));
        assert_eq!(read(&mut conn, 3, 3), (vec![], true));
    }
}
