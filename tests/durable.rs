//! Proves history outlives the process: a server killed with SIGKILL in the
//! middle of a stream and started again on the same database lets a client
//! resume with `since` and `epoch` and get exactly what it missed
//! (`recovered: true`), with every acknowledged message there; ids keep
//! increasing across restarts and when an empty room is forgotten; with
//! `--db :memory:` a restart is a new epoch and the client is told to start
//! over; a resent `cid` is delivered once; and a database that cannot be
//! used stops the start with a message naming the file.

mod support;

use std::thread;

use serde_json::{Value, json};
use support::*;

fn start_on(db: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--db", db];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Joins `room` as `name` by a join frame carrying `since` and `epoch`;
/// returns the client and its welcome.
fn resume(server: &Server, room: &str, name: &str, since: u64, epoch: &str) -> (Client, Value) {
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "room": room, "name": name, "since": since, "epoch": epoch}),
    );
    let welcome = expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    (ws, welcome)
}

/// Reads replayed messages until `marker` arrives live; returns their ids.
fn replayed_until(ws: &mut Client, marker: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    loop {
        let v = next_json(ws);
        if v["type"] != "message" {
            continue;
        }
        if v["text"] == marker {
            return ids;
        }
        assert_eq!(v["replay"], true, "{v}");
        ids.push(v["id"].as_u64().unwrap());
    }
}

#[test]
fn a_killed_server_resumes_with_nothing_missed_and_nothing_twice() {
    let dir = TempDir::new("durable-kill");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    // With `--history 50` most of what bob missed is only in the database:
    // his resume reads it back from there.
    let server = start_on(
        db,
        &["--rate", "10000", "--burst", "10000", "--history", "50"],
    );
    let mut bob = join_v1(&server, "r", "bob");
    let mut alice = join_v1(&server, "r", "alice");
    assert_eq!(wait_join(&mut bob), "alice");
    // Bob reads the first 20 and then goes away; his last id and epoch are
    // what a page would remember.
    let welcome_epoch = {
        let (mut probe, welcome, _) = join_v1_path(&server, "/ws?room=r&name=probe");
        probe.close(None).unwrap();
        welcome["epoch"].as_str().unwrap().to_owned()
    };
    for i in 0..20 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("m{i}"), "cid": format!("c{i}")}),
        );
    }
    let mut bob_last = 0;
    while bob_last < 20 {
        let v = next_json(&mut bob);
        if v["type"] == "message" {
            bob_last = v["id"].as_u64().unwrap();
        }
    }
    drop(bob);
    // Alice streams on; the server is killed while she does. Every message
    // she saw acknowledged must survive.
    let streamer = thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 20..100_000 {
            let text = format!("m{i}");
            let sent = alice.send(tungstenite::Message::text(
                json!({"type": "message", "text": text, "cid": format!("c{i}")}).to_string(),
            ));
            if sent.is_err() {
                break;
            }
            // Read what has arrived so far: her acknowledgements.
            loop {
                match alice.read() {
                    Ok(tungstenite::Message::Text(t)) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if v["type"] == "message" {
                            acked.push(v["id"].as_u64().unwrap());
                        }
                        if v["text"] == text {
                            break;
                        }
                    }
                    Ok(_) => continue,
                    Err(_) => return acked,
                }
            }
        }
        acked
    });
    // Let the stream run into the hundreds, then SIGKILL.
    let mut watcher = join_v1(&server, "r", "watcher");
    loop {
        let v = next_json(&mut watcher);
        if v["type"] == "message" && v["id"].as_u64().unwrap() > 300 {
            break;
        }
    }
    drop(server);
    let acked = streamer.join().unwrap();
    assert!(acked.len() > 250, "{} acknowledged", acked.len());

    let server = start_on(db, &["--history", "50"]);
    let (mut bob, welcome) = resume(&server, "r", "bob", bob_last, &welcome_epoch);
    assert_eq!(welcome["epoch"], welcome_epoch.as_str(), "{welcome}");
    assert_eq!(welcome["recovered"], true, "{welcome}");
    let last_id = welcome["last_id"].as_u64().unwrap();
    assert!(
        last_id >= *acked.last().unwrap(),
        "an acknowledged message was lost"
    );
    let mut carol = join_v1(&server, "r", "carol");
    send_json(&mut carol, json!({"type": "message", "text": "after"}));
    let ids = replayed_until(&mut bob, "after");
    let expected: Vec<u64> = (bob_last + 1..=last_id).collect();
    assert_eq!(ids, expected, "exactly the missed messages, in order");
    // And the new message has the next id.
    let mut v = expect_type(&mut carol, "message");
    while v["replay"] == true {
        v = expect_type(&mut carol, "message");
    }
    assert_eq!(v["id"].as_u64().unwrap(), last_id + 1);
}

#[test]
fn a_restart_on_memory_is_a_new_epoch_and_the_client_starts_over() {
    let server = Server::start(&["--db", ":memory:"]);
    let (mut alice, welcome, _) = join_v1_path(&server, "/ws?room=r&name=alice");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    send_json(&mut alice, json!({"type": "message", "text": "before"}));
    expect_type(&mut alice, "message");
    drop(server);
    let server = Server::start(&["--db", ":memory:"]);
    let (_bob, welcome) = resume(&server, "r", "alice", 1, &epoch);
    assert_ne!(welcome["epoch"], epoch.as_str());
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "epoch", "{welcome}");
    assert_eq!(welcome["last_id"], 0);
}

#[test]
fn ids_keep_increasing_across_restarts_and_forgotten_rooms() {
    let dir = TempDir::new("durable-ids");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    let say = |server: &Server, room: &str| -> u64 {
        let mut ws = join_v1(server, room, "alice");
        send_json(&mut ws, json!({"type": "message", "text": "hi"}));
        loop {
            let v = expect_type(&mut ws, "message");
            if v.get("replay").is_none() {
                return v["id"].as_u64().unwrap();
            }
        }
    };
    // Every empty room is forgotten at once.
    let server = start_on(db, &["--max-idle-rooms", "0"]);
    assert_eq!(say(&server, "a"), 1);
    assert_eq!(say(&server, "a"), 2, "after the room was forgotten");
    server.terminate();
    let server = start_on(db, &["--max-idle-rooms", "0"]);
    assert_eq!(say(&server, "a"), 3, "after a restart");
}

#[test]
fn a_resent_cid_is_delivered_once_and_answered_with_the_original() {
    let server = Server::start(&[]);
    let mut bob = join_v1(&server, "r", "bob");
    let mut alice = join_v1(&server, "r", "alice");
    assert_eq!(wait_join(&mut bob), "alice");
    let message = json!({"type": "message", "text": "once", "cid": "abc-1"});
    send_json(&mut alice, message.clone());
    let first = expect_type(&mut alice, "message");
    assert_eq!(first["cid"], "abc-1");
    assert!(first.get("replay").is_none(), "{first}");
    send_json(&mut alice, message);
    let again = expect_type(&mut alice, "message");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["cid"], "abc-1");
    assert_eq!(again["replay"], true, "{again}");
    // Bob got it once: the next thing he sees is the next message.
    send_json(&mut alice, json!({"type": "message", "text": "next"}));
    let v = expect_type(&mut bob, "message");
    assert_eq!(
        (v["text"].as_str(), v["cid"].as_str()),
        (Some("once"), Some("abc-1"))
    );
    assert_eq!(expect_type(&mut bob, "message")["text"], "next");
    assert_eq!(expect_type(&mut alice, "message")["text"], "next");
    // A cid too long is refused.
    send_json(
        &mut alice,
        json!({"type": "message", "text": "x", "cid": "c".repeat(65)}),
    );
    expect_error(&mut alice, "bad_field");
}

/// The next `message` event, passing over joins and presence.
fn next_message(ws: &mut Client) -> Value {
    loop {
        let v = next_json(ws);
        if v["type"] == "message" {
            return v;
        }
        assert!(
            ["join", "presence", "leave"].contains(&v["type"].as_str().unwrap()),
            "{v}"
        );
    }
}

/// The next `message` event sent live, passing over replayed history.
fn next_live(ws: &mut Client) -> Value {
    loop {
        let v = next_message(ws);
        if v.get("replay").is_none() {
            return v;
        }
    }
}

#[test]
fn a_resend_after_more_than_memory_holds_is_still_answered_once() {
    // At the default options a room keeps 100 messages in memory; the
    // resend comes after 150 by others, and after a restart. (The rate
    // limit is raised only so that the chatter goes quickly.)
    let dir = TempDir::new("durable-resend");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    let fast = ["--rate", "10000", "--burst", "10000"];
    let server = start_on(db, &fast);
    let mut alice = join_v1(&server, "r", "alice");
    send_json(
        &mut alice,
        json!({"type": "message", "text": "once", "cid": "long-ago"}),
    );
    let first = next_message(&mut alice);
    let mut carol = join_v1(&server, "r", "carol");
    for i in 0..150 {
        send_json(
            &mut carol,
            json!({"type": "message", "text": format!("chatter {i}")}),
        );
        next_live(&mut carol);
    }
    for _ in 0..2 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": "once", "cid": "long-ago"}),
        );
        let again = loop {
            let v = next_message(&mut alice);
            if v["cid"] == "long-ago" {
                break v;
            }
        };
        assert_eq!(again["id"], first["id"], "{again}");
        assert_eq!(again["replay"], true, "{again}");
        // Carol did not get it again: her next message is the next one.
        send_json(&mut carol, json!({"type": "message", "text": "marker"}));
        assert_eq!(next_live(&mut carol)["text"], "marker");
    }
    drop((alice, carol, server));
    let server = start_on(db, &fast);
    let mut alice = connect_v1(&server.url("/ws"));
    join_frame(&mut alice, "r", "alice");
    send_json(
        &mut alice,
        json!({"type": "message", "text": "once", "cid": "long-ago"}),
    );
    // The welcome replays the room's newest 100, which do not hold it;
    // the answer to the resend is the stored message.
    let again = loop {
        let v = next_message(&mut alice);
        if v["cid"] == "long-ago" {
            break v;
        }
    };
    assert_eq!((&again["id"], &again["ts"]), (&first["id"], &first["ts"]));
    assert_eq!(again["replay"], true);
}

#[test]
fn a_database_that_cannot_be_used_stops_the_start_naming_the_file() {
    let dir = TempDir::new("durable-bad");
    let garbage = dir.write("garbage.db", &[0x42; 4096]);
    let missing = dir.path.join("no/such/dir/chat.db");
    for path in [garbage, missing] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wschat"))
            .args(["--listen", "127.0.0.1:0", "--db", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{path:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_resume_read_from_the_store_keeps_live_messages_behind_it() {
    // Five events in memory, thirty in the database.
    let server = Server::start(&["--history", "5", "--rate", "1000", "--burst", "1000"]);
    let (mut alice, welcome, _) = join_v1_path(&server, "/ws?room=r&name=alice");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    for i in 1..=30 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("m{i}")}),
        );
        expect_type(&mut alice, "message");
    }
    // bob resumes from 3 while alice keeps talking.
    let mut bob = connect_v1(&server.url("/ws"));
    send_json(
        &mut bob,
        json!({"type": "join", "room": "r", "name": "bob", "since": 3, "epoch": epoch}),
    );
    for i in 31..=35 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("m{i}")}),
        );
    }
    let welcome = expect_type(&mut bob, "welcome");
    assert_eq!(welcome["recovered"], true, "{welcome}");
    let last_id = welcome["last_id"].as_u64().unwrap();
    assert!((30..=35).contains(&last_id), "{welcome}");
    // Every id from 4 on, once, in order: replayed to 30, live after.
    let mut ids = Vec::new();
    while ids.last() != Some(&35) {
        let v = next_json(&mut bob);
        if v["type"] == "message" {
            assert_eq!(
                v["replay"] == true,
                v["id"].as_u64().unwrap() <= last_id,
                "{v}"
            );
            ids.push(v["id"].as_u64().unwrap());
        }
    }
    assert_eq!(ids, (4..=35).collect::<Vec<u64>>());
}

#[test]
fn a_resume_too_large_for_a_queue_is_trimmed_to_the_newest_that_fit() {
    // A room's replay may take half of a client's queue: 512 KiB here, about
    // seven of these 64 KiB texts.
    let server = Server::start(&[
        "--history",
        "2",
        "--queue-bytes",
        "1048576",
        "--rate",
        "1000",
        "--burst",
        "1000",
    ]);
    let (mut watcher, welcome, _) = join_v1_path(&server, "/ws?room=big&name=watcher");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let mut raw = connect(&server.url("/ws?room=big&name=raw"));
    for i in 1..=20 {
        send_text(&mut raw, &format!("{i:02}{}", "a".repeat(64 * 1024 - 2)));
    }
    let mut seen = 0;
    while seen < 20 {
        if next_json(&mut watcher)["type"] == "message" {
            seen += 1;
        }
    }
    let (mut bob, welcome) = resume(&server, "big", "bob", 0, &epoch);
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "trimmed", "{welcome}");
    let gap = expect_type(&mut bob, "gap");
    let first = gap["first"].as_u64().unwrap();
    assert!((5..=19).contains(&first), "{gap}");
    send_text(&mut raw, "end");
    let ids = replayed_until(&mut bob, "end");
    assert_eq!(ids, (first..=20).collect::<Vec<u64>>());
}
