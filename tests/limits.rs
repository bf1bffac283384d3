//! Proves the size limits: text over `--max-message-size` and files over
//! `--max-file-size` close the sender with 1009 (or, for a v1 announcement,
//! get `file_too_large`), an oversized frame is refused from its header
//! without waiting for its payload, and the rest of the room carries on.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MAX_MESSAGE: usize = 1024;
const MAX_FILE: usize = 4096;
const OPTIONS: &[&str] = &["--max-message-size", "1024", "--max-file-size", "4096"];

/// A refusal that does not wait for the payload comes at once. The offender
/// reads with this timeout, so a server that waits for the payload fails the
/// test here instead of at the heartbeat (20 s by default).
const PROMPT: Duration = Duration::from_secs(3);

#[test]
fn raw_text_over_max_message_size_closes_1009() {
    let mut room = Watched::start(OPTIONS);
    let mut mallory = room.raw("mallory");
    send_text(&mut mallory, &"x".repeat(MAX_MESSAGE + 1));
    assert_eq!(
        close_frame(&mut mallory),
        Some((1009, "message too big".to_string()))
    );
    drop(mallory);
    room.check_recovered("mallory");
}

#[test]
fn v1_text_over_max_message_size_closes_1009() {
    let mut room = Watched::start(OPTIONS);
    let mut mallory = room.v1("mallory");
    let text = "y".repeat(MAX_MESSAGE);
    let frame = serde_json::json!({"type": "message", "text": text}).to_string();
    assert!(frame.len() > MAX_MESSAGE);
    send_text(&mut mallory, &frame);
    assert_eq!(
        close_frame(&mut mallory),
        Some((1009, "message too big".to_string()))
    );
    drop(mallory);
    room.check_recovered("mallory");
}

#[test]
fn raw_text_of_exactly_max_message_size_is_relayed() {
    let server = Server::start(OPTIONS);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut carol, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=carol");
    let text = "z".repeat(MAX_MESSAGE);
    send_text(&mut carol, &text);
    let v = expect_type(&mut alice, "message");
    assert_eq!(v["text"], text.as_str());
    assert_eq!(v["from"], "carol");
}

#[test]
fn raw_file_over_max_file_size_closes_1009() {
    let mut room = Watched::start(OPTIONS);
    let mut mallory = room.raw("mallory");
    send_binary(
        &mut mallory,
        file_frame("big.bin", &vec![7u8; MAX_FILE + 1]),
    );
    let (code, reason) = close_frame(&mut mallory).expect("close frame with a code");
    assert_eq!(code, 1009, "reason {reason:?}");
    drop(mallory);
    room.check_recovered("mallory");
}

#[test]
fn raw_file_of_exactly_max_file_size_is_relayed() {
    let server = Server::start(OPTIONS);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut carol, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=carol");
    let bytes: Vec<u8> = (0..MAX_FILE).map(|i| (i % 251) as u8).collect();
    send_binary(&mut carol, file_frame("full.bin", &bytes));
    let v = expect_type(&mut alice, "file");
    assert_eq!(v["size"], MAX_FILE);
    assert_eq!(expect_binary(&mut alice), bytes);
}

#[test]
fn v1_file_announcement_over_max_file_size_gets_file_too_large() {
    let mut room = Watched::start(OPTIONS);
    let mut mallory = room.v1("mallory");
    send_json(
        &mut mallory,
        serde_json::json!({"type": "file", "name": "big.bin", "size": MAX_FILE + 1}),
    );
    expect_error(&mut mallory, "file_too_large");
    // The connection stays open and nothing was announced to the room:
    // mallory's next message is the next thing alice sees.
    assert_relayed(&mut mallory, &mut room.alice, "after the refusal");
    assert_relayed(&mut room.bob, &mut room.alice, "still here");
}

/// Sends a frame header announcing `announced` bytes with `opcode`, then only
/// `start` of the payload, and checks that the server closes with 1009 at
/// once, without waiting for the rest, and that the room carries on.
fn refused_from_its_header(v1: bool, opcode: u8, announced: u64, start: &[u8]) {
    let mut room = Watched::start(OPTIONS);
    let mut mallory = room.socket("mallory", v1);
    let mut bytes = frame_header(opcode, announced, true);
    bytes.extend_from_slice(&apply_mask(start, MASK_KEY));
    mallory.tcp.set_read_timeout(Some(PROMPT)).unwrap();
    let sent = Instant::now();
    mallory.send_bytes(&bytes);
    let (code, _) = mallory.read_close().expect("a close frame");
    assert_eq!(code, 1009);
    assert!(sent.elapsed() < PROMPT, "took {:?}", sent.elapsed());
    drop(mallory);
    room.check_recovered("mallory");
}

#[test]
fn huge_v1_frame_is_refused_from_its_header() {
    // A text frame announcing 1 TiB, then just a little of it.
    refused_from_its_header(true, 0x81, 1 << 40, b"{\"type\":\"message\"");
}

#[test]
fn huge_raw_binary_frame_is_refused_from_its_header() {
    refused_from_its_header(false, 0x82, 1 << 40, &file_frame("huge.bin", b"abc"));
}

/// The text limit applies to the frame header too: a raw text frame that
/// announces more than `--max-message-size` is refused before its payload
/// arrives, although it is far below the binary (file) limit.
#[test]
fn raw_text_frame_over_max_message_size_is_refused_from_its_header() {
    refused_from_its_header(false, 0x81, (MAX_MESSAGE * 4) as u64, b"only the start");
}
