//! Rooms spread over several hub threads (`--hubs`): each room relays
//! exactly once and only within itself whichever hub it is on, a client
//! that joins by frame is moved to its room's hub, look-alike spellings of
//! a room meet on one hub, and the admin view, kicks and bans see every
//! hub.

mod support;

use serde_json::{Value, json};
use support::*;

const ADMIN: &str = "an admin token for the tests";

/// Rooms enough that, hashed over 3 hubs, every hub holds some (a unit
/// test of `hub::hubs` checks that these names do).
const ROOMS: usize = 12;

/// An admin API request that must succeed, and its JSON answer.
fn api(server: &Server, path: &str, body: Option<Value>) -> Value {
    let method = if body.is_some() { "POST" } else { "GET" };
    let r = admin_api(server, method, path, Some(ADMIN), body);
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("a JSON body")
}

#[test]
fn every_room_relays_once_and_alone_on_whichever_hub_it_is() {
    let server = Server::start(&["--hubs", "3", "--admin-token", ADMIN]);
    server.wait_until("three hub threads", |s| {
        let names = s.thread_names();
        (0..3).all(|i| names.contains(&format!("hub-{i}")))
    });
    server.wait_metric("wschat_hubs", |v| v == 3.0);
    // In each room: a v1 listener that joined by frame (so it may have
    // been moved from another hub), and two raw clients.
    let mut rooms: Vec<(Client, Vec<Client>)> = (0..ROOMS)
        .map(|r| {
            let mut listener = connect_v1(&server.url("/ws"));
            let welcome = join_frame(&mut listener, &format!("room-{r}"), "listener");
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            let raws = (0..2)
                .map(|i| {
                    let path = format!("/ws?room=room-{r}&name=raw{i}");
                    connect_raw_synced(&server, &mut listener, &path).0
                })
                .collect();
            (listener, raws)
        })
        .collect();
    for (r, (_, raws)) in rooms.iter_mut().enumerate() {
        send_text(&mut raws[0], &format!("hello from room-{r}"));
    }
    for (r, (listener, raws)) in rooms.iter_mut().enumerate() {
        // The other raw client hears it once, byte for byte...
        assert_eq!(expect_text(&mut raws[1]), format!("hello from room-{r}"));
        // ...and the listener hears it, and nothing from another room
        // before it.
        let v = expect_type(listener, "message");
        assert_eq!(v["text"], format!("hello from room-{r}"), "{v}");
        assert_eq!(v["room"], format!("room-{r}"), "{v}");
        assert_eq!(v["id"], 1, "{v}");
    }
    // Nothing more arrives anywhere: a second round is the next frame.
    for (r, (listener, raws)) in rooms.iter_mut().enumerate() {
        send_text(&mut raws[1], &format!("again {r}"));
        assert_eq!(expect_text(&mut raws[0]), format!("again {r}"));
        let v = expect_type(listener, "message");
        assert_eq!(
            (v["text"].as_str(), v["id"].as_u64()),
            (Some(&*format!("again {r}")), Some(2))
        );
    }

    // The admin view lists every hub's rooms and connections.
    let overview = api(&server, "/api/rooms", None);
    let listed: Vec<&str> = overview["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = (0..ROOMS).map(|r| format!("room-{r}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(overview["connections"], 3 * ROOMS, "{overview}");

    // A kick by name reaches the person in every room, on every hub.
    let kicked = api(&server, "/api/kick", Some(json!({"name": "listener"})));
    assert_eq!(kicked, json!({"name": "listener", "kicked": ROOMS}));
    for (listener, _) in rooms.iter_mut() {
        assert_eq!(
            close_frame(listener),
            Some((1008, "kicked by moderator".to_string()))
        );
    }

    // A ban is kept by every hub: the name is refused in every room.
    let banned = api(
        &server,
        "/api/ban",
        Some(json!({"name": "raw0", "minutes": 5})),
    );
    assert_eq!(banned["kicked"], ROOMS, "{banned}");
    for r in 0..ROOMS {
        let mut again = connect_v1(&server.url("/ws"));
        send_json(
            &mut again,
            json!({"type": "join", "room": format!("room-{r}"), "name": "raw0"}),
        );
        expect_error(&mut again, "banned");
    }
}

#[test]
fn look_alike_spellings_of_a_room_meet_on_one_hub() {
    let server = Server::start(&["--hubs", "3"]);
    let mut alice = join_v1(&server, "lobby", "alice");
    // Cyrillic о: the same room, whichever hub the client started on.
    let mut bob = connect_v1(&server.url("/ws"));
    let welcome = join_frame(&mut bob, "l\u{43e}bby", "bob");
    assert_eq!(welcome["room"], "lobby", "{welcome}");
    assert_eq!(wait_join(&mut alice), "bob");
    assert_relayed(&mut bob, &mut alice, "one room");
}

#[test]
fn a_join_refused_on_one_hub_may_be_asked_again_for_a_room_on_another() {
    let server = Server::start(&["--hubs", "3"]);
    let _alice = join_v1(&server, "first", "alice");
    let mut client = connect_v1(&server.url("/ws"));
    // Refused: the name is taken there.
    send_json(
        &mut client,
        json!({"type": "join", "room": "first", "name": "alice"}),
    );
    expect_error(&mut client, "name_taken");
    // Every other room is reachable from here, whatever its hub.
    for r in 0..6 {
        let mut other = connect_v1(&server.url("/ws"));
        let welcome = join_frame(&mut other, &format!("second-{r}"), "alice");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
    }
    let welcome = join_frame(&mut client, "second-0", "carol");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["room"], "second-0", "{welcome}");
}
