//! Proves `/metrics`: every metric the README lists moves as clients
//! connect, chat, get refused, evicted and disconnect (read from `/metrics`
//! around each step), Prometheus's own `promtool check metrics` accepts the
//! real output, and a scraper asking for OpenMetrics gets it.

mod support;

use std::process::{Command, Stdio};

use support::*;

const PROMTOOL: &str = "/usr/bin/promtool";

/// Lifts the rate limit, so that files fill a queue quickly.
const NO_RATE_LIMIT: [&str; 4] = ["--rate", "100000", "--burst", "100000"];

#[test]
fn metrics_follow_connections_messages_and_disconnects() {
    let server = Server::start(&[]);
    let m = scrape(&server.addr);
    for mode in ["raw", "v1", "echo"] {
        assert_eq!(
            sample(&m, &format!("wschat_connections{{mode=\"{mode}\"}}")),
            0.0
        );
    }
    assert_eq!(sample(&m, "wschat_rooms"), 0.0);
    assert_eq!(sample(&m, "wschat_deliveries_total"), 0.0);
    assert!(
        m.contains_key("wschat_build_info{version=\"0.1.0\"}"),
        "{m:?}"
    );

    // Connect: a v1 client, a raw client, an echo client.
    let mut alice = join_v1(&server, "r", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=bob");
    let mut echo = connect(&server.url("/echo"));
    send_text(&mut echo, "ping");
    assert_eq!(expect_text(&mut echo), "ping");
    let m = scrape(&server.addr);
    assert_eq!(sample(&m, "wschat_connections{mode=\"v1\"}"), 1.0);
    assert_eq!(sample(&m, "wschat_connections{mode=\"raw\"}"), 1.0);
    assert_eq!(sample(&m, "wschat_connections{mode=\"echo\"}"), 1.0);
    assert_eq!(sample(&m, "wschat_rooms"), 1.0);
    assert_eq!(
        sample(&m, "wschat_messages_received_total{kind=\"join\"}"),
        2.0
    );
    let before = m;

    // Chat: alice says something, bob (raw) receives it.
    send_json(
        &mut alice,
        serde_json::json!({"type": "message", "text": "hello"}),
    );
    assert_eq!(expect_text(&mut bob), "alice: hello");
    expect_type(&mut alice, "message");
    send_json(&mut alice, serde_json::json!({"type": "typing"}));
    // alice's reader has handed the typing on once it answers this.
    assert_pong(&mut alice, b"sync");
    send_binary(&mut bob, file_frame("a.txt", b"abc"));
    assert_eq!(expect_type(&mut alice, "file")["name"], "a.txt");
    assert_eq!(expect_binary(&mut alice), b"abc");
    // The message to alice (her copy) and bob, the announcement and the
    // bytes to alice: the typing event reaches nobody (bob is raw). A send
    // is counted once the socket has taken it, which may be just after
    // alice has read it.
    let delivered = sample(&before, "wschat_deliveries_total") + 4.0;
    server.wait_metric("wschat_deliveries_total", |v| v >= delivered);
    let m = scrape(&server.addr);
    let grew = |name: &str| sample(&m, name) - sample(&before, name);
    assert_eq!(grew("wschat_messages_received_total{kind=\"text\"}"), 1.0);
    assert_eq!(grew("wschat_messages_received_total{kind=\"typing\"}"), 1.0);
    assert_eq!(grew("wschat_messages_received_total{kind=\"file\"}"), 1.0);
    assert_eq!(grew("wschat_deliveries_total"), 4.0);
    // The depth is observed once per send to a client, which carries all
    // its frames of one batch of events: between one send per frame and
    // one for all of them.
    let sends = grew("wschat_outbound_queue_depth_count");
    assert!((1.0..=4.0).contains(&sends), "{sends} sends");
    // A fan-out is timed once it has queued its last frame: it may still
    // be finishing while the frames arrive.
    let fanouts = sample(&before, "wschat_fanout_duration_seconds_count");
    server.wait_metric("wschat_fanout_duration_seconds_count", |v| {
        v >= fanouts + 3.0
    });
    assert!(grew("wschat_bytes_received_total") > 0.0);
    assert!(grew("wschat_bytes_sent_total") > 0.0);

    // Refused: a foreign origin, then a plain GET of /ws.
    let r = upgrade_request(&server.addr, "/ws", &["Origin: http://evil.example"]);
    assert_eq!(r.status, 403);
    assert_eq!(http_fetch(&server.addr, "/ws").status, 426);
    let m = scrape(&server.addr);
    assert_eq!(
        sample(&m, "wschat_handshakes_refused_total{reason=\"origin\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "wschat_handshakes_refused_total{reason=\"bad_request\"}"
        ),
        1.0
    );

    // Disconnect: alice closes with 1000, echo with 1001; bob just drops.
    for (ws, code) in [(&mut alice, 1000), (&mut echo, 1001)] {
        ws.close(Some(tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: "".into(),
        }))
        .unwrap();
        wait_disconnected(ws);
    }
    drop(bob);
    server.wait_metric("wschat_connections{mode=\"raw\"}", |v| v == 0.0);
    server.wait_metric("wschat_connections{mode=\"v1\"}", |v| v == 0.0);
    server.wait_metric("wschat_connections{mode=\"echo\"}", |v| v == 0.0);
    let m = scrape(&server.addr);
    assert_eq!(sample(&m, "wschat_disconnects_total{code=\"1000\"}"), 1.0);
    assert_eq!(sample(&m, "wschat_disconnects_total{code=\"1001\"}"), 1.0);
    assert_eq!(sample(&m, "wschat_disconnects_total{code=\"1006\"}"), 1.0);
    // The room is empty and remembered for its history.
    assert_eq!(sample(&m, "wschat_rooms"), 1.0);
}

#[test]
fn eviction_and_rate_limit_are_counted() {
    // Four frames may wait: the healthy reader, in lock-step, never has
    // more than two queued; the stalled one soon fills its socket and then
    // its queue.
    let mut args = vec!["--queue-frames", "4", "--write-timeout", "1"];
    args.extend(NO_RATE_LIMIT);
    let server = Server::start(&args);
    let mut c = raw_room(&server, "slow", "s", 3);
    let _stalled = c.pop().unwrap(); // never read from
    let mut healthy = c.pop().unwrap();
    let mut sender = c.pop().unwrap();
    assert_eq!(
        sample(
            &scrape(&server.addr),
            "wschat_slow_consumer_evictions_total"
        ),
        0.0
    );
    let file = file_frame("big.bin", &vec![7u8; 256 << 10]);
    for _ in 0..400 {
        send_binary(&mut sender, file.clone());
        assert!(expect_binary(&mut healthy) == file);
        let m = scrape(&server.addr);
        if sample(&m, "wschat_slow_consumer_evictions_total") == 1.0 {
            break;
        }
    }
    let m = scrape(&server.addr);
    assert_eq!(sample(&m, "wschat_slow_consumer_evictions_total"), 1.0);
    // Files waited behind others in the stalled client's queue, up to its
    // bound, never beyond.
    assert!(
        sample(&m, "wschat_outbound_queue_depth_bucket{le=\"2.0\"}")
            < sample(&m, "wschat_outbound_queue_depth_count"),
        "no frame ever waited behind two others: {m:?}"
    );
    assert_eq!(
        sample(&m, "wschat_outbound_queue_depth_bucket{le=\"4.0\"}"),
        sample(&m, "wschat_outbound_queue_depth_count"),
    );
    server.wait_metric("wschat_connections{mode=\"raw\"}", |v| v == 2.0);

    // A v1 client over its rate: --rate 20 --burst 1 holds back the second
    // of two frames sent at once, and says so.
    let server = Server::start(&["--rate", "20", "--burst", "1"]);
    let mut v1 = join_v1(&server, "r", "quick");
    for text in ["one", "two"] {
        send_json(
            &mut v1,
            serde_json::json!({"type": "message", "text": text}),
        );
    }
    let told = loop {
        let v = next_json(&mut v1);
        if v["type"] != "message" {
            break v;
        }
    };
    assert_eq!(told["type"], "slow_down", "{told}");
    assert!(sample(&scrape(&server.addr), "wschat_rate_limited_total") >= 1.0);
}

/// Debian's prometheus package provides `promtool`.
fn promtool() -> &'static str {
    require_debian_package(PROMTOOL, "prometheus");
    PROMTOOL
}

#[test]
fn promtool_accepts_the_real_output() {
    use std::io::Write;
    let server = Server::start(&[]);
    // Traffic first, so that every family has samples, labelled ones too.
    let mut alice = join_v1(&server, "r", "alice");
    let mut bob = join_v1(&server, "r", "bob");
    assert_eq!(wait_join(&mut alice), "bob");
    assert_relayed(&mut bob, &mut alice, "hi");
    alice.close(None).unwrap();
    wait_disconnected(&mut alice);
    server.wait_metric("wschat_disconnects_total{code=\"1005\"}", |v| v >= 1.0);
    let r = http_fetch(&server.addr, "/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- input ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        r.text()
    );
}

#[test]
fn openmetrics_for_scrapers_that_ask_for_it() {
    let server = Server::start(&[]);
    let r = http_request(
        &server.addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
            server.addr
        ),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{:?}",
        r.headers
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE wschat_deliveries counter\nwschat_deliveries_total 0\n"),
        "{text}"
    );
}
