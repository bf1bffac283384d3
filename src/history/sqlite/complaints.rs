//! Error lines a failing disk may write, kept few: shared by the writer
//! and the reads thread.

use std::time::{Duration, Instant};

/// At most one error line per this long; the next one says how many were
/// left out.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps a failing disk from filling the log: one line per
/// [`COMPLAINT_INTERVAL`], which tells how many were left out before it.
#[derive(Default)]
pub(super) struct Complaints {
    last: Option<Instant>,
    left_out: u64,
}

impl Complaints {
    pub(super) fn speak(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < COMPLAINT_INTERVAL)
        {
            self.left_out += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.left_out))
    }
}
