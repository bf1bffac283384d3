//! Proves connection lifecycle hygiene: abrupt drops are noticed at once (others
//! get `leave`), and thousands of connect/disconnect cycles of every kind leave
//! the server's threads, file descriptors and room membership back at baseline.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::stream::MaybeTlsStream;

/// An abrupt drop is a TCP close without a WebSocket close frame: it must be
/// noticed from the socket, not from a ping timeout (20 s by default).
const LEAVE_BOUND: Duration = Duration::from_secs(3);

fn tcp(ws: &mut Client) -> &mut TcpStream {
    match ws.get_mut() {
        MaybeTlsStream::Plain(s) => s,
        _ => unreachable!("tests use plain TCP"),
    }
}

#[test]
fn abrupt_drop_of_v1_client_sends_leave() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let bob = join_v1(&server, "lobby", "bob");
    assert_eq!(wait_join(&mut alice), "bob");
    let start = Instant::now();
    drop(bob); // closes the TCP socket, no close frame
    let leave = expect_type(&mut alice, "leave");
    assert_eq!(leave["name"], "bob");
    assert_eq!(leave["room"], "lobby");
    assert_ts(&leave);
    assert!(
        start.elapsed() < LEAVE_BOUND,
        "leave took {:?}",
        start.elapsed()
    );
}

#[test]
fn abrupt_drop_of_raw_client_sends_leave() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (raw, name) = connect_raw_synced(&server, &mut alice, "/ws?name=rawbob");
    assert_eq!(name, "rawbob");
    let start = Instant::now();
    drop(raw);
    assert_eq!(expect_type(&mut alice, "leave")["name"], "rawbob");
    assert!(
        start.elapsed() < LEAVE_BOUND,
        "leave took {:?}",
        start.elapsed()
    );
}

#[test]
fn drop_in_the_middle_of_a_frame_sends_leave() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let mut bob = join_v1(&server, "lobby", "bob");
    assert_eq!(wait_join(&mut alice), "bob");
    // A masked text frame header announcing 100 bytes, then only 3 of them.
    let s = tcp(&mut bob);
    s.write_all(&[0x81, 0x80 | 100, 1, 2, 3, 4, b'a', b'b', b'c'])
        .unwrap();
    s.flush().unwrap();
    let start = Instant::now();
    drop(bob);
    assert_eq!(expect_type(&mut alice, "leave")["name"], "bob");
    assert!(
        start.elapsed() < LEAVE_BOUND,
        "leave took {:?}",
        start.elapsed()
    );
}

#[test]
fn closing_normally_sends_leave_once() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let mut bob = join_v1(&server, "lobby", "bob");
    assert_eq!(wait_join(&mut alice), "bob");
    bob.close(None).unwrap();
    assert!(wait_disconnected(&mut bob).is_some(), "no close reply");
    assert_eq!(expect_type(&mut alice, "leave")["name"], "bob");
    // The next event is a fresh join, not a second leave.
    let _carol = join_v1(&server, "lobby", "carol");
    assert_eq!(expect_type(&mut alice, "join")["name"], "carol");
}

/// One connect/disconnect cycle of kind `i % 6`.
fn cycle(server: &Server, i: usize) {
    match i % 6 {
        // Raw client, proper close handshake.
        0 => {
            let mut ws = connect(&server.url(&format!("/ws?name=r{i}")));
            ws.close(None).unwrap();
            wait_disconnected(&mut ws);
        }
        // v1 client that joined, then vanishes without a close frame.
        1 => {
            let (ws, welcome, _) = join_v1_path(server, &format!("/ws?room=cy&name=v{i}"));
            assert_eq!(welcome["name"], format!("v{i}"));
            drop(ws);
        }
        // v1 client that joined, proper close handshake.
        2 => {
            let (mut ws, _, _) = join_v1_path(server, &format!("/ws?room=cy&name=v{i}"));
            ws.close(None).unwrap();
            wait_disconnected(&mut ws);
        }
        // Raw client that vanishes.
        3 => drop(connect(&server.url("/ws"))),
        // Echo client that vanishes.
        4 => drop(connect(&server.url("/echo"))),
        // TCP connection that dies half-way through the HTTP request.
        _ => {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
                .unwrap();
        }
    }
}

#[test]
fn ten_thousand_cycles_leave_threads_fds_and_rooms_at_baseline() {
    // One address opening 10,000 connections as fast as it can is what the
    // connect rate is for; lifted here, since this test is about cleanup.
    let server = Server::start(&["--connect-rate", "1000000", "--connect-burst", "1000000"]);
    let base_threads = server.threads();
    let base_fds = server.fds();
    for i in 0..9200 {
        cycle(&server, i);
    }
    std::thread::scope(|scope| {
        for t in 0..4 {
            let server = &server;
            scope.spawn(move || {
                for k in 0..200 {
                    cycle(server, 10_000 + t * 1000 + k);
                }
            });
        }
    });
    server.wait_until("threads back at baseline", |s| s.threads() <= base_threads);
    server.wait_until("fds back at baseline", |s| s.fds() <= base_fds);
    // Nobody is left in the rooms either.
    for room in ["lobby", "cy"] {
        let (_ws, _welcome, presence) =
            join_v1_path(&server, &format!("/ws?room={room}&name=last"));
        assert_eq!(
            presence["users"],
            serde_json::json!(["last"]),
            "room {room}"
        );
    }
}
