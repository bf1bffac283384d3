//! The `wschat.v1` protocol from the client's side: joining, the events
//! it expects, and rooms whose members are all in before a test goes on.

use serde_json::{Value, json};

use super::{Client, Server, connect, connect_v1, next_json, pct, send_json};

/// Reads the next JSON event and checks its `type`.
pub fn expect_type(ws: &mut Client, ty: &str) -> serde_json::Value {
    let v = next_json(ws);
    assert_eq!(v["type"], ty, "expected a {ty:?} event, got {v}");
    v
}

/// Reads the next JSON event, which must be an error with `code`.
pub fn expect_error(ws: &mut Client, code: &str) -> serde_json::Value {
    let v = next_json(ws);
    assert_eq!(v["type"], "error", "expected error {code:?}, got {v}");
    assert_eq!(v["code"], code, "expected error {code:?}, got {v}");
    assert!(v["message"].is_string(), "error without a message: {v}");
    v
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Checks that `v["ts"]` is a millisecond timestamp within a minute of now.
pub fn assert_ts(v: &serde_json::Value) {
    let ts = v["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer ts: {v}"));
    let now = now_ms();
    assert!(
        ts.abs_diff(now) < 60_000,
        "ts {ts} is not milliseconds near now ({now}): {v}"
    );
}

/// Connects a v1 client to `path` (which already names the user, e.g.
/// `/ws?room=r&name=alice`), reads `welcome` and `presence`, and returns
/// them. Replayed history, if any, is left for the caller to read.
pub fn join_v1_path(server: &Server, path: &str) -> (Client, serde_json::Value, serde_json::Value) {
    let mut ws = connect_v1(&server.url(path));
    let welcome = expect_type(&mut ws, "welcome");
    let presence = expect_type(&mut ws, "presence");
    (ws, welcome, presence)
}

/// Joins `room` as `name` in v1 mode; returns after `welcome` and `presence`.
pub fn join_v1(server: &Server, room: &str, name: &str) -> Client {
    let path = format!("/ws?room={}&name={}", pct(room), pct(name));
    let (ws, welcome, presence) = join_v1_path(server, &path);
    assert_eq!(welcome["name"], name, "{welcome}");
    assert_eq!(welcome["room"], room, "{welcome}");
    assert_eq!(presence["room"], room, "{presence}");
    ws
}

/// Reads events until a `join` arrives (skipping others) and returns the name.
pub fn wait_join(ws: &mut Client) -> String {
    loop {
        let v = next_json(ws);
        if v["type"] == "join" {
            return v["name"].as_str().expect("join name").to_string();
        }
    }
}

/// Reads events until a `leave` arrives (skipping others) and returns the name.
pub fn wait_leave(ws: &mut Client) -> String {
    loop {
        let v = next_json(ws);
        if v["type"] == "leave" {
            return v["name"].as_str().expect("leave name").to_string();
        }
    }
}

/// Connects a raw client to `path` and returns once `watcher` (a v1 client in
/// the same room) has seen it join, i.e. once the server has it in the room.
/// Returns the client and the name it joined under.
pub fn connect_raw_synced(server: &Server, watcher: &mut Client, path: &str) -> (Client, String) {
    let ws = connect(&server.url(path));
    let name = wait_join(watcher);
    (ws, name)
}

/// Connects `n` raw clients named `{prefix}{i}` to `room`, returning once all
/// are members of the room. A temporary v1 watcher observes the joins and
/// leaves again before this returns.
pub fn raw_room(server: &Server, room: &str, prefix: &str, n: usize) -> Vec<Client> {
    let mut watcher = join_v1(server, room, "sync-watcher");
    let clients = (0..n)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let path = format!("/ws?room={}&name={}", pct(room), pct(&name));
            let (ws, joined) = connect_raw_synced(server, &mut watcher, &path);
            assert_eq!(joined, name);
            ws
        })
        .collect();
    watcher.close(None).expect("close watcher");
    clients
}

/// `speaker` (a joined v1 client) says `text`; waits until `listener` (v1)
/// receives it, skipping other events: the room is still relaying. The
/// speaker's own copy is left unread.
pub fn assert_relayed(speaker: &mut Client, listener: &mut Client, text: &str) {
    send_json(
        speaker,
        serde_json::json!({"type": "message", "text": text}),
    );
    loop {
        let v = next_json(listener);
        assert_ne!(v["type"], "error", "unexpected error: {v}");
        if v["type"] == "message" && v["text"] == text {
            return;
        }
    }
}

/// Says `text` in the room.
pub fn send_message(ws: &mut Client, text: &str) {
    send_json(ws, json!({"type": "message", "text": text}));
}

/// Sends `text` and checks the sender's own copy comes back: the connection
/// is up and the session works.
pub fn roundtrip(ws: &mut Client, text: &str) -> Value {
    send_message(ws, text);
    let v = expect_type(ws, "message");
    assert_eq!(v["text"], text, "{v}");
    v
}

/// Joins `room` as `name` by a `join` frame on a connection that has not
/// joined yet; returns the `welcome` once `presence` has followed it.
pub fn join_frame(ws: &mut Client, room: &str, name: &str) -> Value {
    send_json(ws, json!({"type": "join", "room": room, "name": name}));
    let welcome = expect_type(ws, "welcome");
    expect_type(ws, "presence");
    welcome
}

/// Checks that `v` is message `id` in `room` from `from` saying `text`, with
/// a timestamp of now.
pub fn check_message(v: &Value, id: u64, room: &str, from: &str, text: &str) {
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["room"], room, "{v}");
    assert_eq!(v["from"], from, "{v}");
    assert_eq!(v["text"], text, "{v}");
    assert_ts(v);
}

/// Two v1 clients in room `den`, alice first; alice has seen bob's join.
pub fn pair(server: &Server) -> (Client, Client) {
    let mut alice = join_v1(server, "den", "alice");
    let bob = join_v1(server, "den", "bob");
    assert_eq!(expect_type(&mut alice, "join")["name"], "bob");
    (alice, bob)
}

/// Sends a v1 message with the client's id for it.
pub fn say(ws: &mut Client, text: &str, cid: &str) {
    send_json(ws, json!({"type": "message", "text": text, "cid": cid}));
}

/// Reads events until `n` messages have arrived; returns them in order.
pub fn messages(ws: &mut Client, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let v = next_json(ws);
        if v["type"] == "message" {
            got.push(v);
        }
    }
    got
}

/// The next event of `ty`, skipping others (joins, leaves, typing).
pub fn next_of(ws: &mut Client, ty: &str) -> Value {
    loop {
        let v = next_json(ws);
        if v["type"] == ty {
            return v;
        }
    }
}

/// The names a `presence` event lists, sorted: across instances their
/// order is the order joins reached each one.
pub fn users_sorted(presence: &Value) -> Vec<String> {
    let mut users: Vec<String> = presence["users"]
        .as_array()
        .expect("a presence lists its users")
        .iter()
        .map(|u| u.as_str().expect("a user's name").to_owned())
        .collect();
    users.sort();
    users
}
