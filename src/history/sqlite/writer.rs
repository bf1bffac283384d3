//! The store thread: the one connection that writes.
//!
//! Requests are handled in the order they were sent. Appends that are
//! waiting together are written in one transaction, in bulk (`bulk`): each
//! room's ids taken with one update, each table's rows with one insert.
//! Should anything in that fail, the transaction is rolled back and the
//! group written again record by record (`each`), each inside its own
//! savepoint so that one bad record costs only itself. Either way the group
//! has one commit, and so one write of the log (and with `fsync`, one
//! sync). Ids are given here, inside the transaction, so that a record that
//! is not committed uses none: an id, once anyone has seen it, is always
//! the one stored record's. An `Open` first commits the appends before it,
//! so that it sees them and its answer comes after theirs (`opening`). A
//! `Fetch` is not read here: once the batch it came in is committed it is
//! handed to the reads thread (`reads.rs`), so that it sees the appends
//! before it and the writer never waits for a read. Retention runs in the
//! same transaction as the appends that made it necessary (`bounds`).

use crate::logs as log;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use rusqlite::Connection;
use tungstenite::Bytes;

use super::complaints::Complaints;
use super::fold::room_key;
use super::reads::Reads;
use super::{Body, Options, Origin, Outcome, Reader, Record, Reply, Request, Stats};

mod bounds;
mod bulk;
mod changes;
mod each;
mod opening;

/// Most requests taken from the channel at once, and so most appends in one
/// transaction.
pub const GROUP: usize = 256;

/// Most bytes of files and texts taken into one group: a group is written
/// before retention frees room for it, so this (and one file more) is how
/// far past `retain_bytes` the database may grow for a moment.
pub const GROUP_BYTES: u64 = 64 << 20;

/// Statements the writer keeps prepared: its own, retention's, and the
/// bulk inserts of every size (see `bulk`).
const STATEMENTS: usize = 64;

/// Spellings whose room keys are remembered.
const KEYS: usize = 4096;

/// What a request adds to a group's bytes.
fn weight(request: &Request) -> u64 {
    match request {
        Request::Append { record, data, .. } => {
            let text = record.body.text().map_or(0, str::len);
            (text + data.as_ref().map_or(0, Bytes::len)) as u64
        }
        _ => 0,
    }
}

/// While writes fail, how often the store tries a small write of its own,
/// so that readiness comes back once space is freed even if nobody sends.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// An append waiting for its group's commit.
struct Pending {
    record: Record,
    data: Option<Bytes>,
    origin: Origin,
    relay: Option<Bytes>,
}

/// What one append wrote.
enum Written {
    /// The record under its new id: the file bytes it added, and the epoch
    /// of the room's history it joined.
    Stored { bytes: u64, epoch: String },
    /// The record stored before under the same sender and `cid`.
    Resent(Record),
}

pub struct Writer {
    conn: Connection,
    options: Options,
    stats: Arc<Stats>,
    /// Holds the reader's pool, and with it a memory database, while the
    /// thread runs.
    _reader: Reader,
    reply: Box<dyn Fn(Reply) + Send>,
    /// Where fetches go once the appends before them are committed.
    reads: Reads,
    /// Epochs handed out in `Opened` for rooms without a row, by room key:
    /// the append that creates the row uses the same one.
    pending_epochs: HashMap<String, String>,
    /// File bytes stored, as of the last commit.
    file_bytes: u64,
    complaints: Complaints,
    /// Room keys of the spellings written to lately: working one out
    /// (`fold::room_key`) costs more than writing a short message.
    keys: HashMap<String, String>,
}

impl Writer {
    pub fn new(
        conn: Connection,
        options: Options,
        stats: Arc<Stats>,
        reader: Reader,
        reply: Box<dyn Fn(Reply) + Send>,
        reads: Reads,
    ) -> Writer {
        let file_bytes = stats.file_bytes.load(Ordering::Relaxed);
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Writer {
            conn,
            options,
            stats,
            _reader: reader,
            reply,
            reads,
            pending_epochs: HashMap::new(),
            file_bytes,
            complaints: Complaints::default(),
            keys: HashMap::new(),
        }
    }

    pub fn run(mut self, requests: &Receiver<Request>) {
        self.bound_everything();
        // Kept from one group to the next, so that a busy store does not
        // grow and give back its memory with every group.
        let mut batch: Vec<Request> = Vec::with_capacity(GROUP);
        let mut appends: Vec<Pending> = Vec::with_capacity(GROUP);
        let mut fetches = Vec::new();
        let mut stopping = false;
        loop {
            // Once told to stop, finish what is already queued, then end.
            let first = if stopping {
                requests.try_recv().ok()
            } else if self.stats.is_failing() {
                match requests.recv_timeout(PROBE_INTERVAL) {
                    Ok(request) => Some(request),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
                }
            } else {
                requests.recv().ok()
            };
            let Some(first) = first else {
                break;
            };
            let mut bytes = weight(&first);
            batch.push(first);
            while batch.len() < GROUP && bytes < GROUP_BYTES {
                match requests.try_recv() {
                    Ok(request) => {
                        bytes += weight(&request);
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.stats
                .queue_len
                .fetch_sub(batch.len() as u64, Ordering::Relaxed);
            for request in batch.drain(..) {
                match request {
                    Request::Append {
                        record,
                        data,
                        origin,
                        relay,
                    } => appends.push(Pending {
                        record,
                        data,
                        origin,
                        relay,
                    }),
                    Request::Open { room, recent } => {
                        self.append(&mut appends);
                        let reply = self.open(room, recent);
                        (self.reply)(reply);
                    }
                    fetch @ (Request::Fetch { .. } | Request::Lookup(_)) => fetches.push(fetch),
                    Request::Shutdown => {
                        self.append(&mut appends);
                        stopping = true;
                    }
                }
            }
            self.append(&mut appends);
            for fetch in fetches.drain(..) {
                self.reads.ask(fetch);
            }
        }
        log::info!("event=store_stopped path={:?}", self.options.path);
    }

    /// Writes a group of appends and answers each; changes that may not
    /// be made are answered refused, in their place, and not written.
    fn append(&mut self, appends: &mut Vec<Pending>) {
        if appends.is_empty() {
            return;
        }
        for (pending, why) in self.refuse_changes(appends) {
            (self.reply)(Reply::Appended {
                record: pending.record,
                data: pending.data,
                origin: pending.origin,
                relay: pending.relay,
                outcome: Outcome::Refused(why),
                epoch: None,
            });
        }
        if appends.is_empty() {
            return;
        }
        let written = self.write_group(appends);
        for (mut pending, written) in appends.drain(..).zip(written) {
            let (outcome, epoch) = match written {
                Some(Written::Stored { epoch, .. }) => (Outcome::Stored, Some(epoch)),
                Some(Written::Resent(original)) => {
                    pending.record = original;
                    (Outcome::Resent, None)
                }
                None => (Outcome::Failed, None),
            };
            (self.reply)(Reply::Appended {
                record: pending.record,
                data: pending.data,
                origin: pending.origin,
                relay: pending.relay,
                outcome,
                epoch,
            });
        }
    }

    /// One transaction for the whole group; says what it wrote of each
    /// record (`None`: nothing), and gives each stored record its id.
    fn write_group(&mut self, appends: &mut [Pending]) -> Vec<Option<Written>> {
        let keys = self.keys(appends);
        if let Err(e) = self.execute("BEGIN IMMEDIATE") {
            // Not tried again record by record: that would wait as long
            // again for a lock another process holds.
            self.failed("begin", &appends[0].record.room, appends.len(), &e);
            return appends.iter().map(|_| None).collect();
        }
        let (written, added) = match self.write_bulk(appends, &keys) {
            Ok(done) => done,
            Err(e) => {
                // Whatever went wrong, the records one by one tell which
                // of them cannot be written, and count and log it.
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                log::debug!("event=store_bulk_failed error={:?}", e.to_string());
                match self.write_each(appends, &keys) {
                    Some(done) => done,
                    None => return appends.iter().map(|_| None).collect(),
                }
            }
        };
        let mut rooms: Vec<&str> = keys
            .iter()
            .zip(&written)
            .filter(|(_, w)| matches!(w, Some(Written::Stored { .. })))
            .map(|(key, _)| key.as_str())
            .collect();
        let count = rooms.len();
        rooms.sort_unstable();
        rooms.dedup();
        let freed = self.retain(&rooms, added);
        if let Err(e) = self.execute("COMMIT") {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            let last = &appends[appends.len() - 1].record;
            let lost = written.iter().filter(|w| w.is_some()).count();
            self.failed("commit", &last.room, lost, &e);
            return appends.iter().map(|_| None).collect();
        }
        if count > 0 {
            self.recovered();
        }
        self.file_bytes = (self.file_bytes + added).saturating_sub(freed);
        self.stats
            .file_bytes
            .store(self.file_bytes, Ordering::Relaxed);
        self.stats
            .records_written
            .fetch_add(count as u64, Ordering::Relaxed);
        if !self.pending_epochs.is_empty() {
            for room in rooms {
                self.pending_epochs.remove(room);
            }
        }
        written
    }

    /// Each append's room key.
    fn keys(&mut self, appends: &[Pending]) -> Vec<String> {
        appends
            .iter()
            .map(|pending| {
                let room = pending.record.room.as_str();
                if let Some(key) = self.keys.get(room) {
                    return key.clone();
                }
                if self.keys.len() >= KEYS {
                    self.keys.clear();
                }
                let key = room_key(room);
                self.keys.insert(room.to_owned(), key.clone());
                key
            })
            .collect()
    }

    /// Runs one statement that returns no rows, kept prepared.
    fn execute(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Counts `lost` records as not written and logs the failure, at most
    /// once a second. A write that lost records marks the store failing
    /// (`/readyz` then answers 503) until a write commits again.
    fn failed(&mut self, op: &str, room: &str, lost: usize, error: &rusqlite::Error) {
        self.stats
            .write_errors
            .fetch_add(lost as u64, Ordering::Relaxed);
        if lost > 0 && !self.stats.failing.swap(true, Ordering::Relaxed) {
            log::error!(
                "event=store_failing path={:?} error={:?} msg=\"messages are refused until the \
                 database can be written again\"",
                self.options.path,
                error.to_string()
            );
        }
        if let Some(left_out) = self.complaints.speak() {
            log::error!(
                "event=store_error op={op} path={:?} room={room:?} lost={lost} error={:?} \
                 left_out={left_out}",
                self.options.path,
                error.to_string()
            );
        }
    }

    /// A write committed: the store takes messages again.
    fn recovered(&mut self) {
        if self.stats.failing.swap(false, Ordering::Relaxed) {
            log::warn!(
                "event=store_recovered path={:?} msg=\"the database can be written again\"",
                self.options.path
            );
        }
    }

    /// While writes fail and nobody sends, a small write of the store's
    /// own tells when the database can be written again.
    fn probe(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let result = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?1)")?
                .execute([now])?;
            self.conn.execute_batch("COMMIT")
        });
        match result {
            Ok(()) => self.recovered(),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                log::debug!("event=store_probe_failed error={:?}", e.to_string());
            }
        }
    }
}

/// A room's epoch: 16 hex digits, new for every history that begins.
pub fn new_epoch() -> String {
    format!("{:016x}", random_u64())
}

/// A random number from the operating system. Should that fail, the time
/// and a counter stand in: an epoch need only differ from the room's
/// previous ones.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    getrandom::u64().unwrap_or_else(|e| {
        log::warn!("event=store_random_failed error={:?}", e.to_string());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        // splitmix64's finaliser, so that near times give unlike epochs.
        let mut z = nanos ^ count.rotate_left(32) ^ u64::from(std::process::id());
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}
