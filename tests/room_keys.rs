//! One room, one key: look-alike spellings of a room's name (`lobby` and
//! `lоbby`, with a Cyrillic `о`) reach the same stored history after a
//! restart, whichever spelling joins first, and the room keeps the spelling
//! it was first stored under. A database written before rooms were keyed so
//! (schema version 1), holding two look-alike rooms, is merged into one
//! room with a new epoch, its files served at their new, signed URLs.

mod support;

use serde_json::{Value, json};
use support::*;

/// `lobby` with a Cyrillic `о` (U+043E).
const LOOKALIKE: &str = "l\u{43e}bby";

fn start_on(db: &str) -> Server {
    Server::start(&["--db", db, "--rate", "1000", "--burst", "1000"])
}

/// Reads replayed events until the first live one or `message` with
/// `marker`; returns the replayed events.
fn replay_until(ws: &mut Client, marker: &str) -> Vec<Value> {
    let mut replayed = Vec::new();
    loop {
        let v = next_json(ws);
        if v["type"] == "message" && v["text"] == marker {
            return replayed;
        }
        if v["replay"] == true {
            replayed.push(v);
        }
    }
}

fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|v| match v["type"].as_str() {
            Some("file") => format!("file:{}", v["name"].as_str().unwrap()),
            _ => v["text"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<u64> {
    events.iter().map(|v| v["id"].as_u64().unwrap()).collect()
}

#[test]
fn a_lookalike_spelling_after_a_restart_reaches_the_same_history() {
    let dir = TempDir::new("keys-restart");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    let server = start_on(db);
    let (mut alice, welcome, _) = join_v1_path(&server, "/ws?room=lobby&name=alice");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    for i in 1..=3 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("m{i}"), "cid": format!("c{i}")}),
        );
        expect_type(&mut alice, "message");
    }
    drop(alice);
    server.terminate();

    // After the restart the look-alike spelling joins first: it enters
    // `lobby`, with its whole history, and a resume from it is exact.
    let server = start_on(db);
    let path = format!("/ws?room={}&name=bob", pct(LOOKALIKE));
    let (mut bob, welcome, _) = join_v1_path(&server, &path);
    assert_eq!(welcome["room"], "lobby", "{welcome}");
    assert_eq!(welcome["epoch"], epoch.as_str(), "{welcome}");
    assert_eq!(welcome["last_id"], 3, "{welcome}");
    let mut carol = connect_v1(&server.url("/ws"));
    send_json(
        &mut carol,
        json!({"type": "join", "room": "lobby", "name": "carol", "since": 1, "epoch": epoch}),
    );
    let resumed = expect_type(&mut carol, "welcome");
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert_eq!(resumed["room"], "lobby", "{resumed}");
    let presence = expect_type(&mut carol, "presence");
    assert_eq!(presence["users"], json!(["bob", "carol"]), "{presence}");
    send_json(&mut bob, json!({"type": "message", "text": "end"}));
    let replayed = replay_until(&mut carol, "end");
    assert_eq!(texts(&replayed), ["m2", "m3"]);
    assert_eq!(ids(&replayed), [2, 3]);
    // Bob's first join replayed all three, then his own message has id 4.
    let replayed = replay_until(&mut bob, "end");
    assert_eq!(texts(&replayed), ["m1", "m2", "m3"]);
}

/// The layout of schema version 1, as released: rooms keyed by spelling.
const V1: &str = "
CREATE TABLE rooms (name TEXT NOT NULL PRIMARY KEY, epoch TEXT NOT NULL,
    last_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE records (room TEXT NOT NULL, id INTEGER NOT NULL, sender TEXT NOT NULL,
    ts INTEGER NOT NULL, cid TEXT, text TEXT, file_name TEXT, file_size INTEGER,
    file_mime TEXT, PRIMARY KEY (room, id),
    CHECK ((text IS NULL) <> (file_name IS NULL))) WITHOUT ROWID;
CREATE TABLE file_bytes (seq INTEGER PRIMARY KEY, room TEXT NOT NULL, id INTEGER NOT NULL,
    size INTEGER NOT NULL, bytes BLOB NOT NULL, UNIQUE (room, id));
PRAGMA user_version = 1;
";

/// A version-1 database: `lobby` (first stored) with two messages and a
/// file, `lоbby` with a message and a file both named `notes.txt`, and
/// `kitchen` alone.
fn old_database(db: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(V1).unwrap();
    let room = |name: &str, epoch: &str, last_id: u64| {
        conn.execute(
            "INSERT INTO rooms (name, epoch, last_id) VALUES (?1, ?2, ?3)",
            rusqlite::params![name, epoch, last_id],
        )
        .unwrap();
    };
    room("lobby", "1111111111111111", 3);
    room(LOOKALIKE, "2222222222222222", 2);
    room("kitchen", "3333333333333333", 1);
    let text = |room: &str, id: u64, ts: u64, text: &str| {
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, text) VALUES (?1, ?2, 'old', ?3, ?4)",
            rusqlite::params![room, id, ts, text],
        )
        .unwrap();
    };
    let file = |room: &str, id: u64, ts: u64, bytes: &[u8]| {
        conn.execute(
            "INSERT INTO records (room, id, sender, ts, file_name, file_size, file_mime) \
             VALUES (?1, ?2, 'old', ?3, 'notes.txt', ?4, 'text/plain')",
            rusqlite::params![room, id, ts, bytes.len()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO file_bytes (room, id, size, bytes) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![room, id, bytes.len(), bytes],
        )
        .unwrap();
    };
    let t = now_ms() - 60_000;
    text("lobby", 1, t, "latin 1");
    file("lobby", 2, t + 10, b"latin file");
    text("lobby", 3, t + 30, "latin 3");
    text(LOOKALIKE, 1, t + 20, "cyrillic 1");
    file(LOOKALIKE, 2, t + 40, b"cyrillic file");
    text("kitchen", 1, t, "kitchen 1");
}

#[test]
fn an_old_database_with_lookalike_rooms_is_merged_with_a_new_epoch() {
    let dir = TempDir::new("keys-migrate");
    let db = dir.path.join("old.db");
    let db = db.to_str().unwrap();
    old_database(db);
    let server = start_on(db);

    // The merged room is shown by the spelling stored first; a resume from
    // either old epoch is told honestly that the history is not the one it
    // knew.
    for (spelling, old_epoch) in [
        ("lobby", "1111111111111111"),
        (LOOKALIKE, "2222222222222222"),
    ] {
        let mut ws = connect_v1(&server.url("/ws"));
        send_json(
            &mut ws,
            json!({"type": "join", "room": spelling, "name": "bob", "since": 1, "epoch": old_epoch}),
        );
        let welcome = expect_type(&mut ws, "welcome");
        assert_eq!(welcome["room"], "lobby", "{welcome}");
        assert_eq!(welcome["recovered"], false, "{welcome}");
        assert_eq!(welcome["reason"], "epoch", "{welcome}");
        assert_ne!(welcome["epoch"], old_epoch, "{welcome}");
        assert_eq!(welcome["last_id"], 5, "{welcome}");
        expect_type(&mut ws, "presence");
    }

    // The display spelling's records keep their ids; the other's follow,
    // oldest first.
    let (mut alice, _, _) = join_v1_path(&server, "/ws?room=lobby&name=alice");
    send_json(&mut alice, json!({"type": "message", "text": "end"}));
    let replayed = replay_until(&mut alice, "end");
    assert_eq!(
        texts(&replayed),
        [
            "latin 1",
            "file:notes.txt",
            "latin 3",
            "cyrillic 1",
            "file:notes.txt"
        ]
    );
    assert_eq!(ids(&replayed), [1, 2, 3, 4, 5]);

    // Every file is served at the signed URL its replay carries, with the
    // bytes of the file it was; the URLs of before (unsigned) are refused,
    // as every URL the server did not give out.
    let body = |path: &str| {
        let got = http_fetch(&server.addr, path);
        (got.status, got.text())
    };
    let served: Vec<(u64, u16, String)> = replayed
        .iter()
        .filter(|v| v["type"] == "file")
        .map(|v| {
            let (status, text) = body(v["url"].as_str().unwrap());
            (v["id"].as_u64().unwrap(), status, text)
        })
        .collect();
    assert_eq!(
        served,
        [
            (2, 200, "latin file".to_owned()),
            (5, 200, "cyrillic file".to_owned())
        ]
    );
    let cyrillic = format!("/files/{}/2/notes.txt", pct(LOOKALIKE));
    assert_eq!(body(&cyrillic).0, 403);

    // A room alone under its key keeps its epoch: its resumes stay exact.
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "room": "kitchen", "name": "bob", "since": 0,
               "epoch": "3333333333333333"}),
    );
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["epoch"], "3333333333333333", "{welcome}");
}

#[test]
fn instances_sharing_rooms_through_redis_fold_lookalike_spellings_too() {
    let redis = support::redis::Redis::start();
    let one = Server::start(&["--redis", &redis.url()]);
    let two = Server::start(&["--redis", &redis.url()]);
    let mut alice = join_v1(&one, "lobby", "alice");
    send_json(&mut alice, json!({"type": "message", "text": "before"}));
    expect_type(&mut alice, "message");
    // On the other instance the look-alike spelling finds lobby's history,
    // and what is said on either side reaches the other.
    let path = format!("/ws?room={}&name=bob", pct(LOOKALIKE));
    let (mut bob, welcome, _) = join_v1_path(&two, &path);
    assert_eq!(welcome["last_id"], 1, "{welcome}");
    let replayed = expect_type(&mut bob, "message");
    assert_eq!(replayed["text"], "before", "{replayed}");
    assert_eq!(wait_join(&mut alice), "bob");
    send_json(&mut alice, json!({"type": "message", "text": "to bob"}));
    let v = expect_type(&mut bob, "message");
    assert_eq!(
        (v["text"].as_str(), v["id"].as_u64()),
        (Some("to bob"), Some(2))
    );
    send_json(&mut bob, json!({"type": "message", "text": "to alice"}));
    let v = loop {
        let v = expect_type(&mut alice, "message");
        if v["text"] != "to bob" {
            break v;
        }
    };
    assert_eq!(
        (v["text"].as_str(), v["id"].as_u64()),
        (Some("to alice"), Some(3))
    );
    assert_eq!(v["room"], "lobby", "{v}");
}
