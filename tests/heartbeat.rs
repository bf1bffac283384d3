//! Proves the heartbeat and the write timeout: the server pings every
//! `--ping-interval`, keeps clients that answer, drops a silent one after two
//! intervals (the room sees it leave), and drops a client that stops reading
//! once a write has been blocked for `--write-timeout`, freeing its threads.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

const PING: &[&str] = &["--ping-interval", "0.3"];

/// For the tests where alice must sit out short pauses between reads (which
/// answer the pings): she may be idle for up to two intervals.
const SLOWER_PING: &[&str] = &["--ping-interval", "0.5"];

/// Reads until the next ping and returns it (tungstenite queues the pong,
/// which goes out on the next read).
fn next_ping(ws: &mut Client) {
    loop {
        match ws.read().expect("read while waiting for a ping") {
            Message::Ping(_) => return,
            Message::Close(c) => panic!("closed while waiting for a ping: {c:?}"),
            _ => continue,
        }
    }
}

#[test]
fn pings_arrive_every_interval() {
    let server = Server::start(PING);
    let mut ws = connect(&server.url("/echo"));
    let start = Instant::now();
    for _ in 0..3 {
        next_ping(&mut ws);
    }
    // Three pings at 0.3 s; at the default interval (20 s) this takes a minute.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "three pings took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_client_that_answers_pings_stays_connected() {
    let server = Server::start(PING);
    let mut alice = join_v1(&server, "r", "alice");
    // Eight intervals: four times the silence that gets a client dropped.
    for _ in 0..8 {
        next_ping(&mut alice);
    }
    send_json(
        &mut alice,
        serde_json::json!({"type": "message", "text": "still here"}),
    );
    let v = expect_type(&mut alice, "message");
    assert_eq!(v["text"], "still here");
}

#[test]
fn a_silent_client_is_dropped_after_two_intervals() {
    let mut server = Server::start(SLOWER_PING);
    let mut alice = join_v1(&server, "r", "alice");
    let base = Baseline::take(&server);
    // Completes the handshake, then never reads nor answers a ping.
    let mut mute = RawSocket::open_v1(&server, "/ws?room=r&name=mute");
    assert_eq!(wait_join(&mut alice), "mute");
    let start = Instant::now();
    assert_eq!(wait_leave(&mut alice), "mute");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "dropped after {took:?}, before it could have missed a ping"
    );
    assert!(took < Duration::from_secs(4), "dropped only after {took:?}");
    // Its socket ends, with a 1001 close frame if the server could send one.
    if let Some((code, reason)) = mute.read_close() {
        assert_eq!(code, 1001, "reason {reason:?}");
    }
    drop(mute);
    base.wait_back(&server);
    assert!(server.is_running());
    // The room carries on.
    let mut carol = join_v1(&server, "r", "carol");
    assert_eq!(wait_join(&mut alice), "carol");
    assert_relayed(&mut carol, &mut alice, "still here");
}

#[test]
fn a_silent_raw_client_is_dropped_after_two_intervals() {
    let server = Server::start(SLOWER_PING);
    let mut alice = join_v1(&server, "r", "alice");
    let base = Baseline::take(&server);
    let mut mute = RawSocket::open(&server, "/ws?room=r&name=mute", &[]);
    assert_eq!(wait_join(&mut alice), "mute");
    let start = Instant::now();
    assert_eq!(wait_leave(&mut alice), "mute");
    assert!(start.elapsed() < Duration::from_secs(4));
    if let Some((code, reason)) = mute.read_close() {
        assert_eq!(code, 1001, "reason {reason:?}");
    }
    drop(mute);
    base.wait_back(&server);
}

/// What happened to a client that stopped reading while the room pushed
/// 48 MiB of files at it.
struct Stalled {
    server: Server,
    alice: Client,
    bob: Client,
    /// The client that never read, still open on our side.
    slow: Client,
    base: Baseline,
    /// From the first file sent to slow's `leave`.
    dropped_after: Duration,
    /// From the last file sent to slow's `leave`, if it came after that.
    after_push: Option<Duration>,
}

/// Runs the stalled-reader scenario with `--write-timeout 0.5`.
fn stall() -> Stalled {
    // The outbound queue is large enough that only the write timeout, not
    // queue overflow, can drop the client within this test's volume.
    let server = Server::start(&[
        "--write-timeout",
        "0.5",
        "--queue-bytes",
        "268435456",
        "--queue-frames",
        "100000",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=bob");
    let base = Baseline::take(&server);
    // Connected, in the room, and never reads again.
    let (slow, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=slow");

    // 48 MiB: more than the kernel can buffer between the server and a
    // peer that does not read (send buffer at most 4 MiB, receive buffer at
    // most 32 MiB on Linux by default), so slow's writer ends up blocked.
    let file: Vec<u8> = (0..64 * 1024).map(|i| (i % 253) as u8).collect();
    let start = Instant::now();
    let mut left = false;
    'push: for _ in 0..768 {
        send_binary(&mut bob, file_frame("blob.bin", &file));
        // alice gets each file before the next is sent, or slow's leave.
        loop {
            match next_data(&mut alice) {
                Message::Binary(b) => {
                    assert_eq!(b.len(), file.len());
                    break;
                }
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "leave" {
                        assert_eq!(v["name"], "slow");
                        left = true;
                        break 'push;
                    }
                    assert_eq!(v["type"], "file", "{v}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let pushed = Instant::now();
    if !left {
        assert_eq!(wait_leave(&mut alice), "slow");
    }
    Stalled {
        server,
        alice,
        bob,
        slow,
        base,
        dropped_after: start.elapsed(),
        after_push: (!left).then(|| pushed.elapsed()),
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_its_threads_freed() {
    let Stalled {
        server,
        mut alice,
        mut bob,
        slow,
        base,
        dropped_after,
        ..
    } = stall();
    // A few write timeouts at most; at the default (10 s) this is far longer.
    assert!(
        dropped_after < Duration::from_secs(6),
        "dropped only after {dropped_after:?}"
    );
    // The server freed slow's threads and socket by itself.
    base.wait_back(&server);
    drop(slow);
    // The room carries on (past the last file, which may still be on its
    // way to alice if slow left before it was sent).
    send_text(&mut bob, "after");
    loop {
        if let Message::Text(t) = next_data(&mut alice) {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "message" {
                assert_eq!(v["text"], "after");
                break;
            }
            assert_eq!(v["type"], "file", "{v}");
        }
    }
}

/// By the end of the push slow's writer is blocked (more was queued than
/// the kernel can hold), so `--write-timeout` (0.5 s) after it at the latest
/// the client must be gone. A timeout that restarts whenever the kernel
/// accepts a few more bytes lets a non-reading peer hold a writer for several
/// timeouts.
#[test]
fn a_blocked_write_lasts_no_longer_than_the_write_timeout() {
    let stalled = stall();
    if let Some(after_push) = stalled.after_push {
        // 0.5 s of write timeout plus 0.5 s for scheduling.
        assert!(
            after_push < Duration::from_secs(1),
            "dropped {after_push:?} after its writer was blocked (--write-timeout 0.5)"
        );
    }
}
