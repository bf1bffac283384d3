//! The bounds, applied by the writer: `retain_messages` to the rooms a
//! group wrote to, and `retain_bytes` to everything (see `retention`), in
//! the group's own transaction; and both to every room at start, for when
//! they were lowered since the database was last written.

use crate::logs as log;

use std::sync::atomic::Ordering;

use rusqlite::{OptionalExtension, params};

use super::super::{index, retention};
use super::Writer;

impl Writer {
    /// Applies both bounds after a group's appends to `rooms` (keys),
    /// inside its transaction. A failure here is logged and undone, and
    /// the appends still commit: the bounds are caught up with by the next
    /// group. Returns the file bytes freed.
    pub(super) fn retain(&mut self, rooms: &[&str], added: u64) -> u64 {
        let over = (self.file_bytes + added).saturating_sub(self.options.retain_bytes);
        if rooms.is_empty() && over == 0 {
            return 0;
        }
        // Most groups, retention deleting in chunks, have nothing to
        // delete: they are spared the savepoint, which would make the word
        // index write what the group added to it as a segment of its own.
        match self.within_bounds(rooms) {
            Ok(true) => return 0,
            Ok(false) => {}
            Err(e) => {
                let room = rooms.first().copied().unwrap_or("");
                self.failed("retain", room, 0, &e);
                return 0;
            }
        }
        let result = self.execute("SAVEPOINT retain").and_then(|()| {
            let freed = self.bound(rooms)?;
            self.execute("RELEASE retain")?;
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
                let room = rooms.first().copied().unwrap_or("");
                self.failed("retain", room, 0, &e);
                0
            }
        }
    }

    /// Whether neither bound has anything to delete after a group to
    /// `rooms`: no room holds more than `retain_messages` and its slack,
    /// and everything stored is within `retain_bytes` (which the
    /// `stored_bytes` gauge is told).
    fn within_bounds(&mut self, rooms: &[&str]) -> rusqlite::Result<bool> {
        for room in rooms {
            if self.beyond(room)?.is_some() {
                return Ok(false);
            }
        }
        let total = retention::total(&self.conn)?;
        self.stats.stored_bytes.store(total, Ordering::Relaxed);
        Ok(total <= self.options.retain_bytes)
    }

    /// [`Writer::bound_once`], and again after making the word index anew
    /// should it not hold what the records say (a database edited by
    /// hand): retention deletes through it, so such an index would stop
    /// every deletion, and with them the bounds. What the first try
    /// deleted stays deleted; the second goes on from there.
    fn bound<S: AsRef<str>>(&mut self, rooms: &[S]) -> rusqlite::Result<u64> {
        match self.bound_once(rooms) {
            Err(e) if index::is_corrupt(&e) => {
                log::warn!(
                    "event=store_index_rebuilt path={:?} error={:?} msg=\"the word index did \
                     not match the messages and is made again from them\"",
                    self.options.path,
                    e.to_string()
                );
                self.conn.execute_batch(index::REBUILD)?;
                self.bound_once(rooms)
            }
            result => result,
        }
    }

    /// Deletes the records of `rooms` beyond `retain_messages`, then, while
    /// everything stored passes `retain_bytes`, from the room holding the
    /// most (see `retention`). Returns the file bytes freed.
    fn bound_once<S: AsRef<str>>(&mut self, rooms: &[S]) -> rusqlite::Result<u64> {
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
    pub(super) fn bound_everything(&mut self) {
        let result = self.conn.execute_batch("BEGIN IMMEDIATE").and_then(|()| {
            let rooms = self
                .conn
                .prepare("SELECT key FROM rooms")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let freed = self.bound(&rooms)?;
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
    /// `retain_messages` once it holds more than that and a slack of
    /// [`retention::slack`] (with their files' bytes), so that a busy
    /// room pays for retention's statements, and for rewriting the pages
    /// at the head of its records and of the word index, once a chunk
    /// rather than after every group. The room's row, and so its last id,
    /// stays.
    fn retain_messages(&mut self, room: &str) -> rusqlite::Result<u64> {
        match self.beyond(room)? {
            Some(upto) => retention::delete_upto(&self.conn, room, upto),
            None => Ok(0),
        }
    }

    /// If the room keyed `room` holds more than `retain_messages` and the
    /// slack, the id up to which retention deletes its records.
    fn beyond(&self, room: &str) -> rusqlite::Result<Option<i64>> {
        let keep = self.options.retain_messages.min(i64::MAX as usize) as i64;
        // Ids are given one after another and only a room's oldest records
        // are ever deleted, so its newest `keep` are those above
        // `last_id - keep` (where older ids had gaps, a few fewer are
        // kept, never more), and it holds more than `keep` and the slack
        // only if it has an id at or below `last_id - keep - slack`: two
        // index look-ups, where counting rows walked them all after every
        // group. (Not `MIN(id)`: profiled in the store, SQLite prepared
        // that statement again at every step, which cost more than all
        // the rest of retention.)
        let last: Option<i64> = self
            .conn
            .prepare_cached("SELECT last_id FROM rooms WHERE key = ?1")?
            .query_row([room], |row| row.get(0))
            .optional()?;
        let upto = last.unwrap_or(0).saturating_sub(keep);
        let edge = upto.saturating_sub(retention::slack(keep));
        if upto < 1 || edge < 1 {
            return Ok(None);
        }
        let beyond: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE room = ?1 AND id <= ?2)")?
            .query_row(params![room, edge], |row| row.get(0))?;
        Ok(beyond.then_some(upto))
    }
}
