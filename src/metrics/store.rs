//! What the embedded history store counts for the metrics and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The history store's counts (`history/sqlite`), kept by its threads and
/// read at each scrape; every field is updated with plain atomic stores.
#[derive(Debug, Default)]
pub(crate) struct StoreStats {
    /// Records committed since the store was opened.
    pub(crate) records_written: AtomicU64,
    /// Records that could not be written.
    pub(crate) write_errors: AtomicU64,
    /// Opens and fetches that could not read the database.
    pub(crate) read_errors: AtomicU64,
    /// Requests sent to the store thread and not yet taken up by it.
    pub(crate) queue_len: AtomicU64,
    /// File bytes stored now.
    pub(crate) file_bytes: AtomicU64,
    /// Everything stored now, as counted against `retain_bytes`: files'
    /// bytes and records (see `retention`).
    pub(crate) stored_bytes: AtomicU64,
    /// Set when a write fails, cleared by the next write that commits (the
    /// store thread tries one every second while it is set): `/readyz`
    /// answers 503 meanwhile.
    pub(crate) failing: AtomicBool,
}

impl StoreStats {
    /// Whether the last write failed and none has committed since.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}
