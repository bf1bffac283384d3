//! How much one room's joins cost everyone else: an honest pair chats in
//! room `quiet` (one message every 5 ms, timed end to end) while joiners
//! churn into room `heavy`, whose history holds 100 raw texts of 64 KiB of
//! control characters (each 384 KiB as v1 JSON): 300 joiners connect,
//! ask for the whole history, and reset without reading it.
//!
//! Run with `cargo bench --bench join_churn`. With `WSCHAT_BENCH_BASELINE`
//! set to another wschat binary (an older build, say), the same run is made
//! against it too and both rows are printed, side by side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// How long the pair is timed with and without the churn.
const PHASE: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(5);
/// Joins churned into the heavy room during the second phase.
const JOINS: usize = 300;

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(binary: &str) -> Server {
        let mut child = Command::new(binary)
            .env("WSCHAT_DB", ":memory:")
            .args(["--listen", "127.0.0.1:0", "--log-level", "error"])
            .args(["--rate", "1000000", "--burst", "1000000"])
            .args(["--connect-rate", "1000000", "--connect-burst", "1000000"])
            .args(["--max-connections-per-ip", "100000"])
            .args(["--max-handshakes-per-ip", "1000"])
            // The witness below must be able to fall behind by the whole
            // history while it parses it.
            .args(["--queue-bytes", "67108864"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wschat");
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).expect("listening line");
        let addr = line
            .trim()
            .strip_prefix("wschat listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        thread::spawn(move || {
            let _ = lines.read_to_end(&mut Vec::new());
        });
        Server { child, addr }
    }

    fn rss_mib(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kib / 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(addr: &str, path: &str, v1: bool) -> WebSocket<TcpStream> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if v1 {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "wschat.v1".parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.set_nodelay(true).unwrap();
    tungstenite::client(request, tcp).expect("handshake").0
}

fn next_json(ws: &mut WebSocket<TcpStream>) -> serde_json::Value {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("read: {e}")) {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
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

/// Times the pair for one phase; returns each message's latency in µs.
fn time_pair(addr: &str, phase: Duration) -> Vec<u64> {
    let mut alice = connect(addr, "/ws?room=quiet&name=alice", true);
    // bob speaks the tutorial protocol, so he is sent nothing back.
    let mut bob = connect(addr, "/ws?room=quiet&name=bob", false);
    while next_json(&mut alice)["type"] != "join" {}
    let base = Instant::now();
    let reader = thread::spawn(move || {
        let mut lat = Vec::new();
        loop {
            let v = next_json(&mut alice);
            if v["type"] != "message" {
                continue;
            }
            let text = v["text"].as_str().unwrap();
            if text == "end" {
                return lat;
            }
            let sent: u64 = text.parse().unwrap();
            lat.push(base.elapsed().as_micros() as u64 - sent);
        }
    });
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < phase {
        let sent = base.elapsed().as_micros().to_string();
        bob.send(Message::text(sent)).unwrap();
        next += TICK;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    bob.send(Message::text("end")).unwrap();
    reader.join().unwrap()
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

fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn run(name: &str, binary: &str) -> Row {
    let server = Server::start(binary);
    fill(&server.addr);
    let mut quiet = time_pair(&server.addr, PHASE);
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        thread::spawn(move || churn(addr, stop))
    };
    let mut churned = time_pair(&server.addr, PHASE);
    stop.store(true, Ordering::Relaxed);
    let joins = churner.join().unwrap();
    let rss = server.rss_mib();
    quiet.sort_unstable();
    churned.sort_unstable();
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
