//! How much one room's joins cost everyone else: an honest pair chats in
//! room `quiet` (one message every 5 ms, timed end to end) while joiners
//! churn into room `heavy`, whose history holds 100 raw texts of 64 KiB of
//! control characters (each 384 KiB as v1 JSON): 300 joiners connect,
//! ask for the whole history, and reset without reading it.
//!
//! Run with `cargo bench --bench join_churn`. With `WSCHAT_BENCH_BASELINE`
//! set to another wschat binary (an older build, say), the same run is made
//! against it too and both rows are printed, side by side.

mod pair;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use tungstenite::Message;

use pair::{Server, connect, next_json, pct, time_pair};

/// How long the pair is timed with and without the churn.
const PHASE: Duration = Duration::from_secs(4);
/// Joins churned into the heavy room during the second phase.
const JOINS: usize = 300;

fn start(binary: &str) -> Server {
    pair::start(
        binary,
        &[
            "--connect-rate",
            "1000000",
            "--connect-burst",
            "1000000",
            "--max-connections-per-ip",
            "100000",
            "--max-handshakes-per-ip",
            "1000",
            // The witness below must be able to fall behind by the whole
            // history while it parses it.
            "--queue-bytes",
            "67108864",
        ],
    )
}

/// Fills room `heavy` and waits until a v1 witness has seen all of it.
fn fill(addr: &str) {
    let mut witness = connect(addr, "/ws?room=heavy&name=witness", true);
    let mut filler = connect(addr, "/ws?room=heavy&name=filler", false);
    for i in 0..100 {
        let mut text = format!("{i:08}");
        text.push_str(&"\u{1}".repeat(64 * 1024 - text.len()));
        filler.send(Message::text(text)).unwrap();
    }
    let mut seen = 0;
    while seen < 100 {
        if next_json(&mut witness)["type"] == "message" {
            seen += 1;
        }
    }
}

/// Joiners that ask for `heavy`'s whole history and reset at once, as fast
/// as they can: `JOINS` of them, or fewer if `stop` comes first; returns how
/// many there were.
fn churn(addr: String, stop: Arc<AtomicBool>) -> usize {
    let mut n = 0;
    while n < JOINS && !stop.load(Ordering::Relaxed) {
        n += 1;
        let mut tcp = TcpStream::connect(&addr).unwrap();
        let head = format!(
            "GET /ws?room=heavy&name=churn{n} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wschat.v1\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let _ = tcp.read(&mut buf);
        socket2::SockRef::from(&tcp)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    n
}

struct Row {
    name: String,
    quiet: Vec<u64>,
    churned: Vec<u64>,
    joins: usize,
    rss: usize,
}

fn run(name: &str, binary: &str) -> Row {
    let server = start(binary);
    fill(&server.addr);
    let quiet = time_pair(&server.addr, PHASE);
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        thread::spawn(move || churn(addr, stop))
    };
    let churned = time_pair(&server.addr, PHASE);
    stop.store(true, Ordering::Relaxed);
    let joins = churner.join().unwrap();
    let rss = server.rss_kib() / 1024;
    Row {
        name: name.to_owned(),
        quiet,
        churned,
        joins,
        rss,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut rows = vec![run("wschat", env!("CARGO_BIN_EXE_wschat"))];
    if let Ok(baseline) = std::env::var("WSCHAT_BENCH_BASELINE") {
        rows.push(run("baseline", &baseline));
    }
    println!();
    println!(
        "honest pair latency (ms) in room quiet, joins churned into room heavy (100 × 64 KiB of control characters)"
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "server",
        "idle p50",
        "idle p99",
        "idle max",
        "churn p50",
        "churn p99",
        "churn max",
        "joins",
        "RSS MiB"
    );
    for r in &rows {
        println!(
            "{:<10} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>8}",
            r.name,
            pct(&r.quiet, 0.5),
            pct(&r.quiet, 0.99),
            pct(&r.quiet, 1.0),
            pct(&r.churned, 0.5),
            pct(&r.churned, 0.99),
            pct(&r.churned, 1.0),
            r.joins,
            r.rss
        );
    }
}
