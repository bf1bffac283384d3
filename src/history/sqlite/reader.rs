//! Read-only connections to the store, for reading from any thread: stored
//! files (to serve `GET /files/…`) and resumes' fetches (`reads.rs`).
//!
//! Each read takes a connection of its own from a small pool, opened
//! read-only. In WAL mode a reader sees the last commit and neither waits
//! for the writer nor holds it up; a memory database uses SQLite's ordinary
//! locks instead, and a reader may wait there while a commit is written.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};

use super::{Location, StoreError};

/// Connections kept open between reads; more are opened when reads overlap,
/// and closed after.
const IDLE_CONNECTIONS: usize = 4;

/// Page cache of each reading connection, in KiB. SQLite's default (2 MiB)
/// would fill as a download streams through a large file, and there is a
/// connection per download under way; the pages are read once, so a small
/// cache loses nothing.
const READER_CACHE_KIB: i64 = 256;

/// A stored file, for an HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredFile {
    pub name: String,
    pub mime: String,
    /// The number of bytes stored: the whole file's, also when `bytes`
    /// holds only a range of it.
    pub size: u64,
    /// When it was sent, in milliseconds since the Unix epoch.
    pub ts: u64,
    pub bytes: Vec<u8>,
}

/// Reads the store from any thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct Reader {
    shared: Arc<Shared>,
}

struct Shared {
    /// For error messages: the path as given.
    path: String,
    location: Location,
    idle: Mutex<Vec<Connection>>,
    /// A memory database is dropped with its last connection; this one,
    /// never used, keeps it for as long as the store or a reader lives.
    _keeper: Option<Mutex<Connection>>,
}

/// A file's meta, and where its bytes are.
const FILE: &str = "SELECT r.file_name, r.file_mime, f.size, r.ts, f.seq \
    FROM records r JOIN file_bytes f ON f.room = r.room AND f.id = r.id \
    WHERE r.room = ?1 AND r.id = ?2 AND r.file_name IS NOT NULL";

impl Reader {
    pub(super) fn new(path: &str, location: Location, keeper: Option<Connection>) -> Reader {
        Reader {
            shared: Arc::new(Shared {
                path: path.to_owned(),
                location,
                idle: Mutex::new(Vec::new()),
                _keeper: keeper.map(Mutex::new),
            }),
        }
    }

    /// A stored file's meta and bytes, for `GET /files/ROOM/ID/NAME`; `None`
    /// if there is no such file or its bytes were evicted.
    #[cfg(test)]
    pub fn file(&self, room: &str, id: u64) -> Result<Option<StoredFile>, StoreError> {
        self.read_range(room, id, 0, u64::MAX)
    }

    /// As [`Reader::file`], with only `len` bytes from `start` (fewer at the
    /// end of the file; none when `start` is past it) in `bytes`, read
    /// without loading the rest, for answering a `Range` request. `size` is
    /// still the whole file's.
    pub fn read_range(
        &self,
        room: &str,
        id: u64,
        start: u64,
        len: u64,
    ) -> Result<Option<StoredFile>, StoreError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let key = super::fold::room_key(room);
        self.with(|conn| {
            // One snapshot: the file cannot be evicted, and its row id taken
            // by another, between finding it and reading it.
            let tx = conn.transaction()?;
            // A file of a look-alike room merged into another by the fold
            // (schema version 4) was given a new id there; its old URL
            // still names it by its old spelling and id.
            let moved: Option<i64> = tx
                .prepare_cached("SELECT id FROM moved_files WHERE spelling = ?1 AND old_id = ?2")?
                .query_row(params![room, id], |row| row.get(0))
                .optional()?;
            let id = moved.unwrap_or(id);
            let found = tx
                .prepare_cached(FILE)?
                .query_row(params![key, id], |row| {
                    let file = StoredFile {
                        name: row.get(0)?,
                        mime: row.get(1)?,
                        size: row.get(2)?,
                        ts: row.get(3)?,
                        bytes: Vec::new(),
                    };
                    Ok((file, row.get::<_, i64>(4)?))
                })
                .optional()?;
            let Some((mut file, seq)) = found else {
                return Ok(None);
            };
            let from = start.min(file.size);
            let count = len.min(file.size - from);
            let blob = tx.blob_open(MAIN_DB, "file_bytes", "bytes", seq, true)?;
            file.bytes = vec![0; count as usize];
            blob.read_at_exact(&mut file.bytes, from as usize)?;
            drop(blob);
            Ok(Some(file))
        })
    }

    /// Whether the database answers. (`/readyz` does not ask it yet.)
    #[cfg(test)]
    pub fn ping(&self) -> bool {
        self.with(|conn| conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0)))
            .is_ok()
    }

    /// Runs `read` on a pooled connection.
    pub(super) fn with<T>(
        &self,
        read: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let shared = &*self.shared;
        let fail = |e| StoreError::database(&shared.path, e);
        let pooled = shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = shared.location.connect(false).map_err(fail)?;
                // Negative: a size in KiB rather than in pages.
                conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
                    .map_err(fail)?;
                conn
            }
        };
        let result = read(&mut conn).map_err(fail)?;
        let mut idle = shared.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        Ok(result)
    }
}
