//! What the history store costs: how fast a burst of 10,000 messages in one
//! room is written (then the rows are counted in the database), and the
//! latency of a pair chatting in another room, with the store on a file,
//! with `--fsync`, and in memory.
//!
//! The file store also takes a burst from a wschat.v1 client, each
//! message with its own `cid` ("file, v1 cid").
//!
//! The "retained" row is the file store with `--retain-messages 2000`: a
//! first burst, not timed, takes the room past its bound, so that in the
//! timed one retention deletes as many records as every group adds (the
//! steady state of a busy room, and of the word index with it).
//!
//! Run with `cargo bench --bench store`; `WSCHAT_BENCH_ONLY=file,retained`
//! runs only the rows named (`file`, `fsync`, `memory`, `retained`);
//! `WSCHAT_BENCH_PACE_US=50` waits 50 µs after each message of a burst,
//! so that the store writes groups of a message or a few, as beside a
//! busy fan-out. Each row also says what the store thread's CPU cost per
//! message of the burst was (from the scheduler's
//! count in nanoseconds, where the kernel keeps one; the tick-counted
//! figure before it was good to 1 µs a message). `WSCHAT_BENCH_BIN` runs
//! the table against another wschat binary (an older build, to compare the
//! store's cost before and after a change); with `WSCHAT_BENCH_BASELINE` set
//! to an older wschat binary (one without a store), the pair is also timed
//! against it.

mod cpu;
mod pair;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::Message;

use pair::{Server, connect, pct, time_pair};

const BURST: usize = 10_000;
const PHASE: Duration = Duration::from_secs(4);

/// Records the store has committed, from /metrics (counted under either
/// name the metric has had).
fn written(server: &Server) -> u64 {
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| {
            // The counter's name before it was a counter, for older builds.
            l.strip_prefix("wschat_store_records_written_total ")
                .or_else(|| l.strip_prefix("wschat_store_records_written "))
        })
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// CPU seconds the server's store thread has run, to the nanosecond from
/// the scheduler's own count (`schedstat`), or else to the kernel's tick.
fn store_cpu_seconds(server: &Server) -> f64 {
    let pid = server.pid();
    let scheduled = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|task| {
            let task = task.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            if comm.trim_end() != "store" {
                return None;
            }
            let schedstat = std::fs::read_to_string(task.join("schedstat")).ok()?;
            let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
            Some(ns as f64 / 1e9)
        })
        .reduce(|a, b| a + b);
    scheduled.unwrap_or_else(|| cpu::thread_cpu_seconds(pid, "store"))
}

/// Sends a burst of messages into one room, `burst` from a raw client or,
/// with `cid`, `burst-cid` from a wschat.v1 client giving each its own
/// `cid` (which the store looks up, to know a resend); returns the time
/// until the store has committed them all, and the store thread's CPU
/// seconds meanwhile.
fn burst(server: &Server, cid: bool) -> (Duration, f64) {
    burst_as(server, cid, "burster")
}

/// [`burst`] from a client named `name`: a second burst into the same
/// room comes from another name, so that it never races the first
/// client's leaving.
fn burst_as(server: &Server, cid: bool, name: &str) -> (Duration, f64) {
    let before = written(server);
    let cpu_before = store_cpu_seconds(server);
    let room = if cid { "burst-cid" } else { "burst" };
    let path = format!("/ws?room={room}&name={name}");
    let mut ws = connect(&server.addr, &path, cid);
    if cid {
        // What the server sends a v1 client back is read and dropped, so
        // that its queue never fills.
        let mut tcp = ws.get_ref().try_clone().unwrap();
        thread::spawn(move || {
            let mut buf = [0; 1 << 16];
            while tcp.read(&mut buf).is_ok_and(|n| n > 0) {}
        });
    }
    // WSCHAT_BENCH_PACE_US=N waits N µs after each message, so that the
    // store writes groups of a message or a few, as in a busy fan-out,
    // rather than the large groups of a flat-out burst.
    let pace = std::env::var("WSCHAT_BENCH_PACE_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros);
    let start = Instant::now();
    for i in 0..BURST {
        if let Some(pace) = pace {
            ws.flush().unwrap();
            thread::sleep(pace);
        }
        let text = format!("burst message {i:05} of a typical length");
        let frame = if cid {
            format!(r#"{{"type":"message","text":"{text}","cid":"b-{i}"}}"#)
        } else {
            text
        };
        ws.write(Message::text(frame)).unwrap();
    }
    ws.flush().unwrap();
    while written(server) < before + BURST as u64 {
        thread::sleep(Duration::from_millis(2));
    }
    let took = start.elapsed();
    (took, store_cpu_seconds(server) - cpu_before)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wschat-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bench.db");
    let file_sync = dir.join("bench-fsync.db");
    let file_retained = dir.join("bench-retained.db");
    let runs: [(&str, String, &[&str]); 4] = [
        ("file", file.to_string_lossy().into_owned(), &[]),
        (
            "retained",
            file_retained.to_string_lossy().into_owned(),
            &["--retain-messages", "2000"],
        ),
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
    let binary =
        std::env::var("WSCHAT_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wschat").into());
    println!("server: {binary}");
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "store",
        "burst ms",
        "records/s",
        "store us/msg",
        "pair p50",
        "pair p99",
        "pair max",
        "rows"
    );
    // WSCHAT_BENCH_ONLY=file,fsync,memory,retained runs only those rows.
    let only = std::env::var("WSCHAT_BENCH_ONLY").ok();
    for (name, db, extra) in runs {
        let short = match name {
            "file --fsync" => "fsync",
            ":memory:" => "memory",
            other => other,
        };
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| x == short))
        {
            continue;
        }
        let mut args = vec!["--db", db.as_str(), "--history", "100"];
        args.extend_from_slice(extra);
        let server = pair::start(&binary, &args);
        if name == "retained" {
            burst_as(&server, false, "warmer");
        }
        let (took, store_cpu) = burst(&server, false);
        let lat = time_pair(&server.addr, PHASE);
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
            "{:<14} {:>12.1} {:>12.0} {:>12.2} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            name,
            took.as_secs_f64() * 1000.0,
            BURST as f64 / took.as_secs_f64(),
            store_cpu * 1e6 / BURST as f64,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0),
            rows
        );
        if name == "file" {
            let (took, store_cpu) = burst(&server, true);
            println!(
                "{:<14} {:>12.1} {:>12.0} {:>12.2} {:>10} {:>10} {:>10} {:>8}",
                "file, v1 cid",
                took.as_secs_f64() * 1000.0,
                BURST as f64 / took.as_secs_f64(),
                store_cpu * 1e6 / BURST as f64,
                "-",
                "-",
                "-",
                "-"
            );
        }
    }
    if let Ok(baseline) = std::env::var("WSCHAT_BENCH_BASELINE") {
        let server = pair::start(&baseline, &["--history", "100"]);
        let lat = time_pair(&server.addr, PHASE);
        println!(
            "{:<14} {:>12} {:>12} {:>12} {:>10.2} {:>10.2} {:>10.2} {:>8}",
            "no store",
            "-",
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
