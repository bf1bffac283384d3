use super::*;
use crate::outlet::Bounds;
use crate::writer::Writers;
use std::net::{TcpListener, TcpStream};

/// A dispatcher with `history_share` bytes for history, and a way to
/// add clients whose outlets write to sockets nobody reads (the tests
/// look at the dispatcher's state, not at what clients receive).
struct Harness {
    d: Dispatcher,
    next: ClientId,
    listener: TcpListener,
    /// The client ends of the sockets, kept open.
    peers: Vec<TcpStream>,
    /// What the store answers, handed to the dispatcher by the test.
    replies: crossbeam_channel::Receiver<store::Reply>,
}

impl Harness {
    fn new(history: usize, history_share: usize, room_history_bytes: usize) -> Harness {
        let limits = Limits {
            history,
            history_share: Share::new("history", history_share),
            room_history_bytes,
            max_idle_rooms: 1000,
            ping_interval: Duration::from_secs(60),
            welcome: protocol::Limits::default(),
            held_frames: 1024,
        };
        let options = store::Options {
            path: ":memory:".into(),
            retain_messages: 1000,
            retain_bytes: 1 << 30,
            fsync: false,
        };
        let (tx, replies) = crossbeam_channel::unbounded();
        let (store, _thread) = store::open(&options)
            .unwrap()
            .spawn(Box::new(move |reply| {
                let _ = tx.send(reply);
            }))
            .unwrap();
        Harness {
            d: Dispatcher::new(limits, store, None),
            replies,
            next: 0,
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
            peers: Vec::new(),
        }
    }

    fn join(&mut self, room: &str, mode: Mode) -> ClientId {
        self.next += 1;
        let id = self.next;
        let client = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        let (server, peer) = self.listener.accept().unwrap();
        self.peers.push(client);
        let bounds = Bounds {
            frames: 1 << 20,
            bytes: 1 << 30,
            write_timeout: Duration::from_secs(5),
            share: Share::new("outbound", 1 << 30),
        };
        let outlet = Outlet::new(id, server, bounds, Writers::new(64));
        self.d.handle(Input::Connect {
            id,
            peer,
            mode,
            outlet,
        });
        self.d.handle(Input::Join(JoinRequest {
            id,
            room: Some(room.into()),
            name: Some(format!("user{id}")),
            since: None,
            epoch: None,
            owner: Owner::Nobody,
        }));
        // The room comes from the store first.
        while !self.d.rooms.contains_key(room) {
            let reply = self.replies.recv_timeout(Duration::from_secs(10)).unwrap();
            self.d.handle(Input::Store(reply));
        }
        self.d.flush();
        id
    }

    fn say(&mut self, id: ClientId, text: &str) {
        self.d.handle(Input::Text {
            id,
            text: text.into(),
            cid: None,
        });
        self.d.flush();
    }

    fn kept(&self, room: &str) -> Vec<u64> {
        self.d.rooms[room].history.iter().map(|s| s.id).collect()
    }

    fn share_used(&self) -> usize {
        self.d.limits.history_share.used()
    }
}

#[test]
fn history_is_charged_and_kept_within_the_rooms_count() {
    let mut h = Harness::new(3, 1 << 20, 1 << 20);
    let a = h.join("r", Mode::V1);
    for i in 0..5 {
        h.say(a, &format!("m{i}"));
    }
    assert_eq!(h.kept("r"), [3, 4, 5]);
    let charged: usize = h.d.rooms["r"].history.iter().map(Stored::cost).sum();
    assert_eq!(h.share_used(), charged);
    assert_eq!(h.d.rooms["r"].history_bytes, charged);
}

#[test]
fn a_full_share_forgets_the_oldest_message_of_any_room() {
    // Each 1,000-byte text costs a little over 1,000 bytes: the share
    // holds four.
    let mut h = Harness::new(100, 5000, 1 << 20);
    let a = h.join("a", Mode::V1);
    let b = h.join("b", Mode::V1);
    let text = "x".repeat(1000);
    h.say(a, &text); // a:1
    h.say(a, &text); // a:2
    h.say(b, &text); // b:1
    h.say(b, &text); // b:2
    assert_eq!((h.kept("a").len(), h.kept("b").len()), (2, 2));
    h.say(b, &text); // b:3 pushes out a:1, the oldest anywhere
    assert_eq!(h.kept("a"), [2]);
    assert_eq!(h.kept("b"), [1, 2, 3]);
    h.say(a, &text); // a:3 pushes out a:2
    assert_eq!(h.kept("a"), [3]);
    assert!(h.share_used() <= 5000);
}

#[test]
fn a_room_keeps_its_history_within_its_bytes() {
    let mut h = Harness::new(100, 1 << 20, 2500);
    let a = h.join("r", Mode::Raw);
    let text = "x".repeat(1000);
    for _ in 0..4 {
        h.say(a, &text);
    }
    assert_eq!(h.kept("r"), [3, 4]);
    // Larger than a room may hold at all: delivered, not kept.
    h.say(a, &"y".repeat(3000));
    assert_eq!(h.kept("r"), [3, 4]);
    assert_eq!(h.d.rooms["r"].last_id, 5, "it still had its id");
}

#[test]
fn a_forgotten_room_gives_its_bytes_back() {
    let mut h = Harness::new(100, 1 << 20, 1 << 20);
    h.d.limits.max_idle_rooms = 0;
    let a = h.join("r", Mode::V1);
    h.say(a, "hello");
    assert!(h.share_used() > 0);
    h.d.handle(Input::Leave { id: a });
    assert!(!h.d.rooms.contains_key("r"));
    assert_eq!(h.share_used(), 0);
    assert_eq!(h.d.stored, 0);
}

#[test]
fn a_membership_leaves_when_dropped_even_by_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    let bounds = Bounds {
        frames: 16,
        bytes: 1 << 20,
        write_timeout: Duration::from_secs(5),
        share: Share::new("outbound", 1 << 20),
    };
    let outlet = Outlet::new(7, server, bounds, Writers::new(1));
    let (events, inbox) = crossbeam_channel::unbounded();
    let member = Membership::connect(&events, 7, peer, Mode::V1, outlet).unwrap();
    let reader = std::thread::spawn(move || {
        let _member = member;
        panic!("a reader's bug");
    });
    assert!(reader.join().is_err());
    assert!(matches!(inbox.recv(), Ok(Input::Connect { id: 7, .. })));
    assert!(matches!(inbox.recv(), Ok(Input::Leave { id: 7 })));
}

#[test]
fn stale_order_entries_are_swept() {
    let mut h = Harness::new(1, 1 << 20, 1 << 20);
    let a = h.join("r", Mode::V1);
    for i in 0..5000 {
        h.say(a, &format!("m{i}"));
    }
    // One message kept; the order holds at most the sweep's slack.
    assert_eq!(h.d.stored, 1);
    assert!(
        h.d.stored_order.len() <= 2 + 1024,
        "{}",
        h.d.stored_order.len()
    );
}
