//! The word index as it stands (schema version 9), which replaced the one
//! of versions 6 and 8 because that one cost more than the messages it
//! indexed once retention deleted as fast as messages came (see
//! `docs/DECISIONS.md`, "The word index, cheaper").
//!
//! Every room has a number (`rooms.num`), and a message's row in the index
//! is `num << 40 | id`: a room's rows are one range of row ids, which FTS5
//! reads on its own, so the index needs neither a table mapping its rows
//! to messages nor a word naming the room in each row. The index keeps
//! nothing per row but its words (no content, no sizes, no word
//! positions), and words are taken out with FTS5's `delete` command, given
//! the text that was indexed, which triggers have at hand.
//!
//! Invariant: the index holds, under `num << 40 | id`, exactly the words
//! of each message (`kind IS NULL`) whose text is not empty, whose id is
//! below 2^40 and whose room has a row with a number; a `delete` with any
//! other text than the one indexed would corrupt it, so every trigger
//! below keeps to that same condition.

/// Bits of a row id that hold the message's id; the room's number is above.
pub(super) const ID_BITS: u32 = 40;

/// Indexes every message the invariant (module comment) says the index
/// holds; the index must be empty.
macro_rules! reindex {
    () => {
        "INSERT INTO search_text (rowid, text)
    SELECT (m.num << 40) | r.id, r.text FROM records r JOIN rooms m ON m.key = r.room
    WHERE m.num IS NOT NULL AND r.kind IS NULL AND r.text <> '' AND r.id < 1099511627776
    ORDER BY m.num, r.id"
    };
}

/// Version 9: the word index by room ranges.
///
/// - `search_rows`, `search_text` and their triggers go; `rooms.num` is
///   each room's number, unique, given in key order to the rooms there
///   are and, to a new room, one more than the highest (or, past
///   2^23 − 1, a free one, the first after a number in use: a room's
///   rows leave the index with its records, so a number is free once its
///   room's row is gone).
/// - `search_text` holds one column, the text, with no content, no
///   column sizes and no positions (`detail=none`: a search matches
///   whole words, never phrases); same tokenizer as before.
/// - Triggers on `records` add a message's words when it is inserted,
///   replace them when its text changes (an edit, a deletion) and remove
///   them when its row is deleted (retention); triggers on `rooms` index
///   records already there when a room's row is made and remove them when
///   it goes, so that the invariant (module comment) holds whatever the
///   order of writes.
/// - The messages already stored are indexed again.
pub(super) const V9: &str = concat!(
    "
DROP TRIGGER records_search_insert;
DROP TRIGGER records_search_update;
DROP TRIGGER records_search_delete;
DROP TABLE search_text;
DROP TABLE search_rows;

ALTER TABLE rooms ADD COLUMN num INTEGER;
WITH n AS (SELECT key, row_number() OVER (ORDER BY key) AS num FROM rooms)
UPDATE rooms SET num = n.num FROM n WHERE rooms.key = n.key AND n.num < 8388608;
CREATE UNIQUE INDEX rooms_by_num ON rooms (num);

CREATE VIRTUAL TABLE search_text USING fts5(
    text,
    content = '',
    columnsize = 0,
    detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO search_text (search_text, rank) VALUES ('crisismerge', 4);

CREATE TRIGGER rooms_number AFTER INSERT ON rooms BEGIN
    UPDATE rooms SET num = (
        SELECT CASE WHEN most < 8388607 THEN most + 1 ELSE (
            SELECT MIN(r.num) + 1 FROM rooms r WHERE r.num < 8388607
               AND NOT EXISTS (SELECT 1 FROM rooms x WHERE x.num = r.num + 1)) END
        FROM (SELECT COALESCE(MAX(num), 0) AS most FROM rooms))
    WHERE key = NEW.key;
    INSERT INTO search_text (rowid, text)
        SELECT (m.num << 40) | r.id, r.text FROM rooms m JOIN records r ON r.room = m.key
        WHERE m.key = NEW.key AND m.num IS NOT NULL
          AND r.kind IS NULL AND r.text <> '' AND r.id < 1099511627776;
END;

CREATE TRIGGER rooms_unnumber BEFORE DELETE ON rooms WHEN OLD.num IS NOT NULL BEGIN
    INSERT INTO search_text (search_text, rowid, text)
        SELECT 'delete', (OLD.num << 40) | id, text FROM records
        WHERE room = OLD.key AND kind IS NULL AND text <> '' AND id < 1099511627776;
END;

CREATE TRIGGER records_search_insert AFTER INSERT ON records
WHEN NEW.kind IS NULL AND NEW.text <> '' AND NEW.id < 1099511627776
BEGIN
    INSERT INTO search_text (rowid, text)
        SELECT (num << 40) | NEW.id, NEW.text FROM rooms
        WHERE key = NEW.room AND num IS NOT NULL;
END;

CREATE TRIGGER records_search_update AFTER UPDATE OF text ON records
WHEN OLD.kind IS NULL AND OLD.id < 1099511627776 AND OLD.text IS NOT NEW.text
BEGIN
    INSERT INTO search_text (search_text, rowid, text)
        SELECT 'delete', (num << 40) | OLD.id, OLD.text FROM rooms
        WHERE key = OLD.room AND num IS NOT NULL AND OLD.text <> '';
    INSERT INTO search_text (rowid, text)
        SELECT (num << 40) | NEW.id, NEW.text FROM rooms
        WHERE key = NEW.room AND num IS NOT NULL AND NEW.kind IS NULL AND NEW.text <> '';
END;

CREATE TRIGGER records_search_delete AFTER DELETE ON records
WHEN OLD.kind IS NULL AND OLD.text <> '' AND OLD.id < 1099511627776
BEGIN
    INSERT INTO search_text (search_text, rowid, text)
        SELECT 'delete', (num << 40) | OLD.id, OLD.text FROM rooms
        WHERE key = OLD.room AND num IS NOT NULL;
END;

",
    reindex!(),
    ";"
);

/// Empties the index and indexes every message again: what the store does
/// should a `delete` find the index not holding what it deletes (see
/// [`is_corrupt`]), so that retention, which deletes through it, works
/// again.
pub(super) const REBUILD: &str = concat!(
    "INSERT INTO search_text (search_text) VALUES ('delete-all');",
    reindex!(),
    ";"
);

/// Whether `error` is FTS5 finding its index not as the invariant (module
/// comment) says, as when more rows are taken out than it holds: only a
/// database changed by hand can do that, and deletions of records through
/// the index then fail, retention's too, until [`REBUILD`] runs.
pub(super) fn is_corrupt(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CORRUPT_VTAB)
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::super::schema::{MIGRATIONS, migrate};
    use super::ID_BITS;

    /// The ids of room `key` whose indexed words hold `word`, read from
    /// the index alone.
    fn indexed(conn: &Connection, key: &str, word: &str) -> Vec<i64> {
        let num: i64 = conn
            .query_row("SELECT num FROM rooms WHERE key = ?1", [key], |r| r.get(0))
            .unwrap();
        let lo = num << ID_BITS;
        conn.prepare(
            "SELECT rowid - ?2 FROM search_text WHERE search_text MATCH ?1 \
             AND rowid BETWEEN ?2 AND ?3 ORDER BY rowid",
        )
        .unwrap()
        .query_map(
            params![format!("\"{word}\""), lo, lo | ((1 << ID_BITS) - 1)],
            |r| r.get(0),
        )
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    fn room(conn: &Connection, key: &str) {
        conn.execute(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES (?1, ?1, '00', 0)",
            [key],
        )
        .unwrap();
    }

    fn add(conn: &Connection, key: &str, id: i64, text: &str) {
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, text) VALUES (?1, ?2, 'ann', 0, ?3)",
            params![key, id, text],
        )
        .unwrap();
    }

    /// The index is exact: for each of `words`, each room's indexed ids
    /// are those of its messages whose text holds the word now. (FTS5's
    /// own integrity check cannot tell, the index keeping no texts.)
    fn check(conn: &Connection, words: &[&str]) {
        let rooms: Vec<String> = conn
            .prepare("SELECT key FROM rooms")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for key in &rooms {
            let texts: Vec<(i64, String)> = conn
                .prepare("SELECT id, text FROM records WHERE room = ?1 AND kind IS NULL AND text <> '' ORDER BY id")
                .unwrap()
                .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for word in words {
                let holding: Vec<i64> = texts
                    .iter()
                    .filter(|(_, text)| crate::proto::lookup::words(text).any(|w| w == *word))
                    .map(|(id, _)| *id)
                    .collect();
                assert_eq!(indexed(conn, key, word), holding, "{key}: {word}");
            }
        }
    }

    #[test]
    fn rooms_are_numbered_and_numbers_of_rooms_gone_are_taken_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "t.db", MIGRATIONS).unwrap();
        for key in ["a", "b", "c"] {
            room(&conn, key);
        }
        let num = |conn: &Connection, key: &str| -> i64 {
            conn.query_row("SELECT num FROM rooms WHERE key = ?1", [key], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            [num(&conn, "a"), num(&conn, "b"), num(&conn, "c")],
            [1, 2, 3]
        );
        add(&conn, "c", 1, "gone soon");
        conn.execute_batch(
            "DELETE FROM records WHERE room = 'c'; DELETE FROM rooms WHERE key = 'c'",
        )
        .unwrap();
        room(&conn, "d");
        assert_eq!(num(&conn, "d"), 3);
        assert_eq!(indexed(&conn, "d", "gone"), Vec::<i64>::new());
        // Past the highest number, a free one, the first after a number in use.
        conn.execute("UPDATE rooms SET num = 8388607 WHERE key = 'd'", [])
            .unwrap();
        room(&conn, "e");
        assert_eq!(num(&conn, "e"), 3);
        add(&conn, "e", 1, "gone again");
        check(&conn, &["gone", "again", "soon"]);
    }

    #[test]
    fn the_index_follows_inserts_edits_deletions_and_retention() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "t.db", MIGRATIONS).unwrap();
        room(&conn, "a");
        room(&conn, "b");
        add(&conn, "a", 1, "alpha one");
        add(&conn, "a", 2, "alpha two");
        add(&conn, "b", 1, "alpha elsewhere");
        assert_eq!(indexed(&conn, "a", "alpha"), [1, 2]);
        assert_eq!(indexed(&conn, "b", "alpha"), [1]);
        conn.execute_batch(
            "INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('a', 3, 'ann', 0, 'beta', 'edit', 2);
             INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('b', 2, 'ann', 0, '', 'delete', 1);",
        )
        .unwrap();
        assert_eq!(indexed(&conn, "a", "alpha"), [1], "an edit's old words go");
        assert_eq!(indexed(&conn, "a", "beta"), [2], "under the message's id");
        assert_eq!(indexed(&conn, "b", "alpha"), Vec::<i64>::new());
        conn.execute("DELETE FROM records WHERE room = 'a' AND id <= 2", [])
            .unwrap();
        assert_eq!(indexed(&conn, "a", "beta"), Vec::<i64>::new());
        check(&conn, &["alpha", "beta", "one", "two", "elsewhere"]);
    }

    #[test]
    fn an_index_found_corrupt_is_rebuilt_from_the_records() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "t.db", MIGRATIONS).unwrap();
        room(&conn, "a");
        add(&conn, "a", 1, "hello world");
        add(&conn, "a", 2, "other words");
        // As a database edited by hand might be: words the records hold
        // are not in the index.
        conn.execute_batch("INSERT INTO search_text (search_text) VALUES ('delete-all')")
            .unwrap();
        add(&conn, "a", 3, "hello again");
        let e = conn
            .execute("DELETE FROM records WHERE room = 'a' AND id <= 2", [])
            .unwrap_err();
        assert!(super::is_corrupt(&e), "{e}");
        conn.execute_batch(super::REBUILD).unwrap();
        check(&conn, &["hello", "world", "words", "again"]);
        conn.execute("DELETE FROM records WHERE room = 'a' AND id <= 2", [])
            .unwrap();
        check(&conn, &["hello", "world", "words", "again"]);
    }

    #[test]
    fn a_version_8_database_is_indexed_again_when_it_migrates() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "t.db", &MIGRATIONS[..8]).unwrap();
        conn.execute_batch(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('a', 'A', '00', 3);
             INSERT INTO records (room, id, sender, ts, text) VALUES ('a', 1, 'ann', 0, 'old deploy');
             INSERT INTO records (room, id, sender, ts, text) VALUES ('a', 2, 'ann', 0, 'gone');
             INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('a', 3, 'ann', 0, 'deploy again', 'edit', 2);",
        )
        .unwrap();
        migrate(&mut conn, "t.db", MIGRATIONS).unwrap();
        assert_eq!(indexed(&conn, "a", "deploy"), [1, 2]);
        assert_eq!(indexed(&conn, "a", "gone"), Vec::<i64>::new());
        add(&conn, "a", 4, "new deploy");
        assert_eq!(indexed(&conn, "a", "deploy"), [1, 2, 4]);
        check(&conn, &["deploy", "old", "again", "new", "gone"]);
    }
}
