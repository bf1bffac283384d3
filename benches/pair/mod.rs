//! What the benches that time an honest pair share: a wschat process (the
//! integration tests' own `Server`), its clients, and the pair itself (a
//! raw sender to a v1 receiver in room `quiet`, one message every 5 ms,
//! timed end to end).
#![allow(dead_code)] // each bench uses a different subset

/// The pair that times its own acknowledgements.
pub mod acks;
/// Debian's redis-server, started as the tests start it.
#[path = "../../tests/support/redis.rs"]
pub mod redis;
/// A Redis Cluster of three masters, started as the tests start it.
#[path = "../../tests/support/redis_cluster.rs"]
pub mod redis_cluster;
#[path = "../../tests/support/server.rs"]
#[allow(dead_code)] // the tests use more of it
mod server;
#[path = "../../tests/support/system.rs"]
mod system;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

pub use server::{Server, WATCHDOG};
pub use system::{TempDir, require_debian_package};

/// How often the pair's sender speaks.
pub const TICK: Duration = Duration::from_millis(5);

/// Starts `binary` on an ephemeral port with the per-connection rate
/// limit lifted, plus `args`; the history is in memory unless `args` name a
/// database (an older binary ignores the variable).
pub fn start(binary: &str, args: &[&str]) -> Server {
    let mut command = Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "error"])
        .args(["--rate", "1000000", "--burst", "1000000"])
        // Every client is on 127.0.0.1, so one address's store rate would
        // bind first; a variable, which an older binary ignores.
        .env("WSCHAT_STORE_RATE", "0")
        .args(args)
        .stderr(Stdio::inherit());
    Server::spawn(command)
}

/// A WebSocket to `path`, speaking wschat.v1 when `v1`.
pub fn connect(addr: &str, path: &str, v1: bool) -> WebSocket<TcpStream> {
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

/// The next text frame, as JSON.
pub fn next_json(ws: &mut WebSocket<TcpStream>) -> serde_json::Value {
    loop {
        match ws.read().unwrap_or_else(|e| panic!("read: {e}")) {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Times the pair for `phase`; returns each message's latency in µs, sorted.
pub fn time_pair(addr: &str, phase: Duration) -> Vec<u64> {
    let mut alice = connect(addr, "/ws?room=quiet&name=alice", true);
    // bob speaks the tutorial protocol, so he is sent nothing back.
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
    while start.elapsed() < phase {
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

/// The `p` quantile of sorted µs, in ms.
pub fn pct(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}
