//! The memory budget: every byte the server holds on behalf of clients is
//! counted against one of three shares of `--memory-budget`.
//!
//! - **history**: the frames kept for replay to joining v1 clients, across
//!   every room. When it is full the oldest stored message of any room goes
//!   first (the dispatcher owns this share).
//! - **outbound**: the frames waiting in clients' backlogs. A frame queued
//!   to many clients at once (a file fanned out to a room) is one buffer and
//!   counts once, plus a small charge per queue entry. A client whose backlog
//!   would pass the share is closed like any client that is too slow.
//! - **incoming**: messages and files being received, counted at the size
//!   their frame headers announce, from the header until the message is
//!   whole. A frame that would pass the share is refused at its header,
//!   before its bytes are read.
//!
//! The shares are fixed fractions of the budget (a quarter for history,
//! three eighths each for the others), so their sum is the budget. Each is a
//! lock-free count shared by the threads that use it; taking from a share
//! either succeeds whole or not at all, so no share ever passes its limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The smallest budget accepted: below it the shares could not hold one
/// message of the default sizes.
pub(crate) const MIN_BUDGET: usize = 8 * 1024 * 1024;

/// The three shares of the budget.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// Rooms' history kept for replay, across every room.
    pub(crate) history: Arc<Share>,
    /// Frames waiting in clients' backlogs.
    pub(crate) outbound: Arc<Share>,
    /// Messages being received, by their announced length.
    pub(crate) incoming: Arc<Share>,
}

impl Budget {
    /// Splits `total` bytes into the three shares.
    pub fn new(total: usize) -> Budget {
        let history = total / 4;
        let outbound = (total - history) / 2;
        let incoming = total - history - outbound;
        Budget {
            history: Share::new("history", history),
            outbound: Share::new("outbound", outbound),
            incoming: Share::new("incoming", incoming),
        }
    }

    /// Every share, for metrics and logs.
    pub(crate) fn shares(&self) -> [&Arc<Share>; 3] {
        [&self.history, &self.outbound, &self.incoming]
    }
}

/// One share of the budget: a limit and what is in use now.
#[derive(Debug)]
pub struct Share {
    name: &'static str,
    limit: usize,
    used: AtomicUsize,
    /// For a part of a share (see `part`), the whole, which counts what
    /// every part holds.
    whole: Option<Arc<Share>>,
}

impl Share {
    /// A share called `name` (in logs and metrics) of `limit` bytes.
    pub fn new(name: &'static str, limit: usize) -> Arc<Share> {
        Arc::new(Share {
            name,
            limit,
            used: AtomicUsize::new(0),
            whole: None,
        })
    }

    /// One of `parts` equal parts of this share, for one of several owners
    /// that each must make room only among what they hold themselves (the
    /// hubs, each of which can forget only its own rooms' history). What a
    /// part holds is counted in the whole too, for the metrics; the parts'
    /// limits add up to the whole's, so the whole never refuses a part.
    pub fn part(self: &Arc<Share>, parts: usize) -> Arc<Share> {
        Arc::new(Share {
            name: self.name,
            limit: self.limit / parts.max(1),
            used: AtomicUsize::new(0),
            whole: Some(self.clone()),
        })
    }

    /// What the share is for.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Bytes it may hold.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes it holds now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes that can still be taken now.
    pub(crate) fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    /// Takes `bytes` if they fit under the limit; otherwise takes nothing.
    #[must_use]
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok();
        if taken && let Some(whole) = &self.whole {
            whole.take_anyway(bytes);
        }
        taken
    }

    /// Takes `bytes` even past the limit, for the few charges that cannot
    /// be refused (see where it is called); what they overshoot by is
    /// bounded there.
    pub(crate) fn take_anyway(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        if let Some(whole) = &self.whole {
            whole.take_anyway(bytes);
        }
    }

    /// Gives back bytes taken earlier.
    pub(crate) fn give(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(
            before >= bytes,
            "share {} gave back more than it took",
            self.name
        );
        if let Some(whole) = &self.whole {
            whole.give(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_budget() {
        let b = Budget::new(64 * 1024 * 1024 + 3);
        let sum: usize = b.shares().iter().map(|s| s.limit()).sum();
        assert_eq!(sum, 64 * 1024 * 1024 + 3);
        assert_eq!(b.history.limit(), 16 * 1024 * 1024);
    }

    #[test]
    fn parts_count_in_the_whole() {
        let whole = Share::new("t", 100);
        let (a, b) = (whole.part(2), whole.part(2));
        assert_eq!(a.limit(), 50);
        assert!(a.try_take(50));
        assert!(!a.try_take(1), "a part keeps to its own limit");
        assert!(b.try_take(20));
        assert_eq!(whole.used(), 70);
        a.give(50);
        assert_eq!(whole.used(), 20);
    }

    #[test]
    fn a_share_never_passes_its_limit() {
        let s = Share::new("t", 100);
        assert!(s.try_take(60));
        assert!(!s.try_take(41), "all or nothing");
        assert_eq!(s.used(), 60);
        assert!(s.try_take(40));
        assert_eq!(s.available(), 0);
        s.give(100);
        assert_eq!(s.used(), 0);
    }
}
