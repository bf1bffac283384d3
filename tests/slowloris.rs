//! Proves the defences against slow request heads: a connection that does
//! not finish its head within `--handshake-timeout` is answered 408 (or
//! closed) and its thread freed, trickling bytes does not extend that
//! deadline, and beyond `--max-handshakes` incomplete heads a new connection
//! is refused with 503 at once, while the chat room carries on.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

const HALF_HEAD: &[u8] = b"GET /ws?room=r&name=mallory HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr";

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                break;
            }
            Err(e) => panic!("connection still open at the watchdog ({e})"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The server either answers 408 or just closes.
fn assert_timed_out(response: &str) {
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "expected 408 or a bare close, got {response:?}"
    );
}

#[test]
fn half_a_request_head_is_closed_after_the_handshake_timeout() {
    let mut room = Watched::start(&["--handshake-timeout", "0.5"]);
    let mut s = TcpStream::connect(&room.server.addr).unwrap();
    s.write_all(HALF_HEAD).unwrap();
    let start = Instant::now();
    let response = read_until_closed(&mut s);
    let took = start.elapsed();
    assert_timed_out(&response);
    assert!(took >= Duration::from_millis(400), "closed after {took:?}");
    // The default (5 s) would be well past this.
    assert!(took < Duration::from_secs(3), "closed only after {took:?}");
    drop(s);
    room.base.wait_back(&room.server);
    assert_relayed(&mut room.bob, &mut room.alice, "still here");
}

#[test]
fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let server = Server::start(&["--handshake-timeout", "0.5"]);
    let base = Baseline::take(&server);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let start = Instant::now();
    assert_timed_out(&read_until_closed(&mut s));
    assert!(start.elapsed() < Duration::from_secs(3));
    drop(s);
    base.wait_back(&server);
}

#[test]
fn trickling_the_head_does_not_extend_the_deadline() {
    let server = Server::start(&["--handshake-timeout", "0.5"]);
    let base = Baseline::take(&server);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let mut reader = s.try_clone().unwrap();
    let (done, closed) = mpsc::channel();
    std::thread::spawn(move || {
        let response = read_until_closed(&mut reader);
        let _ = done.send(response);
    });
    // Two hundred header bytes at one per 20 ms would take four seconds:
    // each byte is progress, but the deadline covers the whole head.
    let mut head = HALF_HEAD.to_vec();
    head.extend_from_slice(&[b'x'; 200]);
    let start = Instant::now();
    let mut response = None;
    for byte in head {
        if let Ok(r) = closed.try_recv() {
            response = Some(r);
            break;
        }
        if s.write_all(&[byte]).is_err() {
            break;
        }
        // The attacker's pace, not a wait for the server.
        std::thread::sleep(Duration::from_millis(20));
    }
    let response = response.unwrap_or_else(|| closed.recv_timeout(WATCHDOG).expect("closed"));
    let took = start.elapsed();
    assert_timed_out(&response);
    assert!(took < Duration::from_secs(2), "closed only after {took:?}");
    drop(s);
    base.wait_back(&server);
}

#[test]
fn beyond_max_handshakes_a_new_connection_gets_503_at_once() {
    let mut room = Watched::start(&["--max-handshakes", "2", "--handshake-timeout", "10"]);
    // Two incomplete heads hold both handshake slots.
    let mut h1 = TcpStream::connect(&room.server.addr).unwrap();
    h1.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut h2 = TcpStream::connect(&room.server.addr).unwrap();
    h2.write_all(HALF_HEAD).unwrap();
    // The server accepts in order, so both are counted before the third.
    let mut h3 = TcpStream::connect(&room.server.addr).unwrap();
    h3.set_read_timeout(Some(WATCHDOG)).unwrap();
    let start = Instant::now();
    let refused = read_http_response(&mut h3);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "refused only after {:?}",
        start.elapsed()
    );
    drop(h3);
    // The room is unaffected.
    assert_relayed(&mut room.bob, &mut room.alice, "still here");

    // Finishing one head frees its slot for the next connection.
    h1.set_read_timeout(Some(WATCHDOG)).unwrap();
    h1.write_all(b"Connection: close\r\n\r\n").unwrap();
    assert_eq!(read_http_response(&mut h1).status, 200);
    let mut echo = connect(&room.server.url("/echo"));
    send_text(&mut echo, "admitted");
    assert_eq!(expect_text(&mut echo), "admitted");

    drop((h1, h2, echo));
    room.base.wait_back(&room.server);
}

#[test]
fn a_timed_out_handshake_frees_its_slot() {
    let server = Server::start(&["--max-handshakes", "1", "--handshake-timeout", "0.5"]);
    let mut h1 = TcpStream::connect(&server.addr).unwrap();
    h1.write_all(HALF_HEAD).unwrap();
    assert_timed_out(&read_until_closed(&mut h1));
    // The slot was released before the socket was closed.
    let mut echo = connect(&server.url("/echo"));
    send_text(&mut echo, "admitted");
    assert_eq!(expect_text(&mut echo), "admitted");
}
