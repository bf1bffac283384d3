//! Disk is bounded, and the biggest user pays: one client address stores
//! no faster than `--store-rate` (its connections are slowed and told
//! `slow_down`, nothing is lost, another address is not slowed); everything
//! stored stays within `--retain-bytes`; and a flood of one address's rooms
//! takes from those rooms, never from a bystander room's history. Behind
//! nginx with `--trusted-proxy`, the address is the forwarded one.
//! 127.0.0.2 and 127.0.0.3 are two users.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::nginx::{Nginx, ws_from};
use support::*;

const V1: &str = "Sec-WebSocket-Protocol: wschat.v1";

/// A v1 client from `from`, joined to `room` as `name`.
fn join_from(server: &Server, from: &str, room: &str, name: &str) -> Client {
    join_at(&server.addr, from, room, name)
}

/// The same through `addr` (a proxy in front of the server).
fn join_at(addr: &str, from: &str, room: &str, name: &str) -> Client {
    let path = format!("/ws?room={room}&name={name}");
    let mut ws = ws_from(addr, &path, from, &[V1]).unwrap();
    expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    ws
}

/// Sends `text` with `cid` and reads until its acknowledgement; says
/// whether `slow_down` came meanwhile.
fn say_acked(ws: &mut Client, text: &str, cid: &str) -> bool {
    send_json(ws, json!({"type": "message", "text": text, "cid": cid}));
    let mut slowed = false;
    loop {
        let v: Value = next_json(ws);
        match v["type"].as_str() {
            Some("slow_down") => slowed = true,
            Some("message") if v["cid"] == cid => return slowed,
            Some("error") => panic!("refused: {v}"),
            _ => {}
        }
    }
}

fn stored_bytes(server: &Server) -> f64 {
    sample(&scrape(&server.addr), "wschat_store_bytes")
}

#[test]
fn one_address_stores_no_faster_than_its_rate_and_another_is_not_slowed() {
    const RATE: f64 = 64.0 * 1024.0;
    // The burst: one largest file and one largest message.
    const BURST: f64 = 32.0 * 1024.0 + 16.0 * 1024.0;
    let server = Server::start(&[
        "--db",
        ":memory:",
        "--store-rate",
        "64K",
        "--max-file-size",
        "32768",
        "--max-message-size",
        "16384",
        "--rate",
        "1000",
        "--burst",
        "1000",
    ]);
    let text = "x".repeat(4000);
    let window = Duration::from_secs(3);
    let before = stored_bytes(&server);
    let start = Instant::now();
    // Eight connections of one address, each in a room of its own, send
    // as fast as they are acknowledged.
    let floods: Vec<_> = (0..8)
        .map(|i| {
            let mut ws = join_from(&server, "127.0.0.2", &format!("flood{i}"), "f");
            let text = text.clone();
            thread::spawn(move || {
                let (mut acked, mut slowed) = (0usize, false);
                while start.elapsed() < window {
                    slowed |= say_acked(&mut ws, &text, &format!("{i}-{acked}"));
                    acked += 1;
                }
                (acked, slowed)
            })
        })
        .collect();
    // Meanwhile another user, from another address, is not held back.
    let mut bystander = join_from(&server, "127.0.0.3", "quiet", "b");
    let sent = Instant::now();
    assert!(!say_acked(&mut bystander, "hello", "b-1"), "slowed");
    let bystander_wait = sent.elapsed();

    let mut acked = 0;
    let mut slowed = false;
    for flood in floods {
        let (n, s) = flood.join().unwrap();
        acked += n;
        slowed |= s;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stored_text = (acked * text.len()) as f64;
    let allowed = RATE * elapsed + BURST;
    assert!(slowed, "no flooder was told slow_down");
    assert!(
        stored_text <= allowed,
        "{stored_text} bytes of text acknowledged in {elapsed:.2} s; the rate allows {allowed}"
    );
    // And it was slowed, not starved: most of the allowance was used.
    assert!(stored_text >= RATE * 2.0, "only {stored_text} bytes stored");
    // The store's own count agrees: texts plus a little per record.
    let counted = stored_bytes(&server) - before;
    assert!(
        counted >= stored_text && counted <= allowed * 1.05,
        "{counted} bytes counted for {stored_text}"
    );
    // The flooders' backlog was seconds long; the bystander's message was
    // acknowledged in well under one.
    assert!(
        bystander_wait < Duration::from_secs(1),
        "{bystander_wait:?}"
    );
}

#[test]
fn a_flood_of_one_address_takes_from_its_own_rooms_not_from_a_bystander() {
    let dir = TempDir::new("bounds-flood");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    const RETAIN: f64 = 256.0 * 1024.0;
    let args = [
        "--db",
        db,
        "--retain-bytes",
        "256K",
        "--store-rate",
        "0",
        "--rate",
        "10000",
        "--burst",
        "10000",
    ];
    let server = Server::start(&args);
    // The bystander room's history: five messages.
    let mut quiet = join_from(&server, "127.0.0.3", "quiet", "ann");
    for i in 1..=5 {
        say_acked(&mut quiet, &format!("quiet {i}"), &format!("q{i}"));
    }
    drop(quiet);
    // One address fills four rooms of its own with 4 MiB of big texts,
    // about sixteen times the bound.
    let text = "y".repeat(4000);
    let floods: Vec<_> = (0..4)
        .map(|i| {
            let mut ws = join_from(&server, "127.0.0.2", &format!("flood{i}"), "f");
            let text = text.clone();
            thread::spawn(move || {
                for n in 0..256 {
                    send_json(
                        &mut ws,
                        json!({"type": "message", "text": text, "cid": format!("{i}-{n}")}),
                    );
                }
                let mut acked = 0;
                while acked < 256 {
                    if next_json(&mut ws)["type"] == "message" {
                        acked += 1;
                    }
                }
            })
        })
        .collect();
    for flood in floods {
        flood.join().unwrap();
    }
    let stored = stored_bytes(&server);
    assert!(
        stored <= RETAIN && stored > RETAIN / 2.0,
        "{stored} bytes stored"
    );
    server.terminate();

    // After a restart (the history now comes from the database), a
    // newcomer to the bystander room gets all of it.
    let server = Server::start(&args);
    let mut newcomer = join_from(&server, "127.0.0.4", "quiet", "bob");
    let mut replayed = Vec::new();
    send_json(&mut newcomer, json!({"type": "message", "text": "end"}));
    loop {
        let v = next_json(&mut newcomer);
        if v["type"] != "message" {
            continue;
        }
        if v["text"] == "end" {
            break;
        }
        replayed.push(v["text"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (1..=5).map(|i| format!("quiet {i}")).collect();
    assert_eq!(replayed, expected);
    // The flood's rooms kept their newest messages, within the bound.
    let mut flooder = join_from(&server, "127.0.0.2", "flood3", "g");
    send_json(&mut flooder, json!({"type": "message", "text": "end"}));
    let mut last_replayed = None;
    loop {
        let v = next_json(&mut flooder);
        if v["type"] == "message" {
            if v["text"] == "end" {
                break;
            }
            last_replayed = v["cid"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(last_replayed.as_deref(), Some("3-255"));
    let stored = stored_bytes(&server);
    assert!(stored <= RETAIN, "{stored} bytes stored");
    // On disk: the database stays within the README's worst case: 1.25
    // times the bound for SQLite's pages, plus one group commit (at most
    // 256 of these records) written before it is paid for, plus the
    // schema's own pages; the log within its truncation limit.
    let size = |suffix: &str| std::fs::metadata(format!("{db}{suffix}")).map_or(0, |m| m.len());
    let (file, log) = (size(""), size("-wal"));
    eprintln!("file={file} log={log} stored={stored}");
    let group = 256.0 * 4649.0;
    assert!(
        file as f64 <= 1.25 * RETAIN + group + 64.0 * 1024.0,
        "{file} bytes on disk"
    );
    assert!(log <= 64 << 20, "{log} bytes of log");
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_store_rate() {
    // A burst of 24 KiB: five of these texts, then 16 KiB a second.
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--store-rate",
        "16K",
        "--max-file-size",
        "16384",
        "--max-message-size",
        "8192",
        "--rate",
        "1000",
        "--burst",
        "1000",
    ]);
    let nginx = Nginx::in_front_of(&server);
    let text = "z".repeat(4000);
    let mut flooder = join_at(&nginx.addr, "127.0.0.2", "a", "flood");
    let mut slowed = false;
    for i in 0..20 {
        if say_acked(&mut flooder, &text, &format!("f{i}")) {
            slowed = true;
            break;
        }
    }
    assert!(slowed, "the flooder was never told slow_down");
    // Everyone reaches wschat from nginx's 127.0.0.1; the other user is
    // still judged by their own address, whose allowance is whole.
    let mut other = join_at(&nginx.addr, "127.0.0.3", "b", "other");
    assert!(
        !say_acked(&mut other, &text, "o1"),
        "a bystander was slowed"
    );
}
