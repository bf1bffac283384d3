//! Clients' lookups with `--redis`: an older page of a room's history,
//! read backwards from the room's stream (`XREVRANGE`), and a search by
//! words, which Redis cannot index: it reads through at most
//! [`REDIS_SEARCH_SCAN`] of the room's newest entries.
//!
//! They are read on a thread of their own (`redis-lookups`), on a
//! connection of its own, so that a search's scan never holds up the
//! command thread's appends. The command thread hands each on once the
//! appends before it are written, so it sees them.

use crate::logs as log;

use std::thread;

use crossbeam_channel::Sender;

use super::Worker;
use crate::history::lookup::{Ask, Found, Lookup, REDIS_SEARCH_SCAN, within_bytes};
use crate::history::redis::COMMAND_TIMEOUT;
use crate::history::redis::entry::Wire;
use crate::history::redis::keys;
use crate::history::redis::link::{Link, Target};
use crate::history::sqlite::{Body, Record};
use crate::proto::lookup::words;

/// Entries read from the stream at a time while searching.
const SCAN_CHUNK: usize = 500;

/// Hands lookups to the lookups thread, which ends once this is dropped
/// (with the command thread), having answered those handed to it.
pub(super) struct Lookups {
    inbox: Sender<Lookup>,
}

impl Lookups {
    fn spawn(target: Target) -> Option<Lookups> {
        let (inbox, lookups) = crossbeam_channel::unbounded::<Lookup>();
        let mut reader = Reader { target, conn: None };
        let spawned = thread::Builder::new()
            .name("redis-lookups".into())
            .spawn(move || {
                for lookup in lookups {
                    reader.answer(lookup);
                }
            });
        match spawned {
            Ok(_) => Some(Lookups { inbox }),
            Err(e) => {
                log::error!("event=thread_failed thread=redis-lookups error={e:?}");
                None
            }
        }
    }
}

impl Worker {
    /// Hands `lookup` to the lookups thread, started the first time.
    pub(super) fn lookup(&mut self, lookup: Lookup) {
        if self.lookups.is_none() {
            self.lookups = Lookups::spawn(self.target.clone());
        }
        let lookup = match &self.lookups {
            Some(lookups) => match lookups.inbox.send(lookup) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            None => lookup,
        };
        (lookup.answer)(Found::Failed);
    }
}

/// The lookups thread's side: its own connection, made when first needed
/// and again after a failure.
struct Reader {
    target: Target,
    conn: Option<Link>,
}

impl Reader {
    fn answer(&mut self, lookup: Lookup) {
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
                // A late answer must not be taken for the next command's.
                self.conn = None;
                log::warn!(
                    "event=redis_lookup_failed room={:?} error={:?}",
                    lookup.room,
                    e.to_string()
                );
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

    fn conn(&mut self) -> redis::RedisResult<&mut Link> {
        if self.conn.is_none() {
            self.conn = Some(self.target.connect(COMMAND_TIMEOUT)?);
        }
        Ok(self.conn.as_mut().expect("just made"))
    }

    /// At most `count` of the room's entries with ids up to `last`, newest
    /// first; the id before the oldest read (0 when the stream ended); and
    /// how many were read.
    fn entries(
        &mut self,
        room: &str,
        last: u64,
        count: usize,
    ) -> redis::RedisResult<(Vec<Record>, u64, usize)> {
        let rows: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XREVRANGE")
            .arg(keys::Room::new(room).log())
            .arg(format!("0-{last}"))
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query(self.conn()?)?;
        let next = match rows.last() {
            Some((oldest, _)) if rows.len() == count => oldest
                .strip_prefix("0-")
                .and_then(|id| id.parse::<u64>().ok())
                .map_or(0, |id| id.saturating_sub(1)),
            _ => 0,
        };
        let read = rows.len();
        let records = rows
            .into_iter()
            .filter_map(|(_, fields)| {
                let arrival = Wire::parse(fields.get(1)?)?.into_arrival(true)?;
                Some(arrival.record)
            })
            .collect();
        Ok((records, next, read))
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
        // One more than asked says whether anything older is kept.
        let (mut records, _, _) = self.entries(room, before - 1, limit + 1)?;
        let mut complete = records.len() <= limit;
        records.truncate(limit);
        if within_bytes(&mut records) {
            complete = false;
        }
        self.files_kept(room, &mut records)?;
        records.reverse();
        Ok(Found::History { records, complete })
    }

    /// Marks the files among `records` whose bytes Redis no longer keeps.
    fn files_kept(&mut self, room: &str, records: &mut [Record]) -> redis::RedisResult<()> {
        let files = keys::Room::new(room).files();
        let mut pipe = redis::pipe();
        for record in records.iter() {
            if let Body::File { .. } = record.body {
                pipe.cmd("HEXISTS").arg(&files).arg(record.id);
            }
        }
        if pipe.is_empty() {
            return Ok(());
        }
        let kept: Vec<bool> = pipe.query(self.conn()?)?;
        let mut kept = kept.into_iter();
        for record in records.iter_mut() {
            if let Body::File { available, .. } = &mut record.body {
                *available = kept.next().unwrap_or(false);
            }
        }
        Ok(())
    }

    /// The newest `limit` messages among the room's newest
    /// [`REDIS_SEARCH_SCAN`] entries that hold every one of `wanted`.
    fn search(
        &mut self,
        room: &str,
        wanted: &[String],
        limit: usize,
    ) -> redis::RedisResult<Vec<Record>> {
        let mut found = Vec::new();
        let mut last = u64::MAX >> 1;
        let mut scanned = 0;
        while scanned < REDIS_SEARCH_SCAN && found.len() < limit && last > 0 {
            let count = SCAN_CHUNK.min(REDIS_SEARCH_SCAN - scanned);
            let (records, next, read) = self.entries(room, last, count)?;
            scanned += read;
            for record in records {
                if let Body::Text(text) = &record.body {
                    let have: Vec<String> = words(text).collect();
                    if wanted.iter().all(|w| have.contains(w)) && found.len() < limit {
                        found.push(record);
                    }
                }
            }
            last = next;
        }
        within_bytes(&mut found);
        Ok(found)
    }
}
