//! Proves what a connection costs and that admission knows it: an idle
//! WebSocket costs the server one thread, given back when it closes; and a
//! server whose open-file limit is lower than `--max-connections` says so at
//! start, refuses the connections it cannot hold with 503 instead of failing,
//! and keeps serving the ones it holds.

mod support;

use std::net::TcpStream;
use std::time::Duration;

use support::*;
use tungstenite::stream::MaybeTlsStream;

// ---------------------------------------------------------------------------
// An idle connection costs one thread
// ---------------------------------------------------------------------------

/// Idle connections opened at once.
const IDLE: usize = 200;
/// Threads the server may start besides one per idle connection (helpers
/// that come and go, such as one finishing a write).
const SLACK: usize = 4;

#[test]
fn an_idle_connection_costs_one_thread() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "idle", "watcher");
    let base = Baseline::take(&server);

    // By `i % 3`: a raw client and a v1 client in the watcher's room, and
    // an /echo client. Each is up on the server before the next: the
    // watcher has seen it join, or it has echoed a frame.
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let name = format!("c{i}");
        let path = format!("/ws?room=idle&name={name}");
        idle.push(match i % 3 {
            0 => {
                let (ws, joined) = connect_raw_synced(&server, &mut watcher, &path);
                assert_eq!(joined, name);
                ws
            }
            1 => {
                let (ws, welcome, _) = join_v1_path(&server, &path);
                assert_eq!(welcome["name"], name.as_str());
                assert_eq!(wait_join(&mut watcher), name);
                ws
            }
            _ => {
                let mut ws = connect(&server.url("/echo"));
                send_text(&mut ws, &name);
                assert_eq!(expect_text(&mut ws), name);
                ws
            }
        });
    }
    assert_eq!(idle.len(), IDLE);
    // The server holds every one of them…
    let fds = server.fds();
    assert!(
        fds >= base.fds + IDLE,
        "the server has {fds} descriptors open, {} before {IDLE} connections",
        base.fds
    );
    // …at a thread each. A helper thread that is finishing a write may
    // still be there, so the count is given a moment to settle.
    let bound = base.threads + IDLE + SLACK;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut threads = server.threads();
    while threads > bound && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        threads = server.threads();
    }
    assert!(
        threads <= bound,
        "{IDLE} idle connections hold {} threads (baseline {}, at most {bound} allowed)",
        threads - base.threads,
        base.threads
    );

    // They all close (half with a close handshake, half just dropped), and
    // everything comes back.
    let mut members = 0;
    for (i, mut ws) in idle.into_iter().enumerate() {
        if i % 3 != 2 {
            members += 1;
        }
        if i % 2 == 0 {
            ws.close(None).unwrap();
            wait_disconnected(&mut ws);
        }
    }
    for _ in 0..members {
        let left = wait_leave(&mut watcher);
        assert!(left.starts_with('c'), "{left} left");
    }
    base.wait_back(&server);
    // And the room still works.
    let mut last = join_v1(&server, "idle", "last");
    assert_eq!(wait_join(&mut watcher), "last");
    assert_relayed(&mut last, &mut watcher, "after them all");
}

// ---------------------------------------------------------------------------
// Admission knows the machine
// ---------------------------------------------------------------------------

/// The open-file limit the server is started with.
const NOFILE: u64 = 300;

/// How long a connection attempt may wait for its answer: a server that
/// takes longer is not answering at all (it cannot accept the connection).
const ANSWER: Duration = Duration::from_secs(5);

/// Tries to open a WebSocket to `/echo`: the client if it is held, `None`
/// if it is refused with 503 and a `Retry-After`. Anything else, or no
/// answer within `ANSWER`, fails the test.
fn attempt(server: &Server, n: usize) -> Option<Client> {
    let stream = TcpStream::connect(&server.addr)
        .unwrap_or_else(|e| panic!("connection {n}: cannot connect: {e}"));
    stream.set_read_timeout(Some(ANSWER)).unwrap();
    match tungstenite::client(server.url("/echo").as_str(), MaybeTlsStream::Plain(stream)) {
        Ok((mut ws, _)) => {
            if let MaybeTlsStream::Plain(s) = ws.get_mut() {
                s.set_read_timeout(Some(WATCHDOG)).unwrap();
            }
            Some(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            assert_eq!(status, 503, "connection {n} refused with {status}");
            let retry = response
                .headers()
                .get("Retry-After")
                .unwrap_or_else(|| panic!("connection {n}: 503 without Retry-After"));
            let secs: u64 = retry
                .to_str()
                .unwrap()
                .parse()
                .expect("Retry-After in seconds");
            assert!(secs > 0, "connection {n}: Retry-After {secs}");
            None
        }
        Err(e) => panic!(
            "connection {n}: neither held nor refused within {ANSWER:?} \
             (the server could not accept it?): {e}"
        ),
    }
}

/// Opens `/echo` connections into `held` until one is refused, failing the
/// test if `up_to` are held without a refusal.
fn fill(server: &Server, held: &mut Vec<Client>, up_to: usize) {
    for n in held.len()..up_to {
        match attempt(server, n) {
            Some(ws) => held.push(ws),
            None => return,
        }
    }
    panic!("{up_to} connections held, none refused")
}

#[test]
fn a_server_with_few_descriptors_refuses_what_it_cannot_hold_with_503() {
    let (mut server, log) = Server::start_with_nofile(
        NOFILE,
        &[
            "--max-connections",
            "10000",
            "--max-connections-per-ip",
            "10000",
        ],
    );
    let mut alice = join_v1(&server, "r", "alice");
    let mut bob = join_v1(&server, "r", "bob");
    assert_eq!(wait_join(&mut alice), "bob");

    // Connections up to and beyond what 300 descriptors can hold: the
    // first refusal comes before that many (alice and bob included).
    let mut held = Vec::new();
    fill(&server, &mut held, NOFILE as usize - 2);
    let cap = held.len() + 2;
    assert!(
        cap >= 32,
        "only {cap} connections held before the first 503"
    );
    // More attempts are refused the same way; the server neither fails
    // nor stops answering.
    for n in 0..20 {
        assert!(
            attempt(&server, cap + 1 + n).is_none(),
            "attempt {} beyond the cap was held",
            n + 1
        );
    }
    assert!(server.is_running(), "the server process has exited");
    assert_relayed(&mut bob, &mut alice, "at the cap");
    for (i, ws) in held.iter_mut().enumerate().step_by(25) {
        let text = format!("held {i}");
        send_text(ws, &text);
        assert_eq!(expect_text(ws), text);
    }

    // Five close; their places are taken again once the server has let
    // them go, and not one more.
    for mut ws in held.drain(..5) {
        ws.close(None).unwrap();
        wait_disconnected(&mut ws);
    }
    let deadline = std::time::Instant::now() + WATCHDOG;
    let mut retaken = 0;
    while retaken < 5 {
        match attempt(&server, cap) {
            Some(ws) => {
                held.push(ws);
                retaken += 1;
            }
            None => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "only {retaken} of 5 freed places taken again"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    assert!(
        attempt(&server, cap + 1).is_none(),
        "one more than the cap was held"
    );
    assert_relayed(&mut alice, &mut bob, "after the churn");
    assert!(server.is_running(), "the server process has exited");

    // It said at start that it cannot hold what it was asked to.
    let warning = log.wait_for(Duration::from_secs(5), |line| {
        let lower = line.to_ascii_lowercase();
        lower.contains("level=warn")
            && ["max-connections", "max_connections", "max connections"]
                .iter()
                .any(|k| lower.contains(k))
    });
    assert!(
        warning.is_some(),
        "no warning about --max-connections in the log: {:?}",
        log.lines()
    );
}
