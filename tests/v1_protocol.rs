//! Proves v1 mode (subprotocol `wschat.v1`) as docs/PROTOCOL.md describes it:
//! joining, welcome/presence/history order, join/leave/typing, messages and files,
//! every error code with the connection staying up, and the 1007/1008 closes.

mod support;

use serde_json::{Value, json};
use support::*;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

fn send_message(ws: &mut Client, text: &str) {
    send_json(ws, json!({"type": "message", "text": text}));
}

/// Sends `text` and checks the sender's own copy comes back: the connection
/// is up and the session works.
fn roundtrip(ws: &mut Client, text: &str) -> Value {
    send_message(ws, text);
    let v = expect_type(ws, "message");
    assert_eq!(v["text"], text, "{v}");
    v
}

fn join_frame(ws: &mut Client, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "name": name}));
    let welcome = expect_type(ws, "welcome");
    expect_type(ws, "presence");
    welcome
}

fn check_message(v: &Value, id: u64, room: &str, from: &str, text: &str) {
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["room"], room, "{v}");
    assert_eq!(v["from"], from, "{v}");
    assert_eq!(v["text"], text, "{v}");
    assert_ts(v);
}

/// Two v1 clients in room `den`, alice first; alice has seen bob's join.
fn pair(server: &Server) -> (Client, Client) {
    let mut alice = join_v1(server, "den", "alice");
    let bob = join_v1(server, "den", "bob");
    assert_eq!(expect_type(&mut alice, "join")["name"], "bob");
    (alice, bob)
}

// ---------------------------------------------------------------- joining

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

// ---------------------------------------------------------------- messages

#[test]
fn messages_reach_everyone_including_sender_with_increasing_ids() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    let script = [("alice", "one"), ("bob", "two"), ("alice", "three")];
    for (i, (who, text)) in script.into_iter().enumerate() {
        let sender = if who == "alice" { &mut alice } else { &mut bob };
        send_message(sender, text);
        let a = expect_type(&mut alice, "message");
        let b = expect_type(&mut bob, "message");
        check_message(&a, i as u64 + 1, "den", who, text);
        assert_eq!(a, b, "both clients get the same event");
    }
    let (_carol, welcome, _) = join_v1_path(&server, "/ws?room=den&name=carol");
    assert_eq!(welcome["last_id"], 3);
}

#[test]
fn ids_count_per_room() {
    let server = Server::start(&[]);
    let mut a = join_v1(&server, "one", "alice");
    let mut b = join_v1(&server, "two", "bob");
    check_message(&roundtrip(&mut a, "x"), 1, "one", "alice", "x");
    check_message(&roundtrip(&mut a, "y"), 2, "one", "alice", "y");
    check_message(&roundtrip(&mut b, "z"), 1, "two", "bob", "z");
}

#[test]
fn typing_goes_to_others_not_sender() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(&mut alice, json!({"type": "typing"}));
    let t = expect_type(&mut bob, "typing");
    assert_eq!(t["name"], "alice");
    assert_eq!(t["room"], "den");
    // Not echoed and not stored: alice's next frame is her message, id 1.
    check_message(&roundtrip(&mut alice, "typed"), 1, "den", "alice", "typed");
}

// ---------------------------------------------------------------- files

#[test]
fn file_announcement_then_bytes_to_others_not_sender() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    send_json(
        &mut alice,
        json!({"type": "file", "name": "cat.png", "size": 5000, "mime": "image/png"}),
    );
    send_binary(&mut alice, bytes.clone());
    let f = expect_type(&mut bob, "file");
    assert_eq!(f["id"], 1);
    assert_eq!(f["room"], "den");
    assert_eq!(f["from"], "alice");
    assert_eq!(f["name"], "cat.png");
    assert_eq!(f["size"], 5000);
    assert_eq!(f["mime"], "image/png");
    assert_ts(&f);
    assert_eq!(expect_binary(&mut bob), bytes);
    // The sender's copy has no bytes after it.
    let own = expect_type(&mut alice, "file");
    assert_eq!(own, f);
    check_message(&roundtrip(&mut alice, "sent"), 2, "den", "alice", "sent");
}

#[test]
fn file_without_mime_is_octet_stream() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "blob", "size": 3}),
    );
    send_binary(&mut alice, vec![1, 2, 3]);
    let f = expect_type(&mut bob, "file");
    assert_eq!(f["mime"], "application/octet-stream");
    assert_eq!(expect_binary(&mut bob), vec![1, 2, 3]);
}

#[test]
fn empty_file_is_announced_with_an_empty_frame() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "empty.txt", "size": 0}),
    );
    send_binary(&mut alice, Vec::new());
    assert_eq!(expect_type(&mut bob, "file")["size"], 0);
    assert_eq!(expect_binary(&mut bob), Vec::<u8>::new());
}

#[test]
fn messages_and_files_share_ids() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    roundtrip(&mut alice, "before");
    send_json(
        &mut alice,
        json!({"type": "file", "name": "a.bin", "size": 1}),
    );
    send_binary(&mut alice, vec![9]);
    assert_eq!(expect_type(&mut alice, "file")["id"], 2);
    check_message(&roundtrip(&mut alice, "after"), 3, "den", "alice", "after");
    assert_eq!(expect_type(&mut bob, "message")["id"], 1);
    assert_eq!(expect_type(&mut bob, "file")["id"], 2);
    assert_eq!(expect_binary(&mut bob), vec![9]);
    assert_eq!(expect_type(&mut bob, "message")["id"], 3);
}

#[test]
fn file_at_max_size_is_accepted() {
    let server = Server::start(&["--max-file-size", "1000"]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "max.bin", "size": 1000}),
    );
    send_binary(&mut alice, vec![7; 1000]);
    assert_eq!(expect_type(&mut bob, "file")["size"], 1000);
    assert_eq!(expect_binary(&mut bob), vec![7; 1000]);
}

#[test]
fn file_over_max_size_is_file_too_large() {
    let server = Server::start(&["--max-file-size", "1000"]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "big.bin", "size": 1001}),
    );
    expect_error(&mut alice, "file_too_large");
    // Nothing was stored or announced: the next event anywhere is message 1.
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
    check_message(&expect_type(&mut bob, "message"), 1, "den", "alice", "ok");
}

#[test]
fn short_file_bytes_are_size_mismatch() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "x.bin", "size": 10}),
    );
    send_binary(&mut alice, vec![0; 9]);
    expect_error(&mut alice, "size_mismatch");
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
    check_message(&expect_type(&mut bob, "message"), 1, "den", "alice", "ok");
}

#[test]
fn long_file_bytes_are_size_mismatch() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "x.bin", "size": 10}),
    );
    send_binary(&mut alice, vec![0; 11]);
    expect_error(&mut alice, "size_mismatch");
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
    check_message(&expect_type(&mut bob, "message"), 1, "den", "alice", "ok");
}

#[test]
fn binary_without_announcement_is_unexpected_binary() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_binary(&mut alice, vec![1, 2, 3]);
    expect_error(&mut alice, "unexpected_binary");
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
    check_message(&expect_type(&mut bob, "message"), 1, "den", "alice", "ok");
}

#[test]
fn text_while_file_pending_is_unexpected_frame_and_cancels() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    send_json(
        &mut alice,
        json!({"type": "file", "name": "x.bin", "size": 3}),
    );
    send_json(&mut alice, json!({"type": "typing"}));
    expect_error(&mut alice, "unexpected_frame");
    // The announcement was cancelled: bytes now are unexpected.
    send_binary(&mut alice, vec![1, 2, 3]);
    expect_error(&mut alice, "unexpected_binary");
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
    // Whether the interrupting frame itself is then acted on is not
    // specified; the cancelled file is never announced.
    let mut v = next_json(&mut bob);
    if v["type"] == "typing" {
        v = next_json(&mut bob);
    }
    check_message(&v, 1, "den", "alice", "ok");
}

// ---------------------------------------------------------------- errors

#[test]
fn non_json_is_bad_json() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    for bad in [
        "this is not json",
        "{",
        "[1,2,3]",
        "\"a string\"",
        "42",
        "null",
    ] {
        send_text(&mut alice, bad);
        expect_error(&mut alice, "bad_json");
    }
    roundtrip(&mut alice, "still here");
}

#[test]
fn bad_json_before_join_keeps_connection() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    send_text(&mut ws, "nope");
    expect_error(&mut ws, "bad_json");
    join_frame(&mut ws, "den", "alice");
}

#[test]
fn missing_or_unknown_type_is_unknown_type() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    for bad in [
        json!({"type": "dance"}),
        json!({"text": "no type"}),
        json!({"type": 5}),
        json!({"type": null}),
        json!({"type": "welcome"}),
        json!({"type": "MESSAGE", "text": "case matters"}),
    ] {
        send_json(&mut alice, bad);
        expect_error(&mut alice, "unknown_type");
    }
    roundtrip(&mut alice, "still here");
}

fn bad_field(joined: bool, frame: Value, field: &str) {
    let server = Server::start(&[]);
    let mut ws = if joined {
        join_v1(&server, "den", "alice")
    } else {
        connect_v1(&server.url("/ws"))
    };
    send_json(&mut ws, frame);
    let e = expect_error(&mut ws, "bad_field");
    assert!(
        e["message"].as_str().unwrap().contains(field),
        "bad_field message does not name {field:?}: {e}"
    );
    if joined {
        roundtrip(&mut ws, "still here");
    } else {
        join_frame(&mut ws, "den", "alice");
    }
}

#[test]
fn message_without_text_is_bad_field() {
    bad_field(true, json!({"type": "message"}), "text");
}

#[test]
fn message_with_numeric_text_is_bad_field() {
    bad_field(true, json!({"type": "message", "text": 5}), "text");
}

#[test]
fn file_with_string_size_is_bad_field() {
    bad_field(
        true,
        json!({"type": "file", "name": "a.txt", "size": "big"}),
        "size",
    );
}

#[test]
fn file_without_name_is_bad_field() {
    bad_field(true, json!({"type": "file", "size": 3}), "name");
}

#[test]
fn join_without_name_is_bad_field() {
    bad_field(false, json!({"type": "join", "room": "den"}), "name");
}

#[test]
fn join_with_numeric_name_is_bad_field() {
    bad_field(false, json!({"type": "join", "name": 7}), "name");
}

#[test]
fn join_with_string_since_is_bad_field() {
    bad_field(
        false,
        json!({"type": "join", "name": "alice", "since": "3"}),
        "since",
    );
}

#[test]
fn text_over_max_text_bytes_is_text_too_long() {
    let server = Server::start(&["--max-text", "10"]);
    let mut alice = join_v1(&server, "den", "alice");
    roundtrip(&mut alice, "1234567890");
    roundtrip(&mut alice, "ééééé"); // 5 characters, 10 bytes
    send_message(&mut alice, "12345678901");
    expect_error(&mut alice, "text_too_long");
    send_message(&mut alice, "éééééé"); // 6 characters, 12 bytes
    expect_error(&mut alice, "text_too_long");
    check_message(&roundtrip(&mut alice, "ok"), 3, "den", "alice", "ok");
}

#[test]
fn empty_text_is_empty_text() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    send_message(&mut alice, "");
    expect_error(&mut alice, "empty_text");
    check_message(&roundtrip(&mut alice, "ok"), 1, "den", "alice", "ok");
}

fn refused_join(field: &str, value: Value, code: &str) {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    let mut frame = json!({"type": "join", "room": "den", "name": "alice"});
    frame[field] = value;
    send_json(&mut ws, frame);
    expect_error(&mut ws, code);
    // Not joined, connection up: a valid join now succeeds.
    let welcome = join_frame(&mut ws, "den", "alice");
    assert_eq!(welcome["name"], "alice");
}

#[test]
fn name_with_control_character_is_invalid_name() {
    refused_join("name", json!("bad\u{7}name"), "invalid_name");
}

#[test]
fn name_with_newline_is_invalid_name() {
    refused_join("name", json!("two\nlines"), "invalid_name");
}

#[test]
fn name_of_33_characters_is_invalid_name() {
    refused_join("name", json!("n".repeat(33)), "invalid_name");
}

#[test]
fn blank_name_is_invalid_name() {
    refused_join("name", json!("   "), "invalid_name");
}

#[test]
fn empty_name_is_invalid_name() {
    refused_join("name", json!(""), "invalid_name");
}

#[test]
fn name_of_32_characters_is_valid() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    let name = "é".repeat(32); // 32 characters, 64 bytes
    assert_eq!(join_frame(&mut ws, "den", &name)["name"], name.as_str());
}

#[test]
fn name_is_trimmed() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    let welcome = join_frame(&mut ws, "den", "  alice \t");
    assert_eq!(welcome["name"], "alice");
    check_message(&roundtrip(&mut ws, "hi"), 1, "den", "alice", "hi");
}

#[test]
fn room_of_33_characters_is_invalid_room() {
    refused_join("room", json!("r".repeat(33)), "invalid_room");
}

#[test]
fn room_with_control_character_is_invalid_room() {
    refused_join("room", json!("den\u{1b}"), "invalid_room");
}

#[test]
fn blank_room_is_invalid_room() {
    refused_join("room", json!("  "), "invalid_room");
}

#[test]
fn used_name_is_name_taken() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    let mut ws = connect_v1(&server.url("/ws"));
    for taken in ["alice", " alice "] {
        send_json(
            &mut ws,
            json!({"type": "join", "room": "den", "name": taken}),
        );
        expect_error(&mut ws, "name_taken");
    }
    // Names compare exactly: "Alice" is another name.
    assert_eq!(join_frame(&mut ws, "den", "Alice")["name"], "Alice");
    assert_eq!(expect_type(&mut alice, "join")["name"], "Alice");
}

#[test]
fn same_name_in_another_room_is_fine() {
    let server = Server::start(&[]);
    let _alice = join_v1(&server, "den", "alice");
    let _other = join_v1(&server, "attic", "alice");
}

fn not_joined(frame: Value) {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(&mut ws, frame);
    expect_error(&mut ws, "not_joined");
    join_frame(&mut ws, "den", "alice");
    check_message(&roundtrip(&mut ws, "now"), 1, "den", "alice", "now");
}

#[test]
fn message_before_join_is_not_joined() {
    not_joined(json!({"type": "message", "text": "hi"}));
}

#[test]
fn file_before_join_is_not_joined() {
    // The error answers the announcement itself; no bytes are sent.
    not_joined(json!({"type": "file", "name": "a.txt", "size": 1}));
}

#[test]
fn typing_before_join_is_not_joined() {
    not_joined(json!({"type": "typing"}));
}

#[test]
fn second_join_is_already_joined() {
    let server = Server::start(&[]);
    let mut ws = connect_v1(&server.url("/ws"));
    join_frame(&mut ws, "den", "alice");
    send_json(
        &mut ws,
        json!({"type": "join", "room": "attic", "name": "bob"}),
    );
    expect_error(&mut ws, "already_joined");
    // Still alice in den.
    check_message(&roundtrip(&mut ws, "still"), 1, "den", "alice", "still");
}

#[test]
fn join_frame_after_query_join_is_already_joined() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    send_json(&mut alice, json!({"type": "join", "name": "alice2"}));
    expect_error(&mut alice, "already_joined");
    check_message(&roundtrip(&mut alice, "still"), 1, "den", "alice", "still");
}

#[test]
fn frames_over_the_rate_are_slowed_not_dropped() {
    let server = Server::start(&["--rate", "20", "--burst", "2"]);
    let mut alice = join_v1(&server, "den", "alice");
    for i in 0..6 {
        send_message(&mut alice, &format!("m{i}"));
    }
    // Every message is acknowledged, in order; the first frame over the
    // burst also brings one slow_down (sent at once by the reader, so its
    // place among the acknowledgements is not fixed).
    let (mut acks, mut told) = (0, 0);
    while acks < 6 {
        let v = next_json(&mut alice);
        match v["type"].as_str() {
            Some("message") => {
                assert_eq!(v["text"], format!("m{acks}"), "{v}");
                acks += 1;
            }
            Some("slow_down") => {
                let ms = v["wait_ms"].as_u64().unwrap_or(0);
                assert!((1..=50).contains(&ms), "{v}");
                told += 1;
            }
            _ => panic!("unexpected event {v}"),
        }
    }
    assert_eq!(told, 1, "one slow_down for one stretch of waiting");
    assert_pong(&mut alice, b"still up");
}

// ---------------------------------------------------------------- closes

#[test]
fn persistent_bad_input_is_closed_1008() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    for i in 0..1000 {
        if alice.send(Message::text(format!("garbage {i}"))).is_err() {
            break;
        }
        match next_data(&mut alice) {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                assert_eq!(v["code"], "bad_json", "{v}");
            }
            Message::Close(frame) => {
                let f = frame.expect("close frame with a code");
                assert_eq!(u16::from(f.code), 1008);
                assert!(
                    f.reason.contains("too many errors"),
                    "reason {:?}",
                    f.reason
                );
                return;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    panic!("1000 bad frames in a row did not get the connection closed");
}

#[test]
fn non_utf8_text_is_closed_1007() {
    let server = Server::start(&[]);
    let (mut alice, mut bob) = pair(&server);
    let bad = Frame::message(vec![b'{', 0xff, b'}'], OpCode::Data(Data::Text), true);
    alice.send(Message::Frame(bad)).unwrap();
    let (code, reason) = close_frame(&mut alice).expect("a close frame with a code");
    assert_eq!(code, 1007);
    assert_eq!(reason, "invalid UTF-8");
    assert_eq!(expect_type(&mut bob, "leave")["name"], "alice");
    check_message(&roundtrip(&mut bob, "fine"), 1, "den", "bob", "fine");
}

#[test]
fn oversized_text_frame_is_closed_1009() {
    let server = Server::start(&["--max-message-size", "2000", "--max-text", "100000"]);
    let mut alice = join_v1(&server, "den", "alice");
    send_message(&mut alice, &"x".repeat(3000));
    let (code, _) = close_frame(&mut alice).expect("a close frame with a code");
    assert_eq!(code, 1009);
}
