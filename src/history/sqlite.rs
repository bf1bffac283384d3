//! The history store: rooms' messages, file announcements and file bytes,
//! kept in an embedded SQLite database so that they outlive the process.
//!
//! One thread owns the database's only writing connection (see
//! [`Store::spawn`]). The dispatcher talks to it through an unbounded
//! channel of [`Request`]s and never waits for it: answers come back as
//! [`Reply`]s through a callback, which the dispatcher turns into events of
//! its own channel. Appends already waiting are written together, in one
//! transaction with one commit, so a busy server pays for one disk sync per
//! group rather than one per message. Resumes' fetches are read on a thread
//! of their own, and files are served over HTTP from any thread, through a
//! [`Reader`], whose connections only read (in WAL mode, beside the writer,
//! without waiting for it).
//!
//! The layout and its migrations are in `schema`; `writer` is the store
//! thread; `reads` answers fetches; `reader` holds the read-only
//! connections and serves stored files. `docs/STORE.md` tells what survives
//! a crash and what the bounds are.

use crate::logs as log;

mod checkpointer;
mod complaints;
mod fold;
mod index;
mod lookups;
mod pace;
mod reader;
mod reads;
#[macro_use]
mod retention;
// After `retention`, whose cost macros its trigger uses.
mod changes;
mod rows;
mod schema;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::Sender;
use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use crate::history::Origin;
pub(crate) use crate::history::{Body, FetchFor, Outcome, Record, Reply, Request};
pub(crate) use reader::{Reader, StoredFile};
pub(crate) use writer::{new_epoch, random_u64};

/// How long a connection waits for a lock held by another connection before
/// giving up with "database is locked". Only a checkpoint or another
/// process holds one for long; a reader never blocks the writer in WAL mode.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection to a memory database sleeps before it tries
/// again for a lock another holds.
const BRIEF_WAIT: Duration = Duration::from_micros(200);

/// SQLite holds a memory database to 1 GiB; within that, everything stored
/// is kept to this much (whatever `retain_bytes` says), so that records are
/// evicted before new ones fail to fit.
const MEMORY_FILE_BYTES: u64 = 768 << 20;

/// Bytes the write-ahead log is truncated to after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// How the store is opened. Both bounds apply to what is kept on disk; the
/// dispatcher's own in-memory history is bounded separately.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database file, created if missing (its directory must exist), or
    /// `":memory:"` for a database that lasts as long as the process.
    pub(crate) path: String,
    /// Messages and file announcements kept per room; older ones are deleted
    /// first. 0 keeps none (each room's epoch and last id are still kept).
    pub(crate) retain_messages: usize,
    /// File bytes kept, all rooms together; the oldest files' bytes are
    /// deleted first, and their announcements stay, marked unavailable.
    /// A memory database keeps at most 768 MiB, whatever this says.
    pub(crate) retain_bytes: u64,
    /// Sync to disk on every commit (`synchronous=FULL`), so that committed
    /// records survive a power loss too; otherwise (`NORMAL`) they survive a
    /// crash of the process but a power loss may take the last few.
    pub(crate) fsync: bool,
}

/// Why the store could not be opened or used. Every message names the file.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be opened or created: its directory is missing or
    /// is not a directory, or this user may not create the file (or the
    /// write-ahead log beside it) there.
    CannotOpen {
        /// The database file.
        path: String,
        /// SQLite's own words.
        source: rusqlite::Error,
    },
    /// The file can only be read, by this user or on a read-only file
    /// system.
    ReadOnly {
        /// The database file.
        path: String,
    },
    /// The file exists but is not an SQLite database.
    NotADatabase {
        /// The file.
        path: String,
    },
    /// The file is an SQLite database with tables but no wschat schema
    /// version: another program's database, which the store will not write
    /// into.
    Foreign {
        /// The database file.
        path: String,
    },
    /// The database was written by a newer wschat, whose schema this one
    /// does not know.
    TooNew {
        /// The database file.
        path: String,
        /// Its schema version.
        version: i64,
        /// The newest this wschat knows.
        known: i64,
    },
    /// Any other failure of the database.
    Database {
        /// The database file.
        path: String,
        /// SQLite's own words.
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Classifies a failure of opening `path`, so that the common mistakes
    /// get a message that says what to do.
    fn at_open(path: &str, source: rusqlite::Error) -> StoreError {
        let path = path.to_owned();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                StoreError::CannotOpen { path, source }
            }
            _ => StoreError::Database { path, source },
        }
    }

    fn database(path: &str, source: rusqlite::Error) -> StoreError {
        StoreError::Database {
            path: path.to_owned(),
            source,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CannotOpen { path, source } => write!(
                f,
                "cannot open the history store {path}: {source} (its directory must exist \
                 and be writable by this user)"
            ),
            StoreError::ReadOnly { path } => write!(
                f,
                "the history store {path} can only be read: this user must be able to write \
                 the file and its directory"
            ),
            StoreError::NotADatabase { path } => write!(
                f,
                "{path} is not an SQLite database; give the history store a new file's path \
                 or a wschat store"
            ),
            StoreError::Foreign { path } => write!(
                f,
                "{path} is another program's SQLite database (it has tables but no wschat \
                 schema version); the history store will not write into it"
            ),
            StoreError::TooNew {
                path,
                version,
                known,
            } => write!(
                f,
                "the history store {path} has schema version {version}, newer than this \
                 wschat knows ({known}); run a newer wschat, or move the file away"
            ),
            StoreError::Database { path, source } => write!(f, "history store {path}: {source}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::CannotOpen { source, .. } | StoreError::Database { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// The store's counts, read by `/metrics` and `/readyz`: defined with the
/// metrics, which read them, so that the metrics import nothing above them.
pub(crate) use crate::metrics::store::StoreStats as Stats;

/// The opened store, before its thread is started.
pub struct Store {
    conn: Connection,
    options: Options,
    reader: Reader,
    stats: Arc<Stats>,
    /// A database file, whose log is checkpointed by a thread of its own.
    checkpointed: Option<Location>,
}

/// Sends requests to the store thread; cheap to clone.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    inbox: Sender<Request>,
    stats: Arc<Stats>,
}

/// Where the database lives, and how each connection reaches it.
#[derive(Debug, Clone)]
enum Location {
    /// A file, opened by its path as given (not as a URI).
    File(String),
    /// A process-private database of the `memdb` VFS, reached by a URI; any
    /// connection of this process opening the same URI shares it.
    Memory(String),
}

impl Location {
    fn for_path(path: &str) -> Location {
        if path == ":memory:" {
            Location::Memory(format!(
                "file:/wschat-mem-{}-{:016x}?vfs=memdb",
                std::process::id(),
                writer::random_u64()
            ))
        } else {
            Location::File(path.to_owned())
        }
    }

    fn connect(&self, write: bool) -> rusqlite::Result<Connection> {
        let mode = if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let flags = mode | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = match self {
            Location::File(path) => Connection::open_with_flags(Path::new(path), flags)?,
            Location::Memory(uri) => {
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
            }
        };
        match self {
            Location::File(_) => conn.busy_timeout(BUSY_TIMEOUT)?,
            // No WAL here: a commit waits for the reads under way, and a read
            // for the commit. SQLite's own waits grow to 100 ms at a time,
            // far longer than either takes; these stay short.
            Location::Memory(_) => conn.busy_handler(Some(wait_briefly))?,
        }
        Ok(conn)
    }
}

/// A memory database's busy handler: waits [`BRIEF_WAIT`] at a time, until
/// [`BUSY_TIMEOUT`] has passed in all.
fn wait_briefly(attempts: i32) -> bool {
    let waited = BRIEF_WAIT * attempts.max(0) as u32;
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    thread::sleep(BRIEF_WAIT);
    true
}

/// Creates a database file that does not exist yet, empty and readable by
/// this user only (0600, whatever the umask): it holds every message. SQLite
/// gives the `-wal` and `-shm` files it makes beside it the same mode. An
/// existing file is left as it is; a file that cannot be made here is left
/// to SQLite, whose error names the problem.
fn create_private(path: &str) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    if let Ok(file) = made {
        // `mode` is filtered by the umask; a umask never adds bits, but an
        // odd one (0177 and friends) could take the owner's away.
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
}

/// Opens (or creates) the store and brings its schema up to date. Meant for
/// start-up, on the main thread: every error says which file and why.
pub fn open(options: &Options) -> Result<Store, StoreError> {
    let path = options.path.as_str();
    let location = Location::for_path(path);
    if let Location::File(file) = &location {
        create_private(file);
    }
    let mut conn = location
        .connect(true)
        .map_err(|e| StoreError::at_open(path, e))?;
    if conn.is_readonly("main").unwrap_or(false) {
        return Err(StoreError::ReadOnly {
            path: path.to_owned(),
        });
    }
    schema::check(&conn, path)?;
    if let Location::File(_) = location {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| StoreError::at_open(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!(
                "event=store_no_wal path={path:?} journal_mode={mode:?} msg=\"readers will wait \
                 for writes\""
            );
        }
    }
    let checkpointed = match location {
        Location::File(_) => {
            // The checkpoint thread keeps the log short; the writer
            // checkpoints by itself only if that thread falls far behind.
            conn.pragma_update(
                None,
                "wal_autocheckpoint",
                checkpointer::WRITER_CHECKPOINT_PAGES,
            )
            .map_err(|e| StoreError::at_open(path, e))?;
            Some(location.clone())
        }
        Location::Memory(_) => None,
    };
    // The log is truncated back to this after a checkpoint that grew it
    // (one group with big files may), so that it does not keep the space.
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(|e| StoreError::at_open(path, e))?;
    let sync = if options.fsync { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(|e| StoreError::at_open(path, e))?;
    schema::migrate(&mut conn, path, schema::MIGRATIONS)?;
    let stats = Arc::new(Stats::default());
    let file_bytes: i64 = conn
        .query_row("SELECT COALESCE(SUM(size), 0) FROM file_bytes", [], |row| {
            row.get(0)
        })
        .map_err(|e| StoreError::database(path, e))?;
    stats
        .file_bytes
        .store(file_bytes.max(0) as u64, Ordering::Relaxed);
    // A memory database lives while a connection to it is open; the
    // reader's pool keeps one for as long as the store or a reader lives.
    let keeper = match location {
        Location::Memory(_) => Some(
            location
                .connect(false)
                .map_err(|e| StoreError::database(path, e))?,
        ),
        Location::File(_) => None,
    };
    let in_memory = keeper.is_some();
    let reader = Reader::new(path, location, keeper);
    let mut options = options.clone();
    if in_memory {
        options.retain_bytes = options.retain_bytes.min(MEMORY_FILE_BYTES);
    }
    Ok(Store {
        conn,
        options,
        reader,
        stats,
        checkpointed,
    })
}

impl Store {
    /// Moves the store to its own thread, named `store`, and starts the
    /// thread that reads fetches beside it (`store-reads`). Replies are
    /// handed to `reply`, on those threads, in the order of the requests,
    /// but for `Fetched`. The store thread ends after a
    /// [`Request::Shutdown`] (having written and answered everything sent
    /// before it, fetches included), or when every handle is dropped; the
    /// returned handle is joined once both threads have ended.
    pub(crate) fn spawn(
        self,
        reply: Box<dyn Fn(Reply) + Send + Sync>,
    ) -> std::io::Result<(StoreHandle, JoinHandle<()>)> {
        let (inbox, requests) = crossbeam_channel::unbounded();
        let handle = StoreHandle {
            inbox,
            stats: self.stats.clone(),
        };
        let checkpointer = self
            .checkpointed
            .and_then(|location| checkpointer::spawn(&location, &self.options.path));
        let reply: Arc<dyn Fn(Reply) + Send + Sync> = Arc::from(reply);
        let (reads, reads_thread) = reads::Reads::spawn(
            self.reader.clone(),
            self.stats.clone(),
            self.options.path.clone(),
            reply.clone(),
        )?;
        let writer = writer::Writer::new(
            self.conn,
            self.options,
            self.stats,
            self.reader,
            Box::new(move |r| reply(r)),
            reads,
        );
        let thread = thread::Builder::new().name("store".into()).spawn(move || {
            // The checkpoint thread ends with the writer's.
            let _checkpointer = checkpointer;
            // The writer, dropped at its end, lets the reads thread finish
            // the fetches handed to it and end too.
            writer.run(&requests);
            let _ = reads_thread.join();
        })?;
        Ok((handle, thread))
    }

    /// The random key that signs file URLs without `--auth-secret`: made
    /// the first time it is asked for and kept in the database, so that URLs
    /// given out before a restart still work after it. `fresh` is kept if
    /// there is none yet.
    pub(crate) fn file_url_key(&self, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let path = &self.options.path;
        let fail = |e| StoreError::database(path, e);
        self.conn
            .execute(
                "INSERT OR IGNORE INTO server_keys (name, value) VALUES ('file_urls', ?1)",
                [&fresh[..]],
            )
            .map_err(fail)?;
        let key: Vec<u8> = self
            .conn
            .query_row(
                "SELECT value FROM server_keys WHERE name = 'file_urls'",
                [],
                |row| row.get(0),
            )
            .map_err(fail)?;
        key.try_into().map_err(|_| {
            fail(rusqlite::Error::InvalidColumnType(
                0,
                "value".into(),
                rusqlite::types::Type::Blob,
            ))
        })
    }

    /// A handle for reading stored files from any thread.
    pub(crate) fn reader(&self) -> Reader {
        self.reader.clone()
    }

    pub(crate) fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

impl StoreHandle {
    /// A handle to another implementation of the store's interface (the
    /// shared rooms' command thread), which keeps no [`Stats`].
    pub fn from_sender(inbox: Sender<Request>) -> StoreHandle {
        StoreHandle {
            inbox,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Queues a request; never blocks. Returns false, dropping the request,
    /// when the store thread has ended.
    pub(crate) fn send(&self, request: Request) -> bool {
        self.stats.queue_len.fetch_add(1, Ordering::Relaxed);
        if self.inbox.send(request).is_ok() {
            return true;
        }
        self.stats.queue_len.fetch_sub(1, Ordering::Relaxed);
        false
    }
}
