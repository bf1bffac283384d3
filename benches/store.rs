//! What the history store costs: how fast a burst of 10,000 messages in one
//! room is written (then the rows are counted in the database), and the
//! latency of a pair chatting in another room, with the store on a file,
//! with `--fsync`, and in memory.
//!
//! Run with `cargo bench --bench store`. With `WSCHAT_BENCH_BASELINE` set to
//! an older wschat binary (one without a store), the pair is also timed
//! against it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

const BURST: usize = 10_000;
const PHASE: Duration = Duration::from_secs(4);
const TICK: Duration = Duration::from_millis(5);

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--db", db];
        args.extend_from_slice(extra);
        Server::start_binary(env!("CARGO_BIN_EXE_wschat"), &args)
    }

    fn start_binary(binary: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--log-level", "error"])
            .args(["--rate", "1000000", "--burst", "1000000"])
            .args(["--history", "100"])
            .args(extra)
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

    /// Records the store has committed, from /metrics.
    fn written(&self) -> u64 {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("wschat_store_records_written "))
            .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
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

/// Sends a burst of messages into one room; returns the time until the store
/// has committed them all.
fn burst(server: &Server) -> Duration {
    let before = server.written();
    let mut raw = connect(&server.addr, "/ws?room=burst&name=burster", false);
    let start = Instant::now();
    for i in 0..BURST {
        raw.write(Message::text(format!(
            "burst message {i:05} of a typical length"
        )))
        .unwrap();
    }
    raw.flush().unwrap();
    while server.written() < before + BURST as u64 {
        thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

/// Times a raw sender to a v1 receiver in room `quiet`; latencies in µs.
fn time_pair(addr: &str) -> Vec<u64> {
    let mut alice = connect(addr, "/ws?room=quiet&name=alice", true);
    let mut bob = connect(addr, "/ws?room=quiet&name=bob", false);
    while next_json(&mut alice)["type"] != "join" {}
    let base = Instant::now();
    let reader = thread::spawn(move || {
        let mut lat = Vec::new();
        loop {
            let v = next_json(&mut alice);
            if v["type"] != "message" || v["replay"] == true {
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
    while start.elapsed() < PHASE {
        bob.send(Message::text(base.elapsed().as_micros().to_string()))
            .unwrap();
        next += TICK;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    bob.send(Message::text("end")).unwrap();
    let mut lat = reader.join().unwrap();
    lat.sort_unstable();
    lat
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wschat-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bench.db");
    let file_sync = dir.join("bench-fsync.db");
    let runs: [(&str, String, &[&str]); 3] = [
        ("file", file.to_string_lossy().into_owned(), &[]),
        (
            "file --fsync",
            file_sync.to_string_lossy().into_owned(),
            &["--fsync"],
        ),
        (":memory:", ":memory:".to_owned(), &[]),
    ];
    println!();
    println!(
        "store: a burst of {BURST} raw messages in one room, then a pair timed in another (5 ms ticks, {PHASE:?})"
    );
    println!(
        "{:<14} {:>12} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "store", "burst ms", "records/s", "pair p50", "pair p99", "pair max", "rows"
    );
    for (name, db, extra) in runs {
        let server = Server::start(&db, extra);
        let took = burst(&server);
        let lat = time_pair(&server.addr);
        let rows = if db == ":memory:" {
            "-".to_owned()
        } else {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM records WHERE room = 'burst'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            n.to_string()
        };
        println!(
            "{:<14} {:>12.1} {:>12.0} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            name,
            took.as_secs_f64() * 1000.0,
            BURST as f64 / took.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
            rows
        );
    }
    if let Ok(baseline) = std::env::var("WSCHAT_BENCH_BASELINE") {
        let server = Server::start_binary(&baseline, &[]);
        let lat = time_pair(&server.addr);
        println!(
            "{:<14} {:>12} {:>12} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            "no store",
            "-",
            "-",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
            "-"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
