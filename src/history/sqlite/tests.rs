use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tungstenite::Bytes;

use super::*;

/// Long enough for a slow machine; a test that waits this long has failed.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A database file under the temporary directory, removed (with its WAL)
/// when dropped. Other modules' tests use it too.
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    pub(crate) fn new(tag: &str) -> TempDb {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("wschat-store-{tag}-{}-{n}.db", std::process::id());
        let db = TempDb(std::env::temp_dir().join(name));
        db.remove();
        db
    }

    pub(crate) fn path(&self) -> String {
        self.0.to_str().unwrap().to_owned()
    }

    pub(crate) fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

fn options(path: &str) -> Options {
    Options {
        path: path.to_owned(),
        retain_messages: 1000,
        retain_bytes: 1 << 30,
        fsync: false,
    }
}

/// A store thread, with its replies arriving on a channel.
pub(crate) struct Running {
    handle: StoreHandle,
    replies: Receiver<Reply>,
    thread: JoinHandle<()>,
}

impl Running {
    pub(crate) fn start(store: Store) -> Running {
        let (tx, replies) = crossbeam_channel::unbounded();
        let reply = Box::new(move |reply| {
            let _ = tx.send(reply);
        });
        let (handle, thread) = store.spawn(reply).unwrap();
        Running {
            handle,
            replies,
            thread,
        }
    }

    fn reply(&self) -> Reply {
        self.replies.recv_timeout(WAIT).expect("a reply")
    }

    /// The room's epoch, last id and newest `recent` records.
    fn open(&self, room: &str, recent: usize) -> (String, u64, Vec<Record>) {
        assert!(self.handle.send(Request::Open {
            room: room.to_owned(),
            recent,
        }));
        match self.reply() {
            Reply::Opened {
                room: r,
                epoch,
                last_id,
                recent,
                loaded,
                ..
            } => {
                assert_eq!(r, room);
                assert!(loaded);
                (epoch, last_id, recent)
            }
            other => panic!("expected Opened, got {other:?}"),
        }
    }

    /// Appends a record and waits until it is committed; whether it was
    /// stored. The store gives ids, so the record's id is reached by
    /// storing filler messages before it when the room's last is lower.
    pub(crate) fn append(&self, record: Record, data: Option<Bytes>) -> bool {
        let (room, id) = (record.room.clone(), record.id);
        let (_, last_id, _) = self.open(&room, 0);
        for filler in last_id + 1..id {
            self.send_append(text(&room, filler, "filler"), None);
            assert_eq!(self.appended(), (filler, Outcome::Stored));
        }
        assert!(self.handle.send(Request::Append {
            record,
            data,
            origin: Default::default(),
            relay: None,
        }));
        match self.reply() {
            Reply::Appended {
                record, outcome, ..
            } => {
                assert_eq!(record.room, room);
                if outcome == Outcome::Stored {
                    assert_eq!(record.id, id, "the id the store gave");
                }
                outcome == Outcome::Stored
            }
            other => panic!("expected Appended, got {other:?}"),
        }
    }

    /// Sends an append without waiting.
    fn send_append(&self, record: Record, data: Option<Bytes>) {
        assert!(self.handle.send(Request::Append {
            record,
            data,
            origin: Default::default(),
            relay: None,
        }));
    }

    /// The next append's answer: its id and outcome.
    fn appended(&self) -> (u64, Outcome) {
        match self.reply() {
            Reply::Appended {
                record, outcome, ..
            } => (record.id, outcome),
            other => panic!("expected Appended, got {other:?}"),
        }
    }

    fn fetch(&self, room: &str, after: u64, upto: u64, limit: usize) -> Vec<Record> {
        let token = FetchFor::Resume(after ^ 0x5eed);
        self.handle.send(Request::Fetch {
            room: room.to_owned(),
            after,
            upto,
            limit,
            token,
            asker: None,
        });
        match self.reply() {
            Reply::Fetched {
                token: t, records, ..
            } => {
                assert_eq!(t, token);
                records
            }
            other => panic!("expected Fetched, got {other:?}"),
        }
    }

    pub(crate) fn stop(self) {
        self.handle.send(Request::Shutdown);
        self.thread.join().unwrap();
        assert!(self.replies.try_recv().is_err(), "no reply left unread");
    }
}

fn text(room: &str, id: u64, text: &str) -> Record {
    Record {
        room: room.to_owned(),
        id,
        from: "ada".to_owned(),
        ts: 1_700_000_000_000 + id,
        cid: None,
        body: Body::Text(text.to_owned()),
    }
}

fn file(room: &str, id: u64, name: &str, size: u64) -> Record {
    Record {
        body: Body::File {
            name: name.to_owned(),
            size,
            mime: "application/octet-stream".to_owned(),
            available: true,
        },
        ..text(room, id, "")
    }
}

/// `len` bytes that differ from one offset to the next.
fn bytes(len: usize, seed: u64) -> Bytes {
    crate::testing::bytes(len, seed).into()
}

#[test]
fn ids_and_epoch_survive_reopening_a_file() {
    let db = TempDb::new("reopen");
    let running = Running::start(open(&options(&db.path())).unwrap());
    let (epoch, last_id, recent) = running.open("lobby", 10);
    assert_eq!((epoch.len(), last_id, recent.len()), (16, 0, 0));
    assert!(epoch.chars().all(|c| c.is_ascii_hexdigit()));
    for id in 1..=3 {
        assert!(running.append(text("lobby", id, &format!("hello {id}")), None));
    }
    running.stop();

    let running = Running::start(open(&options(&db.path())).unwrap());
    let (again, last_id, recent) = running.open("lobby", 10);
    assert_eq!((again.as_str(), last_id), (epoch.as_str(), 3));
    let expected: Vec<Record> = (1..=3)
        .map(|id| text("lobby", id, &format!("hello {id}")))
        .collect();
    assert_eq!(recent, expected);
    // Another room has its own epoch, the same at every open while it has
    // no history, and not written down until it has.
    let (other, last_id, _) = running.open("kitchen", 10);
    assert_ne!(other, epoch);
    assert_eq!(last_id, 0);
    assert_eq!(running.open("kitchen", 10).0, other);
    running.stop();

    let running = Running::start(open(&options(&db.path())).unwrap());
    assert_ne!(running.open("kitchen", 10).0, other);
    assert_eq!(running.open("lobby", 0).0, epoch);
    running.stop();
}

#[test]
fn memory_lasts_while_the_process_does_and_begins_anew_after() {
    let store = open(&options(":memory:")).unwrap();
    let reader = store.reader();
    let running = Running::start(store);
    let (epoch, _, _) = running.open("lobby", 10);
    assert!(running.append(file("lobby", 1, "a.bin", 3), Some(bytes(3, 1))));
    running.stop();
    // The store's thread is gone; what it wrote is still there.
    let kept = reader.file("lobby", 1).unwrap().unwrap();
    assert_eq!(kept.bytes, bytes(3, 1).to_vec());
    assert!(reader.ping());

    // A new process's `:memory:` store starts from nothing.
    let running = Running::start(open(&options(":memory:")).unwrap());
    let (fresh, last_id, recent) = running.open("lobby", 10);
    assert_ne!(fresh, epoch);
    assert_eq!((last_id, recent.len()), (0, 0));
    running.stop();
}

#[test]
fn an_append_to_a_room_never_opened_creates_it() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    running.send_append(text("attic", 1, "first"), None);
    assert_eq!(running.appended(), (1, Outcome::Stored));
    let (epoch, last_id, recent) = running.open("attic", 10);
    assert_eq!((last_id, recent.len()), (1, 1));
    assert_eq!(running.open("attic", 0).0, epoch);
    running.stop();
}

#[test]
fn group_commit_keeps_order() {
    const N: u64 = 10_000;
    for fsync in [false, true] {
        let db = TempDb::new("group");
        let mut opts = options(&db.path());
        opts.fsync = fsync;
        opts.retain_messages = N as usize;
        let store = open(&opts).unwrap();
        let stats = store.stats();
        let running = Running::start(store);
        running.open("busy", 0);
        let started = Instant::now();
        for id in 1..=N {
            running.send_append(
                Record {
                    cid: Some(format!("c{id}")),
                    ..text(
                        "busy",
                        id,
                        "a message of about the usual length, forty-odd bytes",
                    )
                },
                None,
            );
        }
        for id in 1..=N {
            assert_eq!(running.appended(), (id, Outcome::Stored));
        }
        let took = started.elapsed();
        eprintln!(
            "store group commit (synchronous={}): {N} appends in {:.1} ms, {:.0} records/s",
            if fsync { "FULL" } else { "NORMAL" },
            took.as_secs_f64() * 1e3,
            N as f64 / took.as_secs_f64()
        );
        assert_eq!(stats.records_written.load(Ordering::Relaxed), N);
        assert_eq!(stats.write_errors.load(Ordering::Relaxed), 0);
        assert_eq!(stats.queue_len.load(Ordering::Relaxed), 0);
        let (_, last_id, recent) = running.open("busy", 2);
        assert_eq!(last_id, N);
        assert_eq!(recent[1].cid.as_deref(), Some("c10000"));

        // One at a time, each waited for: one commit per record.
        const ALONE: u64 = 200;
        let started = Instant::now();
        for id in N + 1..=N + ALONE {
            assert!(running.append(text("busy", id, "alone"), None));
        }
        let took = started.elapsed();
        eprintln!(
            "store single commits (synchronous={}): {ALONE} in {:.1} ms, {:.0} commits/s",
            if fsync { "FULL" } else { "NORMAL" },
            took.as_secs_f64() * 1e3,
            ALONE as f64 / took.as_secs_f64()
        );
        running.stop();
    }
}

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

/// What a file record of [`file`] named `fN` in `lobby` costs beyond its
/// bytes: "ada", the name, the media type, the room and 64 (see
/// `retention`).
const FILE_RECORD: u64 = 3 + 2 + 24 + 5 + 64;

#[test]
fn retention_takes_from_the_room_holding_the_most() {
    let mut opts = options(":memory:");
    opts.retain_bytes = 880;
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
    assert_eq!(stored, 4 * FILE_RECORD + 100 + (7 + 3 + 5 + 64) + rows);
    let (_, _, recent) = running.open("lobby", 10);
    let available: Vec<(u64, bool)> = recent
        .iter()
        .map(|r| match r.body {
            Body::File { available, .. } => (r.id, available),
            Body::Text(_) => panic!("only files here"),
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
        assert!(stats.stored_bytes.load(Ordering::Relaxed) <= 880);
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
fn a_five_mib_file_round_trips() {
    let db = TempDb::new("bigfile");
    let store = open(&options(&db.path())).unwrap();
    let reader = store.reader();
    let running = Running::start(store);
    let data = bytes(5 << 20, 42);
    let mut record = file("lobby", 1, "photo.jpg", data.len() as u64);
    if let Body::File { mime, .. } = &mut record.body {
        *mime = "image/jpeg".to_owned();
    }
    assert!(running.append(record.clone(), Some(data.clone())));

    let got = reader.file("lobby", 1).unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.mime.as_str(), got.size, got.ts),
        ("photo.jpg", "image/jpeg", 5 << 20, record.ts)
    );
    assert!(got.bytes == data, "bytes differ");

    let part = reader.read_range("lobby", 1, 1000, 4096).unwrap().unwrap();
    assert_eq!((part.size, &part.bytes[..]), (5 << 20, &data[1000..5096]));
    let tail = reader.read_range("lobby", 1, (5 << 20) - 10, 100).unwrap();
    assert_eq!(tail.unwrap().bytes, &data[(5 << 20) - 10..]);
    let past = reader.read_range("lobby", 1, 6 << 20, 100).unwrap();
    assert_eq!(past.unwrap().bytes.len(), 0);
    assert_eq!(reader.file("lobby", 2).unwrap(), None);
    assert_eq!(reader.file("nowhere", 1).unwrap(), None);
    running.stop();
}

#[test]
fn cid_is_stored_and_returned() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    let sent = Record {
        cid: Some("k7Qe-1".to_owned()),
        ..text("lobby", 1, "once")
    };
    assert!(running.append(sent.clone(), None));
    assert!(running.append(text("lobby", 2, "no cid"), None));
    let (_, _, recent) = running.open("lobby", 10);
    assert_eq!(recent[0], sent);
    assert_eq!(recent[1].cid, None);
    assert_eq!(running.fetch("lobby", 0, 1, 10), [sent]);
    running.stop();
}

#[test]
fn fetch_gives_a_window_oldest_first() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    for id in 1..=10 {
        assert!(running.append(text("lobby", id, &id.to_string()), None));
    }
    let ids = |records: Vec<Record>| records.iter().map(|r| r.id).collect::<Vec<u64>>();
    assert_eq!(ids(running.fetch("lobby", 3, 7, 100)), [4, 5, 6, 7]);
    assert_eq!(ids(running.fetch("lobby", 3, 7, 2)), [4, 5]);
    assert_eq!(ids(running.fetch("lobby", 8, u64::MAX, 100)), [9, 10]);
    assert!(running.fetch("elsewhere", 0, u64::MAX, 100).is_empty());
    running.stop();
}

#[test]
fn a_resent_cid_is_answered_with_the_stored_record() {
    let store = open(&options(":memory:")).unwrap();
    let stats = store.stats();
    let running = Running::start(store);
    running.open("lobby", 0);
    let with_cid = |id, body: &str, cid: &str| Record {
        cid: Some(cid.to_owned()),
        ..text("lobby", id, body)
    };
    // In one group: the resend of `a` is recognised, and uses no id.
    for record in [
        with_cid(1, "one", "a"),
        with_cid(0, "one again", "a"),
        with_cid(2, "two", "b"),
    ] {
        running.send_append(record, None);
    }
    assert_eq!(running.appended(), (1, Outcome::Stored));
    assert_eq!(running.appended(), (1, Outcome::Resent));
    assert_eq!(running.appended(), (2, Outcome::Stored));
    // Much later, in another group: still recognised, from the database.
    for id in 3..=200 {
        assert!(running.append(text("lobby", id, "filler"), None));
    }
    running.send_append(with_cid(0, "two again", "b"), None);
    assert_eq!(running.appended(), (2, Outcome::Resent));
    // The same cid from someone else is theirs.
    running.send_append(
        Record {
            from: "bob".into(),
            ..with_cid(0, "bob's", "b")
        },
        None,
    );
    assert_eq!(running.appended(), (201, Outcome::Stored));
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 0);
    running.stop();
}

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
    let group = [
        (text("lobby", 1, "before"), None),
        (file("lobby", 2, "huge", 1 << 20), Some(bytes(1 << 20, 2))),
        (text("lobby", 3, "after"), None),
    ];
    for (record, data) in group {
        running.send_append(record, data);
    }
    let stored: Vec<u64> = (0..3)
        .filter_map(|_| match running.appended() {
            (id, Outcome::Stored) => Some(id),
            _ => None,
        })
        .collect();
    // The transaction SQLite rolled back is written again without the
    // record that did not fit, which used no id.
    assert_eq!(stored, [1, 2]);
    let kept: Vec<u64> = running
        .fetch("lobby", 0, 10, 10)
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, stored);
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 1);
    running.stop();
}

#[test]
fn readers_read_while_the_writer_writes() {
    for path in [":memory:".to_owned(), TempDb::new("readers").path()] {
        let store = open(&options(&path)).unwrap();
        let reader = store.reader();
        let running = Running::start(store);
        assert!(running.append(file("lobby", 1, "a", 4096), Some(bytes(4096, 1))));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        let got = reader.file("lobby", 1).unwrap().unwrap();
                        assert_eq!(got.bytes.len(), 4096);
                    }
                })
            })
            .collect();
        for id in 2..=300 {
            running.send_append(file("lobby", id, "b", 4096), Some(bytes(4096, id)));
        }
        for id in 2..=300 {
            assert_eq!(running.appended(), (id, Outcome::Stored));
        }
        for reader in readers {
            reader.join().unwrap();
        }
        running.stop();
        if path != ":memory:" {
            TempDb(PathBuf::from(path)).remove();
        }
    }
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

#[test]
fn a_fetch_sees_the_appends_sent_before_it_and_is_read_beside_the_writer() {
    let db = TempDb::new("fetch-order");
    for path in [db.path(), ":memory:".to_owned()] {
        let store = open(&options(&path)).unwrap();
        let (tx, replies) = crossbeam_channel::unbounded();
        let reply = Box::new(move |reply| {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send((name, reply));
        });
        let (handle, thread) = store.spawn(reply).unwrap();
        // Sent without waiting: the fetch must still see every one.
        for id in 1..=500 {
            handle.send(Request::Append {
                record: text("lobby", id, &id.to_string()),
                data: None,
                origin: Default::default(),
                relay: None,
            });
        }
        handle.send(Request::Fetch {
            room: "lobby".to_owned(),
            after: 0,
            upto: 500,
            limit: 1000,
            token: FetchFor::Resume(7),
            asker: None,
        });
        let mut committed = 0;
        let (name, records) = loop {
            match replies.recv_timeout(WAIT).expect("a reply") {
                (_, Reply::Appended { outcome, .. }) => {
                    assert_eq!(outcome, Outcome::Stored);
                    committed += 1;
                }
                (name, Reply::Fetched { token, records, .. }) => {
                    assert_eq!(token, FetchFor::Resume(7));
                    break (name, records);
                }
                (_, other) => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(
            committed, 500,
            "{path}: answered after the commits before it"
        );
        assert_eq!(name.as_deref(), Some("store-reads"), "{path}");
        let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
        assert_eq!(ids, (1..=500).collect::<Vec<_>>(), "{path}");
        handle.send(Request::Shutdown);
        thread.join().unwrap();
    }
}

#[test]
fn a_fetch_answers_with_the_newest_records_that_fit_in_its_bytes() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    let long = "x".repeat(8 << 10);
    for id in 1..=800 {
        assert!(running.append(text("lobby", id, &long), None));
    }
    let fetched = running.fetch("lobby", 0, 800, 1000);
    // Each weighs its room, sender and text: 5 + 3 + 8,192 bytes.
    let fit = (5 << 20) / (5 + 3 + (8 << 10));
    let ids: Vec<u64> = fetched.iter().map(|r| r.id).collect();
    assert_eq!(ids, (800 - fit as u64 + 1..=800).collect::<Vec<_>>());
    running.stop();
}
