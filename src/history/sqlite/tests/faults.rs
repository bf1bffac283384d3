//! What cannot be written or opened: a full disk loses only what did not
//! fit, and a database the store must not touch is refused by name.

use super::*;

#[test]
fn a_full_disk_loses_only_the_records_that_did_not_fit() {
    let db = TempDb::new("full");
    let store = open(&options(&db.path())).unwrap();
    // A database that may not grow past 64 pages (256 KiB) stands for a
    // full disk: SQLite answers both with SQLITE_FULL.
    let pages: i64 = store
        .conn
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages.max(64))
        .unwrap();
    let stats = store.stats();
    let reader = store.reader();
    let running = Running::start(store);
    assert!(running.append(file("lobby", 1, "small", 1000), Some(bytes(1000, 1))));
    assert!(!running.append(file("lobby", 2, "huge", 1 << 20), Some(bytes(1 << 20, 2))));
    assert!(stats.is_failing(), "a lost write marks the store failing");
    // The record that failed used no id.
    assert!(running.append(text("lobby", 2, "still fits"), None));
    assert!(!stats.is_failing(), "a commit clears it");
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 1);
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 2);
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 1000);
    let (_, last_id, recent) = running.open("lobby", 10);
    assert_eq!(last_id, 2);
    let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(reader.file("lobby", 1).unwrap().unwrap().bytes.len(), 1000);
    running.stop();

    // Nothing that was stored was harmed.
    let running = Running::start(open(&options(&db.path())).unwrap());
    assert_eq!(running.open("lobby", 10).2.len(), 2);
    running.stop();
}

#[test]
fn after_a_full_disk_in_a_group_the_replies_match_what_is_stored() {
    let db = TempDb::new("fullgroup");
    let store = open(&options(&db.path())).unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", 64)
        .unwrap();
    let stats = store.stats();
    let running = Running::start(store);
    running.open("lobby", 0);
    let with_cid = |record: Record, cid: &str| Record {
        cid: Some(cid.to_owned()),
        ..record
    };
    let group = [
        (with_cid(text("lobby", 1, "before"), "x"), None),
        (
            with_cid(file("lobby", 2, "huge", 1 << 20), "y"),
            Some(bytes(1 << 20, 2)),
        ),
        (with_cid(text("lobby", 3, "after"), "y"), None),
        (with_cid(text("lobby", 4, "before again"), "x"), None),
        (text("lobby", 5, "last"), None),
    ];
    let held = running.hold();
    for (record, data) in group {
        running.send_append(record, data);
    }
    held.release();
    let answers: Vec<(u64, Outcome)> = (0..5).map(|_| running.appended()).collect();
    let outcomes: Vec<Outcome> = answers.iter().map(|(_, o)| *o).collect();
    use Outcome::{Failed, Resent, Stored};
    // Writing the group at once fails; written again record by record,
    // only the file that does not fit fails, and uses no id. Its `cid`
    // was not stored, so the text sent under it next is.
    assert_eq!(outcomes, [Stored, Failed, Stored, Resent, Stored]);
    let ids: Vec<u64> = answers
        .iter()
        .filter(|(_, o)| *o != Failed)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ids, [1, 2, 1, 3]);
    let kept: Vec<u64> = running
        .fetch("lobby", 0, 10, 10)
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [1, 2, 3]);
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 1);
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 3);
    running.stop();
}

/// The error of opening `path`, with a check that its message names it.
fn open_error(path: &str) -> StoreError {
    let e = match open(&options(path)) {
        Ok(_) => panic!("{path} opened"),
        Err(e) => e,
    };
    assert!(e.to_string().contains(path), "{e}");
    e
}

#[test]
fn a_missing_or_impossible_directory_is_a_clear_error() {
    let missing = std::env::temp_dir().join(format!("wschat-no-such-dir-{}", std::process::id()));
    let path = missing.join("history.db");
    let e = open_error(path.to_str().unwrap());
    assert!(matches!(e, StoreError::CannotOpen { .. }), "{e:?}");

    // A "directory" that is a file.
    let db = TempDb::new("notdir");
    std::fs::write(&db.0, b"x").unwrap();
    let path = db.0.join("history.db");
    let e = open_error(path.to_str().unwrap());
    assert!(matches!(e, StoreError::CannotOpen { .. }), "{e:?}");
}

#[test]
fn garbage_is_not_a_database() {
    let db = TempDb::new("garbage");
    std::fs::write(
        &db.0,
        b"this is a text file, not a database at all\n".repeat(50),
    )
    .unwrap();
    let e = open_error(&db.path());
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    // And it was left as it was.
    assert!(
        std::fs::read(&db.0)
            .unwrap()
            .starts_with(b"this is a text file")
    );
}

#[test]
fn a_newer_schema_is_refused_by_name_and_version() {
    let db = TempDb::new("newer");
    let conn = Connection::open(&db.0).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = open_error(&db.path());
    assert!(
        matches!(
            e,
            StoreError::TooNew {
                version: 99,
                known,
                ..
            } if known as usize == super::schema::MIGRATIONS.len()
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("99"), "{e}");
}

#[test]
fn another_programs_database_is_left_alone() {
    let db = TempDb::new("foreign");
    let conn = Connection::open(&db.0).unwrap();
    conn.execute_batch("CREATE TABLE invoices (n INTEGER);")
        .unwrap();
    drop(conn);
    let e = open_error(&db.path());
    assert!(matches!(e, StoreError::Foreign { .. }), "{e:?}");
}
