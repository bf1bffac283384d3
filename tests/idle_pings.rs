//! Proves that in a room with traffic idle clients are still pinged every
//! interval, in raw mode, in `wschat.v1` and on /echo alike, while a
//! half-open client that neither reads nor answers is dropped.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

/// Pings each idle client must receive.
const PINGS: usize = 3;

/// When each of an idle client's pings arrived, from the start of the count.
type PingTimes = Vec<Duration>;

/// Reads a bare socket, answering each ping, until `PINGS` pings have come
/// and `done` is set; every text must be the next of `traffic` (`None`: no
/// text may come at all). Returns the socket, the pings' times and the
/// number of texts.
fn read_idle_raw(
    mut s: RawSocket,
    start: Instant,
    traffic: Option<&str>,
    done: &AtomicBool,
) -> (RawSocket, PingTimes, usize) {
    let mut pings = Vec::new();
    let mut next = 0;
    while pings.len() < PINGS || !done.load(Ordering::SeqCst) {
        let frame = s.read_frame().expect("idle client: connection ended");
        match (frame.opcode, traffic) {
            (9, _) => {
                pings.push(start.elapsed());
                s.send_bytes(&masked_frame(0x8a, &frame.payload));
            }
            (1, Some(prefix)) => {
                assert_eq!(
                    String::from_utf8(frame.payload).unwrap(),
                    format!("{prefix}{next}")
                );
                next += 1;
            }
            (8, _) => panic!(
                "idle client: closed: {:?}",
                String::from_utf8_lossy(&frame.payload)
            ),
            (op, _) => panic!("idle client: unexpected opcode {op}"),
        }
    }
    (s, pings, next)
}

/// Reads a client (tungstenite answers the pings) until `PINGS` pings have
/// come and `done` holds; `on_data` sees every other message.
fn read_idle_client(
    mut ws: Client,
    start: Instant,
    mut on_data: impl FnMut(Message),
    done: impl Fn() -> bool,
) -> (Client, PingTimes) {
    let mut pings = Vec::new();
    while pings.len() < PINGS || !done() {
        assert!(start.elapsed() < WATCHDOG, "idle client: watchdog");
        match ws.read().expect("idle client: read") {
            Message::Ping(_) => pings.push(start.elapsed()),
            Message::Pong(_) | Message::Frame(_) => {}
            m => on_data(m),
        }
    }
    // Sends the answer to the last ping, which tungstenite holds until the
    // next read or flush.
    ws.flush().expect("idle client: flush");
    (ws, pings)
}

/// Sends a ping from a bare socket and reads, answering the server's pings
/// and skipping texts, until its pong: the connection is still up.
fn raw_pong(s: &mut RawSocket) {
    s.send_bytes(&masked_frame(0x89, b"alive?"));
    let deadline = Instant::now() + WATCHDOG;
    loop {
        assert!(Instant::now() < deadline, "no pong within the watchdog");
        let frame = s.read_frame().expect("connection ended before the pong");
        match frame.opcode {
            10 if frame.payload == b"alive?" => return,
            9 => s.send_bytes(&masked_frame(0x8a, &frame.payload)),
            1 | 10 => continue,
            op => panic!("unexpected opcode {op} while waiting for a pong"),
        }
    }
}

/// Sends a ping from a client and reads, skipping whatever else comes, until
/// its pong: the connection is still up.
fn client_pong(ws: &mut Client) {
    ws.send(Message::Ping(b"alive?".to_vec().into()))
        .expect("send ping");
    let deadline = Instant::now() + WATCHDOG;
    loop {
        assert!(Instant::now() < deadline, "no pong within the watchdog");
        match next_frame(ws) {
            Message::Pong(p) if p.as_ref() == b"alive?" => return,
            Message::Close(c) => panic!("closed while waiting for a pong: {c:?}"),
            _ => continue,
        }
    }
}

/// Reads the next message of any kind within the watchdog.
fn next_frame(ws: &mut Client) -> Message {
    plain_tcp(ws).set_read_timeout(Some(WATCHDOG)).unwrap();
    ws.read().expect("read frame")
}

#[test]
fn idle_clients_are_pinged_every_interval_and_a_half_open_one_is_dropped() {
    let interval = PING_INTERVAL;
    let server = Server::start(&[
        "--ping-interval",
        &interval.as_secs_f64().to_string(),
        "--rate",
        "1000",
        "--burst",
        "1000",
    ]);
    // Room `busy`: a talker and a listener exchanging traffic, an idle v1
    // client, an idle raw client and a half-open client that neither reads
    // nor answers. Room `quiet` and /echo: idle clients where nothing moves.
    let mut idle_v1 = join_v1(&server, "busy", "idle-v1");
    let (talker, _) = connect_raw_synced(&server, &mut idle_v1, "/ws?room=busy&name=talker");
    let (listener, _) = connect_raw_synced(&server, &mut idle_v1, "/ws?room=busy&name=listener");
    let idle_raw_socket = RawSocket::open(&server, "/ws?room=busy&name=idle-raw", &[]);
    assert_eq!(wait_join(&mut idle_v1), "idle-raw");
    let quiet = RawSocket::open(&server, "/ws?room=quiet&name=quiet-raw", &[]);
    let echo = connect(&server.url("/echo"));
    let mut half = RawSocket::open(&server, "/ws?room=busy&name=half", &[]);
    assert_eq!(wait_join(&mut idle_v1), "half");
    let start = Instant::now();
    // Set once the half-open client has left. Every idle client connected
    // before it, so by then each has been idle for longer than the silence
    // that gets a client dropped; they all read on until then.
    let half_gone = Arc::new(AtomicBool::new(false));

    // Traffic: the talker says t0, t1, … every 20 ms; the listener must get
    // each before the next is said.
    let (stop, stop_rx) = mpsc::channel::<()>();
    let traffic = std::thread::spawn(move || {
        let (mut talker, mut listener) = (talker, listener);
        let mut n = 0;
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stop_rx.recv_timeout(Duration::from_millis(20))
        {
            send_text(&mut talker, &format!("t{n}"));
            assert_eq!(expect_text(&mut listener), format!("t{n}"));
            n += 1;
        }
        n
    });
    let idle_raw = {
        let gone = half_gone.clone();
        std::thread::spawn(move || read_idle_raw(idle_raw_socket, start, Some("t"), &gone))
    };
    let quiet = {
        let gone = half_gone.clone();
        std::thread::spawn(move || read_idle_raw(quiet, start, None, &gone))
    };
    let echo = {
        let gone = half_gone.clone();
        std::thread::spawn(move || {
            read_idle_client(
                echo,
                start,
                |m| panic!("echo client: unexpected {m:?}"),
                || gone.load(Ordering::SeqCst),
            )
        })
    };
    // The idle v1 client also watches the room for the half-open client's
    // leave.
    let v1 = {
        let (gone, seen_gone) = (half_gone.clone(), half_gone.clone());
        std::thread::spawn(move || {
            let mut leaves = Vec::new();
            let mut messages = 0;
            let on_data = |m: Message| {
                let Message::Text(t) = m else {
                    panic!("idle v1 client: unexpected {m:?}")
                };
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("leave") => {
                        let name = v["name"].as_str().unwrap().to_string();
                        leaves.push((name, start.elapsed()));
                        gone.store(true, Ordering::SeqCst);
                    }
                    Some("message") => {
                        assert_eq!(v["text"], format!("t{messages}"), "{v}");
                        messages += 1;
                    }
                    _ => panic!("idle v1 client: unexpected {v}"),
                }
            };
            let (ws, pings) =
                read_idle_client(idle_v1, start, on_data, || seen_gone.load(Ordering::SeqCst));
            (ws, pings, leaves, messages)
        })
    };

    let (mut idle_v1, v1_pings, leaves, messages) = v1.join().expect("idle v1 client");
    let (mut idle_raw, raw_pings, raw_texts) = idle_raw.join().expect("idle raw client");
    let (mut quiet, quiet_pings, _) = quiet.join().expect("quiet client");
    let (mut echo, echo_pings) = echo.join().expect("echo client");

    // The half-open client was dropped after two intervals of silence (the
    // server may notice it up to one interval later), and it alone.
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    let (name, left_after) = &leaves[0];
    assert_eq!(name, "half");
    assert!(
        *left_after >= interval && *left_after < 3 * interval + Duration::from_millis(1500),
        "the half-open client was dropped after {left_after:?}"
    );
    if let Some((code, reason)) = half.read_close() {
        assert_eq!(code, 1001, "reason {reason:?}");
    }
    // Every idle client got its pings at the pace of the interval.
    for (who, pings) in [
        ("idle raw", &raw_pings),
        ("idle v1", &v1_pings),
        ("quiet raw", &quiet_pings),
        ("echo", &echo_pings),
    ] {
        assert!(pings.len() >= PINGS, "{who}: {pings:?}");
        let nth = pings[PINGS - 1];
        assert!(
            nth < PINGS as u32 * interval + Duration::from_millis(1500),
            "{who}: {PINGS} pings took {nth:?}: {pings:?}"
        );
    }
    // All of them are still connected, and the traffic flowed throughout.
    raw_pong(&mut idle_raw);
    raw_pong(&mut quiet);
    send_text(&mut echo, "still echoing");
    assert_eq!(expect_text(&mut echo), "still echoing");
    client_pong(&mut idle_v1);
    stop.send(()).unwrap();
    let said = traffic.join().expect("traffic");
    assert!(said >= 20, "only {said} messages of traffic");
    assert!(raw_texts > 0, "the idle raw client saw no traffic");
    assert!(messages > 0, "the idle v1 client saw no traffic");
}
