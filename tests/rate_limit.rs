//! Proves the per-connection rate limit (`--rate`, `--burst`): a client
//! within its burst is never limited; a flooding v1 client gets
//! `rate_limited` errors for the frames dropped, a raw one has them silently
//! dropped, and sustained flooding closes it with 1008 "flooding", while the
//! rest of the room keeps receiving.

mod support;

use support::*;

/// Burst of the flood tests; the sustained rate is so low that no token is
/// earned back during a test.
const BURST: usize = 5;
const FLOOD: &[&str] = &["--rate", "0.01", "--burst", "5"];

#[test]
fn thirty_quick_messages_within_the_default_burst_all_arrive() {
    let mut room = Watched::start(&[]);
    for i in 0..30 {
        send_json(
            &mut room.bob,
            serde_json::json!({"type": "message", "text": format!("n{i}")}),
        );
    }
    for i in 0..30 {
        let v = expect_type(&mut room.alice, "message");
        assert_eq!(v["text"], format!("n{i}"));
        assert_eq!(v["from"], "bob");
    }
    // bob's acknowledgements: no error among them.
    for i in 0..30 {
        let v = expect_type(&mut room.bob, "message");
        assert_eq!(v["text"], format!("n{i}"));
    }
}

#[test]
fn v1_flood_gets_rate_limited_errors_and_is_not_relayed() {
    let mut room = Watched::start(FLOOD);
    let mut mallory = room.v1("mallory");
    let sent = BURST + 3;
    for i in 0..sent {
        send_json(
            &mut mallory,
            serde_json::json!({"type": "message", "text": format!("m{i}")}),
        );
    }
    // Acknowledgements and errors travel on different queues, so their
    // order is not fixed; their numbers are.
    let (mut acks, mut limited) = (Vec::new(), 0);
    for _ in 0..sent {
        let v = next_json(&mut mallory);
        match v["type"].as_str() {
            Some("message") => acks.push(v["text"].as_str().unwrap().to_string()),
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                limited += 1;
            }
            _ => panic!("unexpected event {v}"),
        }
    }
    let first: Vec<String> = (0..BURST).map(|i| format!("m{i}")).collect();
    assert_eq!(acks, first);
    assert_eq!(limited, sent - BURST);
    // mallory's reader has handled every frame (it answered all of them), so
    // a dropped frame would already be ahead of bob's next message.
    for text in &first {
        let v = expect_type(&mut room.alice, "message");
        assert_eq!(&v["text"], text.as_str());
    }
    assert_relayed(&mut room.bob, &mut room.alice, "still here");
    let v = next_json(&mut mallory);
    assert_eq!(v["text"], "still here", "a dropped frame was relayed: {v}");
}

#[test]
fn sustained_v1_flood_closes_1008_flooding() {
    let mut room = Watched::start(FLOOD);
    let mut mallory = room.v1("mallory");
    for i in 0..10 * BURST {
        let frame = serde_json::json!({"type": "message", "text": format!("m{i}")});
        if mallory
            .send(tungstenite::Message::text(frame.to_string()))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_frame(&mut mallory),
        Some((1008, "flooding".to_string()))
    );
    drop(mallory);
    for i in 0..BURST {
        assert_eq!(
            expect_type(&mut room.alice, "message")["text"],
            format!("m{i}")
        );
    }
    room.check_recovered("mallory");
}

#[test]
fn raw_flood_is_dropped_without_delivery() {
    let mut room = Watched::start(FLOOD);
    let mut carol = room.raw("carol");
    let mut mallory = room.raw("mallory");
    let sent = BURST + 3;
    for i in 0..sent {
        send_text(&mut mallory, &format!("m{i}"));
    }
    // The pong comes after the reader has handled every frame before it.
    assert_pong(&mut mallory, b"sync");
    send_json(
        &mut room.bob,
        serde_json::json!({"type": "message", "text": "still here"}),
    );
    for i in 0..BURST {
        let v = expect_type(&mut room.alice, "message");
        assert_eq!(v["from"], "mallory", "{v}");
        assert_eq!(v["text"], format!("m{i}"));
        assert_eq!(expect_text(&mut carol), format!("m{i}"));
    }
    let v = expect_type(&mut room.alice, "message");
    assert_eq!(v["text"], "still here", "a dropped frame was relayed: {v}");
    assert_eq!(expect_text(&mut carol), "bob: still here");
}

#[test]
fn sustained_raw_flood_closes_1008_flooding() {
    let mut room = Watched::start(FLOOD);
    let mut mallory = room.raw("mallory");
    for i in 0..10 * BURST {
        if mallory
            .send(tungstenite::Message::text(format!("m{i}")))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_frame(&mut mallory),
        Some((1008, "flooding".to_string()))
    );
    drop(mallory);
    for i in 0..BURST {
        assert_eq!(
            expect_type(&mut room.alice, "message")["text"],
            format!("m{i}")
        );
    }
    room.check_recovered("mallory");
}

#[test]
fn a_client_closed_for_flooding_cannot_reconnect_at_once_but_other_addresses_can() {
    let server = Server::start(&["--rate", "5", "--burst", "5", "--flood-ban", "30"]);
    let mut flooder = connect_path_from(&server, "/ws?name=mallory", "127.0.0.1").unwrap();
    for i in 0..1000 {
        if flooder
            .send(tungstenite::Message::text(format!("m{i}")))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_frame(&mut flooder),
        Some((1008, "flooding".to_string()))
    );
    // Its address is refused with 429 and told when to come back …
    let refused = upgrade_request(&server.addr, "/ws?name=mallory2", &[]);
    assert_eq!(refused.status, 429, "{}", refused.text());
    let retry: u64 = refused
        .header("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    // … while another address is served as usual.
    let mut other = connect_path_from(&server, "/ws?name=alice", "127.0.0.2").unwrap();
    other.close(None).unwrap();
    wait_disconnected(&mut other);
}
