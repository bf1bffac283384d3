//! Proves joining in v1 mode (subprotocol `wschat.v1`) as docs/PROTOCOL.md
//! describes it: the subprotocol chosen, a join by query or by frame,
//! welcome/presence/history order, join and leave events, and unknown
//! fields ignored.

mod support;

use serde_json::json;
use support::*;

#[test]
fn subprotocol_is_selected_when_offered_among_others() {
    let server = Server::start(&[]);
    let (mut ws, response) = connect_manual(
        &server,
        "/ws?name=alice",
        &["Sec-WebSocket-Protocol: chat, wschat.v1, other"],
    );
    assert_eq!(response.header("sec-websocket-protocol"), Some("wschat.v1"));
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["name"], "alice");
}

#[test]
fn query_join_gets_welcome_then_presence() {
    let server = Server::start(&[]);
    let (mut alice, welcome, presence) = join_v1_path(&server, "/ws?room=den&name=alice");
    assert_eq!(welcome["name"], "alice");
    assert_eq!(welcome["room"], "den");
    assert_eq!(welcome["last_id"], 0);
    assert_eq!(presence["room"], "den");
    assert_eq!(presence["users"], json!(["alice"]));
    // Nothing else precedes live traffic in an empty room.
    let v = roundtrip(&mut alice, "first");
    check_message(&v, 1, "den", "alice", "first");
}

#[test]
fn join_frame_gets_welcome_then_presence() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "room": "den", "name": "alice"}),
    );
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["name"], "alice");
    assert_eq!(welcome["room"], "den");
    assert_eq!(welcome["last_id"], 0);
    let presence = expect_type(&mut ws, "presence");
    assert_eq!(presence["room"], "den");
    assert_eq!(presence["users"], json!(["alice"]));
    roundtrip(&mut ws, "works");
}

#[test]
fn join_frame_without_room_defaults_to_lobby() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(&mut ws, json!({"type": "join", "name": "alice"}));
    assert_eq!(expect_type(&mut ws, "welcome")["room"], "lobby");
    assert_eq!(expect_type(&mut ws, "presence")["room"], "lobby");
}

#[test]
fn join_frame_takes_room_from_query_when_omitted() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws?room=den"));
    send_json(&mut ws, json!({"type": "join", "name": "alice"}));
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["room"], "den");
    assert_eq!(welcome["name"], "alice");
}

#[test]
fn query_join_welcome_presence_history_order() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    roundtrip(&mut alice, "m1");
    roundtrip(&mut alice, "m2");
    let (mut bob, welcome, presence) = join_v1_path(&server, "/ws?room=den&name=bob");
    assert_eq!(welcome["last_id"], 2);
    assert_eq!(presence["users"], json!(["alice", "bob"]));
    for (id, text) in [(1, "m1"), (2, "m2")] {
        let v = expect_type(&mut bob, "message");
        check_message(&v, id, "den", "alice", text);
        assert_eq!(v["replay"], true, "{v}");
    }
    // Then live traffic.
    assert_eq!(expect_type(&mut alice, "join")["name"], "bob");
    roundtrip(&mut alice, "m3");
    let v = expect_type(&mut bob, "message");
    check_message(&v, 3, "den", "alice", "m3");
    assert_ne!(v["replay"], true, "live event marked as replay: {v}");
}

#[test]
fn join_frame_welcome_presence_history_order() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    roundtrip(&mut alice, "m1");
    roundtrip(&mut alice, "m2");
    let mut bob = connect_v1(&server.url("/ws"));
    send_json(
        &mut bob,
        json!({"type": "join", "room": "den", "name": "bob"}),
    );
    assert_eq!(expect_type(&mut bob, "welcome")["last_id"], 2);
    assert_eq!(
        expect_type(&mut bob, "presence")["users"],
        json!(["alice", "bob"])
    );
    for (id, text) in [(1, "m1"), (2, "m2")] {
        let v = expect_type(&mut bob, "message");
        check_message(&v, id, "den", "alice", text);
        assert_eq!(v["replay"], true, "{v}");
    }
}

#[test]
fn presence_lists_users_in_joining_order() {
    let server = Server::start(&[]);
    let _alice = join_v1(&server, "den", "alice");
    let bob = join_v1(&server, "den", "bob");
    let mut carol = join_v1(&server, "den", "carol");
    drop(bob);
    assert_eq!(wait_leave(&mut carol), "bob");
    let (_dave, _, presence) = join_v1_path(&server, "/ws?room=den&name=dave");
    assert_eq!(presence["users"], json!(["alice", "carol", "dave"]));
}

#[test]
fn join_and_leave_go_to_others_only() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    let mut bob = join_v1(&server, "den", "bob");
    let join = expect_type(&mut alice, "join");
    assert_eq!(join["name"], "bob");
    assert_eq!(join["room"], "den");
    assert_ts(&join);
    // bob got no join event for himself: his next frame is alice's message.
    roundtrip(&mut alice, "hi bob");
    assert_eq!(expect_type(&mut bob, "message")["text"], "hi bob");
    bob.close(None).unwrap();
    let leave = expect_type(&mut alice, "leave");
    assert_eq!(leave["name"], "bob");
    assert_eq!(leave["room"], "den");
    assert_ts(&leave);
}

#[test]
fn unknown_fields_in_client_frames_are_ignored() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "name": "alice", "client": "x/1.0", "extra": [1, 2]}),
    );
    expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    send_json(
        &mut ws,
        json!({"type": "message", "text": "hi", "color": "red"}),
    );
    assert_eq!(expect_type(&mut ws, "message")["text"], "hi");
}
