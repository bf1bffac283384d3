//! Proves raw mode on /ws (no subprotocol): the tutorial's relay to every other
//! client exactly once and in order, room isolation, file frames, the 1007/1008/1009
//! closes, and that a client that never reads cannot slow the room down.

mod support;

use std::sync::{Arc, Barrier};

use support::*;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// Limits high enough that no test here is affected by the rate limiter.
/// Neither the frame rate nor the per-address store rate: these tests are
/// about fan-out, and send megabytes from one address.
const NO_RATE_LIMIT: [&str; 6] = ["--rate", "100000", "--burst", "100000", "--store-rate", "0"];

#[test]
fn text_reaches_every_other_client_once_never_the_sender() {
    let server = Server::start(&[]);
    let mut c = raw_room(&server, "relay", "c", 3);
    // Each sender's next message is checked by everyone else; an echo to the
    // sender or a duplicate would be read in place of a later message.
    for (round, sender) in [0usize, 1, 2, 0, 1].into_iter().enumerate() {
        let text = format!("round {round} from c{sender}");
        send_text(&mut c[sender], &text);
        for (j, ws) in c.iter_mut().enumerate() {
            if j != sender {
                assert_eq!(expect_text(ws), text, "client c{j}");
            }
        }
    }
}

#[test]
fn twenty_concurrent_senders_each_get_all_others_once_in_order() {
    const N: usize = 20;
    const M: usize = 40;
    let server = Server::start(&NO_RATE_LIMIT);
    let clients = raw_room(&server, "crowd", "p", N);
    let barrier = Arc::new(Barrier::new(N));
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for k in 0..M {
                    ws.write(Message::text(format!("{i}:{k}"))).unwrap();
                }
                ws.flush().unwrap();
                let mut next = [0usize; N];
                for _ in 0..(N - 1) * M {
                    let t = expect_text(&mut ws);
                    let (s, k) = t.split_once(':').expect("sender:seq");
                    let (s, k): (usize, usize) = (s.parse().unwrap(), k.parse().unwrap());
                    assert_ne!(s, i, "client {i} received its own message {t:?}");
                    assert_eq!(k, next[s], "client {i}: from {s} expected #{}", next[s]);
                    next[s] += 1;
                }
                for (s, n) in next.iter().enumerate() {
                    let want = if s == i { 0 } else { M };
                    assert_eq!(*n, want, "client {i} got {n} messages from {s}");
                }
                ws
            })
        })
        .collect();
    let clients: Vec<Client> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(clients.len(), N);
}

#[test]
fn burst_of_300_messages_arrives_in_order() {
    let server = Server::start(&NO_RATE_LIMIT);
    let mut c = raw_room(&server, "burst", "b", 2);
    for k in 0..300 {
        c[0].write(Message::text(format!("burst message {k}")))
            .unwrap();
    }
    c[0].flush().unwrap();
    for k in 0..300 {
        assert_eq!(expect_text(&mut c[1]), format!("burst message {k}"));
    }
}

#[test]
fn one_mib_file_frame_arrives_intact() {
    let server = Server::start(&[]);
    let mut c = raw_room(&server, "files", "f", 3);
    let bytes: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let frame = file_frame("big file ✓.bin", &bytes);
    send_binary(&mut c[0], frame.clone());
    for ws in &mut c[1..] {
        let got = expect_binary(ws);
        assert_eq!(got.len(), frame.len());
        assert!(got == frame, "file frame altered in transit");
    }
    // And the sender does not get its own file back.
    send_text(&mut c[1], "after the file");
    assert_eq!(expect_text(&mut c[0]), "after the file");
}

#[test]
fn rooms_are_isolated_and_default_room_is_lobby() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "lobby", "w");
    // One lobby client gives no room at all, the other names it.
    let (l0, n0) = connect_raw_synced(&server, &mut watcher, "/ws?name=l0");
    assert_eq!(n0, "l0");
    let (l1, n1) = connect_raw_synced(&server, &mut watcher, "/ws?room=lobby&name=l1");
    assert_eq!(n1, "l1");
    watcher.close(None).unwrap();
    let mut rooms = [
        ("lobby", vec![l0, l1]),
        ("a", raw_room(&server, "a", "a", 2)),
        ("b", raw_room(&server, "b", "b", 2)),
    ];
    // Phase 1: traffic in every room, each message confirmed by its partner,
    // so any leak into another room is already queued when phase 2 starts.
    for (room, c) in rooms.iter_mut() {
        for s in 0..2 {
            let t = format!("{room}: message from {s}");
            send_text(&mut c[s], &t);
            assert_eq!(expect_text(&mut c[1 - s]), t);
        }
    }
    // Phase 2: every client's next frame must be its partner's fence.
    for (room, c) in rooms.iter_mut() {
        for s in 0..2 {
            let t = format!("{room}: fence from {s}");
            send_text(&mut c[s], &t);
            assert_eq!(expect_text(&mut c[1 - s]), t, "a frame crossed rooms");
        }
    }
}

/// Sends `frame` from one of three clients and checks it is closed with 1007
/// `bad file header` while the other two never see it and keep working.
fn bad_file_header_closes_only_the_sender(frame: Vec<u8>) {
    let server = Server::start(&[]);
    let mut c = raw_room(&server, "hdr", "h", 3);
    send_binary(&mut c[0], frame);
    let (code, reason) = close_frame(&mut c[0]).expect("a close frame with a code");
    assert_eq!(code, 1007);
    assert_eq!(reason, "bad file header");
    send_text(&mut c[1], "still here");
    assert_eq!(expect_text(&mut c[2]), "still here");
    let good = file_frame("ok.txt", b"fine");
    send_binary(&mut c[2], good.clone());
    assert_eq!(expect_binary(&mut c[1]), good);
}

#[test]
fn empty_binary_frame_closes_sender_1007() {
    bad_file_header_closes_only_the_sender(Vec::new());
}

#[test]
fn one_byte_file_header_closes_sender_1007() {
    bad_file_header_closes_only_the_sender(vec![5]);
}

#[test]
fn name_longer_than_frame_closes_sender_1007() {
    // Declares a 10-byte name but carries only 5 bytes after the length.
    let mut frame = 10u16.to_le_bytes().to_vec();
    frame.extend_from_slice(b"short");
    bad_file_header_closes_only_the_sender(frame);
}

#[test]
fn non_utf8_file_name_closes_sender_1007() {
    let mut frame = 3u16.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    frame.extend_from_slice(b"payload");
    bad_file_header_closes_only_the_sender(frame);
}

#[test]
fn non_utf8_text_frame_closes_sender_1007() {
    let server = Server::start(&[]);
    let mut c = raw_room(&server, "utf8", "u", 3);
    let bad = Frame::message(vec![b'h', 0xc3, 0x28, b'!'], OpCode::Data(Data::Text), true);
    c[0].send(Message::Frame(bad)).unwrap();
    let (code, reason) = close_frame(&mut c[0]).expect("a close frame with a code");
    assert_eq!(code, 1007);
    assert_eq!(reason, "invalid UTF-8");
    send_text(&mut c[1], "carry on");
    assert_eq!(expect_text(&mut c[2]), "carry on");
    send_text(&mut c[2], "carrying on");
    assert_eq!(expect_text(&mut c[1]), "carrying on");
}

#[test]
fn oversized_text_frame_closes_sender_1009() {
    let server = Server::start(&["--max-message-size", "1000"]);
    let mut c = raw_room(&server, "big", "g", 3);
    // Exactly at the limit is fine.
    let at_limit = "x".repeat(1000);
    send_text(&mut c[0], &at_limit);
    assert_eq!(expect_text(&mut c[1]), at_limit);
    assert_eq!(expect_text(&mut c[2]), at_limit);
    send_text(&mut c[0], &"y".repeat(1001));
    let (code, _reason) = close_frame(&mut c[0]).expect("a close frame with a code");
    assert_eq!(code, 1009);
    send_text(&mut c[1], "unaffected");
    assert_eq!(expect_text(&mut c[2]), "unaffected");
}

fn numbered_file(i: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..1024 * 1024usize)
        .map(|k| ((k * 7 + i) % 256) as u8)
        .collect();
    file_frame(&format!("chunk-{i}.bin"), &bytes)
}

#[test]
fn client_that_never_reads_does_not_slow_the_room() {
    // The write timeout is far longer than the watchdog: if a broadcast ever
    // waited for the stalled client's socket, the healthy reader would hang.
    let mut args = vec!["--queue-bytes", "2097152", "--write-timeout", "60"];
    args.extend(NO_RATE_LIMIT);
    let server = Server::start(&args);
    let mut c = raw_room(&server, "slow", "s", 3);
    let _stalled = c.pop().unwrap(); // never read from
    let mut healthy = c.pop().unwrap();
    let mut sender = c.pop().unwrap();
    // Lock-step: the healthy client's queue never holds more than one file,
    // while ~20 MiB pile up towards the stalled one.
    for i in 0..20 {
        let f = numbered_file(i);
        send_binary(&mut sender, f.clone());
        let got = expect_binary(&mut healthy);
        assert!(got == f, "file {i} altered or out of order");
    }
    send_text(&mut sender, "done");
    assert_eq!(expect_text(&mut healthy), "done");
}

#[test]
fn client_that_never_reads_is_disconnected() {
    let mut args = vec!["--queue-bytes", "2097152", "--write-timeout", "1"];
    args.extend(NO_RATE_LIMIT);
    let server = Server::start(&args);
    let mut c = raw_room(&server, "slow", "s", 3);
    let mut stalled = c.pop().unwrap();
    let mut healthy = c.pop().unwrap();
    let mut sender = c.pop().unwrap();
    for i in 0..20 {
        let f = numbered_file(i);
        send_binary(&mut sender, f.clone());
        assert!(expect_binary(&mut healthy) == f, "file {i} altered");
    }
    // Now read the stalled client: whatever was buffered, then the end.
    if let Some(code) = wait_disconnected(&mut stalled) {
        assert_eq!(code, 1008, "a slow client is closed with 1008 too slow");
    }
    // The room still works for the others.
    send_text(&mut sender, "still fine");
    assert_eq!(expect_text(&mut healthy), "still fine");
}

fn refused_with_1008(path: &str, reason: &str) {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let mut ws = connect(&server.url(path));
    let (code, got) = close_frame(&mut ws).expect("a close frame with a code");
    assert_eq!(code, 1008, "path {path}");
    assert!(
        got.contains(reason),
        "close reason {got:?}, want {reason:?}"
    );
    // The refused client never joined: alice's next event is the next real join.
    let _ok = connect(&server.url("/ws?name=next"));
    assert_eq!(wait_join(&mut alice), "next");
}

#[test]
fn taken_name_is_refused_with_1008() {
    refused_with_1008("/ws?name=alice", "name taken");
}

#[test]
fn name_with_control_character_is_refused_with_1008() {
    refused_with_1008("/ws?name=bad%07name", "invalid name");
}

#[test]
fn name_of_33_characters_is_refused_with_1008() {
    refused_with_1008(&format!("/ws?name={}", "n".repeat(33)), "invalid name");
}

#[test]
fn blank_name_is_refused_with_1008() {
    refused_with_1008("/ws?name=%20%20%20", "invalid name");
}

#[test]
fn invalid_room_is_refused_with_1008() {
    refused_with_1008(
        &format!("/ws?room={}&name=x", "r".repeat(33)),
        "invalid room",
    );
}

#[test]
fn other_subprotocols_get_raw_mode_without_header() {
    let server = Server::start(&[]);
    let mut peers = raw_room(&server, "lobby", "peer", 1);
    let mut watcher = join_v1(&server, "lobby", "w");
    let (mut ws, response) = connect_manual(
        &server,
        "/ws?name=odd",
        &["Sec-WebSocket-Protocol: chat, superchat"],
    );
    assert_eq!(
        response.header("sec-websocket-protocol"),
        None,
        "the server must select no subprotocol"
    );
    assert_eq!(wait_join(&mut watcher), "odd");
    // Raw behaviour: plain text relayed unchanged, nothing JSON sent to it.
    send_text(&mut peers[0], "plain hello");
    assert_eq!(expect_text(&mut ws), "plain hello");
    send_text(&mut ws, "plain reply");
    assert_eq!(expect_text(&mut peers[0]), "plain reply");
}
