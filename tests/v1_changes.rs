//! Proves edits, deletions and reactions as docs/PROTOCOL.md describes them
//! ("Changing a message"): everyone in the room sees them at once, only
//! the sender edits and only the sender or a moderator deletes, a resume
//! with `since` delivers the changes to older messages, a replay (from
//! memory and after a restart) shows each message as it stands, reactions
//! are counted with who reacted, and raw clients get what they can read.
//! Each person is a client from an address of their own.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

const SECRET: &str = "a secret for the tests, at least thirty-two bytes";

/// A v1 client from the local address `from`, joined to `path`'s room;
/// returns it with its welcome, the replay left to read.
fn v1_from(server: &Server, path: &str, from: &str) -> (Client, Value) {
    let stream = tcp_bound_to(from, &server.addr, WATCHDOG);
    let mut request = server.url(path).into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("wschat.v1"),
    );
    let (mut ws, _) =
        tungstenite::client(request, tungstenite::stream::MaybeTlsStream::Plain(stream))
            .expect("v1 upgrade");
    let welcome = expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    (ws, welcome)
}

fn join(server: &Server, room: &str, name: &str, from: &str) -> Client {
    v1_from(server, &format!("/ws?room={room}&name={name}"), from).0
}

/// The next event, other than someone joining or leaving, which must be of
/// type `ty`.
fn next_of(ws: &mut Client, ty: &str) -> Value {
    loop {
        let v = next_json(ws);
        if v["type"] != "join" && v["type"] != "leave" {
            assert_eq!(v["type"], ty, "expected a {ty:?} event, got {v}");
            return v;
        }
    }
}

/// The next error, which must have `code` (others' events before it are
/// passed over: only an error answers a refused frame).
fn refused(ws: &mut Client, code: &str) -> Value {
    loop {
        let v = next_json(ws);
        if v["type"] == "error" {
            assert_eq!(v["code"], code, "{v}");
            return v;
        }
    }
}

/// Says `text` and returns its id, from the sender's acknowledgement.
fn say(ws: &mut Client, text: &str) -> u64 {
    send_message(ws, text);
    loop {
        let v = next_of(ws, "message");
        if v["text"] == text && v.get("replay").is_none() {
            return v["id"].as_u64().unwrap();
        }
    }
}

/// Sends a change command and returns its acknowledgement, the event that
/// carries its `cid` back (one is made up when the frame has none).
fn change(ws: &mut Client, mut frame: Value) -> Value {
    static CIDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if frame.get("cid").is_none() {
        let n = CIDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        frame["cid"] = json!(format!("t{n}"));
    }
    let (kind, cid) = (frame["type"].clone(), frame["cid"].clone());
    send_json(ws, frame);
    // Others' messages and changes may come before it.
    loop {
        let v = next_json(ws);
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == kind && v["cid"] == cid {
            return v;
        }
    }
}

/// Every frame until the live message `marker`, which `speaker` says.
fn replay_until(ws: &mut Client, speaker: &mut Client, marker: &str) -> Vec<Value> {
    send_message(speaker, marker);
    let mut seen = Vec::new();
    loop {
        let v = next_json(ws);
        if v["type"] == "message" && v["text"] == marker && v.get("replay").is_none() {
            return seen;
        }
        seen.push(v);
    }
}

fn by_id(events: &[Value], id: u64) -> &Value {
    events
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no event {id} in {events:?}"))
}

fn token(sub: &str, moderator: bool) -> String {
    let exp = now_ms() / 1000 + 3600;
    let mut claims = json!({"sub": sub, "exp": exp});
    if moderator {
        claims["mod"] = json!(true);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[test]
fn own_messages_are_edited_and_deleted_before_everyone_and_raw_clients_read_edits() {
    let server = Server::start(&[]);
    let mut alice = join(&server, "den", "alice", "127.0.0.2");
    let mut bob = join(&server, "den", "bob", "127.0.0.3");
    assert_eq!(wait_join(&mut alice), "bob");
    let mut raw = connect_path_from(&server, "/ws?room=den&name=rita", "127.0.0.4").unwrap();
    assert_eq!(wait_join(&mut alice), "rita");
    let id = say(&mut alice, "helo");
    assert_eq!(next_of(&mut bob, "message")["id"], id);
    assert_eq!(expect_text(&mut raw), "alice: helo");

    let edit = change(
        &mut alice,
        json!({"type": "edit", "id": id, "text": "hello", "cid": "e1"}),
    );
    assert_eq!(edit["target"], id, "{edit}");
    assert_eq!(edit["id"], id + 1, "a change has its own id: {edit}");
    assert_eq!(
        (edit["from"].as_str(), edit["text"].as_str()),
        (Some("alice"), Some("hello"))
    );
    assert_eq!(edit["cid"], "e1", "the sender's acknowledgement: {edit}");
    assert_ts(&edit);
    let seen = next_of(&mut bob, "edit");
    assert_eq!(
        (seen["target"].as_u64(), seen["text"].as_str()),
        (Some(id), Some("hello"))
    );
    assert_eq!(expect_text(&mut raw), "alice (edited): hello");

    // Someone else's message: neither edited nor deleted, and nothing stored.
    send_json(
        &mut bob,
        json!({"type": "edit", "id": id, "text": "mine now"}),
    );
    let no = refused(&mut bob, "not_yours");
    assert!(
        no["message"].as_str().unwrap().contains("only its sender"),
        "{no}"
    );
    send_json(&mut bob, json!({"type": "delete", "id": id, "cid": "d9"}));
    assert_eq!(refused(&mut bob, "not_yours")["cid"], "d9");

    let delete = change(&mut alice, json!({"type": "delete", "id": id}));
    assert_eq!(
        (delete["id"].as_u64(), delete["target"].as_u64()),
        (Some(id + 2), Some(id))
    );
    assert!(delete.get("text").is_none(), "{delete}");
    assert_eq!(next_of(&mut bob, "delete")["target"], id);

    // A deleted message, one never sent, and a bad id.
    send_json(
        &mut alice,
        json!({"type": "edit", "id": id, "text": "again"}),
    );
    refused(&mut alice, "no_such_message");
    send_json(&mut alice, json!({"type": "delete", "id": 99}));
    refused(&mut alice, "no_such_message");
    send_json(&mut alice, json!({"type": "edit", "id": 0, "text": "x"}));
    refused(&mut alice, "bad_field");
    send_json(&mut alice, json!({"type": "edit", "id": id, "text": ""}));
    refused(&mut alice, "empty_text");

    // The raw client heard nothing of the deletion: its next frame is this.
    let next = say(&mut alice, "after");
    assert_eq!(next, id + 3, "refusals took no id");
    assert_eq!(expect_text(&mut raw), "alice: after");
}

#[test]
fn a_moderator_deletes_anyones_message_and_no_one_else_does() {
    let server = Server::start(&["--auth-secret", SECRET]);
    let path = |name: &str, moderator: bool| {
        format!("/ws?room=den&name={name}&token={}", token(name, moderator))
    };
    let (mut alice, _) = v1_from(&server, &path("alice", false), "127.0.0.2");
    let (mut bob, _) = v1_from(&server, &path("bob", false), "127.0.0.3");
    let (mut mo, _) = v1_from(&server, &path("mo", true), "127.0.0.4");
    let id = say(&mut alice, "spam");
    next_of(&mut bob, "message");
    next_of(&mut mo, "message");
    send_json(&mut bob, json!({"type": "delete", "id": id}));
    refused(&mut bob, "not_yours");
    // A moderator deletes but does not edit someone else's message.
    send_json(&mut mo, json!({"type": "edit", "id": id, "text": "ham"}));
    refused(&mut mo, "not_yours");
    let delete = change(&mut mo, json!({"type": "delete", "id": id}));
    assert_eq!(
        (delete["target"].as_u64(), delete["from"].as_str()),
        (Some(id), Some("mo"))
    );
    for ws in [&mut alice, &mut bob] {
        let v = next_of(ws, "delete");
        assert_eq!(
            (v["target"].as_u64(), v["from"].as_str()),
            (Some(id), Some("mo"))
        );
    }
}

#[test]
fn a_resume_gets_older_messages_changes_and_replays_show_the_latest_state() {
    let dir = TempDir::new("changes-restart");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    let server = Server::start(&["--db", db]);
    let mut alice = join(&server, "den", "alice", "127.0.0.2");
    let (one, two, three) = (
        say(&mut alice, "one"),
        say(&mut alice, "two"),
        say(&mut alice, "three"),
    );
    let (bob, welcome) = v1_from(&server, "/ws?room=den&name=bea", "127.0.0.3");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    assert_eq!(welcome["last_id"], three);
    drop(bob);

    // While bob is away: an edit, a reaction, and an edit then a deletion.
    let e1 = change(
        &mut alice,
        json!({"type": "edit", "id": one, "text": "one, edited"}),
    );
    let r2 = change(
        &mut alice,
        json!({"type": "react", "id": two, "emoji": "👍"}),
    );
    let e3 = change(
        &mut alice,
        json!({"type": "edit", "id": three, "text": "secret"}),
    );
    let d3 = change(&mut alice, json!({"type": "delete", "id": three}));

    let resume = format!("/ws?room=den&name=bob&since={three}");
    let check_resume = |server: &Server, alice: &mut Client, name: &str| {
        let path = format!("{resume}&epoch={epoch}").replace("name=bob", &format!("name={name}"));
        let (mut bob, welcome) = v1_from(server, &path, "127.0.0.3");
        assert_eq!(welcome["recovered"], true, "{welcome}");
        let seen = replay_until(&mut bob, alice, "marker");
        let kinds: Vec<&str> = seen
            .iter()
            .map(|v| v["type"].as_str().unwrap())
            .filter(|&t| t != "message")
            .collect();
        // The edit of a message deleted since is replayed as a deletion.
        assert_eq!(kinds, ["edit", "react", "delete", "delete"], "{seen:?}");
        assert_eq!(
            by_id(&seen, e1["id"].as_u64().unwrap())["text"],
            "one, edited"
        );
        assert_eq!(by_id(&seen, r2["id"].as_u64().unwrap())["emoji"], "👍");
        assert_eq!(by_id(&seen, e3["id"].as_u64().unwrap())["target"], three);
        assert_eq!(by_id(&seen, d3["id"].as_u64().unwrap())["target"], three);
        assert!(seen.iter().all(|v| v["replay"] == true), "{seen:?}");
        assert!(!format!("{seen:?}").contains("secret"), "{seen:?}");
    };
    let check_replay = |server: &Server, alice: &mut Client, from: &str| {
        let path = format!("/ws?room=den&name=carol{}", from.replace('.', ""));
        let (mut carol, _) = v1_from(server, &path, from);
        let seen = replay_until(&mut carol, alice, "marker");
        let m1 = by_id(&seen, one);
        assert_eq!(
            (m1["text"].as_str(), m1["edited"].as_bool()),
            (Some("one, edited"), Some(true))
        );
        assert_eq!(by_id(&seen, two)["reactions"], json!({"👍": ["alice"]}));
        let m3 = by_id(&seen, three);
        assert_eq!(
            (m3["text"].as_str(), m3["deleted"].as_bool()),
            (Some(""), Some(true))
        );
        assert!(
            m3.get("reactions").is_none() && m3.get("edited").is_none(),
            "{m3}"
        );
        assert!(!format!("{seen:?}").contains("secret"), "{seen:?}");
    };
    check_resume(&server, &mut alice, "bob");
    check_replay(&server, &mut alice, "127.0.0.4");

    drop(alice);
    server.terminate();
    let server = Server::start(&["--db", db]);
    let mut alice = join(&server, "den", "alice", "127.0.0.2");
    check_resume(&server, &mut alice, "bo");
    check_replay(&server, &mut alice, "127.0.0.5");
    // Still alice's after the restart, and still deleted.
    change(
        &mut alice,
        json!({"type": "edit", "id": one, "text": "one, again"}),
    );
    send_json(
        &mut alice,
        json!({"type": "react", "id": three, "emoji": "👍"}),
    );
    refused(&mut alice, "no_such_message");
}

#[test]
fn reactions_are_counted_with_who_reacted() {
    let server = Server::start(&[]);
    let mut alice = join(&server, "den", "alice", "127.0.0.2");
    let mut bob = join(&server, "den", "bob", "127.0.0.3");
    let mut carol = join(&server, "den", "carol", "127.0.0.4");
    let id = say(&mut alice, "lunch?");
    let react = |ws: &mut Client, kind: &str, emoji: &str| {
        let v = change(ws, json!({"type": kind, "id": id, "emoji": emoji}));
        assert_eq!(
            (v["target"].as_u64(), v["emoji"].as_str()),
            (Some(id), Some(emoji))
        );
    };
    react(&mut bob, "react", "👍");
    // Everyone sees it at once, with who.
    let seen = next_of(&mut alice, "react");
    assert_eq!(
        (seen["from"].as_str(), seen["emoji"].as_str()),
        (Some("bob"), Some("👍"))
    );
    react(&mut carol, "react", "👍");
    react(&mut alice, "react", "🎉");
    react(&mut bob, "react", "👍"); // twice counts once
    react(&mut carol, "react", "👩‍💻");
    react(&mut bob, "unreact", "👍");
    react(&mut carol, "unreact", "👩‍💻");
    for bad in ["ok", "👍👍", "", "🏽"] {
        send_json(&mut bob, json!({"type": "react", "id": id, "emoji": bad}));
        refused(&mut bob, "bad_field");
    }
    send_json(&mut bob, json!({"type": "react", "id": 999, "emoji": "👍"}));
    refused(&mut bob, "no_such_message");

    let (mut dave, _) = v1_from(&server, "/ws?room=den&name=dave", "127.0.0.5");
    let seen = replay_until(&mut dave, &mut alice, "marker");
    assert_eq!(
        by_id(&seen, id)["reactions"],
        json!({"👍": ["carol"], "🎉": ["alice"]})
    );
    assert!(by_id(&seen, id).get("edited").is_none());
}

#[test]
fn with_redis_changes_reach_every_instance_and_their_memory() {
    let redis = support::redis::Redis::start();
    let a = Server::start(&["--redis", &redis.url()]);
    let b = Server::start(&["--redis", &redis.url()]);
    let mut alice = join(&a, "hall", "alice", "127.0.0.2");
    let mut bob = join(&b, "hall", "bob", "127.0.0.3");
    let id = say(&mut alice, "helo");
    assert_eq!(next_of(&mut bob, "message")["id"], id);
    change(
        &mut alice,
        json!({"type": "edit", "id": id, "text": "hello"}),
    );
    assert_eq!(next_of(&mut bob, "edit")["text"], "hello");
    // Checked on bob's instance, from what it holds of the room.
    send_json(&mut bob, json!({"type": "edit", "id": id, "text": "mine"}));
    refused(&mut bob, "not_yours");
    change(&mut bob, json!({"type": "react", "id": id, "emoji": "👍"}));
    let seen = next_of(&mut alice, "react");
    assert_eq!(
        (seen["from"].as_str(), seen["emoji"].as_str()),
        (Some("bob"), Some("👍"))
    );
    let (mut carol, _) = v1_from(&b, "/ws?room=hall&name=carol", "127.0.0.4");
    let seen = replay_until(&mut carol, &mut alice, "marker");
    let m = by_id(&seen, id);
    assert_eq!(
        (m["text"].as_str(), m["edited"].as_bool()),
        (Some("hello"), Some(true))
    );
    assert_eq!(m["reactions"], json!({"👍": ["bob"]}));
    assert_eq!(next_of(&mut bob, "message")["text"], "marker");
    change(&mut alice, json!({"type": "delete", "id": id}));
    assert_eq!(next_of(&mut bob, "delete")["target"], id);
    let (mut dan, _) = v1_from(&b, "/ws?room=hall&name=dan", "127.0.0.5");
    let seen = replay_until(&mut dan, &mut alice, "marker2");
    assert_eq!(by_id(&seen, id)["deleted"], true);
    assert!(!format!("{seen:?}").contains("hel"), "{seen:?}");

    // An instance started now reads the room from Redis: the same.
    let two = say(&mut alice, "two");
    change(
        &mut alice,
        json!({"type": "edit", "id": two, "text": "deux"}),
    );
    change(
        &mut alice,
        json!({"type": "react", "id": two, "emoji": "🎉"}),
    );
    let c = Server::start(&["--redis", &redis.url()]);
    let (mut eve, _) = v1_from(&c, "/ws?room=hall&name=eve", "127.0.0.6");
    let seen = replay_until(&mut eve, &mut alice, "marker3");
    assert_eq!(by_id(&seen, id)["deleted"], true);
    let m = by_id(&seen, two);
    assert_eq!(
        (m["text"].as_str(), m["edited"].as_bool()),
        (Some("deux"), Some(true))
    );
    assert_eq!(m["reactions"], json!({"🎉": ["alice"]}));
    assert!(!format!("{seen:?}").contains("hel"), "{seen:?}");
}
