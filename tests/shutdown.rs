//! Proves graceful shutdown: on SIGTERM every client (raw, v1, echo) gets
//! close 1001 after the frames already queued for it, and the process exits
//! with status 0 (SIGHUP: 1012 and status 75, a restart); a second signal ends it at once even while a client that
//! does not read still holds it in its grace period.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Reads the close frame, answers it, and waits for the server to hang up.
fn expect_shutdown_close(ws: &mut Client) {
    assert_eq!(
        close_frame(ws),
        Some((1001, "server shutting down".to_string()))
    );
    wait_disconnected(ws);
}

#[test]
fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let mut server = Server::start(&["--shutdown-grace", "2"]);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut raw, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=rawbob");
    let mut echo = connect(&server.url("/echo"));
    send_text(&mut echo, "up");
    assert_eq!(expect_text(&mut echo), "up");

    server.signal("TERM");
    for ws in [&mut alice, &mut raw, &mut echo] {
        expect_shutdown_close(ws);
    }
    let start = Instant::now();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}");
    // Every client answered its close, so the grace period was not needed.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "exit took {:?}",
        start.elapsed()
    );
}

/// SIGHUP is a restart: every client is told so with 1012 `server
/// restarting` (a page can then say it will be back), and the process exits
/// with 75 for its supervisor to start it again.
#[test]
fn sighup_closes_every_client_with_1012_and_exits_75() {
    let mut server = Server::start(&["--shutdown-grace", "2"]);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut raw, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=rawbob");
    let mut echo = connect(&server.url("/echo"));
    send_text(&mut echo, "up");
    assert_eq!(expect_text(&mut echo), "up");

    server.signal("HUP");
    for ws in [&mut alice, &mut raw, &mut echo] {
        assert_eq!(
            close_frame(ws),
            Some((1012, "server restarting".to_string()))
        );
        wait_disconnected(ws);
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(75), "{status}");
}

#[test]
fn sigterm_with_no_clients_exits_0_at_once() {
    let server = Server::start(&["--shutdown-grace", "5"]);
    let start = Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn frames_queued_before_the_signal_arrive_before_the_close() {
    let mut server = Server::start(&[
        "--shutdown-grace",
        "5",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=bob");
    // 16 MiB for alice, who does not read until after the signal: far more
    // than the socket buffers hold, so most of it waits in her queue.
    const FILES: usize = 64;
    for i in 0..FILES {
        let bytes = vec![i as u8; 256 * 1024];
        send_binary(&mut bob, file_frame(&format!("f{i}.bin"), &bytes));
    }
    send_text(&mut bob, "last words");
    // bob's reader has handed every frame to the room once it answers this.
    assert_pong(&mut bob, b"sync");

    server.signal("TERM");
    for i in 0..FILES {
        let v = expect_type(&mut alice, "file");
        assert_eq!(v["name"], format!("f{i}.bin"));
        let bytes = expect_binary(&mut alice);
        assert_eq!(bytes.len(), 256 * 1024);
        assert!(bytes.iter().all(|&b| b == i as u8), "file {i} out of order");
    }
    assert_eq!(expect_type(&mut alice, "message")["text"], "last words");
    expect_shutdown_close(&mut alice);
    expect_shutdown_close(&mut bob);
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    // Without a store rate: the 48 MiB bob stores would otherwise take two
    // minutes at the default 256K/s, which is not what this test is about.
    let mut server = Server::start(&[
        "--shutdown-grace",
        "30",
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--store-rate",
        "0",
    ]);
    let mut alice = join_v1(&server, "r", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=bob");
    // slow never reads: 48 MiB for it (more than the kernel buffers) keep
    // its writer blocked, and the server waiting for it, after the signal.
    let (_slow, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=slow");
    alice.close(None).unwrap();
    wait_disconnected(&mut alice);
    let file = vec![3u8; 256 * 1024];
    for _ in 0..192 {
        send_binary(&mut bob, file_frame("blob.bin", &file));
    }
    assert_pong(&mut bob, b"sync");
    let mut witness = connect(&server.url("/echo"));

    server.signal("TERM");
    // The first signal has been handled once the witness is told to go.
    expect_shutdown_close(&mut witness);
    expect_shutdown_close(&mut bob);
    assert!(server.is_running(), "the server did not wait for slow");

    server.signal("TERM");
    let start = Instant::now();
    let status = server.wait_exit();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "second signal: exit took {:?} ({status})",
        start.elapsed()
    );
}
