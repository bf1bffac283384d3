//! Downloads held to `--memory-budget`: forty clients that ask for a 16 MiB
//! file and never read it cost the server one 64 KiB chunk each, within the
//! budget's outbound share, and each is dropped by `--write-timeout`; a
//! client that reads gets every byte, whole or by range.
//!
//! The bound: the server's RSS stays under the 64 MiB budget plus 48 MiB of
//! overhead (code, thread stacks, the allocator's spare pages, the
//! per-connection state the budget does not count) for as long as the
//! forty are connected. Holding the file per download, as the server once
//! did, took it to several hundred MiB.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;
use support::*;

const BUDGET: &str = "64M";
const BUDGET_BYTES: usize = 64 << 20;
const OVERHEAD: usize = 48 << 20;

/// The file: 16 MiB, the default `--max-file-size`.
const FILE: usize = 16 << 20;

/// Downloads that never read.
const SLEEPERS: usize = 40;

/// `--write-timeout`, in seconds: short, so that the drops come soon.
const WRITE_TIMEOUT: u64 = 2;

/// The `n`th of several client addresses, so that per-address limits do
/// not hide what the budget does.
fn address(n: usize) -> String {
    format!("127.0.0.{}", 2 + n % 8)
}

/// Sends a GET of `path` and reads only the response's head (a few bytes
/// of the body may come with it); returns the status line and headers.
fn request_head(stream: &mut TcpStream, addr: &str, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed in the head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The server's open sockets, from /proc (its pooled database connections
/// stay open after the downloads, so all its descriptors would not do).
fn sockets(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

fn check_rss(server: &Server) -> usize {
    let rss = server.rss_kib() * 1024;
    assert!(
        rss < BUDGET_BYTES + OVERHEAD,
        "RSS {} MiB passes the budget plus overhead",
        rss >> 20
    );
    rss
}

#[test]
fn downloads_that_never_read_hold_a_chunk_each_and_are_dropped() {
    let dir = TempDir::new("download-memory");
    let db = dir.path.join("wschat.db");
    let timeout = WRITE_TIMEOUT.to_string();
    let server = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--memory-budget",
        BUDGET,
        "--write-timeout",
        &timeout,
    ]);
    let data = bytes(FILE, 5);
    let mut alice = join_v1(&server, "r", "alice");
    send_json(
        &mut alice,
        json!({"type": "file", "name": "big.bin", "size": FILE}),
    );
    send_binary(&mut alice, data.clone());
    expect_type(&mut alice, "file");
    let mut bob = join_v1(&server, "r", "bob");
    let replayed = expect_type(&mut bob, "file");
    let url = replayed["url"].as_str().expect("a url").to_owned();

    eprintln!(
        "server RSS {} MiB before the downloads",
        server.rss_kib() >> 10
    );
    let idle = sockets(&server);
    let mut sleepers = Vec::new();
    for n in 0..SLEEPERS {
        let mut tcp = tcp_bound_to(&address(n), &server.addr, WATCHDOG);
        socket2::SockRef::from(&tcp)
            .set_recv_buffer_size(4096)
            .unwrap();
        let head = request_head(&mut tcp, &server.addr, &url);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {FILE}\r\n")),
            "{head}"
        );
        sleepers.push(tcp);
        check_rss(&server);
    }
    // While they are held: within the budget, and each costs the outbound
    // share a chunk at most.
    let mut peak = 0;
    server.wait_until_within(
        "every download that does not read to be dropped",
        Duration::from_secs(WRITE_TIMEOUT) + WATCHDOG,
        |server| {
            peak = peak.max(check_rss(server));
            let m = scrape(&server.addr);
            let used = sample(&m, "wschat_memory_used_bytes{share=\"outbound\"}");
            assert!(used <= (SLEEPERS * 64 * 1024) as f64, "outbound {used}");
            sockets(server) <= idle
        },
    );
    eprintln!("server RSS peaked at {} MiB", peak >> 20);
    // Each was dropped by the server (its socket closed) while its client
    // had read a few KiB at most of 16 MiB: not finished, dropped.
    drop(sleepers);
    // A client that reads gets every byte, whole and by range.
    let whole = http_fetch(&server.addr, &url);
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "the download differs");
    let start = 3 * 65_536 - 7;
    let end = 9 * 65_536 + 11;
    let request = format!(
        "GET {url} HTTP/1.1\r\nHost: {}\r\nRange: bytes={start}-{end}\r\n\r\n",
        server.addr
    );
    let part = http_request(&server.addr, &request);
    assert_eq!(part.status, 206);
    assert!(part.body == data[start..=end], "the range differs");
    check_rss(&server);
}
