//! Proves v1 error handling as docs/PROTOCOL.md describes it: the error
//! codes for malformed frames and frames out of order, with the connection
//! staying up, and the 1007/1008/1009 closes.

mod support;

use serde_json::{Value, json};
use support::*;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

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
