//! Proves v1 names and rooms as docs/PROTOCOL.md describes them: the joins
//! refused (invalid_name, invalid_room, name_taken) with the connection
//! staying up, and the names accepted.

mod support;

use serde_json::{Value, json};
use support::*;

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
