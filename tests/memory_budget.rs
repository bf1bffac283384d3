//! Proves `--memory-budget` holds against hostile load from several client
//! addresses: room history filled with 64 KiB raw texts, joins churned into
//! the fullest room, slow uploads of large files, and receivers that never
//! read. In each, the server's RSS stays under the budget plus a stated
//! overhead, each share's use (from /metrics) stays under its limit, an
//! honest pair chatting in another room keeps its normal latency, and every
//! refusal carries its stated code.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const BUDGET: &str = "64M";
const BUDGET_BYTES: usize = 64 << 20;

/// What the process holds beyond the budget: its code, thread stacks, the
/// allocator's spare pages, and the per-connection state (~13 KiB each)
/// that the budget does not count.
const OVERHEAD: usize = 48 << 20;

/// The most an honest pair's message may take to cross the server while it
/// is under attack (its normal latency is well under a millisecond; this
/// allows for a loaded 2-core test machine).
const HONEST_LATENCY: Duration = Duration::from_millis(300);

/// A server on a 64 MiB budget, its history in a database file (with
/// `--db :memory:` the database itself, files included, would be held in
/// memory, outside the budget).
fn start(tag: &str, extra: &[&str]) -> (Server, TempDir) {
    let dir = TempDir::new(tag);
    let db = dir.path.join("wschat.db");
    let mut args = vec![
        "--db",
        db.to_str().unwrap(),
        "--memory-budget",
        BUDGET,
        "--rate",
        "1000",
        "--burst",
        "1000",
    ];
    args.extend_from_slice(extra);
    (Server::start(&args), dir)
}

/// A TCP connection to the server from the loopback address `from`.
fn tcp_from(server: &Server, from: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WATCHDOG)).unwrap();
    stream
}

/// A WebSocket to `path` from `from`, speaking wschat.v1 when `v1`.
fn ws_from(server: &Server, path: &str, from: &str, v1: bool) -> Client {
    let mut request = server.url(path).into_client_request().unwrap();
    if v1 {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wschat.v1".parse().unwrap());
    }
    let stream = tungstenite::stream::MaybeTlsStream::Plain(tcp_from(server, from));
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("connect {path} from {from}: {e}"),
    }
}

/// The `n`th of several client addresses, so that per-address caps do not
/// hide what the budget does.
fn address(n: usize) -> String {
    format!("127.0.0.{}", 2 + n % 8)
}

/// Two v1 users chatting in their own room, timing each message.
struct HonestPair {
    alice: Client,
    bob: Client,
    sent: usize,
    worst: Duration,
}

impl HonestPair {
    fn join(server: &Server) -> HonestPair {
        let mut alice = join_v1(server, "quiet", "alice");
        let bob = join_v1(server, "quiet", "bob");
        assert_eq!(wait_join(&mut alice), "bob");
        HonestPair {
            alice,
            bob,
            sent: 0,
            worst: Duration::ZERO,
        }
    }

    /// bob says something; alice must hear it promptly.
    fn chat(&mut self) {
        self.sent += 1;
        let text = format!("honest {}", self.sent);
        let start = Instant::now();
        send_json(
            &mut self.bob,
            serde_json::json!({"type": "message", "text": text}),
        );
        let v = expect_type(&mut self.alice, "message");
        self.worst = self.worst.max(start.elapsed());
        assert_eq!(v["text"], text);
        // bob's own copy, so that nothing piles up on his side.
        assert_eq!(expect_type(&mut self.bob, "message")["text"], text);
    }

    fn check(&self) {
        assert!(
            self.worst < HONEST_LATENCY,
            "an honest message took {:?}",
            self.worst
        );
    }
}

/// Bytes of `share` in use and its limit, from /metrics.
fn share(server: &Server, name: &str) -> (f64, f64) {
    let m = scrape(&server.addr);
    let label = format!("{{share=\"{name}\"}}");
    (
        sample(&m, &format!("wschat_memory_used_bytes{label}")),
        sample(&m, &format!("wschat_memory_limit_bytes{label}")),
    )
}

/// Messages the history store has committed.
fn records_written(server: &Server) -> f64 {
    let m = scrape(&server.addr);
    sample(&m, "wschat_store_records_written") + sample(&m, "wschat_store_records_written_total")
}

fn check_memory(server: &Server) {
    for name in ["history", "outbound", "incoming"] {
        let (used, limit) = share(server, name);
        assert!(used <= limit, "{name}: {used} of {limit}");
    }
    let rss = server.rss_kib() * 1024;
    eprintln!("server RSS {} MiB", rss >> 20);
    assert!(
        rss < BUDGET_BYTES + OVERHEAD,
        "RSS {} MiB passes the budget plus overhead",
        rss >> 20
    );
}

/// A 64 KiB text of control characters: each byte becomes six in JSON, the
/// worst case for a v1 replay.
fn heavy_text(tag: usize) -> String {
    let mut text = format!("{tag:08}");
    text.push_str(&"\u{1}".repeat(64 * 1024 - text.len()));
    text
}

#[test]
fn history_across_many_rooms_stays_in_its_share_and_is_read_back_from_the_store() {
    let (server, _db) = start("history", &[]);
    let mut pair = HonestPair::join(&server);
    let rooms = 40;
    for r in 0..rooms {
        let path = format!("/ws?room=heavy{r}&name=filler");
        let mut filler = ws_from(&server, &path, &address(r), false);
        for i in 0..10 {
            filler.send(Message::text(heavy_text(r * 100 + i))).unwrap();
        }
        // A v1 joiner sees the room's last message, so it is stored and
        // delivered (replayed if it came first, else live).
        let mut reader = ws_from(
            &server,
            &format!("/ws?room=heavy{r}&name=reader&since=9"),
            &address(r + 1),
            true,
        );
        loop {
            let v = next_json(&mut reader);
            if v["type"] == "message" && v["id"] == 10 {
                break;
            }
        }
        filler.close(None).unwrap();
        pair.chat();
        check_memory(&server);
    }
    let (used, limit) = share(&server, "history");
    assert!(
        used > limit / 2.0,
        "the share was filled: {used} of {limit}"
    );
    // Every room's newcomer still gets its history: the newest from
    // memory, the oldest (forgotten there in favour of the others) read
    // back from the database.
    let replayed = |room: usize| {
        let (mut ws, _, _) = join_v1_path(&server, &format!("/ws?room=heavy{room}&name=late"));
        let mut n = 0;
        send_json(
            &mut ws,
            serde_json::json!({"type": "message", "text": "end"}),
        );
        loop {
            let v = next_json(&mut ws);
            if v["type"] == "message" && v["text"] == "end" {
                return n;
            }
            if v["type"] == "message" {
                assert_eq!(v["replay"], true);
                n += 1;
            }
        }
    };
    assert_eq!(replayed(rooms - 1), 10);
    assert_eq!(replayed(0), 10);
    pair.check();
}

#[test]
fn join_churn_into_the_fullest_room_costs_the_others_nothing() {
    let (server, _db) = start("churn", &[]);
    let mut filler = ws_from(&server, "/ws?room=heavy&name=filler", &address(0), false);
    for i in 0..100 {
        filler.send(Message::text(heavy_text(i))).unwrap();
    }
    // Every one is stored (and so delivered) before the pair starts timing.
    server.wait_until("the heavy texts are stored", |s| {
        records_written(s) >= 100.0
    });
    let mut reader = ws_from(&server, "/ws?room=heavy&name=reader", &address(1), true);
    expect_type(&mut reader, "welcome");
    let mut pair = HonestPair::join(&server);
    // 300 joiners that ask for the whole history and never read it, each
    // reset at once: 75 from each of four addresses.
    for i in 0..300 {
        let path = format!("/ws?room=heavy&name=churn{i}");
        let ws = ws_from(&server, &path, &address(2 + i % 4), true);
        let tcp = match ws.get_ref() {
            tungstenite::stream::MaybeTlsStream::Plain(s) => s,
            _ => unreachable!(),
        };
        socket2::SockRef::from(tcp)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(ws);
        if i % 10 == 0 {
            pair.chat();
        }
    }
    for _ in 0..20 {
        pair.chat();
    }
    check_memory(&server);
    pair.check();
}

#[test]
fn slow_uploads_are_refused_at_their_headers_and_the_trickler_is_closed() {
    let (server, _db) = start("uploads", &["--min-upload-rate", "64K"]);
    let mut pair = HonestPair::join(&server);
    let size: usize = 16 << 20;
    // The first holds 16 MiB of the 24 MiB share and then trickles.
    let mut trickler = RawSocket::open_v1(&server, "/ws?room=up&name=trickler");
    let file = serde_json::json!({"type": "file", "name": "big.bin", "size": size}).to_string();
    trickler.send_bytes(&masked_frame(0x81, file.as_bytes()));
    let mut header = frame_header(0x82, size as u64, true);
    header.extend(apply_mask(&[0u8; 64 * 1024], MASK_KEY));
    trickler.send_bytes(&header);
    // 49 more, from several addresses. A v1 client is refused at its
    // announcement, before it sends any bytes; a raw client, which
    // announces nothing, at its frame's header.
    for i in 0..49 {
        let from = address(i);
        if i % 2 == 0 {
            let mut ws = ws_from(&server, &format!("/ws?room=up&name=v{i}"), &from, true);
            expect_type(&mut ws, "welcome");
            send_json(
                &mut ws,
                serde_json::json!({"type": "file", "name": "big.bin", "size": size}),
            );
            let v = loop {
                let v = next_json(&mut ws);
                if v["type"] == "error" {
                    break v;
                }
            };
            assert_eq!(v["code"], "server_busy", "{v}");
            assert!(v["message"].as_str().unwrap().contains("try again"), "{v}");
        } else {
            let tcp = tcp_from(&server, &from);
            let mut raw = RawSocket::open_over(tcp, &server, &format!("/ws?room=up&name=r{i}"));
            let mut header = frame_header(0x82, size as u64, true);
            header.extend(apply_mask(&[0, 0], MASK_KEY));
            raw.send_bytes(&header);
            assert_eq!(raw.read_close(), Some((1013, "server busy".to_owned())));
        }
        pair.chat();
        check_memory(&server);
    }
    // The trickler sends a byte now and then (it ignores pings); past the
    // grace it is closed.
    let start = Instant::now();
    let close = loop {
        trickler.tcp.write_all(&[0]).expect("still open");
        pair.chat();
        if trickler.readable_within(Duration::from_millis(500)) {
            let frame = trickler.read_frame().expect("a close frame first");
            if frame.opcode == 8 {
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                break (
                    code,
                    String::from_utf8_lossy(&frame.payload[2..]).into_owned(),
                );
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never closed");
    };
    assert_eq!(close, (1008, "upload too slow".to_owned()));
    // Its share is free again: an honest upload goes through.
    let (used, _) = share(&server, "incoming");
    assert_eq!(used, 0.0);
    let mut ws = join_v1(&server, "up", "honest");
    send_json(
        &mut ws,
        serde_json::json!({"type": "file", "name": "ok.bin", "size": 1 << 20}),
    );
    ws.send(Message::binary(vec![7u8; 1 << 20])).unwrap();
    let v = expect_type(&mut ws, "file");
    assert_eq!(v["size"], 1 << 20);
    pair.check();
}

#[test]
fn receivers_that_never_read_are_closed_within_the_outbound_share() {
    // Each client may queue 16 MiB, more than any sleeper will be sent, so
    // only the outbound share can close them.
    let (server, _db) = start("sleepers", &["--queue-bytes", "16777216"]);
    let mut pair = HonestPair::join(&server);
    // Ten rooms, each with a sender of its own 256 KiB files and three
    // receivers that never read, with small receive buffers so that the
    // server must queue: 10 rooms × 10 MiB would pass the 24 MiB share.
    let mut sleepers = Vec::new();
    let mut senders = Vec::new();
    for r in 0..10 {
        for s in 0..3 {
            let tcp = tcp_from(&server, &address(r * 3 + s));
            socket2::SockRef::from(&tcp)
                .set_recv_buffer_size(4096)
                .unwrap();
            let path = format!("/ws?room=flood{r}&name=sleeper{s}");
            sleepers.push(RawSocket::open_over(tcp, &server, &path));
        }
        senders.push(ws_from(
            &server,
            &format!("/ws?room=flood{r}&name=sender"),
            &address(r),
            false,
        ));
    }
    for round in 0..40 {
        for (r, sender) in senders.iter_mut().enumerate() {
            let bytes = vec![(round * 10 + r) as u8; 256 * 1024];
            sender
                .send(Message::binary(file_frame("f.bin", &bytes)))
                .unwrap();
        }
        pair.chat();
        check_memory(&server);
    }
    // The share closed sleepers; the honest pair was never touched.
    let evicted = sample(
        &scrape(&server.addr),
        "wschat_slow_consumer_evictions_total",
    );
    assert!(evicted >= 10.0, "{evicted} evicted");
    drop(sleepers);
    pair.check();
}

#[test]
fn a_budget_too_small_for_the_largest_file_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["--memory-budget", "16M", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--memory-budget") && err.contains("--max-file-size"),
        "{err}"
    );
}
