//! The reads thread: resume fetches, answered beside the store thread.
//!
//! A resume reads up to 1,000 records; a storm of them on the store thread
//! made every acknowledgement and room load wait behind the reads. Here they
//! run on a thread of their own (`store-reads`), each on a read-only
//! connection of the [`Reader`]'s pool, so the writer's latency does not
//! depend on them. A file database is in WAL mode: a read sees the last
//! commit and neither waits for the writer nor holds it up. A memory
//! database (the `memdb` VFS, reached by the same URI, so the same data)
//! has ordinary locks instead: a read waits while a commit is written, and
//! a commit waits for the reads under way, one at a time here, to end.
//!
//! The store thread hands each `Fetch` on once the appends sent before it
//! are committed, so a fetch sees them, as when it read them itself; and
//! the answer comes back through the same callback as the store thread's.
//! One thread: the dispatcher bounds how many fetches are asked at once,
//! and on a small machine a second reader would only take CPU from the
//! writer and the dispatcher.

use crate::logs as log;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::params;

use super::complaints::Complaints;
use super::rows::{RECORD, record};
use super::{Body, Reader, Record, Reply, Request, Stats};

/// Most bytes of records (texts, names, cids) one fetch answers with, the
/// newest kept: 1,000 messages of a v1 client's longest text (4 KiB by
/// default) with their names and cids fit. With the dispatcher's bound on
/// fetches under way, this bounds what answers in flight hold. A fetch cut
/// here is a resume the dispatcher reports as `trimmed`, with a gap.
pub(super) const FETCH_BYTES: usize = 5 << 20;

/// Hands fetches to the reads thread; the thread ends, having answered
/// every fetch handed to it, once this is dropped.
pub(super) struct Reads {
    inbox: Sender<Request>,
}

impl Reads {
    /// Starts the reads thread. Its answers go to `reply`.
    pub(super) fn spawn(
        reader: Reader,
        stats: Arc<Stats>,
        path: String,
        reply: Arc<dyn Fn(Reply) + Send + Sync>,
    ) -> io::Result<(Reads, JoinHandle<()>)> {
        let (inbox, requests) = crossbeam_channel::unbounded();
        let thread = ReadsThread {
            reader,
            stats,
            path,
            reply,
            complaints: Complaints::default(),
        };
        let handle = thread::Builder::new()
            .name("store-reads".into())
            .spawn(move || thread.run(&requests))?;
        Ok((Reads { inbox }, handle))
    }

    /// Queues a `Fetch` (anything else is ignored); never blocks.
    pub(super) fn ask(&self, request: Request) {
        if matches!(request, Request::Fetch { .. }) {
            // The thread ends only once this sender is dropped.
            let _ = self.inbox.send(request);
        }
    }
}

struct ReadsThread {
    reader: Reader,
    stats: Arc<Stats>,
    /// For error lines: the path as given.
    path: String,
    reply: Arc<dyn Fn(Reply) + Send + Sync>,
    complaints: Complaints,
}

impl ReadsThread {
    fn run(mut self, requests: &Receiver<Request>) {
        for request in requests {
            let Request::Fetch {
                room,
                after,
                upto,
                limit,
                token,
            } = request
            else {
                continue;
            };
            let records = self.fetch(&room, after, upto, limit);
            (self.reply)(Reply::Fetched {
                room,
                token,
                records,
                frames: Vec::new(),
            });
        }
    }

    /// Records of `room` with `after < id <= upto`, oldest first, at most
    /// `limit`, then within [`FETCH_BYTES`] (the newest kept). Empty when
    /// the database could not be read, which is logged and counted.
    fn fetch(&mut self, room: &str, after: u64, upto: u64, limit: usize) -> Vec<Record> {
        let max = i64::MAX as u64;
        // Rooms are stored by their key (see `fold`).
        let key = super::fold::room_key(room);
        let read = self.reader.with(|conn| {
            conn.prepare_cached(&format!(
                "{RECORD} WHERE r.room = ?1 AND r.id > ?2 AND r.id <= ?3 ORDER BY r.id LIMIT ?4"
            ))?
            .query_map(
                params![
                    key,
                    after.min(max),
                    upto.min(max),
                    limit.min(i64::MAX as usize)
                ],
                record,
            )?
            .collect::<rusqlite::Result<Within>>()
        });
        match read {
            Ok(records) => {
                // Records carry the room's key; they are given the asker's
                // spelling.
                let mut records: Vec<Record> = records.kept.into();
                for record in &mut records {
                    room.clone_into(&mut record.room);
                }
                records
            }
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(left_out) = self.complaints.speak() {
                    log::error!(
                        "event=store_error op=fetch path={:?} room={room:?} id={after} lost=0 \
                         error={:?} left_out={left_out}",
                        self.path,
                        e.to_string()
                    );
                }
                Vec::new()
            }
        }
    }
}

/// Records collected oldest first, keeping the newest whose weights add
/// up to at most [`FETCH_BYTES`]: the older ones are dropped as the newer
/// come, so a read never holds much more than that, however long the
/// texts.
struct Within {
    kept: VecDeque<Record>,
    total: usize,
    bytes: usize,
}

impl Within {
    fn new(bytes: usize) -> Within {
        Within {
            kept: VecDeque::new(),
            total: 0,
            bytes,
        }
    }

    fn push(&mut self, record: Record) {
        self.total += weight(&record);
        self.kept.push_back(record);
        while self.total > self.bytes {
            let Some(old) = self.kept.pop_front() else {
                break;
            };
            self.total -= weight(&old);
        }
    }
}

impl FromIterator<Record> for Within {
    fn from_iter<I: IntoIterator<Item = Record>>(records: I) -> Within {
        let mut within = Within::new(FETCH_BYTES);
        for record in records {
            within.push(record);
        }
        within
    }
}

/// What a record holds in its strings, roughly what it costs in memory.
fn weight(record: &Record) -> usize {
    let body = match &record.body {
        Body::File { name, mime, .. } => name.len() + mime.len(),
        body => body.text().map_or(0, str::len),
    };
    record.room.len() + record.from.len() + record.cid.as_ref().map_or(0, String::len) + body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: u64, text: &str) -> Record {
        Record {
            room: "r".into(),
            id,
            from: "ann".into(),
            ts: 0,
            cid: None,
            body: Body::Text(text.into()),
        }
    }

    #[test]
    fn within_keeps_the_newest_that_fit() {
        let within = |bytes| {
            let mut w = Within::new(bytes);
            // Each weighs 1 (room) + 3 (from) + 6 (text) = 10.
            for id in 1..=5 {
                w.push(text(id, "abcdef"));
            }
            w.kept.iter().map(|r| r.id).collect::<Vec<u64>>()
        };
        assert_eq!(within(50), [1, 2, 3, 4, 5]);
        assert_eq!(within(49), [2, 3, 4, 5]);
        assert_eq!(within(10), [5]);
        assert!(within(9).is_empty());
    }
}
