//! The recent history a room keeps in memory, within its share, and the
//! rooms forgotten once idle.

use super::{Dispatcher, Stored};
use crate::logs as log;
use std::time::Instant;

impl Dispatcher {
    /// Keeps an event in its room's history, within the room's bounds and
    /// the history share, making room by forgetting the oldest events: the
    /// room's own first, then the heaviest room's (see `weights.rs`).
    pub(super) fn keep(&mut self, room_name: &str, stored: Stored) {
        let cost = stored.cost();
        if cost > self.limits.room_history_bytes || cost > self.limits.history_share.limit() {
            log::debug!(
                "event=not_kept room={room_name:?} bytes={cost} msg=\"larger than a room's history\""
            );
            return;
        }
        let (share, history, room_bytes) = (
            self.limits.history_share.clone(),
            self.limits.history,
            self.limits.room_history_bytes,
        );
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        while room.history.len() >= history || room.history_bytes + cost > room_bytes {
            let Some(old) = room.history.pop_front() else {
                break;
            };
            room.history_bytes -= old.cost();
            share.give(old.cost());
            self.stored -= 1;
            room.squeezed = false;
        }
        self.weights.set(room_name, room.history_bytes);
        while !share.try_take(cost) {
            if !self.forget_heaviest() {
                return;
            }
        }
        let room = self.rooms.get_mut(room_name).expect("looked up above");
        room.history_bytes += cost;
        room.history.push_back(stored);
        self.stored += 1;
        self.weights.set(room_name, room.history_bytes);
    }

    /// Forgets the oldest event of the room whose history weighs the most,
    /// to make room in the history share; false if no room holds any.
    pub(super) fn forget_heaviest(&mut self) -> bool {
        let Some(room_name) = self.weights.heaviest().map(str::to_owned) else {
            return false;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            self.weights.set(&room_name, 0);
            return true;
        };
        if let Some(old) = room.history.pop_front() {
            room.squeezed = true;
            room.history_bytes -= old.cost();
            self.limits.history_share.give(old.cost());
            self.stored -= 1;
            log::debug!("event=history_full room={room_name:?} forgot={}", old.id);
        }
        let bytes = match room.history.is_empty() {
            true => 0,
            false => room.history_bytes,
        };
        self.weights.set(&room_name, bytes);
        true
    }

    /// Forgets a room and gives its history's bytes back.
    pub(super) fn remove_room(&mut self, name: &str) {
        if let Some(room) = self.rooms.remove(name) {
            self.limits.history_share.give(room.history_bytes);
            self.stored -= room.history.len();
            self.weights.set(name, 0);
        }
    }

    /// Keeps at most `max_idle_rooms` empty rooms, forgetting the longest idle.
    pub(super) fn forget_idle_rooms(&mut self) {
        let mut idle: Vec<(Instant, String)> = self
            .rooms
            .iter()
            .filter_map(|(name, r)| r.emptied_at.map(|t| (t, name.clone())))
            .collect();
        if idle.len() <= self.limits.max_idle_rooms {
            return;
        }
        idle.sort();
        let excess = idle.len() - self.limits.max_idle_rooms;
        for (_, name) in idle.into_iter().take(excess) {
            self.remove_room(&name);
        }
    }
}
