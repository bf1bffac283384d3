//! The recent history a room keeps in memory, within its share; the rooms
//! forgotten once idle; and a room whose history was lost starting again.

use super::{ClientId, Dispatcher, Stored};
use crate::logs as log;
use crate::proto::close::Close;
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
        self.forget_history(name);
        self.rooms.remove(name);
    }

    /// Empties a room's history in memory and gives its bytes back.
    fn forget_history(&mut self, name: &str) {
        if let Some(room) = self.rooms.get_mut(name) {
            let history = std::mem::take(&mut room.history);
            self.limits
                .history_share
                .give(std::mem::take(&mut room.history_bytes));
            self.stored -= history.len();
            self.weights.set(name, 0);
        }
    }

    /// The room's history was lost (Redis restarted without persistence or
    /// its keys were removed; the embedded store's retention emptied the
    /// room and gave up its row): ids start again under a new epoch.
    /// Everyone here is closed with 1012, so that each comes back, resumes,
    /// and is told honestly that its history is gone.
    pub(super) fn reset_room(&mut self, name: &str, epoch: String) {
        self.forget_history(name);
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        log::warn!(
            "event=room_reset room={name:?} old_epoch={:?} epoch={epoch:?} msg=\"the room's history was lost\"",
            room.epoch
        );
        room.epoch = epoch;
        room.last_id = 0;
        let members: Vec<ClientId> = room.members.values().copied().collect();
        for id in members {
            if let Some(client) = self.clients.remove(&id) {
                self.vacate(client, Some(Close::history_reset()));
            }
        }
    }

    /// Keeps at most `max_idle_rooms` empty rooms, forgetting the longest idle.
    pub(super) fn forget_idle_rooms(&mut self) {
        let mut idle: Vec<(Instant, String)> = self
            .rooms
            .iter()
            // A shared room waiting for its joiners' names stays.
            .filter(|(_, r)| r.claims == 0)
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
