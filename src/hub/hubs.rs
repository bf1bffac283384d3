//! The hub threads' doors, and which hub owns which room.
//!
//! Rooms are spread over `--hubs` dispatcher threads: a room's skeleton
//! hashes to one of 4,096 slots, so that look-alike spellings of one room
//! meet on one hub, and a slot is dealt to the hub with the fewest the
//! first time one of its rooms is entered, so that rooms spread evenly
//! however their names hash. Each
//! hub owns its rooms and the clients seated in them, alone: nothing a hub
//! holds is shared with another, and they never talk to each other. What
//! belongs to every room (the admin view, moderation, shutdown) is asked of
//! every hub and their answers are put together here.
//!
//! A client enters through a [`Link`]: it is known to one hub at a time,
//! first the hub of the room it asked for in its URL (or a hub chosen by its
//! id), then the hub of the room its `join` names.

use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};

use crate::hub::dispatcher::{ClientId, Input};
use crate::hub::moderation::{self, Reply, Request};
use crate::hub::outlet::Outlet;
use crate::proto::names;
use crate::proto::protocol::Mode;

/// The room a join enters when it names none.
pub const DEFAULT_ROOM: &str = "lobby";

/// Slots the rooms' skeletons hash to; each slot is given to a hub the
/// first time a room of it is entered, and keeps it.
const SLOTS: usize = 4096;

/// Every hub's event channel, in hub order, and which hub each slot of
/// rooms went to.
#[derive(Debug, Clone)]
pub struct Hubs {
    doors: Arc<[Sender<Input>]>,
    /// Hub + 1 of each slot, 0 while no room of it was entered. Atomics, set
    /// once each: the hubs never share a lock, nor do the readers.
    slots: Arc<[AtomicU8]>,
    /// Slots given to each hub so far: a new slot goes to the hub with the
    /// fewest, so rooms are dealt out evenly, not as their names hash.
    dealt: Arc<[AtomicUsize]>,
}

/// The hub has stopped: the server is shutting down, or the hub failed.
#[derive(Debug)]
pub struct Stopped;

impl Hubs {
    /// `doors[i]` is hub `i`'s channel; there is at least one.
    pub fn new(doors: Vec<Sender<Input>>) -> Hubs {
        assert!(!doors.is_empty(), "at least one hub");
        assert!(doors.len() < usize::from(u8::MAX), "at most 254 hubs");
        Hubs {
            slots: (0..SLOTS).map(|_| AtomicU8::new(0)).collect(),
            dealt: doors.iter().map(|_| AtomicUsize::new(0)).collect(),
            doors: doors.into(),
        }
    }

    /// How many hubs there are.
    pub fn count(&self) -> usize {
        self.doors.len()
    }

    /// The hub that owns `room` (a name as a client spelled it, or as a hub
    /// keeps it): every spelling with the same skeleton has the same hub.
    /// For the answers about a room: a room nobody entered here yet (a
    /// Redis event of another instance's room) goes to a hub by its hash,
    /// which drops it.
    pub fn of_room(&self, room: &str) -> usize {
        if self.doors.len() == 1 {
            return 0;
        }
        let slot = slot_of(room);
        match self.slots[slot].load(Ordering::Acquire) {
            0 => slot % self.doors.len(),
            hub => usize::from(hub) - 1,
        }
    }

    /// The hub of a room being entered: as [`of_room`](Hubs::of_room), but
    /// a room of a slot no hub has yet goes to the hub that was dealt the
    /// fewest slots.
    pub fn enter_room(&self, room: &str) -> usize {
        if self.doors.len() == 1 {
            return 0;
        }
        let slot = slot_of(room);
        let held = self.slots[slot].load(Ordering::Acquire);
        if held != 0 {
            return usize::from(held) - 1;
        }
        let fewest = (0..self.dealt.len())
            .min_by_key(|&hub| self.dealt[hub].load(Ordering::Relaxed))
            .unwrap_or(0);
        // Two readers entering rooms of one new slot at once: the first
        // to set it wins, and the other follows.
        let mark = u8::try_from(fewest + 1).expect("fewer than 255 hubs");
        match self.slots[slot].compare_exchange(0, mark, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                self.dealt[fewest].fetch_add(1, Ordering::Relaxed);
                fewest
            }
            Err(held) => usize::from(held) - 1,
        }
    }

    /// Hub `hub`'s channel.
    pub fn door(&self, hub: usize) -> &Sender<Input> {
        &self.doors[hub]
    }

    /// Hands every hub the input `make` gives it; returns how many took it.
    pub fn to_all(&self, make: impl Fn() -> Input) -> usize {
        self.doors.iter().filter(|d| d.send(make()).is_ok()).count()
    }

    /// Asks every hub a moderator's `request` and puts their answers
    /// together, waiting at most `timeout` in all. `None` when a hub did
    /// not answer in time.
    pub fn moderate(&self, request: Request, timeout: Duration) -> Option<Reply> {
        let deadline = Instant::now() + timeout;
        let (reply, answers) = crossbeam_channel::bounded(self.doors.len());
        for door in self.doors.iter() {
            let input = Input::Admin {
                request: request.clone(),
                reply: reply.clone(),
            };
            match door.send_deadline(input, deadline) {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_) | SendTimeoutError::Disconnected(_)) => {
                    return None;
                }
            }
        }
        let mut merged: Option<Reply> = None;
        for _ in 0..self.doors.len() {
            let answer = answers.recv_deadline(deadline).ok()?;
            merged = Some(match merged {
                None => answer,
                Some(so_far) => moderation::merge(so_far, answer),
            });
        }
        merged
    }
}

/// The slot of a room's name: hashed from its skeleton as it is made,
/// without building the skeleton's string, since every stored message's
/// answer is routed through here. Out of line: the hasher's state stays
/// off the frame of a reader that sends to a hub next.
#[inline(never)]
fn slot_of(room: &str) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    names::hash_skeleton(room, &mut hasher);
    (hasher.finish() % SLOTS as u64) as usize
}

/// A chat-room client's place in a hub's client list, from its `Connect`
/// to its `Leave`. Leaving is a guard, not a reminder: dropping this sends
/// the `Leave`, so a reader that returns early or panics leaves no ghost in
/// its room holding its name.
#[derive(Debug)]
pub struct Link {
    id: ClientId,
    peer: SocketAddr,
    mode: Mode,
    outlet: Arc<Outlet>,
    hubs: Hubs,
    /// The hub that knows the client now.
    at: usize,
}

impl Link {
    /// A new client's link to the hub of `room` (the room its URL names),
    /// or to a hub chosen by its id when it names none yet; the hub knows
    /// of it once it [enters](Link::enter). Out of line and apart from the
    /// send, so that the link being made is not on the sending frame.
    #[inline(never)]
    pub fn new(
        hubs: &Hubs,
        (id, peer, mode): (ClientId, SocketAddr, Mode),
        outlet: Arc<Outlet>,
        room: Option<&str>,
    ) -> Link {
        let at = match room {
            Some(room) => hubs.enter_room(room),
            None => (id % hubs.count() as u64) as usize,
        };
        Link {
            id,
            peer,
            mode,
            outlet,
            hubs: hubs.clone(),
            at,
        }
    }

    /// Sends the `Connect`: until it is sent, the hub does not know the
    /// client (and the `Leave` of a link dropped before is dropped by it).
    #[inline(never)]
    pub fn enter(&self) -> Result<(), Stopped> {
        post(&self.hubs.doors[self.at], self.connect_input())
    }

    /// The `Connect` event, made out of line and on the heap, so that the
    /// frame that sends it does not hold it too.
    #[inline(never)]
    fn connect_input(&self) -> Box<Input> {
        Box::new(Input::Connect {
            id: self.id,
            peer: self.peer,
            mode: self.mode,
            outlet: self.outlet.clone(),
        })
    }

    /// Hands the hub that knows the client one of its events. A join first
    /// moves the client to its room's hub, if another hub knows it and has
    /// not seated it (a connection joins one room: a seated client's hub
    /// answers `already_joined`).
    pub fn send(&mut self, input: Box<Input>) -> Result<(), Stopped> {
        if let Input::Join(request) = &*input {
            self.follow(request.room.as_deref().unwrap_or(DEFAULT_ROOM))?;
        }
        post(&self.hubs.doors[self.at], input)
    }

    /// Moves the client to the hub of `room`, unless that hub knows it
    /// already or it is seated.
    #[inline(never)]
    fn follow(&mut self, room: &str) -> Result<(), Stopped> {
        let to = self.hubs.enter_room(room);
        if to != self.at && !self.outlet.is_seated() {
            let _ = post(&self.hubs.doors[self.at], leave(self.id));
            self.at = to;
            post(&self.hubs.doors[to], self.connect_input())?;
        }
        Ok(())
    }
}

/// The `Leave` event, on the heap (see [`post`]).
#[inline(never)]
fn leave(id: ClientId) -> Box<Input> {
    Box::new(Input::Leave { id })
}

/// Sends one event on a hub's channel. A reader's sends are the deepest
/// calls its thread makes (about 0.9 KB of crossbeam below this frame),
/// and a thread keeps every stack page it ever touched: so the event comes
/// boxed, and no caller's frame holds a copy of it (see "Limits" in
/// docs/ARCHITECTURE.md).
#[inline(never)]
fn post(door: &Sender<Input>, input: Box<Input>) -> Result<(), Stopped> {
    door.send(*input).map_err(|_| Stopped)
}

impl Drop for Link {
    fn drop(&mut self) {
        // Fails only when the hub has stopped, which has then closed the
        // client itself.
        let _ = post(&self.hubs.doors[self.at], leave(self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::dispatcher::JoinRequest;

    fn hubs(n: usize) -> (Hubs, Vec<crossbeam_channel::Receiver<Input>>) {
        let (doors, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| crossbeam_channel::unbounded()).unzip();
        (Hubs::new(doors), rxs)
    }

    #[test]
    fn look_alike_rooms_share_a_hub() {
        let (hubs, _rx) = hubs(7);
        // Latin and Cyrillic o.
        let hub = hubs.enter_room("lobby");
        assert_eq!(hubs.enter_room("l\u{43e}bby"), hub);
        assert_eq!(hubs.of_room("lobby"), hub);
    }

    #[test]
    fn rooms_are_dealt_out_evenly() {
        let (hubs, _rx) = hubs(2);
        let mut seen = [0usize; 2];
        for i in 0..20 {
            seen[hubs.enter_room(&format!("room{i}"))] += 1;
        }
        assert_eq!(seen, [10, 10]);
        // And each keeps its hub.
        for i in 0..20 {
            let room = format!("room{i}");
            assert_eq!(hubs.of_room(&room), hubs.enter_room(&room));
        }
    }

    fn outlet(id: ClientId) -> (Arc<Outlet>, SocketAddr) {
        let (server, peer) = crate::testing::pair();
        let addr = peer.local_addr().unwrap();
        (
            crate::testing::outlet(id, server, crate::testing::roomy()),
            addr,
        )
    }

    fn join(id: ClientId, room: &str) -> JoinRequest {
        JoinRequest {
            id,
            room: Some(room.into()),
            name: Some("ann".into()),
            since: None,
            epoch: None,
            owner: crate::proto::names::Owner::Nobody,
            moderator: false,
        }
    }

    #[test]
    fn a_link_leaves_when_dropped_even_by_a_panic() {
        let (hubs, rx) = hubs(1);
        let (outlet, peer) = outlet(7);
        let link = Link::new(&hubs, (7, peer, Mode::V1), outlet, None);
        link.enter().unwrap();
        let reader = std::thread::spawn(move || {
            let _link = link;
            panic!("a reader's bug");
        });
        assert!(reader.join().is_err());
        assert!(matches!(rx[0].recv(), Ok(Input::Connect { id: 7, .. })));
        assert!(matches!(rx[0].recv(), Ok(Input::Leave { id: 7 })));
    }

    #[test]
    fn a_join_moves_the_client_to_its_rooms_hub() {
        let (hubs, rx) = hubs(3);
        let room = (0..)
            .map(|i| format!("room-{i}"))
            .find(|r| hubs.enter_room(r) != 7 % 3)
            .unwrap();
        let (outlet, peer) = outlet(7);
        let mut link = Link::new(&hubs, (7, peer, Mode::V1), outlet, None);
        link.enter().unwrap();
        assert!(matches!(
            rx[7 % 3].try_recv(),
            Ok(Input::Connect { id: 7, .. })
        ));
        link.send(Box::new(Input::Join(join(7, &room)))).unwrap();
        assert!(matches!(rx[7 % 3].try_recv(), Ok(Input::Leave { id: 7 })));
        let to = &rx[hubs.of_room(&room)];
        assert!(matches!(to.try_recv(), Ok(Input::Connect { id: 7, .. })));
        assert!(matches!(to.try_recv(), Ok(Input::Join(_))));
        drop(link);
        assert!(matches!(to.try_recv(), Ok(Input::Leave { id: 7 })));
    }

    #[test]
    fn the_rooms_of_the_hubs_test_cover_three_hubs() {
        // tests/hubs.rs counts on it.
        let (hubs, _rx) = hubs(3);
        let mut seen = [false; 3];
        for r in 0..12 {
            seen[hubs.enter_room(&format!("room-{r}"))] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn one_hub_takes_every_room() {
        let (hubs, _rx) = hubs(1);
        assert_eq!(hubs.of_room("anything"), 0);
    }
}
