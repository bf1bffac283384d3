//! The store thread: the one connection that writes.
//!
//! Requests are handled in the order they were sent. Appends that are
//! waiting together are written in one transaction, each inside its own
//! savepoint so that one bad record costs only itself (should SQLite roll
//! the whole transaction back instead, the group is written again without
//! it); the group then has one commit, and so one write of the log (and
//! with `fsync`, one sync). Ids are given here, inside the transaction, so
//! that a record that is not committed uses none: an id, once anyone has
//! seen it, is always the one stored record's. An `Open` first commits the
//! appends before it, so that it sees them and its answer comes after
//! theirs. A `Fetch` is not read here: once the batch it came in is
//! committed it is handed to the reads thread (`reads.rs`), so that it sees
//! the appends before it and the writer never waits for a read. Retention
//! runs in the same transaction as the appends that made it necessary.

use crate::logs as log;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use rusqlite::{Connection, OptionalExtension, params};
use tungstenite::Bytes;

use super::complaints::Complaints;
use super::fold::room_key;
use super::reads::Reads;
use super::retention;
use super::rows::{RECORD, RECORD_BY_CID, record};
use super::{Body, Options, Origin, Outcome, Reader, Record, Reply, Request, Stats};

/// Most requests taken from the channel at once, and so most appends in one
/// transaction.
pub const GROUP: usize = 256;

/// Most bytes of files and texts taken into one group: a group is written
/// before retention frees room for it, so this (and one file more) is how
/// far past `retain_bytes` the database may grow for a moment.
pub const GROUP_BYTES: u64 = 64 << 20;

/// What a request adds to a group's bytes.
fn weight(request: &Request) -> u64 {
    match request {
        Request::Append { record, data, .. } => {
            let text = match &record.body {
                Body::Text(text) => text.len(),
                Body::File { .. } => 0,
            };
            (text + data.as_ref().map_or(0, Bytes::len)) as u64
        }
        _ => 0,
    }
}

/// Rooms opened but not yet written to whose epochs are remembered.
const PENDING_EPOCHS: usize = 65_536;

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
        }
    }

    pub fn run(mut self, requests: &Receiver<Request>) {
        self.bound_everything();
        let mut appends: Vec<Pending> = Vec::new();
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
            let mut batch = vec![first];
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
            for request in batch {
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

    /// Writes a group of appends and answers each.
    fn append(&mut self, appends: &mut Vec<Pending>) {
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
        let mut written: Vec<Option<Written>> = appends.iter().map(|_| None).collect();
        let mut refused = vec![false; appends.len()];
        let added = 'group: loop {
            if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                let first = &appends[0].record;
                let lost = refused.iter().filter(|r| !**r).count();
                self.failed("begin", &first.room, lost, &e);
                return appends.iter().map(|_| None).collect();
            }
            written.iter_mut().for_each(|w| *w = None);
            let mut added = 0;
            for (i, pending) in appends.iter_mut().enumerate() {
                if refused[i] {
                    continue;
                }
                match self.append_one(&mut pending.record, pending.data.as_ref()) {
                    Ok(w) => {
                        if let Written::Stored { bytes, .. } = &w {
                            added += bytes;
                        }
                        written[i] = Some(w);
                    }
                    Err(e) => {
                        refused[i] = true;
                        self.failed("append", &pending.record.room, 1, &e);
                        if self.conn.is_autocommit() {
                            // SQLite rolled the whole transaction back, as it
                            // may on a full disk or an I/O error, and took the
                            // records before this one with it (and their
                            // ids): write them again. Each round refuses one
                            // more record, so this ends.
                            continue 'group;
                        }
                    }
                }
            }
            break added;
        };
        let stored: Vec<bool> = written
            .iter()
            .map(|w| matches!(w, Some(Written::Stored { .. })))
            .collect();
        let freed = self.retain(appends, &stored, added);
        let count = stored.iter().filter(|s| **s).count();
        if let Err(e) = self.conn.execute_batch("COMMIT") {
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
            for (pending, _) in appends.iter().zip(&stored).filter(|(_, s)| **s) {
                self.pending_epochs.remove(&room_key(&pending.record.room));
            }
        }
        written
    }

    /// Appends one record inside a savepoint, so that its failure undoes
    /// only itself (its id included). A resend of a `cid` its sender
    /// already stored in the room writes nothing.
    fn append_one(
        &mut self,
        record: &mut Record,
        data: Option<&Bytes>,
    ) -> rusqlite::Result<Written> {
        if let Some(cid) = &record.cid
            && let Some(mut original) =
                self.sent_before(&room_key(&record.room), &record.from, cid)?
        {
            // Stored under the room's key; answered in the sender's spelling.
            original.room.clone_from(&record.room);
            return Ok(Written::Resent(original));
        }
        self.conn.execute_batch("SAVEPOINT record")?;
        let result = self
            .insert(record, data)
            .and_then(|bytes| self.conn.execute_batch("RELEASE record").map(|()| bytes));
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self
                .conn
                .execute_batch("ROLLBACK TO record; RELEASE record");
        }
        result.map(|(bytes, epoch)| Written::Stored { bytes, epoch })
    }

    /// The record `from` stored in room `key` under `cid`, if it is still
    /// kept: a resend is recognised for as long as its message is.
    fn sent_before(&self, key: &str, from: &str, cid: &str) -> rusqlite::Result<Option<Record>> {
        self.conn
            // Without statistics SQLite would rather walk the room's whole
            // primary key than take this index: it is named.
            .prepare_cached(&format!(
                "{RECORD_BY_CID} WHERE r.room = ?1 AND r.cid = ?2 AND r.cid IS NOT NULL \
                 AND r.sender = ?3 LIMIT 1"
            ))?
            .query_row(params![key, cid, from], record)
            .optional()
    }

    /// Gives room `key` its next id, one more than the last it ever stored,
    /// and says the epoch it is stored under. A room without a row gets one
    /// now, shown by `spelling` (the first spelling stored).
    fn next_id(&mut self, key: &str, spelling: &str) -> rusqlite::Result<(u64, String)> {
        let next: Option<(u64, String)> = self
            .conn
            .prepare_cached(
                "UPDATE rooms SET last_id = last_id + 1 WHERE key = ?1 RETURNING last_id, epoch",
            )?
            .query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some(next) = next {
            return Ok(next);
        }
        // Records without a room row are not written by wschat, but a
        // file edited by hand should not make ids go back.
        let last: u64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM records WHERE room = ?1")?
            .query_row([key], |row| row.get(0))?;
        let epoch = match self.pending_epochs.get(key) {
            Some(epoch) => epoch.clone(),
            None => new_epoch(),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO rooms (key, name, epoch, last_id) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![key, spelling, epoch, last + 1])?;
        Ok((last + 1, epoch))
    }

    /// Writes a record under the room's next id (set in `record`); returns
    /// the file bytes it added and the epoch it was stored under.
    fn insert(
        &mut self,
        record: &mut Record,
        data: Option<&Bytes>,
    ) -> rusqlite::Result<(u64, String)> {
        let key = room_key(&record.room);
        let room = key.as_str();
        let (id, epoch) = self.next_id(room, &record.room)?;
        record.id = id;
        let (text, name, size, mime) = match &record.body {
            Body::Text(text) => (Some(text), None, None, None),
            Body::File {
                name, size, mime, ..
            } => (None, Some(name), Some(*size), Some(mime)),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO records \
                 (room, id, sender, ts, cid, text, file_name, file_size, file_mime) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                room,
                record.id,
                record.from,
                record.ts,
                record.cid,
                text,
                name,
                size,
                mime
            ])?;
        let file = match (&record.body, data) {
            (Body::File { .. }, Some(bytes)) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO file_bytes (room, id, size, bytes) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![room, record.id, bytes.len(), bytes.as_ref()])?;
                bytes.len() as u64
            }
            _ => 0,
        };
        retention::count_in(&self.conn, room, record.id, file)?;
        Ok((file, epoch))
    }

    /// Applies both bounds after a group's appends, inside its transaction.
    /// A failure here is logged and undone, and the appends still commit:
    /// the bounds are caught up with by the next group. Returns the file
    /// bytes freed.
    fn retain(&mut self, appends: &[Pending], stored: &[bool], added: u64) -> u64 {
        let mut rooms: Vec<String> = appends
            .iter()
            .zip(stored)
            .filter(|(_, s)| **s)
            .map(|(pending, _)| room_key(&pending.record.room))
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let over = (self.file_bytes + added).saturating_sub(self.options.retain_bytes);
        if rooms.is_empty() && over == 0 {
            return 0;
        }
        let result = self.conn.execute_batch("SAVEPOINT retain").and_then(|()| {
            let freed = self.bound(&rooms, over)?;
            self.conn.execute_batch("RELEASE retain")?;
            Ok(freed)
        });
        match result {
            Ok(freed) => freed,
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self
                        .conn
                        .execute_batch("ROLLBACK TO retain; RELEASE retain");
                }
                let room = rooms.first().map_or("", String::as_str);
                self.failed("retain", room, 0, &e);
                0
            }
        }
    }

    /// Deletes the records of `rooms` beyond `retain_messages`, then, while
    /// everything stored passes `retain_bytes`, from the room holding the
    /// most (see `retention`). Returns the file bytes freed.
    fn bound<S: AsRef<str>>(&mut self, rooms: &[S], _over: u64) -> rusqlite::Result<u64> {
        let mut freed = 0;
        for room in rooms {
            freed += self.retain_messages(room.as_ref())?;
        }
        let (files, total) = retention::shrink(&self.conn, self.options.retain_bytes)?;
        self.stats.stored_bytes.store(total, Ordering::Relaxed);
        Ok(freed + files)
    }

    /// Applies both bounds to every room, for when they were lowered since
    /// the database was last written. A failure is logged; the next appends
    /// apply the bounds to their own rooms.
    fn bound_everything(&mut self) {
        let result = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            let rooms = self
                .conn
                .prepare("SELECT key FROM rooms")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let over = self.file_bytes.saturating_sub(self.options.retain_bytes);
            let freed = self.bound(&rooms, over)?;
            self.conn.execute_batch("COMMIT")?;
            Ok(freed)
        });
        match result {
            Ok(freed) => {
                self.file_bytes = self.file_bytes.saturating_sub(freed);
                self.stats
                    .file_bytes
                    .store(self.file_bytes, Ordering::Relaxed);
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.failed("retain", "", 0, &e);
            }
        }
    }

    /// Deletes the records of the room keyed `room` beyond the newest
    /// `retain_messages`, with their files' bytes. The room's row, and so
    /// its last id, stays.
    fn retain_messages(&mut self, room: &str) -> rusqlite::Result<u64> {
        let keep = self.options.retain_messages.min(i64::MAX as usize) as i64;
        // Ids are given one after another and only a room's oldest records
        // are ever deleted, so its newest `keep` are those above
        // `last_id - keep` (where older ids had gaps, a few fewer are
        // kept, never more): two index look-ups, where counting `keep`
        // rows back from the newest walked them all after every group.
        let last: Option<i64> = self
            .conn
            .prepare_cached("SELECT last_id FROM rooms WHERE key = ?1")?
            .query_row([room], |row| row.get(0))
            .optional()?;
        let upto = last.unwrap_or(0).saturating_sub(keep);
        if upto < 1 {
            return Ok(0);
        }
        let beyond: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE room = ?1 AND id <= ?2)")?
            .query_row(params![room, upto], |row| row.get(0))?;
        if !beyond {
            return Ok(0);
        }
        retention::delete_upto(&self.conn, room, upto)
    }

    /// Loads a room. A room without history gets an epoch, which is
    /// written with its first record: opening a room writes nothing, so
    /// rooms that are only visited leave no trace in the database.
    fn open(&mut self, room: String, recent: usize) -> Reply {
        match self.load(&room, recent) {
            Ok((row, last_id, recent)) => {
                let (epoch, spelling) = match row {
                    Some((epoch, shown)) => (epoch, (shown != room).then_some(shown)),
                    None => (self.pending_epoch(&room), None),
                };
                Reply::Opened {
                    epoch,
                    room,
                    spelling,
                    last_id,
                    recent,
                    loaded: true,
                    members: Vec::new(),
                }
            }
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                self.failed("open", &room, 0, &e);
                Reply::Opened {
                    epoch: self.pending_epoch(&room),
                    room,
                    spelling: None,
                    last_id: 0,
                    recent: Vec::new(),
                    loaded: false,
                    members: Vec::new(),
                }
            }
        }
    }

    /// The epoch handed out for a room that has no row yet; the same one
    /// until its first record is written.
    fn pending_epoch(&mut self, room: &str) -> String {
        let room = room_key(room);
        if let Some(epoch) = self.pending_epochs.get(&room) {
            return epoch.clone();
        }
        if self.pending_epochs.len() >= PENDING_EPOCHS {
            // Any one will do: a room that loses its pending epoch gets a
            // new one with its first record, which its clients see as a
            // new history once the room is next opened.
            let any = self.pending_epochs.keys().next().cloned();
            if let Some(any) = any {
                self.pending_epochs.remove(&any);
            }
        }
        let epoch = new_epoch();
        self.pending_epochs.insert(room, epoch.clone());
        epoch
    }

    /// The room's epoch and display spelling (if it has a row), last id and
    /// newest records, found by the room's key whichever spelling asks.
    fn load(
        &mut self,
        spelling: &str,
        recent: usize,
    ) -> rusqlite::Result<(Option<RoomRow>, u64, Vec<Record>)> {
        let key = room_key(spelling);
        let room = key.as_str();
        let row: Option<(String, String, u64)> = self
            .conn
            .prepare_cached("SELECT epoch, name, last_id FROM rooms WHERE key = ?1")?
            .query_row([room], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let mut records = self.query(
            &format!("{RECORD} WHERE r.room = ?1 ORDER BY r.id DESC LIMIT ?2"),
            params![room, recent.min(i64::MAX as usize)],
        )?;
        records.reverse();
        let shown = row.as_ref().map_or(spelling, |(_, name, _)| name.as_str());
        for record in &mut records {
            shown.clone_into(&mut record.room);
        }
        match row {
            Some((epoch, name, last_id)) => Ok((Some((epoch, name)), last_id, records)),
            None => {
                // Records without a room row are not written by wschat, but
                // a file edited by hand should not make ids go back.
                let last_id: u64 = self
                    .conn
                    .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM records WHERE room = ?1")?
                    .query_row([room], |row| row.get(0))?;
                Ok((None, last_id, records))
            }
        }
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<Record>> {
        self.conn
            .prepare_cached(sql)?
            .query_map(params, record)?
            .collect()
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

/// A room's row: its epoch and the spelling it is shown by.
type RoomRow = (String, String);

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
