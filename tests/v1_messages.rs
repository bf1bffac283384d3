//! Proves v1 messages and typing as docs/PROTOCOL.md describes them: who
//! receives them, ids per room, the text limits, and a rate that slows a
//! sender without dropping anything.

mod support;

use serde_json::json;
use support::*;

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
