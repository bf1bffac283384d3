//! Opening a room: its epoch, last id and newest records, read by the
//! writer so that they follow every append sent before; and the epochs
//! handed out for rooms that have no row yet.

use std::sync::atomic::Ordering;

use rusqlite::{OptionalExtension, params};

use super::super::fold::room_key;
use super::super::rows::{RECORD, record};
use super::{Record, Reply, Writer, new_epoch};

/// Rooms opened but not yet written to whose epochs are remembered.
const PENDING_EPOCHS: usize = 65_536;

/// A room's row: its epoch and the spelling it is shown by.
type RoomRow = (String, String);

impl Writer {
    /// Loads a room. A room without history gets an epoch, which is
    /// written with its first record: opening a room writes nothing, so
    /// rooms that are only visited leave no trace in the database.
    pub(super) fn open(&mut self, room: String, recent: usize) -> Reply {
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
        let mut records = self
            .conn
            .prepare_cached(&format!(
                "{RECORD} WHERE r.room = ?1 ORDER BY r.id DESC LIMIT ?2"
            ))?
            .query_map(params![room, recent.min(i64::MAX as usize)], record)?
            .collect::<rusqlite::Result<Vec<Record>>>()?;
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
}
