//! What a storm of resumes costs everyone else: an honest v1 pair in room
//! `quiet` each send a message every 5 ms and time its acknowledgement (the
//! sender's own copy, sent once the store has committed it), first alone,
//! then while storms of 100 resumes from one address, each reaching back
//! 1,000 messages of room `storm` (900 of them read from the store), run
//! back to back. With the store on a file and in memory.
//!
//! Run with `cargo bench --bench resume_storm`. With `WSCHAT_BENCH_BASELINE`
//! set to another wschat binary (an older build, say), the same runs are
//! made against it too.

mod pair;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use pair::{Server, TempDir, next_json, pct};

/// How long the pair is timed alone, and again during the storms.
const PHASE: Duration = Duration::from_secs(4);
/// How often each of the pair speaks.
const TICK: Duration = Duration::from_millis(5);
/// Resumes in one storm, all from 127.0.0.2.
const RESUMES: usize = 100;
/// What each resume missed.
const MISSED: u64 = 1000;
/// Messages in room `storm` before the storms.
const SEEDED: u64 = 1100;

/// A wschat.v1 WebSocket to `path` from the loopback address `from`.
fn v1_from(addr: &str, path: &str, from: &str) -> WebSocket<TcpStream> {
    let server: SocketAddr = addr.parse().unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wschat.v1".parse().unwrap());
    tungstenite::client(request, tcp).expect("handshake").0
}

/// Fills room `storm`; returns its last id and epoch.
fn seed(addr: &str) -> (u64, String) {
    let mut ws = v1_from(addr, "/ws?room=storm&name=seeder", "127.0.0.5");
    let welcome = next_json(&mut ws);
    for i in 0..SEEDED {
        ws.send(Message::text(
            json!({"type": "message", "text": format!("seeded message {i:05} of a typical length"), "cid": format!("s{i}")})
                .to_string(),
        ))
        .unwrap();
    }
    let mut last_id = 0;
    let mut acked = 0;
    while acked < SEEDED {
        let v = next_json(&mut ws);
        if v["type"] == "message" && v["from"] == "seeder" {
            acked += 1;
            last_id = v["id"].as_u64().unwrap();
        }
    }
    (last_id, welcome["epoch"].as_str().unwrap().to_owned())
}

/// One of the pair: a message every `TICK`, each after the last one's
/// acknowledgement, until `stop`; returns the acknowledgements' latencies
/// in µs.
fn chat(addr: &str, name: &str, from: &str, stop: &AtomicBool) -> Vec<u64> {
    let mut ws = v1_from(addr, &format!("/ws?room=quiet&name={name}"), from);
    next_json(&mut ws);
    let mut lat = Vec::new();
    let mut next = Instant::now();
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cid = format!("{name}-{k}");
        let sent = Instant::now();
        ws.send(Message::text(
            json!({"type": "message", "text": k.to_string(), "cid": cid}).to_string(),
        ))
        .unwrap();
        while next_json(&mut ws)["cid"] != cid.as_str() {}
        lat.push(sent.elapsed().as_micros() as u64);
        k += 1;
        next += TICK;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    lat
}

/// Times the pair for `PHASE`, while `during` runs beside it.
fn time_pair(addr: &str, during: impl FnOnce(&AtomicBool) + Send) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let sides: Vec<_> = [("alice", "127.0.0.3"), ("bob", "127.0.0.4")]
        .into_iter()
        .map(|(name, from)| {
            let (addr, stop) = (addr.to_owned(), stop.clone());
            thread::spawn(move || chat(&addr, name, from, &stop))
        })
        .collect();
    let until = Instant::now() + PHASE;
    let storming = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| during(&storming));
        thread::sleep(until.saturating_duration_since(Instant::now()));
        storming.store(true, Ordering::Relaxed);
    });
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u64> = sides.into_iter().flat_map(|s| s.join().unwrap()).collect();
    lat.sort_unstable();
    lat
}

/// Runs storms back to back until `stop`; returns the resumes answered
/// and checks each got exactly what it missed.
fn storms(addr: &str, last_id: u64, epoch: &str, stop: &AtomicBool) -> usize {
    let answered = AtomicUsize::new(0);
    let since = last_id - MISSED;
    while !stop.load(Ordering::Relaxed) {
        thread::scope(|s| {
            for i in 0..RESUMES {
                let mut ws = v1_from(addr, "/ws", "127.0.0.2");
                ws.send(Message::text(
                    json!({"type": "join", "room": "storm", "name": format!("r{i}"),
                           "since": since, "epoch": epoch})
                    .to_string(),
                ))
                .unwrap();
                let answered = &answered;
                s.spawn(move || {
                    let mut ids = Vec::new();
                    while ids.last() != Some(&last_id) {
                        let v = next_json(&mut ws);
                        if v["type"] == "welcome" {
                            assert_eq!(v["recovered"], true, "{v}");
                        }
                        if v["type"] == "message" {
                            ids.push(v["id"].as_u64().unwrap());
                        }
                    }
                    assert_eq!(ids, (since + 1..=last_id).collect::<Vec<_>>());
                    answered.fetch_add(1, Ordering::Relaxed);
                    let _ = ws.close(None);
                });
            }
        });
    }
    answered.into_inner()
}

fn run(label: &str, binary: &str, db: &str) {
    // Only the per-address connection limits are lifted (and, by
    // `pair::start`, the message rate), so that storm after storm may come
    // from one address.
    let server: Server = pair::start(
        binary,
        &[
            "--db",
            db,
            "--connect-rate",
            "1000000",
            "--connect-burst",
            "1000000",
            "--max-handshakes-per-ip",
            "1000",
        ],
    );
    let (last_id, epoch) = seed(&server.addr);
    let quiet = time_pair(&server.addr, |_| {});
    let started = Instant::now();
    let mut resumes = 0;
    let stormy = time_pair(&server.addr, |stop| {
        resumes = storms(&server.addr, last_id, &epoch, stop);
    });
    let took = started.elapsed();
    println!(
        "{label:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>9}",
        pct(&quiet, 0.5),
        pct(&quiet, 0.99),
        pct(&stormy, 0.5),
        pct(&stormy, 0.99),
        pct(&stormy, 1.0),
        resumes as f64 / took.as_secs_f64(),
        server.rss_kib() / 1024,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = TempDir::new("bench-resume-storm");
    println!();
    println!(
        "resume storm: a v1 pair's acknowledgements (ms, a message every {TICK:?} each), alone and \
         while storms of {RESUMES} resumes of {MISSED} messages from one address run ({PHASE:?} each)"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "server",
        "quiet p50",
        "quiet p99",
        "storm p50",
        "storm p99",
        "storm max",
        "resumes/s",
        "RSS MiB"
    );
    let mut binaries = vec![("wschat", env!("CARGO_BIN_EXE_wschat").to_owned())];
    if let Ok(baseline) = std::env::var("WSCHAT_BENCH_BASELINE") {
        binaries.push(("baseline", baseline));
    }
    for (name, binary) in &binaries {
        for store in ["file", ":memory:"] {
            let db = match store {
                "file" => dir
                    .path
                    .join(format!("{name}.db"))
                    .to_string_lossy()
                    .into_owned(),
                _ => ":memory:".to_owned(),
            };
            run(&format!("{name}, {store}"), binary, &db);
        }
    }
}
