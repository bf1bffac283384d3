//! Changes to messages in the database (version 8): a change is a row of
//! `records` like a message, with its `kind` and `target`, and triggers
//! apply it to its target in the same transaction, so that reading the
//! target gives the message as it stands.

/// Version 8.
///
/// - `records.kind`, `records.target`: a change's kind (`edit`, `delete`,
///   `react`, `unreact`) and the id of the message it changes; `NULL` for
///   messages and files. Its `text` is an edit's text or a reaction's
///   emoji (empty for a deletion).
/// - `records.edited`, `records.deleted`: what happened to a message. A
///   deleted message's text is emptied, and so is the text of every edit
///   of it, which becomes a deletion: nothing it said is kept.
/// - `reactions`: who reacted to which message with which emoji, `seq`
///   being the reaction's id (they are read in that order). Emptied with
///   the message, by a deletion or by retention.
/// - A row whose text changes is counted again in its room's `bytes`
///   (`retention`), so that retention takes off what it counts now.
/// - The word index (version 6, `lookups`) holds messages only, not
///   changes, and follows a message's text: an edit's words replace the
///   old ones, a deletion removes them.
pub(super) const V8: &str = concat!(
    "
ALTER TABLE records ADD COLUMN kind TEXT;
ALTER TABLE records ADD COLUMN target INTEGER;
ALTER TABLE records ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reactions (
    room TEXT NOT NULL,
    target INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (room, target, emoji, name)
) WITHOUT ROWID;

-- One trigger for every change, so that a message's insert checks one
-- condition, not one per kind of change.
CREATE TRIGGER records_change AFTER INSERT ON records WHEN NEW.kind IS NOT NULL BEGIN
    UPDATE records SET text = NEW.text, edited = 1
     WHERE NEW.kind = 'edit' AND room = NEW.room AND id = NEW.target
       AND kind IS NULL AND deleted = 0;
    UPDATE records SET text = '', edited = 0, deleted = 1
     WHERE NEW.kind = 'delete' AND room = NEW.room AND id = NEW.target
       AND kind IS NULL AND text IS NOT NULL;
    UPDATE records SET kind = 'delete', text = ''
     WHERE NEW.kind = 'delete' AND room = NEW.room AND id > NEW.target AND id < NEW.id
       AND kind = 'edit' AND target = NEW.target;
    DELETE FROM reactions
     WHERE NEW.kind = 'delete' AND room = NEW.room AND target = NEW.target;
    INSERT OR IGNORE INTO reactions (room, target, emoji, name, seq)
    SELECT NEW.room, NEW.target, NEW.text, NEW.sender, NEW.id
     WHERE NEW.kind = 'react' AND EXISTS (SELECT 1 FROM records WHERE room = NEW.room
           AND id = NEW.target AND kind IS NULL AND deleted = 0);
    DELETE FROM reactions
     WHERE NEW.kind = 'unreact' AND room = NEW.room AND target = NEW.target
       AND emoji = NEW.text AND name = NEW.sender;
END;

CREATE TRIGGER records_gone AFTER DELETE ON records WHEN OLD.kind IS NULL BEGIN
    DELETE FROM reactions WHERE room = OLD.room AND target = OLD.id;
END;

CREATE TRIGGER records_recount AFTER UPDATE OF text ON records BEGIN
    UPDATE rooms SET bytes = bytes
        + (SELECT ",
    cost!(),
    " FROM (SELECT NEW.text AS text, NEW.sender AS sender, NEW.room AS room, NEW.cid AS cid, \
        NEW.file_name AS file_name, NEW.file_mime AS file_mime))
        - (SELECT ",
    cost!(),
    " FROM (SELECT OLD.text AS text, OLD.sender AS sender, OLD.room AS room, OLD.cid AS cid, \
        OLD.file_name AS file_name, OLD.file_mime AS file_mime))
     WHERE key = NEW.room;
END;

DROP TRIGGER records_search_insert;
CREATE TRIGGER records_search_insert AFTER INSERT ON records
WHEN NEW.text IS NOT NULL AND NEW.kind IS NULL
BEGIN
    INSERT INTO search_rows (room, id) VALUES (NEW.room, NEW.id);
    INSERT INTO search_text (rowid, text, room)
        SELECT seq, NEW.text, 'r' || hex(NEW.room) FROM search_rows
        WHERE room = NEW.room AND id = NEW.id;
END;

CREATE TRIGGER records_search_update AFTER UPDATE OF text ON records
WHEN OLD.kind IS NULL AND OLD.text IS NOT NULL
BEGIN
    DELETE FROM search_text WHERE rowid =
        (SELECT seq FROM search_rows WHERE room = OLD.room AND id = OLD.id);
    INSERT INTO search_text (rowid, text, room)
        SELECT seq, NEW.text, 'r' || hex(NEW.room) FROM search_rows
        WHERE room = NEW.room AND id = NEW.id AND NEW.text <> '';
END;
"
);

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::schema::{MIGRATIONS, migrate};

    /// What room `r`'s records and row cost, counted afresh.
    fn counted_afresh(conn: &Connection) -> i64 {
        conn.query_row(
            concat!(
                "SELECT (SELECT SUM(",
                cost!(),
                ") FROM records WHERE room = 'r') + (SELECT ",
                row_cost!(),
                " FROM rooms WHERE key = 'r')"
            ),
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn changes_apply_to_their_target_and_keep_the_count_true() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test.db", MIGRATIONS).unwrap();
        conn.execute_batch(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('r', 'r', '00', 9);
             INSERT INTO records (room, id, sender, ts, text) VALUES ('r', 1, 'ann', 0, 'hi');
             INSERT INTO records (room, id, sender, ts, text) VALUES ('r', 2, 'ann', 0, 'yo');",
        )
        .unwrap();
        let bytes = counted_afresh(&conn);
        conn.execute("UPDATE rooms SET bytes = ?1", [bytes])
            .unwrap();
        let change = |id: u64, sender: &str, kind: &str, target: u64, text: &str| {
            conn.execute(
                "INSERT INTO records (room, id, sender, ts, text, kind, target)                  VALUES ('r', ?1, ?2, 0, ?3, ?4, ?5)",
                rusqlite::params![id, sender, text, kind, target],
            )
            .unwrap();
            super::super::retention::count_in(&conn, "r", id, 0).unwrap();
        };
        change(3, "ann", "edit", 1, &"a much longer text ".repeat(60));
        change(4, "bob", "react", 1, "👍");
        change(5, "ann", "edit", 2, "secret");
        change(6, "ann", "delete", 2, "");
        change(7, "bob", "react", 2, "👍");
        let bytes: i64 = conn
            .query_row("SELECT bytes FROM rooms", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            bytes,
            counted_afresh(&conn),
            "what retention counts is what is there"
        );
        let rows: Vec<(i64, Option<String>, String, bool, bool)> = conn
            .prepare("SELECT id, kind, text, edited, deleted FROM records ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            rows[0].2.starts_with("a much longer") && rows[0].3,
            "{rows:?}"
        );
        assert_eq!((rows[1].2.as_str(), rows[1].4), ("", true), "{rows:?}");
        assert_eq!(
            (rows[4].1.as_deref(), rows[4].2.as_str()),
            (Some("delete"), ""),
            "the edit of a deleted message says nothing"
        );
        let reactions: Vec<(i64, String)> = conn
            .prepare("SELECT target, name FROM reactions")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            reactions,
            [(1, "bob".to_owned())],
            "none on a deleted message"
        );
    }

    #[test]
    fn the_word_index_follows_edits_and_deletions_and_holds_no_changes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test.db", MIGRATIONS).unwrap();
        let found = |conn: &Connection, word: &str| -> Vec<i64> {
            let mut stmt = conn
                .prepare(
                    "SELECT rowid & ((1 << 40) - 1) FROM search_text \
                     WHERE search_text MATCH ?1 ORDER BY rowid",
                )
                .unwrap();
            stmt.query_map([format!("\"{word}\"")], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        conn.execute_batch(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('r', 'r', '00', 9);
             INSERT INTO records (room, id, sender, ts, text) VALUES ('r', 1, 'ann', 0, 'alpha');
             INSERT INTO records (room, id, sender, ts, text) VALUES ('r', 2, 'ann', 0, 'gamma');
             INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('r', 3, 'ann', 0, 'beta', 'edit', 1);",
        )
        .unwrap();
        assert_eq!(found(&conn, "alpha"), Vec::<i64>::new(), "the old words go");
        assert_eq!(found(&conn, "beta"), [1], "the message, not the edit's row");
        conn.execute_batch(
            "INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('r', 4, 'ann', 0, '', 'delete', 1);
             INSERT INTO records (room, id, sender, ts, text, kind, target)
                 VALUES ('r', 5, 'bob', 0, '👍', 'react', 2);",
        )
        .unwrap();
        assert_eq!(
            found(&conn, "beta"),
            Vec::<i64>::new(),
            "a deletion removes them"
        );
        assert_eq!(found(&conn, "gamma"), [2]);
    }
}
