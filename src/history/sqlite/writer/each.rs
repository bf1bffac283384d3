//! A group written record by record, each inside its own savepoint: the
//! way back when writing it in bulk failed (a full disk, an I/O error, a
//! database edited by hand), so that exactly the records that cannot be
//! written fail, and use no id.

use rusqlite::{OptionalExtension, params};
use tungstenite::Bytes;

use super::super::retention;
use super::super::rows::{RECORD_BY_CID, record};
use super::{Body, Pending, Record, Writer, Written, new_epoch};

impl Writer {
    /// Writes the group in a transaction of its own, left open for the
    /// caller to commit; says what it wrote of each record (`None`:
    /// nothing) and the file bytes added, or `None` if the transaction
    /// could not even begin (then every record was counted as lost).
    pub(super) fn write_each(
        &mut self,
        appends: &mut [Pending],
        keys: &[String],
    ) -> Option<(Vec<Option<Written>>, u64)> {
        let mut written: Vec<Option<Written>> = appends.iter().map(|_| None).collect();
        let mut refused = vec![false; appends.len()];
        let added = 'group: loop {
            if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                let first = &appends[0].record;
                let lost = refused.iter().filter(|r| !**r).count();
                self.failed("begin", &first.room, lost, &e);
                return None;
            }
            written.iter_mut().for_each(|w| *w = None);
            let mut added = 0;
            for (i, pending) in appends.iter_mut().enumerate() {
                if refused[i] {
                    continue;
                }
                match self.append_one(&keys[i], &mut pending.record, pending.data.as_ref()) {
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
        Some((written, added))
    }

    /// Appends one record to the room keyed `key` inside a savepoint, so
    /// that its failure undoes only itself (its id included). A resend of a
    /// `cid` its sender already stored in the room writes nothing.
    fn append_one(
        &mut self,
        key: &str,
        record: &mut Record,
        data: Option<&Bytes>,
    ) -> rusqlite::Result<Written> {
        if let Some(cid) = &record.cid
            && let Some(mut original) = self.sent_before(key, &record.from, cid)?
        {
            // Stored under the room's key; answered in the sender's spelling.
            original.room.clone_from(&record.room);
            return Ok(Written::Resent(original));
        }
        self.execute("SAVEPOINT record")?;
        let result = self
            .insert(key, record, data)
            .and_then(|bytes| self.execute("RELEASE record").map(|()| bytes));
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self
                .conn
                .execute_batch("ROLLBACK TO record; RELEASE record");
        }
        result.map(|(bytes, epoch)| Written::Stored { bytes, epoch })
    }

    /// The record `from` stored in room `key` under `cid`, if it is still
    /// kept: a resend is recognised for as long as its message is.
    pub(super) fn sent_before(
        &self,
        key: &str,
        from: &str,
        cid: &str,
    ) -> rusqlite::Result<Option<Record>> {
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

    /// Takes `n` ids for room `key`, those after the last it ever stored,
    /// and says the last of them and the epoch they are stored under. A
    /// room without a row gets one now, shown by `spelling` (the first
    /// spelling stored).
    pub(super) fn take_ids(
        &mut self,
        key: &str,
        spelling: &str,
        n: u64,
    ) -> rusqlite::Result<(u64, String)> {
        let next: Option<(u64, String)> = self
            .conn
            .prepare_cached(
                "UPDATE rooms SET last_id = last_id + ?2 WHERE key = ?1 RETURNING last_id, epoch",
            )?
            .query_row(params![key, n], |row| Ok((row.get(0)?, row.get(1)?)))
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
            .execute(params![key, spelling, epoch, last + n])?;
        Ok((last + n, epoch))
    }

    /// Writes a record under the room's next id (set in `record`); returns
    /// the file bytes it added and the epoch it was stored under.
    fn insert(
        &mut self,
        key: &str,
        record: &mut Record,
        data: Option<&Bytes>,
    ) -> rusqlite::Result<(u64, String)> {
        let (id, epoch) = self.take_ids(key, &record.room, 1)?;
        record.id = id;
        let (name, size, mime) = match &record.body {
            Body::File {
                name, size, mime, ..
            } => (Some(name), Some(*size), Some(mime)),
            _ => (None, None, None),
        };
        let text = record.body.text();
        let (kind, target) = record.body.change_columns();
        self.conn
            .prepare_cached(
                "INSERT INTO records \
                 (room, id, sender, ts, cid, text, file_name, file_size, file_mime, kind, target) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                key,
                record.id,
                record.from,
                record.ts,
                record.cid,
                text,
                name,
                size,
                mime,
                kind,
                target
            ])?;
        let file = match (&record.body, data) {
            (Body::File { .. }, Some(bytes)) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO file_bytes (room, id, size, bytes) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![key, record.id, bytes.len(), bytes.as_ref()])?;
                bytes.len() as u64
            }
            _ => 0,
        };
        retention::count_in(&self.conn, key, record.id, file)?;
        Ok((file, epoch))
    }
}
