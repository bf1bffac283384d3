//! One room, one key: the store keys rooms by the confusable skeleton of
//! their name (`names::skeleton`), the same folded form by which the
//! server makes `lоbby` (Cyrillic `о`) the room `lobby` while it runs, so
//! that after a restart any spelling reaches the same history. The row
//! keeps the spelling the room is shown by: the first one stored.
//!
//! This file holds the key function, which SQL reaches as `room_key(name)`,
//! and the migration (schema version 4) that folds a version-1 database,
//! whose rooms were keyed by exact spelling. Rooms whose names fold
//! together there are merged, as `docs/DECISIONS.md` records:
//!
//! - the spelling whose first record is oldest is the display spelling;
//!   its records keep their ids, so its file URLs keep working;
//! - the other spellings' records follow, after its last id, oldest first
//!   (by time, then spelling, then old id), their files' bytes with them;
//! - the merged room gets a new epoch: its ids no longer mean what its
//!   clients last saw, so a resume is told `recovered:false` (`epoch`);
//! - `moved_files` remembers where each moved file went, so that the old
//!   `/files/SPELLING/ID/NAME` URLs of the other spellings still serve the
//!   same file.
//!
//! A room alone under its key keeps its ids and epoch: nothing changes for
//! its clients.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

/// The key a room is stored under: its name's confusable skeleton.
pub fn room_key(room: &str) -> String {
    crate::proto::names::skeleton(room)
}

/// Makes `room_key(name)` callable from SQL on `conn`, for the migration.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "room_key",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(room_key(&ctx.get::<String>(0)?)),
    )
}

/// Version 4: rooms keyed by `room_key(name)`.
///
/// - `rooms` is made again with `key` as its primary key and `name` the
///   display spelling; `records.room` and `file_bytes.room` hold the key.
/// - Keys are rewritten in two passes, through a prefix (U+0001) that no
///   room name can begin with, so that no row takes a place another still
///   holds between the passes; only rows whose key or id changes are
///   rewritten (a room alone whose name is its own skeleton is not
///   touched), through indexed look-ups.
/// - File bytes without an announcement (which wschat never leaves, and no
///   URL can reach) are deleted rather than given a key.
pub const V4: &str = "
CREATE TEMP TABLE fold_rooms AS
    SELECT name, room_key(name) AS key, epoch, last_id,
        (SELECT MIN(ts) FROM records r WHERE r.room = rooms.name) AS first_ts
    FROM rooms;
INSERT INTO temp.fold_rooms (name, key, epoch, last_id, first_ts)
    SELECT room, room_key(room), lower(hex(randomblob(8))), MAX(id), MIN(ts)
    FROM records WHERE room NOT IN (SELECT name FROM rooms) GROUP BY room;
CREATE INDEX temp.fold_rooms_by_name ON fold_rooms (name);

CREATE TEMP TABLE fold_display AS
    SELECT key, name, epoch, last_id, spellings FROM (
        SELECT key, name, epoch, last_id,
            COUNT(*) OVER (PARTITION BY key) AS spellings,
            ROW_NUMBER() OVER (
                PARTITION BY key ORDER BY first_ts IS NULL, first_ts, name
            ) AS rank
        FROM temp.fold_rooms
    ) WHERE rank = 1;
CREATE UNIQUE INDEX temp.fold_display_by_key ON fold_display (key);

CREATE TEMP TABLE fold_ids AS
    SELECT r.room AS spelling, r.id AS old_id, d.key AS key,
        CASE WHEN r.room = d.name THEN r.id
        ELSE max(d.last_id,
                 (SELECT COALESCE(MAX(id), 0) FROM records x WHERE x.room = d.name))
            + ROW_NUMBER() OVER (
                PARTITION BY d.key, r.room = d.name ORDER BY r.ts, r.room, r.id
            )
        END AS id,
        r.file_name IS NOT NULL AS is_file,
        d.spellings AS spellings,
        r.room = d.name AS shown
    FROM records r
    JOIN temp.fold_rooms f ON f.name = r.room
    JOIN temp.fold_display d ON d.key = f.key;
-- Only the rows whose key or id changes are rewritten.
DELETE FROM temp.fold_ids WHERE spelling = key AND id = old_id AND NOT
    (spellings > 1 AND NOT shown AND is_file);
CREATE UNIQUE INDEX temp.fold_ids_by_old ON fold_ids (spelling, old_id);
CREATE INDEX temp.fold_ids_by_key ON fold_ids (key, id);

CREATE TABLE rooms_v2 (
    key TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO rooms_v2 (key, name, epoch, last_id)
    SELECT d.key, d.name,
        CASE WHEN d.spellings > 1 THEN lower(hex(randomblob(8))) ELSE d.epoch END,
        max(d.last_id, (SELECT COALESCE(MAX(id), 0) FROM temp.fold_ids i WHERE i.key = d.key))
    FROM temp.fold_display d;
DROP TABLE rooms;
ALTER TABLE rooms_v2 RENAME TO rooms;

CREATE TABLE moved_files (
    spelling TEXT NOT NULL,
    old_id INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (spelling, old_id)
) WITHOUT ROWID;
INSERT INTO moved_files (spelling, old_id, id)
    SELECT spelling, old_id, id FROM temp.fold_ids
    WHERE spellings > 1 AND NOT shown AND is_file;

DELETE FROM file_bytes WHERE NOT EXISTS (
    SELECT 1 FROM records r WHERE r.room = file_bytes.room AND r.id = file_bytes.id
);
UPDATE records SET (room, id) = (
    SELECT char(1) || i.key, i.id FROM temp.fold_ids i
    WHERE i.spelling = records.room AND i.old_id = records.id
) WHERE EXISTS (
    SELECT 1 FROM temp.fold_ids i WHERE i.spelling = records.room AND i.old_id = records.id
);
UPDATE records SET room = substr(room, 2) WHERE substr(room, 1, 1) = char(1);
UPDATE file_bytes SET (room, id) = (
    SELECT char(1) || i.key, i.id FROM temp.fold_ids i
    WHERE i.spelling = file_bytes.room AND i.old_id = file_bytes.id
) WHERE EXISTS (
    SELECT 1 FROM temp.fold_ids i WHERE i.spelling = file_bytes.room AND i.old_id = file_bytes.id
);
UPDATE file_bytes SET room = substr(room, 2) WHERE substr(room, 1, 1) = char(1);

DROP TABLE temp.fold_ids;
DROP TABLE temp.fold_display;
DROP TABLE temp.fold_rooms;
";
