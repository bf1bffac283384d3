//! A group written in bulk: for each room, one `UPDATE … RETURNING` takes
//! all the ids its records need and one more counts their bytes; the
//! records, and the files' bytes, go in with one multi-row insert per
//! table (a few, for a group whose size is not a power of two). Every
//! statement is kept prepared. A resend, of a `cid` stored before or sent
//! earlier in the same group, writes nothing and takes no id.
//!
//! This path is all or nothing: if any statement fails, the writer rolls
//! the transaction back (and with it every id taken) and writes the group
//! again record by record (`each`), which finds the records that cannot be
//! written.

use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::{Connection, Statement};

use super::super::retention;
use super::super::rows::{RECORD_BY_CID, record};
use super::{Body, GROUP, Pending, Record, Writer, Written};

/// A multi-row insert into one table, as SQL for each power of two of rows
/// up to a group's, made once.
struct Insert {
    /// `INSERT INTO table (columns…)`.
    head: &'static str,
    columns: usize,
    sql: OnceLock<Vec<String>>,
}

impl Insert {
    const fn new(head: &'static str, columns: usize) -> Insert {
        Insert {
            head,
            columns,
            sql: OnceLock::new(),
        }
    }

    /// The statement for `1 << power` rows.
    fn sql(&self, power: u32) -> &str {
        let all = self.sql.get_or_init(|| {
            let row = format!("({})", vec!["?"; self.columns].join(", "));
            (0..=GROUP.ilog2())
                .map(|p| {
                    format!(
                        "{} VALUES {}",
                        self.head,
                        vec![row.as_str(); 1 << p].join(", ")
                    )
                })
                .collect()
        });
        &all[power as usize]
    }

    /// Inserts a row for each of `rows`, `bind` binding the columns of one
    /// from the parameter it is given on; in as few statements as the
    /// powers of two that add up to their count.
    fn run<T>(
        &self,
        conn: &Connection,
        rows: &[T],
        bind: impl Fn(&mut Statement<'_>, usize, &T) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            let power = rest.len().min(GROUP).ilog2();
            let (chunk, after) = rest.split_at(1 << power);
            let mut statement = conn.prepare_cached(self.sql(power))?;
            for (k, row) in chunk.iter().enumerate() {
                bind(&mut statement, k * self.columns + 1, row)?;
            }
            statement.raw_execute()?;
            rest = after;
        }
        Ok(())
    }
}

static RECORDS: Insert = Insert::new(
    "INSERT INTO records \
     (room, id, sender, ts, cid, text, file_name, file_size, file_mime, kind, target)",
    11,
);

static FILES: Insert = Insert::new("INSERT INTO file_bytes (room, id, size, bytes)", 4);

/// A room the group stores records in.
struct Room<'k> {
    key: &'k str,
    /// The appends it stores, in order.
    members: Vec<usize>,
    /// The ids they take, first and last.
    first: u64,
    last: u64,
    epoch: String,
    /// File bytes they add.
    files: u64,
}

impl Writer {
    /// Writes the group inside the transaction begun for it, left open for
    /// the caller to commit; says what it wrote of each record and the file
    /// bytes added. An error leaves the transaction to be rolled back.
    pub(super) fn write_bulk(
        &mut self,
        appends: &mut [Pending],
        keys: &[String],
    ) -> rusqlite::Result<(Vec<Option<Written>>, u64)> {
        let mut written: Vec<Option<Written>> = appends.iter().map(|_| None).collect();
        // Appends that resend one earlier in the group, with that one.
        let mut again: Vec<(usize, usize)> = Vec::new();
        let mut resend = vec![false; appends.len()];
        // The first of the group with each sender and `cid`.
        let mut asking: Vec<usize> = Vec::new();
        {
            let mut sent: HashMap<(&str, &str, &str), usize> = HashMap::new();
            for (i, pending) in appends.iter().enumerate() {
                let record = &pending.record;
                let Some(cid) = record.cid.as_deref() else {
                    continue;
                };
                let who = (keys[i].as_str(), record.from.as_str(), cid);
                if let Some(&before) = sent.get(&who) {
                    again.push((i, before));
                    resend[i] = true;
                } else {
                    sent.insert(who, i);
                    asking.push(i);
                }
            }
        }
        for (i, mut original) in self.sent_before_all(appends, keys, &asking)? {
            // Stored under the room's key; answered in the sender's
            // spelling.
            original.room.clone_from(&appends[i].record.room);
            written[i] = Some(Written::Resent(original));
            resend[i] = true;
        }
        let mut rooms: Vec<Room<'_>> = Vec::new();
        let mut room_of: HashMap<&str, usize> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            if resend[i] {
                continue;
            }
            let r = *room_of.entry(key).or_insert_with(|| {
                rooms.push(Room {
                    key,
                    members: Vec::new(),
                    first: 0,
                    last: 0,
                    epoch: String::new(),
                    files: 0,
                });
                rooms.len() - 1
            });
            rooms[r].members.push(i);
        }
        // Each room's ids, one after another in the order of its records.
        let mut stored: Vec<(usize, usize)> = Vec::new();
        for (r, room) in rooms.iter_mut().enumerate() {
            let n = room.members.len() as u64;
            let (last, epoch) =
                self.take_ids(room.key, &appends[room.members[0]].record.room, n)?;
            room.first = last + 1 - n;
            room.last = last;
            room.epoch = epoch;
            for (k, &i) in room.members.iter().enumerate() {
                appends[i].record.id = room.first + k as u64;
                stored.push((i, r));
            }
        }
        // In the order they were sent, whatever their rooms.
        stored.sort_unstable();
        RECORDS.run(&self.conn, &stored, |statement, at, &(i, r)| {
            bind_record(statement, at, rooms[r].key, &appends[i].record)
        })?;
        let files: Vec<(usize, usize)> = stored
            .iter()
            .copied()
            .filter(|&(i, _)| is_file_with_bytes(&appends[i]))
            .collect();
        FILES.run(&self.conn, &files, |statement, at, &(i, r)| {
            let bytes = appends[i].data.as_deref().unwrap_or_default();
            statement.raw_bind_parameter(at, rooms[r].key)?;
            statement.raw_bind_parameter(at + 1, appends[i].record.id)?;
            statement.raw_bind_parameter(at + 2, bytes.len())?;
            statement.raw_bind_parameter(at + 3, bytes)
        })?;
        let mut added = 0;
        for &(i, r) in &files {
            let bytes = appends[i].data.as_ref().map_or(0, |d| d.len() as u64);
            rooms[r].files += bytes;
            added += bytes;
        }
        for room in &rooms {
            retention::count_range(&self.conn, room.key, room.first, room.last, room.files)?;
        }
        for &(i, r) in &stored {
            let bytes = if is_file_with_bytes(&appends[i]) {
                appends[i].data.as_ref().map_or(0, |d| d.len() as u64)
            } else {
                0
            };
            written[i] = Some(Written::Stored {
                bytes,
                epoch: rooms[r].epoch.clone(),
            });
        }
        for (i, before) in again {
            let original = match &written[before] {
                Some(Written::Resent(original)) => original.clone(),
                Some(Written::Stored { .. }) => as_stored(&appends[before]),
                // Every append is stored or a resend by now.
                None => continue,
            };
            written[i] = Some(Written::Resent(Record {
                room: appends[i].record.room.clone(),
                ..original
            }));
        }
        Ok((written, added))
    }

    /// Of the appends `asking`, those whose sender already stored their
    /// `cid` in the room, with the record stored then: a room's are looked
    /// up together, a statement for many `cid`s.
    fn sent_before_all(
        &self,
        appends: &[Pending],
        keys: &[String],
        asking: &[usize],
    ) -> rusqlite::Result<Vec<(usize, Record)>> {
        let mut found = Vec::new();
        let mut rooms: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in asking {
            match rooms.iter_mut().find(|(key, _)| *key == keys[i]) {
                Some((_, members)) => members.push(i),
                None => rooms.push((&keys[i], vec![i])),
            }
        }
        for (key, members) in rooms {
            let mut rest = &members[..];
            while !rest.is_empty() {
                let power = rest.len().min(GROUP).ilog2();
                let (chunk, after) = rest.split_at(1 << power);
                let mut statement = self.conn.prepare_cached(by_cid(power))?;
                statement.raw_bind_parameter(1, key)?;
                for (k, &i) in chunk.iter().enumerate() {
                    statement.raw_bind_parameter(k + 2, &appends[i].record.cid)?;
                }
                let mut rows = statement.raw_query();
                let mut taken = vec![false; chunk.len()];
                // Oldest first for each `cid`, as the index has them.
                while let Some(row) = rows.next()? {
                    let stored = record(row)?;
                    let asked = (0..chunk.len()).find(|&k| {
                        let sent = &appends[chunk[k]].record;
                        !taken[k] && sent.from == stored.from && sent.cid == stored.cid
                    });
                    if let Some(k) = asked {
                        taken[k] = true;
                        found.push((chunk[k], stored));
                    }
                }
                rest = after;
            }
        }
        Ok(found)
    }
}

/// The records stored in a room (`?1`) under any of `1 << power` `cid`s.
fn by_cid(power: u32) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=GROUP.ilog2())
            .map(|p| {
                // Without statistics SQLite would rather walk the room's
                // whole primary key than take this index: it is named.
                format!(
                    "{RECORD_BY_CID} WHERE r.room = ?1 AND r.cid IN ({}) AND r.cid IS NOT NULL",
                    vec!["?"; 1 << p].join(", ")
                )
            })
            .collect()
    });
    &all[power as usize]
}

/// Whether an append is a file whose bytes are stored with it.
fn is_file_with_bytes(pending: &Pending) -> bool {
    matches!(pending.record.body, Body::File { .. }) && pending.data.is_some()
}

/// A record just stored, as reading it back would give it.
fn as_stored(pending: &Pending) -> Record {
    let mut record = pending.record.clone();
    if let Body::File { available, .. } = &mut record.body {
        *available = pending.data.is_some();
    }
    record
}

/// Binds a row of `records` from parameter `at` on.
fn bind_record(
    statement: &mut Statement<'_>,
    at: usize,
    key: &str,
    record: &Record,
) -> rusqlite::Result<()> {
    let (name, size, mime) = match &record.body {
        Body::File {
            name, size, mime, ..
        } => (Some(name), Some(*size), Some(mime)),
        _ => (None, None, None),
    };
    let (kind, target) = record.body.change_columns();
    statement.raw_bind_parameter(at + 9, kind)?;
    statement.raw_bind_parameter(at + 10, target)?;
    let text = record.body.text();
    statement.raw_bind_parameter(at, key)?;
    statement.raw_bind_parameter(at + 1, record.id)?;
    statement.raw_bind_parameter(at + 2, &record.from)?;
    statement.raw_bind_parameter(at + 3, record.ts)?;
    statement.raw_bind_parameter(at + 4, &record.cid)?;
    statement.raw_bind_parameter(at + 5, text)?;
    statement.raw_bind_parameter(at + 6, name)?;
    statement.raw_bind_parameter(at + 7, size)?;
    statement.raw_bind_parameter(at + 8, mime)
}
