//! The store's tests, by subject, and what they share: a temporary
//! database, and a store thread whose replies arrive on a channel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tungstenite::Bytes;

use super::*;

mod bounds;
mod faults;
mod fetches;
mod groups;
mod writes;

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

/// The room whose `Open` holds a store thread started by
/// [`Running::hold`].
const HOLD: &str = "hold";

/// A held store thread: see [`Running::hold`].
struct Held<'a>(&'a Running);

impl Held<'_> {
    /// Lets the store thread go on, and reads the answer it was held in.
    fn release(self) {
        self.0.release.send(()).unwrap();
        match self.0.reply() {
            Reply::Opened { room, .. } => assert_eq!(room, HOLD),
            other => panic!("expected the held Opened, got {other:?}"),
        }
    }
}

/// A store thread, with its replies arriving on a channel.
pub(crate) struct Running {
    handle: StoreHandle,
    replies: Receiver<Reply>,
    thread: JoinHandle<()>,
    /// Told when the store thread is held, and what lets it go on.
    held: Receiver<()>,
    release: crossbeam_channel::Sender<()>,
}

impl Running {
    pub(crate) fn start(store: Store) -> Running {
        let (tx, replies) = crossbeam_channel::unbounded();
        let (holding, held) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        let reply = Box::new(move |reply| {
            if let Reply::Opened { room, .. } = &reply
                && room == HOLD
            {
                let _ = holding.send(());
                released.recv_timeout(WAIT).expect("released");
            }
            let _ = tx.send(reply);
        });
        let (handle, thread) = store.spawn(reply).unwrap();
        Running {
            handle,
            replies,
            thread,
            held,
            release,
        }
    }

    /// Holds the store thread: it answers an `Open` of a room of its own
    /// and stays in that answer until [`Held::release`], so that the
    /// appends sent meanwhile are taken, and written, as one group.
    fn hold(&self) -> Held<'_> {
        assert!(self.handle.send(Request::Open {
            room: HOLD.to_owned(),
            recent: 0,
        }));
        self.held.recv_timeout(WAIT).expect("the store thread held");
        Held(self)
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
