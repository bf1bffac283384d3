//! Proves that RFC 6455 violations from a client (invalid UTF-8, reserved
//! bits, reserved opcodes, unmasked or fragmented control frames…) close that
//! client with the right code (1007 or 1002) while the server process and
//! the rest of its room carry on.

mod support;

use support::*;

/// Connects the bare-socket offender `mallory` to a watched room, sends it
/// `bytes`, and checks the close code it gets, then that the room and the
/// server recovered.
fn offend(v1: bool, bytes: &[u8], code: u16) -> String {
    let mut room = Watched::start(&[]);
    let mut mallory = room.socket("mallory", v1);
    mallory.send_bytes(bytes);
    let (got, reason) = mallory
        .read_close()
        .expect("the connection ended without a close frame");
    assert_eq!(got, code, "close reason {reason:?}");
    drop(mallory);
    room.check_recovered("mallory");
    reason
}

#[test]
fn invalid_utf8_text_closes_1007() {
    let reason = offend(false, &masked_frame(0x81, b"caf\xc3\x28 \xff"), 1007);
    assert_eq!(reason, "invalid UTF-8");
}

#[test]
fn invalid_utf8_text_in_v1_closes_1007() {
    offend(true, &masked_frame(0x81, b"{\"type\":\"\xfe\"}"), 1007);
}

#[test]
fn invalid_utf8_split_across_fragments_closes_1007() {
    // The first fragment is a valid prefix; the continuation breaks it.
    let mut bytes = masked_frame(0x01, b"ok \xe2\x82");
    bytes.extend(masked_frame(0x80, b"\x28 end"));
    offend(false, &bytes, 1007);
}

#[test]
fn rsv1_bit_closes_1002() {
    offend(false, &masked_frame(0x81 | 0x40, b"hello"), 1002);
}

#[test]
fn rsv3_bit_on_binary_closes_1002() {
    offend(
        false,
        &masked_frame(0x82 | 0x10, &file_frame("a", b"b")),
        1002,
    );
}

#[test]
fn reserved_data_opcode_closes_1002() {
    offend(false, &masked_frame(0x83, b"opcode three"), 1002);
}

#[test]
fn reserved_control_opcode_closes_1002() {
    offend(true, &masked_frame(0x8b, b"opcode eleven"), 1002);
}

#[test]
fn unmasked_client_frame_closes_1002() {
    offend(false, &unmasked_frame(0x81, b"no mask"), 1002);
}

#[test]
fn fragmented_ping_closes_1002() {
    // A ping without FIN: control frames must not be fragmented.
    offend(false, &masked_frame(0x09, b"half a ping"), 1002);
}

#[test]
fn oversized_control_frame_closes_1002() {
    offend(false, &masked_frame(0x89, &[b'p'; 126]), 1002);
}

#[test]
fn continuation_without_a_start_closes_1002() {
    offend(true, &masked_frame(0x80, b"orphan"), 1002);
}

#[test]
fn new_data_frame_inside_a_fragmented_message_closes_1002() {
    let mut bytes = masked_frame(0x01, b"first ");
    bytes.extend(masked_frame(0x81, b"interloper"));
    offend(false, &bytes, 1002);
}

#[test]
fn server_survives_every_violation_in_turn() {
    let server = Server::start(&[]);
    let base = Baseline::take(&server);
    let offences: [Vec<u8>; 6] = [
        masked_frame(0x81, b"\xff"),
        masked_frame(0xc1, b"x"),
        masked_frame(0x83, b"x"),
        unmasked_frame(0x81, b"x"),
        masked_frame(0x09, b"x"),
        masked_frame(0x80, b"x"),
    ];
    for (i, bytes) in offences.iter().enumerate() {
        let paths = [
            "/echo".to_string(),
            format!("/ws?name=raw{i}"),
            format!("/ws?name=v{i}"),
        ];
        for (k, path) in paths.iter().enumerate() {
            let mut s = if k == 2 {
                RawSocket::open_v1(&server, path)
            } else {
                RawSocket::open(&server, path, &[])
            };
            s.send_bytes(bytes);
            let (code, _) = s.read_close().expect("a close frame");
            assert!(
                code == 1002 || code == 1007,
                "offence {i} on {path}: {code}"
            );
        }
    }
    base.wait_back(&server);
    let mut server = server;
    assert!(server.is_running(), "the server process has exited");
    let mut echo = connect(&server.url("/echo"));
    send_text(&mut echo, "alive");
    assert_eq!(expect_text(&mut echo), "alive");
}
