//! Proves the per-connection rate limit (`--rate`, `--burst`) slows and never
//! drops: a client within its burst is never held back; a raw client's burst
//! over the rate arrives complete and in order, only later; a v1 client is
//! told `slow_down` and loses nothing; pings count against the same
//! allowance; and a client flooding without end costs the rest of the room
//! nothing.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

#[test]
fn thirty_quick_messages_within_the_default_burst_all_arrive() {
    let mut room = Watched::start(&[]);
    let start = Instant::now();
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
    // bob's acknowledgements: nothing held him back.
    for i in 0..30 {
        let v = next_json(&mut room.bob);
        assert_eq!(v["type"], "message", "{v}");
        assert_eq!(v["text"], format!("n{i}"));
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_raw_burst_over_the_rate_arrives_whole_and_in_order_only_later() {
    // 100 frames against a burst of 10 at 50/s: at least 1.8 s of waiting.
    let mut room = Watched::start(&["--rate", "50", "--burst", "10"]);
    let mut raw = room.raw("rawbob");
    let start = Instant::now();
    for i in 0..100 {
        send_text(&mut raw, &format!("r{i}"));
    }
    for i in 0..100 {
        let v = expect_type(&mut room.alice, "message");
        assert_eq!(v["text"], format!("r{i}"), "{v}");
        assert_eq!(v["from"], "rawbob");
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1700), "not slowed: {took:?}");
    assert!(took < Duration::from_secs(6), "slowed too much: {took:?}");
}

#[test]
fn a_v1_client_over_the_rate_is_told_to_slow_down_and_loses_nothing() {
    let mut room = Watched::start(&["--rate", "50", "--burst", "5"]);
    for i in 0..40 {
        send_json(
            &mut room.bob,
            serde_json::json!({"type": "message", "text": format!("m{i}")}),
        );
    }
    let mut acks = 0;
    let mut told = 0;
    while acks < 40 {
        let v = next_json(&mut room.bob);
        match v["type"].as_str() {
            Some("message") => {
                assert_eq!(v["text"], format!("m{acks}"), "{v}");
                acks += 1;
            }
            Some("slow_down") => {
                assert!(v["wait_ms"].as_u64().is_some_and(|ms| ms >= 1), "{v}");
                told += 1;
            }
            _ => panic!("unexpected event {v}"),
        }
    }
    assert!(told >= 1, "bob was never told to slow down");
    for i in 0..40 {
        assert_eq!(
            expect_type(&mut room.alice, "message")["text"],
            format!("m{i}")
        );
    }
}

#[test]
fn pings_count_against_the_rate() {
    // 110 pings against a burst of 10 at 100/s: the pongs take at least 1 s.
    let server = Server::start(&["--rate", "100", "--burst", "10"]);
    let mut ws = connect(&server.url("/ws?room=p"));
    let start = Instant::now();
    for i in 0..110u32 {
        ws.send(Message::Ping(i.to_be_bytes().to_vec().into()))
            .unwrap();
    }
    let mut pongs = 0;
    while pongs < 110 {
        match ws.read().expect("read while waiting for pongs") {
            Message::Pong(_) => pongs += 1,
            Message::Ping(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "pings not paced: {took:?}"
    );
}

#[test]
fn a_client_flooding_without_end_costs_the_others_nothing() {
    let mut room = Watched::start(&["--rate", "20", "--burst", "20"]);
    let flooder = RawSocket::open(&room.server, "/ws?room=r&name=flooder", &[]);
    assert_eq!(wait_join(&mut room.alice), "flooder");
    // The flooder writes far more than its rate, and keeps writing in the
    // background while bob talks.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let stop = stop.clone();
        let frame = masked_frame(0x81, b"flood");
        let mut sock = flooder.tcp.try_clone().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let burst: Vec<u8> = frame.repeat(64);
            sock.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Blocks once the server stops reading: that is the point.
                let _ = sock.write_all(&burst);
            }
        })
    };
    for i in 0..5 {
        let sent = Instant::now();
        let text = format!("honest {i}");
        send_json(
            &mut room.bob,
            serde_json::json!({"type": "message", "text": text}),
        );
        loop {
            // A leave here would mean the flooder was closed: it must only
            // be slowed.
            let v = expect_type(&mut room.alice, "message");
            if v["from"] == "bob" {
                assert_eq!(v["text"], text);
                break;
            }
            assert_eq!(v["from"], "flooder", "{v}");
        }
        let took = sent.elapsed();
        assert!(took < Duration::from_millis(500), "bob waited {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flooding.join().unwrap();
    drop(flooder);
}
