//! The reads thread: resume fetches, answered beside the store thread.
//!
//! A resume reads up to 1,000 records; a storm of them on the store thread
//! made every acknowledgement and room load wait behind the reads. Here they
//! run on a thread of their own (`store-reads`), on read-only connections
//! of the [`Reader`]'s pool, so the writer's latency does not depend on
//! them. A file database is in WAL mode: a read sees the last commit and
//! neither waits for the writer nor holds it up. A memory database (the
//! `memdb` VFS, reached by the same URI, so the same data) has ordinary
//! locks instead: a read waits while a commit is written, and a commit
//! waits for the page being read, if any, to end.
//!
//! Resumes are a background activity: the thread reads a page of records
//! at a time, within a budget of records a second, the askers' addresses
//! taking turns a page each (`pace`). What a resume is answered with does
//! not change, only when: a storm's resumes are answered over seconds
//! rather than all at once.
//!
//! The store thread hands each `Fetch` on once the appends sent before it
//! are committed, so a fetch sees them, as when it read them itself; and
//! the answer comes back through the same callback as the store thread's.
//! Each page is a read of its own, so records appended meanwhile are not
//! read (a fetch stops at its `upto`), and records retention deletes
//! meanwhile are missed as if deleted before: the dispatcher then reports
//! the gap, as for any record the store no longer has. One thread: on a
//! small machine a second reader would only take CPU from the writer and
//! the dispatcher.

use crate::logs as log;

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use rusqlite::params;

use super::complaints::Complaints;
use super::pace::{self, Bucket, Rounds};
use super::rows::{RECORD, record};
use super::{Body, FetchFor, Reader, Record, Reply, Request, Stats};

/// Most bytes of records (texts, names, cids) one fetch answers with, the
/// newest kept: 1,000 chat lines of a few hundred bytes fit, 250 of a v1
/// client's longest text (4 KiB by default). With the dispatcher's bound on
/// fetches under way (8), this bounds what answers in flight hold: their
/// replay frames may be up to six times their text (JSON escapes), so 8
/// answers hold at most about 56 MiB. (At 5 MiB, a join churn into a room
/// of 64 KiB texts took the server 60 MiB over its memory bound.) A fetch
/// cut here is a resume the dispatcher reports as `trimmed`, with a gap.
pub(super) const FETCH_BYTES: usize = 1 << 20;

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

    /// Queues a `Fetch` or a `Lookup` (anything else is ignored); never
    /// blocks.
    pub(super) fn ask(&self, request: Request) {
        if matches!(request, Request::Fetch { .. } | Request::Lookup(_)) {
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

/// A fetch being read, a page at a time.
struct Job {
    /// As asked, which the records are given.
    room: String,
    /// As stored (see `fold`).
    key: String,
    /// The last id read so far: the next page starts after it.
    after: u64,
    upto: u64,
    /// Records still to be read at most.
    left: usize,
    token: FetchFor,
    kept: Within,
    /// A page could not be read: the fetch is answered with nothing.
    failed: bool,
}

impl ReadsThread {
    /// Reads the fetches a page at a time, the askers' addresses in turn,
    /// within the budget (see `pace`), until the writer drops its sender;
    /// then what is left is read without waiting, and the thread ends.
    fn run(mut self, requests: &Receiver<Request>) {
        let mut jobs: Rounds<Option<IpAddr>, Job> = Rounds::default();
        let mut budget = Bucket::new(pace::RECORDS_PER_SECOND, pace::BURST, Instant::now());
        let mut open = true;
        loop {
            while open {
                match requests.try_recv() {
                    Ok(request) => self.take(&mut jobs, request),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            let Some(job) = jobs.current() else {
                match requests.recv() {
                    Ok(request) => self.take(&mut jobs, request),
                    Err(_) => return,
                }
                continue;
            };
            let page = job.left.min(pace::PAGE);
            let wait = budget.wait(Instant::now(), page as f64);
            if open && !wait.is_zero() {
                match requests.recv_timeout(wait) {
                    Ok(request) => self.take(&mut jobs, request),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
                continue;
            }
            let (read, cost) = self.read_page(job, page);
            budget.spend(Instant::now(), cost);
            job.left -= read;
            let done = job.failed || read < page || job.left == 0;
            if let Some(job) = jobs.next(done) {
                (self.reply)(Reply::Fetched {
                    room: job.room.clone(),
                    token: job.token,
                    records: job.records(),
                    frames: Vec::new(),
                });
            }
        }
    }

    /// Reads up to `page` records of `job` after the last one read; returns
    /// how many, and what they cost of the budget. A failure is logged and
    /// counted, and fails the job.
    fn read_page(&mut self, job: &mut Job, page: usize) -> (usize, f64) {
        let max = i64::MAX as u64;
        let mut read = 0;
        let mut cost = 0.0;
        let result = self.reader.with(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "{RECORD} WHERE r.room = ?1 AND r.id > ?2 AND r.id <= ?3 ORDER BY r.id LIMIT ?4"
            ))?;
            let mut rows = statement.query(params![
                job.key,
                job.after.min(max),
                job.upto.min(max),
                page.min(i64::MAX as usize)
            ])?;
            while let Some(row) = rows.next()? {
                let record = record(row)?;
                read += 1;
                cost += pace::cost(weight(&record));
                job.after = record.id;
                job.kept.push(record);
            }
            Ok(())
        });
        if let Err(e) = result {
            job.failed = true;
            self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
            if let Some(left_out) = self.complaints.speak() {
                log::error!(
                    "event=store_error op=fetch path={:?} room={:?} id={} lost=0 \
                     error={:?} left_out={left_out}",
                    self.path,
                    job.room,
                    job.after,
                    e.to_string()
                );
            }
        }
        (read, cost)
    }
}

/// Queues a `Fetch` behind its asker's others.
impl ReadsThread {
    /// Queues a fetch in its asker's turn; a client's lookup (a page of
    /// scrollback, a search) is answered at once, since each connection
    /// may ask only a few a second.
    fn take(&self, jobs: &mut Rounds<Option<IpAddr>, Job>, request: Request) {
        if let Request::Lookup(lookup) = request {
            super::lookups::answer(&self.reader, &self.stats, &self.path, lookup);
            return;
        }
        take_fetch(jobs, request);
    }
}

fn take_fetch(jobs: &mut Rounds<Option<IpAddr>, Job>, request: Request) {
    let Request::Fetch {
        room,
        after,
        upto,
        limit,
        token,
        asker,
    } = request
    else {
        return;
    };
    // Rooms are stored by their key (see `fold`).
    let key = super::fold::room_key(&room);
    let job = Job {
        room,
        key,
        after,
        upto,
        left: limit,
        token,
        kept: Within::new(FETCH_BYTES),
        failed: false,
    };
    jobs.push(asker, job);
}

impl Job {
    /// What the fetch answers: the records of `after < id <= upto`, oldest
    /// first, at most `limit`, then within [`FETCH_BYTES`] (the newest
    /// kept); nothing when the database could not be read.
    fn records(self) -> Vec<Record> {
        if self.failed {
            return Vec::new();
        }
        // Records carry the room's key; they are given the asker's
        // spelling.
        let mut records: Vec<Record> = self.kept.kept.into();
        for record in &mut records {
            self.room.clone_into(&mut record.room);
        }
        records
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
    use crate::history::sqlite::tests::{TempDb, WAIT};
    use crate::history::sqlite::{Options, open};

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

    #[test]
    fn addresses_take_turns_within_the_budget() {
        let db = TempDb::new("reads-turns");
        for path in [db.path(), ":memory:".to_owned()] {
            let store = open(&Options {
                path: path.clone(),
                retain_messages: 1000,
                retain_bytes: 1 << 30,
                fsync: false,
            })
            .unwrap();
            let (tx, replies) = crossbeam_channel::unbounded();
            let (handle, thread) = store
                .spawn(Box::new(move |reply| {
                    let _ = tx.send(reply);
                }))
                .unwrap();
            for id in 1..=1000 {
                handle.send(Request::Append {
                    record: text(id, &format!("message {id}")),
                    data: None,
                    origin: Default::default(),
                    relay: None,
                });
            }
            // A storm of eight fetches from one address, then one from
            // another address.
            let storm = IpAddr::from([127, 0, 0, 2]);
            let other = IpAddr::from([127, 0, 0, 3]);
            let fetch = |token, asker| Request::Fetch {
                room: "r".into(),
                after: 0,
                upto: 1000,
                limit: 1000,
                token: FetchFor::Resume(token),
                asker: Some(asker),
            };
            let asked = Instant::now();
            for token in 0..8 {
                handle.send(fetch(token, storm));
            }
            handle.send(fetch(100, other));
            let mut answered = Vec::new();
            while answered.len() < 9 {
                match replies.recv_timeout(WAIT).expect("a reply") {
                    Reply::Fetched { token, records, .. } => {
                        let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
                        assert_eq!(ids, (1..=1000).collect::<Vec<_>>(), "{path}");
                        answered.push(token);
                    }
                    Reply::Appended { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            let took = asked.elapsed();
            // Read in the order asked, each address's own, but the other
            // address does not wait for the whole storm: it takes every
            // other page. (Queued behind the storm, it would come last.)
            let place = answered.iter().position(|t| *t == FetchFor::Resume(100));
            assert!(place.is_some_and(|p| p < 4), "{path}: {answered:?}");
            let storm_order: Vec<FetchFor> = answered
                .iter()
                .copied()
                .filter(|t| *t != FetchFor::Resume(100))
                .collect();
            assert_eq!(
                storm_order,
                (0..8).map(FetchFor::Resume).collect::<Vec<_>>()
            );
            // 9,000 records, of which a burst may be read at once: the rest
            // is paced.
            let least = (9000.0 - pace::BURST) / pace::RECORDS_PER_SECOND;
            assert!(
                took.as_secs_f64() >= least,
                "{path}: 9,000 records read in {took:?}"
            );
            handle.send(Request::Shutdown);
            thread.join().unwrap();
        }
    }
}
