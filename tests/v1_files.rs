//! Proves v1 files as docs/PROTOCOL.md describes them: the announcement,
//! then the bytes to others only, sizes checked against the announcement and
//! the limit, ids shared with messages, and frames out of turn refused.

mod support;

use serde_json::json;
use support::*;

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
