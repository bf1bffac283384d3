//! Checkpoints of the write-ahead log, off the writer's path.
//!
//! SQLite's own checkpoint runs inside the commit that leaves the log 1,000
//! pages long, on the writing connection: it copies the log's pages into
//! the database file and syncs it, and every message waiting for a commit
//! waits for that sync too (hundreds of milliseconds on a busy disk). Since
//! a message is delivered only once committed, that would be a pause in
//! every room. So the writer checkpoints by itself only past
//! [`WRITER_CHECKPOINT_PAGES`], a bound should this thread fall behind, and
//! this thread runs a PASSIVE checkpoint every [`INTERVAL`] on a connection
//! of its own, beside the writes: a PASSIVE checkpoint never waits for the
//! writer nor holds it up, and the writer starts the log over once a
//! checkpoint has copied all of it.

use crate::logs as log;

use std::thread;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::Location;

/// How often the log is checkpointed.
const INTERVAL: Duration = Duration::from_millis(200);

/// The log's length, in pages, at which the writing connection checkpoints
/// by itself (64 MiB of 4 KiB pages): only reached if this thread cannot
/// keep up.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 16_384;

/// Starts the checkpoint thread for a database file; it ends when the
/// returned sender is dropped. `None` if it could not be started (the
/// writer's own checkpoints, at their higher bound, still run).
pub(super) fn spawn(location: &Location, path: &str) -> Option<Sender<()>> {
    let conn = match location.connect(true) {
        Ok(conn) => conn,
        Err(e) => {
            log::warn!(
                "event=store_checkpointer path={path:?} error={:?} msg=\"no checkpoint thread; \
                 the writer checkpoints by itself\"",
                e.to_string()
            );
            return None;
        }
    };
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let path = path.to_owned();
    let started = thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                });
                match result {
                    Ok((log, copied)) => {
                        log::trace!("event=checkpoint log={log} copied={copied}")
                    }
                    Err(e) => log::debug!(
                        "event=checkpoint_failed path={path:?} error={:?}",
                        e.to_string()
                    ),
                }
            }
        });
    match started {
        Ok(_) => Some(stop),
        Err(e) => {
            log::warn!("event=store_checkpointer error={:?}", e.to_string());
            None
        }
    }
}
