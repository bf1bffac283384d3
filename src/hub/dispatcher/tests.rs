//! Unit tests of the dispatcher, through a harness that plays its channel,
//! the store and Redis; by subject in `tests/`.

use super::*;
use crate::history::redis::{Arrival, Change, ClaimOutcome, Note};
use crate::history::sqlite;
use crate::hub::outlet::Bounds;

use crate::proto::names::Owner;
use crate::testing::{self, Frame};
use crossbeam_channel::Receiver;
use socket2::SockRef;
use std::net::TcpStream;
use tungstenite::Bytes;

/// A dispatcher with `history_share` bytes for history, and clients whose
/// outlets write to loopback sockets the test reads when it wants to see
/// what a client was sent.
///
/// With the embedded store (`new`), the store runs in memory and the test
/// hands its answers to the dispatcher. With shared rooms (`shared`), the
/// test stands in for Redis: it reads what the dispatcher asks of the store
/// and of the cluster, and answers by hand.
struct Harness {
    d: Dispatcher,
    next: ClientId,
    /// The client ends of the sockets, kept open.
    peers: HashMap<ClientId, TcpStream>,
    outlets: HashMap<ClientId, Arc<Outlet>>,
    /// What the store answers, handed to the dispatcher by the test.
    replies: Receiver<sqlite::Reply>,
    /// With shared rooms: what the dispatcher asks of the store and of the
    /// cluster.
    requests: Receiver<sqlite::Request>,
    commands: Receiver<redis::Order>,
}

/// The epoch the test's shared rooms start in.
const EPOCH: &str = "epoch-1";

fn limits(history: usize, history_share: usize, room_history_bytes: usize) -> Limits {
    Limits {
        history,
        history_share: Share::new("history", history_share),
        room_history_bytes,
        max_idle_rooms: 1000,
        ping_interval: Duration::from_secs(60),
        welcome: protocol::WelcomeLimits::default(),
        held_frames: 1024,
        file_urls: crate::proto::capability::Signer::with_key([1; 32]),
    }
}

impl Harness {
    fn new(history: usize, history_share: usize, room_history_bytes: usize) -> Harness {
        Harness::with_store(limits(history, history_share, room_history_bytes), 1000)
    }

    /// With the embedded store in memory, keeping `retain_messages` per room.
    fn with_store(limits: Limits, retain_messages: usize) -> Harness {
        let options = sqlite::Options {
            path: ":memory:".into(),
            retain_messages,
            retain_bytes: 1 << 30,
            fsync: false,
        };
        let (tx, replies) = crossbeam_channel::unbounded();
        let (store, _thread) = sqlite::open(&options)
            .unwrap()
            .spawn(Box::new(move |reply| {
                let _ = tx.send(reply);
            }))
            .unwrap();
        Harness {
            d: Dispatcher::new(limits, store, None),
            replies,
            requests: crossbeam_channel::never(),
            commands: crossbeam_channel::never(),
            next: 0,
            peers: HashMap::new(),
            outlets: HashMap::new(),
        }
    }

    /// With shared rooms, the test standing in for Redis.
    fn shared() -> Harness {
        let (tx, requests) = crossbeam_channel::unbounded();
        let (cluster, commands) = ClusterHandle::for_tests("here-instance");
        Harness {
            d: Dispatcher::new(
                limits(100, 1 << 20, 1 << 20),
                StoreHandle::from_sender(tx),
                Some(cluster),
            ),
            replies: crossbeam_channel::never(),
            requests,
            commands,
            next: 0,
            peers: HashMap::new(),
            outlets: HashMap::new(),
        }
    }

    /// A client connected on `server`, whose other end is `peer`.
    fn connect_on(
        &mut self,
        mode: Mode,
        (server, peer): (TcpStream, TcpStream),
        bounds: Bounds,
    ) -> ClientId {
        self.next += 1;
        let id = self.next;
        let addr = peer.local_addr().unwrap();
        let outlet = testing::outlet(id, server, bounds);
        self.peers.insert(id, peer);
        self.outlets.insert(id, outlet.clone());
        self.d.handle(Input::Connect {
            id,
            peer: addr,
            mode,
            outlet,
        });
        id
    }

    fn connect(&mut self, mode: Mode) -> ClientId {
        self.connect_on(mode, testing::pair(), testing::roomy())
    }

    /// Asks to join; with the embedded store, waits for the room to load.
    fn ask_join(&mut self, id: ClientId, room: &str, name: &str, since: Option<u64>) {
        self.d.handle(Input::Join(JoinRequest {
            id,
            room: Some(room.into()),
            name: Some(name.into()),
            since,
            epoch: None,
            owner: Owner::Nobody,
            moderator: false,
        }));
        // The room comes from the store first.
        self.pump(|d| d.rooms.contains_key(room));
        self.d.flush();
    }

    fn join(&mut self, room: &str, mode: Mode) -> ClientId {
        let name = format!("user{}", self.next + 1);
        self.join_as(room, mode, &name, None)
    }

    fn join_as(&mut self, room: &str, mode: Mode, name: &str, since: Option<u64>) -> ClientId {
        let id = self.connect(mode);
        self.ask_join(id, room, name, since);
        id
    }

    /// Hands the embedded store's answers to the dispatcher until `done`.
    fn pump(&mut self, done: impl Fn(&Dispatcher) -> bool) {
        while !done(&self.d) {
            let reply = self.replies.recv_timeout(Duration::from_secs(10)).unwrap();
            self.d.handle(Input::Store(reply));
        }
        self.d.flush();
    }

    /// Sends a message and, with the embedded store, waits until the
    /// store has decided it (and the dispatcher has delivered it).
    fn say(&mut self, id: ClientId, text: &str) {
        self.d.handle(Input::Text {
            id,
            text: text.into(),
            cid: None,
        });
        if self.d.backend.delivers_when_stored() {
            loop {
                let reply = self.replies.recv_timeout(Duration::from_secs(10)).unwrap();
                let appended = matches!(reply, sqlite::Reply::Appended { .. });
                self.d.handle(Input::Store(reply));
                if appended {
                    break;
                }
            }
        }
        self.d.flush();
    }

    fn kept(&self, room: &str) -> Vec<u64> {
        self.d.rooms[room].history.iter().map(|s| s.id).collect()
    }

    fn share_used(&self) -> usize {
        self.d.limits.history_share.used()
    }

    /// Every frame the client has been sent so far.
    fn received(&mut self, id: ClientId) -> Vec<Frame> {
        self.d.flush();
        testing::until_mark(&self.outlets[&id], self.peers.get_mut(&id).unwrap())
    }

    /// The events (text frames) the client has been sent so far.
    fn events(&mut self, id: ClientId) -> Vec<serde_json::Value> {
        self.received(id).iter().map(Frame::json).collect()
    }

    /// Every frame a client that was closed has been sent, the close last.
    fn closed(&mut self, id: ClientId) -> Vec<Frame> {
        self.d.flush();
        testing::until_close(self.peers.get_mut(&id).unwrap())
    }

    /// Handles a note from the cluster and writes what it caused.
    fn note(&mut self, note: Note) {
        self.d.handle(Input::Cluster(note));
        self.d.flush();
    }

    /// A v1 client joining a shared room: the test opens the room (if the
    /// dispatcher asks) and grants the name (if it is claimed).
    fn shared_join(&mut self, room: &str, name: &str) -> ClientId {
        let id = self.connect(Mode::V1);
        self.d.handle(Input::Join(JoinRequest {
            id,
            room: Some(room.into()),
            name: Some(name.into()),
            since: None,
            epoch: None,
            owner: Owner::Nobody,
            moderator: false,
        }));
        for request in self.requests.try_iter().collect::<Vec<_>>() {
            match request {
                sqlite::Request::Open { room, .. } => {
                    self.d.handle(Input::Store(sqlite::Reply::Opened {
                        room,
                        spelling: None,
                        epoch: EPOCH.into(),
                        last_id: 0,
                        recent: Vec::new(),
                        loaded: true,
                        members: Vec::new(),
                    }))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for command in self.commands.try_iter().collect::<Vec<_>>() {
            match command {
                redis::Order::Claim { token, room, .. } => {
                    self.d.handle(Input::Cluster(Note::Claimed {
                        token,
                        room,
                        outcome: ClaimOutcome::Held { first: true },
                    }))
                }
                // The room's events are asked for once someone is in it.
                redis::Order::Subscribe { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        self.d.flush();
        assert!(self.d.clients[&id].seat.is_some(), "{name} joined {room}");
        id
    }
}

/// The type of each event.
fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The ids of the `message` events among `events`.
fn message_ids(events: &[serde_json::Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

/// A message from another instance, as Redis hands it on.
fn arrival(room: &str, epoch: &str, id: u64) -> Arrival {
    Arrival {
        record: sqlite::Record {
            room: room.into(),
            id,
            from: "zed".into(),
            ts: 1,
            cid: None,
            body: sqlite::Body::Text(format!("m{id}")),
        },
        epoch: epoch.into(),
        instance: "elsewhere".into(),
        client: 9,
        raw: false,
        data: None,
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
fn a_full_share_forgets_from_the_heaviest_room_first() {
    // Each 1,000-byte text costs a little over 1,000 bytes: the share
    // holds four.
    let mut h = Harness::new(100, 5000, 1 << 20);
    let quiet = h.join("quiet", Mode::V1);
    let loud = h.join("loud", Mode::V1);
    let text = "x".repeat(1000);
    h.say(quiet, &text); // quiet:1, the oldest anywhere
    h.say(loud, &text); // loud:1
    h.say(loud, &text); // loud:2
    h.say(loud, &text); // loud:3
    assert_eq!((h.kept("quiet").len(), h.kept("loud").len()), (1, 3));
    // The loud room floods on: it pays, the quiet room keeps its message.
    for _ in 0..10 {
        h.say(loud, &text);
    }
    assert_eq!(h.kept("quiet"), [1]);
    assert_eq!(h.kept("loud"), [11, 12, 13]);
    // A message in the quiet room is taken from the loud one too.
    h.say(quiet, &text); // quiet:2
    assert_eq!(h.kept("quiet"), [1, 2]);
    assert_eq!(h.kept("loud"), [12, 13]);
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
fn a_client_whose_queue_is_full_is_evicted_and_the_room_carries_on() {
    let mut h = Harness::new(100, 1 << 30, 1 << 10);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    let b = h.join_as("r", Mode::V1, "bea", None);
    // Small kernel buffers, so that the slow client's queue forms at once,
    // and a queue of a few frames.
    let (server, peer) = testing::pair();
    SockRef::from(&server)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    SockRef::from(&peer)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    let bounds = Bounds {
        frames: 4,
        bytes: 64 * 1024,
        ..testing::roomy()
    };
    let slow = h.connect_on(Mode::V1, (server, peer), bounds);
    h.ask_join(slow, "r", "sid", None);
    assert_eq!(types(&h.events(slow)), ["welcome", "presence"]);
    assert_eq!(types(&h.events(b)), ["welcome", "presence", "join"]);

    // Far more than the kernel takes: the rest waits in the slow client's
    // queue (a frame begun is always queued whole), where the next does
    // not fit.
    let big = "x".repeat(4 << 20);
    h.say(a, &big);
    assert!(h.d.clients.contains_key(&slow));
    h.say(a, "after");
    assert!(!h.d.clients.contains_key(&slow), "evicted");
    assert_eq!(h.d.rooms["r"].members.len(), 2);
    h.say(a, "still here");

    let got = h.events(b);
    assert_eq!(
        types(&got),
        ["message", "message", "leave", "message"],
        "the others still receive"
    );
    assert_eq!(got[0]["text"].as_str().map(str::len), Some(big.len()));
    assert_eq!(got[1]["text"], "after");
    assert_eq!(got[2]["name"], "sid");
    assert_eq!(got[3]["text"], "still here");

    // The slow client gets the frame it had begun, then its close: nothing
    // after the eviction.
    let frames = h.closed(slow);
    assert_eq!(
        frames.len(),
        2,
        "{:?}",
        frames.iter().map(|f| f.opcode).collect::<Vec<_>>()
    );
    assert_eq!(
        frames[0].json()["text"].as_str().map(str::len),
        Some(big.len())
    );
    assert_eq!(frames[1].close(), Some((1008, "too slow".into())));
}

#[test]
fn a_raw_client_whose_name_is_taken_is_closed() {
    let mut h = Harness::new(100, 1 << 20, 1 << 20);
    let a = h.join_as("r", Mode::Raw, "alice", None);
    let b = h.join_as("r", Mode::Raw, "alice", None);
    let frames = h.closed(b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close(), Some((1008, "name taken".into())));
    assert!(!h.d.clients.contains_key(&b));
    assert_eq!(h.d.rooms["r"].members.values().collect::<Vec<_>>(), [&a]);
}

#[test]
fn a_v1_client_whose_name_is_taken_is_told_and_stays() {
    let mut h = Harness::new(100, 1 << 20, 1 << 20);
    let a = h.join_as("r", Mode::V1, "alice", None);
    let b = h.join_as("r", Mode::V1, "alice", None);
    let events = h.events(b);
    assert_eq!(types(&events), ["error"]);
    assert_eq!(events[0]["code"], "name_taken");
    assert!(h.d.clients[&b].seat.is_none(), "connected, in no room");
    assert_eq!(types(&h.events(a)), ["welcome", "presence"], "no join told");
    // Another name is welcome.
    h.ask_join(b, "r", "bob", None);
    assert_eq!(types(&h.events(b)), ["welcome", "presence"]);
}

#[test]
fn messages_files_and_typing_before_joining_are_refused() {
    let mut h = Harness::new(100, 1 << 20, 1 << 20);
    let a = h.connect(Mode::V1);
    h.d.handle(Input::Text {
        id: a,
        text: "hello".into(),
        cid: None,
    });
    h.d.handle(Input::File {
        id: a,
        name: "a.txt".into(),
        mime: "text/plain".into(),
        data: Bytes::from_static(b"abc"),
        raw_frame: None,
        cid: None,
    });
    h.d.handle(Input::Typing { id: a });
    let events = h.events(a);
    assert_eq!(types(&events), ["error", "error", "error"]);
    assert!(
        events.iter().all(|e| e["code"] == "not_joined"),
        "{events:?}"
    );
    assert!(h.d.rooms.is_empty());
}

#[test]
fn file_urls_are_signed_only_for_the_askers_room_and_given_ids() {
    let mut h = Harness::new(100, 1 << 20, 1 << 20);
    let a = h.join("r", Mode::V1);
    let b = h.join("other", Mode::V1);
    h.say(a, "one");
    h.say(a, "two");
    h.events(a);
    h.events(b);
    let ask = |h: &mut Harness, id, file| {
        h.d.handle(Input::FileUrl {
            id,
            file,
            name: "a.png".into(),
        });
        h.d.flush();
        h.events(id)
    };
    let got = ask(&mut h, a, 2);
    assert_eq!(types(&got), ["file_url"]);
    let url = got[0]["url"].as_str().unwrap();
    let query = h.d.limits.file_urls.query("r", 2).unwrap();
    assert_eq!(url, format!("/files/r/2/a.png?{query}"));
    assert_eq!(got[0]["room"], "r");
    // Ids the room has not given out, and another room's: refused.
    for (who, file) in [(a, 3), (a, 0), (b, 1)] {
        let got = ask(&mut h, who, file);
        assert_eq!(got[0]["code"], "no_such_file", "{got:?}");
    }
    let stranger = h.connect(Mode::V1);
    assert_eq!(ask(&mut h, stranger, 1)[0]["code"], "not_joined");
}

mod resuming;
mod sharing;
