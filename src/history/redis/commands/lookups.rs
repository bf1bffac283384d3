//! Clients' lookups with `--redis`: an older page of a room's history,
//! read backwards from the room's stream (`XREVRANGE`), and a search by
//! words, which Redis cannot index: it reads through at most
//! [`REDIS_SEARCH_SCAN`] of the room's newest entries.

use crate::history::lookup::{Ask, Found, Lookup, REDIS_SEARCH_SCAN, within_bytes};
use crate::history::redis::entry::Wire;
use crate::history::redis::keys;
use crate::history::sqlite::{Body, Record};
use crate::proto::lookup::words;

use super::Worker;

/// Entries read from the stream at a time while searching.
const SCAN_CHUNK: usize = 500;

impl Worker {
    /// Reads what `lookup` asks and hands it its answer.
    pub(super) fn lookup(&mut self, lookup: Lookup) {
        let read = match &lookup.ask {
            Ask::History { before, limit } => {
                self.page(&lookup.room, before.unwrap_or(u64::MAX), *limit)
            }
            Ask::Search { words, limit, .. } => {
                self.search(&lookup.room, words, *limit).map(Found::Search)
            }
        };
        let mut found = match read {
            Ok(found) => found,
            Err(e) => {
                self.lost(&e);
                Found::Failed
            }
        };
        if let Found::History { records, .. } | Found::Search(records) = &mut found {
            for record in records {
                lookup.room.clone_into(&mut record.room);
            }
        }
        (lookup.answer)(found);
    }

    /// The newest `limit` records below `before`, oldest first, and
    /// whether nothing older is kept.
    fn page(&mut self, room: &str, before: u64, limit: usize) -> redis::RedisResult<Found> {
        if before <= 1 {
            return Ok(Found::History {
                records: Vec::new(),
                complete: true,
            });
        }
        let last = format!("0-{}", before - 1);
        // One more than asked says whether anything older is kept.
        let read = self.read(room, "-", &last, limit + 1, true)?;
        let mut records: Vec<Record> = read.arrivals.into_iter().map(|a| a.record).collect();
        let mut complete = records.len() <= limit;
        records.truncate(limit);
        if within_bytes(&mut records) {
            complete = false;
        }
        records.reverse();
        Ok(Found::History { records, complete })
    }

    /// The newest `limit` messages among the room's newest
    /// [`REDIS_SEARCH_SCAN`] entries that hold every one of `wanted`.
    fn search(
        &mut self,
        room: &str,
        wanted: &[String],
        limit: usize,
    ) -> redis::RedisResult<Vec<Record>> {
        let log = keys::Room::new(room).log();
        let mut found = Vec::new();
        let mut end = "+".to_owned();
        let mut scanned = 0;
        while scanned < REDIS_SEARCH_SCAN && found.len() < limit {
            let count = SCAN_CHUNK.min(REDIS_SEARCH_SCAN - scanned);
            let conn = self.connected()?;
            let rows: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
                .arg(&log)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query(conn)?;
            scanned += rows.len();
            let Some((oldest, _)) = rows.last() else {
                break;
            };
            let next = oldest
                .strip_prefix("0-")
                .and_then(|id| id.parse::<u64>().ok())
                .unwrap_or(0);
            let short = rows.len() < count;
            for (_, fields) in &rows {
                let Some(arrival) = fields
                    .get(1)
                    .and_then(|json| Wire::parse(json))
                    .and_then(|wire| wire.into_arrival(false))
                else {
                    continue;
                };
                if let Body::Text(text) = &arrival.record.body {
                    let have: Vec<String> = words(text).collect();
                    if wanted.iter().all(|w| have.contains(w)) && found.len() < limit {
                        found.push(arrival.record);
                    }
                }
            }
            if short || next <= 1 {
                break;
            }
            end = format!("0-{}", next - 1);
        }
        within_bytes(&mut found);
        Ok(found)
    }
}
