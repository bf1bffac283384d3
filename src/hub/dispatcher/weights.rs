//! Which room's history weighs the most: when the history share of the
//! memory budget is full, that room forgets its oldest event first.
//!
//! Forgetting the oldest event of the whole server instead would let one
//! address that floods rooms of its own flush every other room's history;
//! taking from the heaviest room makes the biggest user pay, and a quiet
//! room keeps its recent history for as long as it is not the largest.

use std::collections::{BTreeSet, HashMap};

/// Every room's history bytes, ordered so that the heaviest is found in
/// `O(log rooms)`.
#[derive(Debug, Default)]
pub(super) struct Weights {
    by_weight: BTreeSet<(usize, String)>,
    of: HashMap<String, usize>,
}

impl Weights {
    /// `room`'s history now weighs `bytes` (0 removes it).
    pub(super) fn set(&mut self, room: &str, bytes: usize) {
        let old = match bytes {
            0 => self.of.remove(room),
            _ => self.of.insert(room.to_owned(), bytes),
        };
        if old == Some(bytes) {
            return;
        }
        if let Some(old) = old {
            self.by_weight.remove(&(old, room.to_owned()));
        }
        if bytes > 0 {
            self.by_weight.insert((bytes, room.to_owned()));
        }
    }

    /// The room whose history weighs the most, if any weighs anything.
    pub(super) fn heaviest(&self) -> Option<&str> {
        self.by_weight.last().map(|(_, room)| room.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_room_is_found_as_weights_change() {
        let mut w = Weights::default();
        assert_eq!(w.heaviest(), None);
        w.set("a", 10);
        w.set("b", 30);
        w.set("c", 20);
        assert_eq!(w.heaviest(), Some("b"));
        w.set("b", 5);
        assert_eq!(w.heaviest(), Some("c"));
        w.set("c", 0);
        assert_eq!(w.heaviest(), Some("a"));
        w.set("a", 0);
        w.set("b", 0);
        assert_eq!(w.heaviest(), None);
        assert!(w.of.is_empty());
    }
}
