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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use serde_json::json;
use tungstenite::Message;

use pair::TICK;
use pair::acks::{PHASE, time_pair, v1_from};
use pair::{Server, TempDir, next_json, pct};

/// Resumes in one storm, all from 127.0.0.2.
const RESUMES: usize = 100;
/// What each resume missed.
const MISSED: u64 = 1000;
/// Messages in room `storm` before the storms.
const SEEDED: u64 = 1100;

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
