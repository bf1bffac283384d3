//! The database's layout, and how an older one is brought up to date.
//!
//! The schema's version is SQLite's `user_version`. `MIGRATIONS[n]` takes a
//! database from version `n` to `n + 1`, so a new database runs them all and
//! an old one only those it lacks; each runs in its own transaction, which
//! also sets the new version, so a crash leaves the database at one version
//! or the next, never between. A change to the schema is a new entry at the
//! end: entries already released are never edited, since databases out
//! there went through them as they were.

use crate::logs as log;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Version 1.
///
/// - `rooms`: one row per room that has (or had) history. `epoch` is random,
///   made when the row is; `last_id` is the highest id ever stored, kept
///   when retention deletes every record, so that ids never go back.
/// - `records`: messages (`text`) and file announcements (`file_*`), keyed
///   by room and id, so that a room's newest are one index walk away.
/// - `file_bytes`: a file's bytes, apart from its announcement so that
///   reading records never pages through them. Its row id gives the order
///   in which files were stored, for evicting the oldest; `size` is kept
///   beside the bytes so that counting them does not read them.
const V1: &str = "
CREATE TABLE rooms (
    name TEXT NOT NULL PRIMARY KEY,
    epoch TEXT NOT NULL,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
    room TEXT NOT NULL,
    id INTEGER NOT NULL,
    sender TEXT NOT NULL,
    ts INTEGER NOT NULL,
    cid TEXT,
    text TEXT,
    file_name TEXT,
    file_size INTEGER,
    file_mime TEXT,
    PRIMARY KEY (room, id),
    CHECK ((text IS NULL) <> (file_name IS NULL))
) WITHOUT ROWID;

CREATE TABLE file_bytes (
    seq INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (room, id)
);
";

/// Version 2.
///
/// - `records_cid`: finds a message by its sender's `cid`, so that a resend
///   is recognised for as long as the message is kept, not only while it
///   is in memory.
/// - `probe`: one row the store rewrites while writes fail, to learn when
///   the database can be written again.
const V2: &str = "
CREATE INDEX records_cid ON records (room, cid) WHERE cid IS NOT NULL;

CREATE TABLE probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
";

/// Version 3: `server_keys`, keys the server makes once and keeps across
/// restarts, by name (`file_urls`: the random key that signs file URLs when
/// there is no `--auth-secret`).
const V3: &str = "
CREATE TABLE server_keys (
    name TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

/// Every migration, oldest first; the schema's version is their count.
pub const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    super::fold::V4,
    super::retention::V5,
    super::lookups::V6,
    super::retention::V7,
    super::changes::V8,
    super::index::V9,
];

/// Refuses, before anything is written, a database this build must not
/// touch: one from a newer wschat, or another program's.
pub fn check(conn: &Connection, path: &str) -> Result<(), StoreError> {
    check_against(conn, path, MIGRATIONS)
}

fn check_against(conn: &Connection, path: &str, migrations: &[&str]) -> Result<(), StoreError> {
    let version = version(conn).map_err(|e| StoreError::at_open(path, e))?;
    let known = migrations.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            version,
            known,
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| StoreError::at_open(path, e))?;
        if tables > 0 {
            return Err(StoreError::Foreign {
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

/// Runs the migrations the database lacks, each in its own transaction.
pub fn migrate(conn: &mut Connection, path: &str, migrations: &[&str]) -> Result<(), StoreError> {
    let fail = |e| StoreError::at_open(path, e);
    let mut from = None;
    // Version 4 folds rooms by a key only Rust can compute.
    super::fold::register(conn).map_err(fail)?;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Read again inside the transaction: another process may have
        // migrated the file since `check`.
        check_against(&tx, path, migrations)?;
        let version = version(&tx).map_err(fail)?;
        let Some(step) = migrations.get(version as usize) else {
            // One line for the start: a new database, or an old one brought
            // up to date.
            match from {
                Some(0) => log::info!("event=store_created path={path:?} version={version}"),
                Some(from) => {
                    log::info!("event=store_migrated path={path:?} from={from} version={version}")
                }
                None => {}
            }
            return Ok(());
        };
        from.get_or_insert(version);
        tx.execute_batch(step).map_err(fail)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_runs_on_a_new_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test.db", MIGRATIONS).unwrap();
        let known = MIGRATIONS.len() as i64;
        assert_eq!(version(&conn).unwrap(), known);
        conn.execute(
            "INSERT INTO server_keys (name, value) VALUES ('file_urls', x'00')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES ('lobby', 'lobby', '00', 7)",
            [],
        )
        .unwrap();

        // A later version: only the new step runs, and what was there stays.
        let mut next: Vec<&str> = MIGRATIONS.to_vec();
        next.push("ALTER TABLE rooms ADD COLUMN topic TEXT;");
        migrate(&mut conn, "test.db", &next).unwrap();
        assert_eq!(version(&conn).unwrap(), known + 1);
        let (last_id, topic): (i64, Option<String>) = conn
            .query_row("SELECT last_id, topic FROM rooms", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((last_id, topic), (7, None));

        // And this build refuses what the later one wrote.
        let e = migrate(&mut conn, "test.db", MIGRATIONS).unwrap_err();
        assert!(
            matches!(e, StoreError::TooNew { version, known: k, .. } if version == known + 1 && k == known),
            "{e}"
        );
    }

    #[test]
    fn a_failed_step_leaves_the_version_before_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken: &[&str] = &[V1, "CREATE TABLE rooms (x);"];
        assert!(migrate(&mut conn, "test.db", broken).is_err());
        assert_eq!(version(&conn).unwrap(), 1);
    }
}
