//! The bounds: `retain_messages` per room, `retain_bytes` on everything.

use super::*;

#[test]
fn retention_deletes_oldest_messages_but_keeps_the_last_id() {
    let db = TempDb::new("retain");
    let mut opts = options(&db.path());
    opts.retain_messages = 5;
    let running = Running::start(open(&opts).unwrap());
    for id in 1..=12 {
        assert!(running.append(text("lobby", id, &id.to_string()), None));
    }
    let (epoch, last_id, recent) = running.open("lobby", 100);
    assert_eq!(last_id, 12);
    let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
    assert_eq!(ids, [8, 9, 10, 11, 12]);
    running.stop();

    // Lower bounds apply at the next start, before anything is written.
    opts.retain_messages = 2;
    let running = Running::start(open(&opts).unwrap());
    let (_, last_id, recent) = running.open("lobby", 100);
    let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
    assert_eq!((last_id, ids), (12, vec![11, 12]));
    running.stop();

    // With nothing kept at all, the room still remembers where it was.
    opts.retain_messages = 0;
    let running = Running::start(open(&opts).unwrap());
    assert!(running.append(text("lobby", 13, "gone at once"), None));
    let (again, last_id, recent) = running.open("lobby", 100);
    assert_eq!((again, last_id, recent.len()), (epoch, 13, 0));
    running.stop();
}

#[test]
fn retention_deletes_in_chunks_once_past_its_slack() {
    let mut opts = options(":memory:");
    // A slack of 64 / 32 = 2: a room holds 64 to 66 messages.
    opts.retain_messages = 64;
    let running = Running::start(open(&opts).unwrap());
    let mut held = Vec::new();
    for id in 1..=70 {
        assert!(running.append(text("lobby", id, &id.to_string()), None));
        let (_, last_id, recent) = running.open("lobby", 100);
        assert_eq!(last_id, id);
        // Always the newest, one after another.
        let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
        assert_eq!(ids, (id + 1 - ids.len() as u64..=id).collect::<Vec<_>>());
        held.push(ids.len());
    }
    assert_eq!(held[..64], (1..=64).collect::<Vec<_>>());
    assert_eq!(held[63..], [64, 65, 66, 64, 65, 66, 64]);
    running.stop();
}

/// What a file record of [`file`] named `fN` in `lobby` costs beyond its
/// bytes: "ada", the name, the media type, the room and 64 (see
/// `retention`).
const FILE_RECORD: u64 = 3 + 2 + 24 + 5 + 64;

/// What the message "between" of room `other` takes in the word index:
/// 48, the room twice and half the text (see `retention`).
const BETWEEN_WORDS: u64 = 48 + 2 * 5 + 7 / 2;

#[test]
fn retention_takes_from_the_room_holding_the_most() {
    let mut opts = options(":memory:");
    // 880, and what "between" takes in the word index.
    opts.retain_bytes = 880 + BETWEEN_WORDS;
    let store = open(&opts).unwrap();
    let reader = store.reader();
    let stats = store.stats();
    let running = Running::start(store);
    for id in 1..=4 {
        let name = format!("f{id}");
        assert!(running.append(file("lobby", id, &name, 100), Some(bytes(100, id))));
        if id == 2 {
            assert!(running.append(text("other", 1, "between"), None));
        }
    }
    // lobby holds the most: its oldest files' bytes went, their
    // announcements stayed, and other's message is untouched.
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 100);
    let stored = stats.stored_bytes.load(Ordering::Relaxed);
    // And each room's row: its key and name, and 128.
    let rows = (5 + 5 + 128) + (5 + 5 + 128);
    assert_eq!(
        stored,
        4 * FILE_RECORD + 100 + (7 + 3 + 5 + 64) + BETWEEN_WORDS + rows
    );
    let (_, _, recent) = running.open("lobby", 10);
    let available: Vec<(u64, bool)> = recent
        .iter()
        .map(|r| match r.body {
            Body::File { available, .. } => (r.id, available),
            _ => panic!("only files here"),
        })
        .collect();
    assert_eq!(available, [(1, false), (2, false), (3, false), (4, true)]);
    assert_eq!(reader.file("lobby", 1).unwrap(), None);
    let kept = reader.file("lobby", 4).unwrap().unwrap();
    assert_eq!((kept.name.as_str(), kept.size), ("f4", 100));
    assert_eq!(kept.bytes, bytes(100, 4).to_vec());

    // Then its oldest records, and still never other's.
    for id in 5..=14 {
        assert!(running.append(text("lobby", id, &"x".repeat(100)), None));
        assert!(stats.stored_bytes.load(Ordering::Relaxed) <= 880 + BETWEEN_WORDS);
    }
    let (_, _, recent) = running.open("lobby", 100);
    let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
    assert_eq!(ids.last(), Some(&14));
    assert!(ids[0] > 4, "{ids:?}");
    let (_, _, recent) = running.open("other", 10);
    assert_eq!(recent.len(), 1);
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 0);
    running.stop();
}

#[test]
fn a_lower_byte_bound_applies_at_the_next_start() {
    let db = TempDb::new("rebound");
    let mut opts = options(&db.path());
    let running = Running::start(open(&opts).unwrap());
    for id in 1..=3 {
        assert!(running.append(file("lobby", id, "f1", 100), Some(bytes(100, id))));
    }
    running.stop();

    // 3 * (100 + FILE_RECORD) and the row, 732, are stored: under 560, two
    // files' bytes go.
    opts.retain_bytes = 560;
    let store = open(&opts).unwrap();
    let stats = store.stats();
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 300);
    let reader = store.reader();
    let running = Running::start(store);
    running.open("lobby", 0);
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 100);
    assert_eq!(
        stats.stored_bytes.load(Ordering::Relaxed),
        3 * FILE_RECORD + 100 + (5 + 5 + 128)
    );
    assert_eq!(reader.file("lobby", 2).unwrap(), None);
    assert!(reader.file("lobby", 3).unwrap().is_some());
    running.stop();
}

#[test]
fn a_word_index_not_matching_the_messages_is_made_again_and_retention_goes_on() {
    let db = TempDb::new("reindex");
    let mut opts = options(&db.path());
    opts.retain_messages = 3;
    let running = Running::start(open(&opts).unwrap());
    for id in 1..=3 {
        assert!(running.append(text("lobby", id, &format!("kept {id}")), None));
    }
    running.stop();
    // As a database edited by hand might be: the index forgot every word,
    // so taking more messages out of it than it holds fails.
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute_batch("INSERT INTO search_text (search_text) VALUES ('delete-all')")
        .unwrap();
    // A lower bound applies at the start, the next appends' after.
    opts.retain_messages = 2;
    let running = Running::start(open(&opts).unwrap());
    let (_, _, recent) = running.open("lobby", 100);
    assert_eq!(recent.len(), 2, "retention at the start");
    for id in 4..=6 {
        assert!(running.append(text("lobby", id, &format!("kept {id}")), None));
    }
    let (_, last_id, recent) = running.open("lobby", 100);
    let ids: Vec<u64> = recent.iter().map(|r| r.id).collect();
    assert_eq!((last_id, ids), (6, vec![5, 6]), "retention went on");
    running.stop();
    let indexed: i64 = rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM search_text WHERE search_text MATCH 'kept'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 2, "the index holds the messages kept");
}
