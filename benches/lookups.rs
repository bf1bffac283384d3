//! What scrollback and search cost with the embedded store: how long an
//! existing database of 200,000 messages (10 rooms) takes to be indexed
//! when it migrates to schema version 6 (the start-up after it, already
//! indexed, for comparison), then the latency of `history` pages (newest,
//! middle, oldest of a 20,000-message room) and of `search` (a rare word, a
//! common one, two words, and a word only other rooms hold, which the
//! index finds everywhere before the room is looked at) against it.
//!
//! Then the same with `--redis`, on a room of 6,000 messages in a
//! Redis stream: pages read backwards from the stream, and a search
//! scanning the newest 5,000 entries.
//!
//! Between the two, a lookup storm: 100 v1 connections from one address
//! walk room0 back page by page and search it, each as fast as its own
//! lookup allowance lets it, while an honest pair in room `quiet` times its
//! acknowledgements (alone first, then during the storm).
//!
//! Run with `cargo bench --bench lookups`. The database is written as an
//! older wschat would have left it (version 5) straight through SQLite.

mod pair;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use pair::acks::{PHASE, time_pair, v1_from};
use pair::{Server, connect, next_json, pct};

const ROOMS: usize = 10;
const PER_ROOM: usize = 20_000;
/// Requests of each kind timed.
const SAMPLES: usize = 40;
/// A connection may send 10 lookups at once: a fresh one every 8.
const PER_CONNECTION: usize = 8;

/// A word of the vocabulary: a few thousand words, some far more common.
fn word(x: u64) -> String {
    format!("w{}", (x % 4000) * (x % 7) / 6)
}

/// Writes `ROOMS × PER_ROOM` messages into `path`, an empty wschat
/// database, and takes it back to version 5 (no word index, no changes).
fn fill(path: &str) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    // Undoes version 9 (rooms numbered for the word index), 8 (changes to
    // messages), 7 (a recount, nothing to undo) and 6 (the word index).
    conn.execute_batch(
        "DROP TRIGGER rooms_number; DROP TRIGGER rooms_unnumber; DROP INDEX rooms_by_num;
         DROP TRIGGER records_change; DROP TRIGGER records_gone; DROP TRIGGER records_recount;
         DROP TRIGGER records_search_update; DROP TRIGGER records_search_insert;
         DROP TRIGGER records_search_delete; DROP TABLE reactions;
         ALTER TABLE records DROP COLUMN kind; ALTER TABLE records DROP COLUMN target;
         ALTER TABLE records DROP COLUMN edited; ALTER TABLE records DROP COLUMN deleted;
         DROP TABLE search_text; ALTER TABLE rooms DROP COLUMN num;
         PRAGMA user_version = 5;",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for r in 0..ROOMS {
        let name = format!("room{r}");
        // Rooms are kept under their name's skeleton, as the store does.
        let room = wschat::proto::names::skeleton(&name);
        tx.execute(
            "INSERT INTO rooms (key, name, epoch, last_id) VALUES (?1, ?2, '00000000000000aa', ?3)",
            rusqlite::params![room, name, PER_ROOM as i64],
        )
        .unwrap();
        let mut insert = tx
            .prepare(
                "INSERT INTO records (room, id, sender, ts, text) VALUES (?1, ?2, 'ann', ?3, ?4)",
            )
            .unwrap();
        for id in 1..=PER_ROOM {
            let mut words = Vec::new();
            for _ in 0..10 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                words.push(word(seed));
            }
            if id % 2000 == 0 {
                words.push("needle".into());
            }
            if r > 0 {
                // In every message of every other room: a search of room0
                // for it walks all of them to find none.
                words.push("elsewhere".into());
            }
            let text = format!("message {id} says {}", words.join(" "));
            insert
                .execute(rusqlite::params![
                    room,
                    id as i64,
                    1_764_000_000_000i64 + id as i64,
                    text
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Messages in the room of the `--redis` run.
const REDIS_ROOM: usize = 6_000;

/// Times `ask` (a `history` or `search` frame) `SAMPLES` times in room0;
/// returns the latencies in µs, sorted, and the last answer.
fn time(server: &Server, ask: &Value) -> (Vec<u64>, Value) {
    let mut lat = Vec::new();
    let mut last = Value::Null;
    let mut ws: Option<WebSocket<std::net::TcpStream>> = None;
    for i in 0..SAMPLES {
        if i % PER_CONNECTION == 0 {
            let mut fresh = connect(
                &server.addr,
                &format!("/ws?room=room0&name=reader{i}"),
                true,
            );
            while next_json(&mut fresh)["type"] != "presence" {}
            ws = Some(fresh);
        }
        let ws = ws.as_mut().unwrap();
        let start = Instant::now();
        ws.send(Message::text(ask.to_string())).unwrap();
        let want = ask["type"].as_str().unwrap();
        loop {
            let v = next_json(ws);
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] == want {
                last = v;
                break;
            }
        }
        lat.push(start.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    (lat, last)
}

fn started(binary: &str, db: &str) -> (Server, Duration) {
    let start = Instant::now();
    let server = pair::start(
        binary,
        &["--db", db, "--history", "1", "--retain-messages", "1000000"],
    );
    (server, start.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let binary = env!("CARGO_BIN_EXE_wschat");
    let dir = pair::TempDir::new("bench-lookups");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    // An empty database of this version, then filled as version 5.
    started(binary, db).0.terminate();
    let filled = Instant::now();
    fill(db);
    println!();
    println!(
        "lookups: {} messages in {ROOMS} rooms written as schema version 5 in {:.1} s",
        ROOMS * PER_ROOM,
        filled.elapsed().as_secs_f64()
    );
    let (server, migrating) = started(binary, db);
    server.terminate();
    let (server, plain) = started(binary, db);
    let conn = rusqlite::Connection::open(db).unwrap();
    let size = |like: &str| -> i64 {
        conn.query_row(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE ?1",
            [like],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (records, index) = (size("records%"), size("search%"));
    println!(
        "on disk: records {:.1} MiB, word index {:.1} MiB ({:.0}% of the records)",
        records as f64 / 1048576.0,
        index as f64 / 1048576.0,
        index as f64 * 100.0 / records as f64
    );
    drop(conn);
    println!(
        "start-up: {:.0} ms migrating (indexing every message), {:.0} ms once indexed",
        migrating.as_secs_f64() * 1000.0,
        plain.as_secs_f64() * 1000.0
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>8}",
        "request (room of 20,000)", "p50 ms", "p90 ms", "max ms", "results"
    );
    let asks = [
        (
            "history, newest 100",
            json!({"type": "history", "limit": 100}),
        ),
        (
            "history, 100 below id 10,000",
            json!({"type": "history", "before": 10_000, "limit": 100}),
        ),
        (
            "history, 100 below id 100",
            json!({"type": "history", "before": 100, "limit": 100}),
        ),
        (
            "search, rare word",
            json!({"type": "search", "q": "needle", "limit": 50}),
        ),
        (
            "search, common word",
            json!({"type": "search", "q": "w0", "limit": 50}),
        ),
        (
            "search, two words",
            json!({"type": "search", "q": "w0 w1", "limit": 50}),
        ),
        (
            "search, only other rooms' word",
            json!({"type": "search", "q": "elsewhere", "limit": 50}),
        ),
    ];
    table(&server, &asks);
    storm(&server);
    drop(server);
    redis_run(binary);
}

/// Prints a row per request of `asks`, timed against `server`.
fn table(server: &Server, asks: &[(&str, Value)]) {
    for (name, ask) in asks {
        let (lat, last) = time(server, ask);
        let results = last["events"]
            .as_array()
            .or(last["results"].as_array())
            .map_or(0, Vec::len);
        assert!(
            results > 0 || ask["q"] == "elsewhere" || ask["q"] == "nowhere",
            "{name}: nothing found: {last}"
        );
        println!(
            "{:<34} {:>9.2} {:>9.2} {:>9.2} {:>8}",
            name,
            pct(&lat, 0.5),
            pct(&lat, 0.9),
            pct(&lat, 1.0),
            results
        );
    }
}

/// The same requests with `--redis`, in a room of [`REDIS_ROOM`] messages.
fn redis_run(binary: &str) {
    pair::require_debian_package(pair::redis::REDIS, "redis-server");
    let redis = pair::redis::Redis::start();
    let server = pair::start(binary, &["--redis", &redis.url(), "--history", "1"]);
    let mut writer = connect(&server.addr, "/ws?room=room0&name=writer", true);
    while next_json(&mut writer)["type"] != "presence" {}
    for id in 1..=REDIS_ROOM {
        let needle = if id % 2000 == 0 { " needle" } else { "" };
        let text = format!(
            "message {id} says {} {}{needle}",
            word(id as u64),
            word(id as u64 * 31)
        );
        writer
            .send(Message::text(
                json!({"type": "message", "text": text}).to_string(),
            ))
            .unwrap();
    }
    let mut acked = 0;
    while acked < REDIS_ROOM {
        if next_json(&mut writer)["type"] == "message" {
            acked += 1;
        }
    }
    println!("--redis, a room of {REDIS_ROOM} messages in its stream:");
    table(
        &server,
        &[
            (
                "history, newest 100",
                json!({"type": "history", "limit": 100}),
            ),
            (
                "history, 100 below id 100",
                json!({"type": "history", "before": 100, "limit": 100}),
            ),
            (
                "search, rare word",
                json!({"type": "search", "q": "needle", "limit": 50}),
            ),
            (
                "search, absent word (5,000 read)",
                json!({"type": "search", "q": "nowhere", "limit": 50}),
            ),
        ],
    );
}

/// Connections of the lookup storm, all from 127.0.0.2, and the threads
/// that drive them (each many sockets, none blocking).
const STORMERS: usize = 100;
const STORM_THREADS: usize = 4;
/// A connection's lookup allowance, as the server counts it.
const LOOKUP_BURST: f64 = 10.0;
const LOOKUPS_PER_SEC: f64 = 2.0;

/// One connection of the storm: one lookup in flight at a time, sent as
/// soon as its allowance (kept here as the server keeps it) has room.
struct Stormer {
    ws: WebSocket<TcpStream>,
    tokens: f64,
    filled: Instant,
    /// When the lookup in flight was sent.
    asked: Option<Instant>,
    /// Nothing is sent before this (a `rate_limited` answer's `until`).
    not_before: Instant,
    /// Where its walk back through room0 is (`None`: from the newest).
    before: Option<u64>,
    sent: u64,
}

/// What a storm's connections were answered.
#[derive(Default)]
struct Tally {
    answered: usize,
    refused: usize,
    /// Each answered lookup's latency, µs.
    lat: Vec<u64>,
}

impl Stormer {
    fn new(addr: &str, i: usize) -> Stormer {
        let mut ws = v1_from(addr, &format!("/ws?room=room0&name=storm{i}"), "127.0.0.2");
        let welcome = next_json(&mut ws);
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws.get_mut().set_nonblocking(true).unwrap();
        Stormer {
            ws,
            tokens: LOOKUP_BURST,
            filled: Instant::now(),
            asked: None,
            not_before: Instant::now(),
            before: None,
            sent: 0,
        }
    }

    /// Pages of 100 walking back, every other lookup a search: a rare
    /// word, a common one, two words, or one of the vocabulary.
    fn next_ask(&mut self) -> Value {
        self.sent += 1;
        if self.sent.is_multiple_of(2) {
            let mut ask = json!({"type": "history", "limit": 100});
            if let Some(before) = self.before {
                ask["before"] = before.into();
            }
            return ask;
        }
        let q = match self.sent / 2 % 4 {
            0 => "needle".to_owned(),
            1 => "w0".to_owned(),
            2 => "w0 w1".to_owned(),
            _ => word(self.sent * 7919),
        };
        json!({"type": "search", "q": q, "limit": 50})
    }

    fn answer(&mut self, v: &Value, tally: &mut Tally) {
        match v["type"].as_str() {
            Some("history") => {
                let events = v["events"].as_array().unwrap();
                self.before = match events.first() {
                    Some(oldest) if v["complete"] != true => oldest["id"].as_u64(),
                    _ => None,
                };
                assert!(!events.is_empty() || v["complete"] == true, "{v}");
            }
            Some("search") => assert!(v["results"].is_array(), "{v}"),
            Some("error") if v["code"] == "rate_limited" => {
                let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                let until = Duration::from_millis(v["until"].as_u64().unwrap());
                self.not_before = Instant::now() + until.saturating_sub(now_ms);
                self.asked = None;
                tally.refused += 1;
                return;
            }
            Some("error") => panic!("storm: {v}"),
            _ => return, // presence and the like
        }
        let asked = self.asked.take().expect("an answer to a lookup in flight");
        tally.lat.push(asked.elapsed().as_micros() as u64);
        tally.answered += 1;
    }

    /// Reads what has arrived and sends a lookup if one is due; whether
    /// anything happened.
    fn step(&mut self, tally: &mut Tally) -> bool {
        let mut busy = false;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => self.answer(&serde_json::from_str(&t).unwrap(), tally),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("storm read: {e}"),
            }
            busy = true;
        }
        let now = Instant::now();
        let earned = now.duration_since(self.filled).as_secs_f64() * LOOKUPS_PER_SEC;
        self.tokens = (self.tokens + earned).min(LOOKUP_BURST);
        self.filled = now;
        if self.asked.is_none() && now >= self.not_before && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.asked = Some(now);
            let ask = self.next_ask();
            match self.ws.send(Message::text(ask.to_string())) {
                // Queued: the next flush sends it.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                r => r.unwrap(),
            }
            busy = true;
        }
        match self.ws.flush() {
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            r => r.unwrap(),
        }
        busy
    }
}

/// Drives `conns` until `stop`, napping a millisecond when none had
/// anything to do.
fn drive(mut conns: Vec<Stormer>, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for c in &mut conns {
            busy |= c.step(&mut tally);
        }
        if !busy {
            thread::sleep(Duration::from_millis(1));
        }
    }
    tally
}

/// The pair in room `quiet`, alone and then while [`STORMERS`] connections
/// from 127.0.0.2 send `history` and `search` into room0.
fn storm(server: &Server) {
    let mut conns: Vec<Stormer> = (0..STORMERS)
        .map(|i| Stormer::new(&server.addr, i))
        .collect();
    let quiet = time_pair(&server.addr, |_| {});
    let mut tally = Tally::default();
    let mut took = Duration::ZERO;
    let stormy = time_pair(&server.addr, |stop| {
        let start = Instant::now();
        thread::scope(|s| {
            let per = STORMERS.div_ceil(STORM_THREADS);
            let drivers: Vec<_> = (0..STORM_THREADS)
                .map(|_| {
                    let mine: Vec<Stormer> = conns.drain(..per.min(conns.len())).collect();
                    s.spawn(move || drive(mine, stop))
                })
                .collect();
            for d in drivers {
                let t = d.join().unwrap();
                tally.answered += t.answered;
                tally.refused += t.refused;
                tally.lat.extend(t.lat);
            }
        });
        took = start.elapsed();
    });
    tally.lat.sort_unstable();
    println!(
        "lookup storm: {STORMERS} v1 connections from one address send history pages (walking \
         back) and searches into room0 as fast as each may ({PHASE:?}); a v1 pair in room `quiet` \
         times its acknowledgements (ms), alone and during it"
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10}",
        "quiet p50",
        "quiet p99",
        "storm p50",
        "storm p99",
        "storm max",
        "lookups/s",
        "refused",
        "lookup p50",
        "lookup p99"
    );
    println!(
        "{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>8} {:>10.2} {:>10.2}",
        pct(&quiet, 0.5),
        pct(&quiet, 0.99),
        pct(&stormy, 0.5),
        pct(&stormy, 0.99),
        pct(&stormy, 1.0),
        tally.answered as f64 / took.as_secs_f64(),
        tally.refused,
        pct(&tally.lat, 0.5),
        pct(&tally.lat, 0.99),
    );
}
