//! Proves v1 scrollback and search against a real server: `history` pages
//! a room back down to its first message, nothing missing or doubled, also
//! across a restart; `limit` is bounded; too many requests are answered
//! `rate_limited`, none dropped; `search` finds words in the client's own
//! room only and not what retention deleted; neither works before a join;
//! and the same holds with `--redis`. Each user is its own loopback
//! address.

mod support;

use serde_json::{Value, json};
use support::redis::Redis;
use support::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

/// A v1 client from the local address `from`, joined to `room` as `name`,
/// after its welcome and presence (and whatever replay follows them is
/// read by `settle`).
fn v1_from(server: &Server, from: &str, room: &str, name: &str) -> Client {
    let stream = tcp_bound_to(from, &server.addr, WATCHDOG);
    let mut request = server
        .url(&format!("/ws?room={}&name={}", pct(room), pct(name)))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("wschat.v1"),
    );
    let (mut ws, _) =
        tungstenite::client(request, tungstenite::stream::MaybeTlsStream::Plain(stream))
            .map_err(|e| format!("{e:?}"))
            .expect("websocket connect");
    expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    ws
}

/// Sends `text` and waits for its acknowledgement; returns its id.
fn say(ws: &mut Client, text: &str) -> u64 {
    send_json(ws, json!({"type": "message", "text": text}));
    loop {
        let v = next_json(ws);
        if v["type"] == "message" && v["text"] == text {
            return v["id"].as_u64().unwrap();
        }
    }
}

/// Asks for a page and returns its answer, skipping live events.
fn page(ws: &mut Client, ask: Value) -> Value {
    send_json(ws, ask);
    next_of(ws, "history")
}

/// The next event of type `ty`, skipping replays and live events.
fn next_of(ws: &mut Client, ty: &str) -> Value {
    loop {
        let v = next_json(ws);
        if v["type"] == ty || v["type"] == "error" {
            assert_eq!(v["type"], ty, "{v}");
            return v;
        }
    }
}

fn ids(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {events}"))
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

/// Pages the room back from its newest, `limit` at a time, until a page
/// is complete; returns every event, oldest first, and the pages' count.
fn read_back(ws: &mut Client, limit: u64) -> (Vec<Value>, usize) {
    let mut all: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    let mut pages = 0;
    loop {
        let mut ask = json!({"type": "history", "limit": limit});
        if let Some(before) = before {
            ask["before"] = json!(before);
        }
        let answer = page(ws, ask);
        pages += 1;
        let events = answer["events"].as_array().unwrap().clone();
        let page_ids = ids(&answer["events"]);
        assert!(page_ids.len() as u64 <= limit, "{answer}");
        assert!(
            page_ids.windows(2).all(|w| w[0] < w[1]),
            "oldest first: {page_ids:?}"
        );
        if let Some(before) = before {
            assert_eq!(answer["before"], before, "{answer}");
            assert!(
                page_ids.iter().all(|&id| id < before),
                "{page_ids:?} < {before}"
            );
        }
        for e in &events {
            assert_eq!(e["replay"], true, "{e}");
        }
        let mut older = events;
        older.extend(all);
        all = older;
        if answer["complete"] == true {
            return (all, pages);
        }
        assert_eq!(answer["complete"], false, "{answer}");
        assert_eq!(
            page_ids.len() as u64,
            limit,
            "a short page that is not complete: {answer}"
        );
        before = Some(page_ids[0]);
    }
}

#[test]
fn scrollback_pages_down_to_the_first_message_across_a_restart() {
    let dir = TempDir::new("scrollback-restart");
    let db = dir.path.join("chat.db");
    let db = db.to_str().unwrap();
    let args = ["--db", db, "--history", "5"];
    let server = Server::start(&args);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    for i in 1..=11 {
        assert_eq!(say(&mut alice, &format!("before {i}")), i);
    }
    send_json(
        &mut alice,
        json!({"type": "file", "name": "plan.txt", "size": 4, "mime": "text/plain"}),
    );
    send_binary(&mut alice, b"plan".to_vec());
    assert_eq!(next_of(&mut alice, "file")["id"], 12);
    drop(alice);
    server.terminate();

    let server = Server::start(&args);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    for i in 13..=20 {
        assert_eq!(say(&mut alice, &format!("after {i}")), i);
    }
    let mut bob = v1_from(&server, "127.0.0.3", "den", "bob");
    let (events, pages) = read_back(&mut bob, 6);
    assert_eq!(
        ids(&Value::from(events.clone())),
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(pages, 4, "6 + 6 + 6 + 2");
    for e in &events {
        assert_eq!(e["room"], "den", "{e}");
        assert_eq!(e["from"], "alice", "{e}");
        assert_ts(e);
    }
    assert_eq!(events[0]["text"], "before 1");
    assert_eq!(events[19]["text"], "after 20");
    let file = &events[11];
    assert_eq!(
        (&file["type"], &file["name"], &file["size"]),
        (&json!("file"), &json!("plan.txt"), &json!(4)),
        "{file}"
    );
    let url = file["url"].as_str().expect("a replayed file's url");
    let got = http_fetch(&server.addr, url);
    assert_eq!((got.status, got.body.as_slice()), (200, &b"plan"[..]));

    // A page from the middle, and one below the first: nothing older.
    let mid = page(
        &mut bob,
        json!({"type": "history", "before": 4, "limit": 10}),
    );
    assert_eq!(ids(&mid["events"]), [1, 2, 3]);
    assert_eq!(mid["complete"], true);
    let none = page(&mut bob, json!({"type": "history", "before": 1}));
    assert_eq!(
        (ids(&none["events"]), &none["complete"]),
        (vec![], &json!(true))
    );
}

#[test]
fn a_limit_above_a_hundred_is_lowered_and_fifty_is_the_default() {
    let server = Server::start(&["--rate", "1000", "--burst", "1000"]);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    for i in 1..=130 {
        assert_eq!(say(&mut alice, &format!("m{i}")), i);
    }
    let mut bob = v1_from(&server, "127.0.0.3", "den", "bob");
    let big = page(&mut bob, json!({"type": "history", "limit": 500}));
    assert_eq!(ids(&big["events"]), (31..=130).collect::<Vec<_>>());
    assert_eq!(
        (&big["complete"], &big["before"]),
        (&json!(false), &json!(131))
    );
    let plain = page(&mut bob, json!({"type": "history", "before": 60}));
    assert_eq!(ids(&plain["events"]), (10..=59).collect::<Vec<_>>());
    assert_eq!(plain["complete"], false);
    for bad in [json!(0), json!(-1), json!("5")] {
        send_json(&mut bob, json!({"type": "history", "limit": bad}));
        expect_error(&mut bob, "bad_field");
    }
}

#[test]
fn too_many_requests_are_refused_rate_limited_and_none_dropped() {
    let server = Server::start(&[]);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    say(&mut alice, "deploy");
    let sent = 20;
    for i in 0..sent {
        let ask = match i % 2 {
            0 => json!({"type": "history"}),
            _ => json!({"type": "search", "q": "deploy"}),
        };
        send_json(&mut alice, ask);
    }
    let (mut answered, mut limited) = (0, 0);
    for _ in 0..sent {
        let v = next_json(&mut alice);
        match v["type"].as_str() {
            Some("history") | Some("search") => answered += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                let until = v["until"].as_u64().expect("until");
                assert!(until > now_ms() - 1000 && until < now_ms() + 5_000, "{v}");
                limited += 1;
            }
            _ => panic!("unexpected {v}"),
        }
    }
    // 10 at once, then 2 a second: 20 sent at once cannot all pass.
    assert!(answered >= 10, "{answered} answered");
    assert!(limited >= 5, "{limited} refused");
    // Another connection has its own allowance.
    let mut bob = v1_from(&server, "127.0.0.3", "den", "bob");
    let answer = page(&mut bob, json!({"type": "history"}));
    assert_eq!(ids(&answer["events"]), [1]);
}

/// Searches and returns the results' ids, newest first.
fn search(ws: &mut Client, q: &str) -> (Vec<u64>, Value) {
    send_json(ws, json!({"type": "search", "q": q}));
    let v = next_of(ws, "search");
    assert_eq!(v["q"], q, "{v}");
    (ids(&v["results"]), v)
}

#[test]
fn search_finds_words_in_the_room_not_what_retention_deleted() {
    let server = Server::start(&["--retain-messages", "5", "--history", "5"]);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    let mut carol = v1_from(&server, "127.0.0.4", "ops", "carol");
    say(&mut carol, "deploy from ops");
    for text in [
        "deploy the old build",
        "lunch?",
        "soon",
        "Deploy worked, server is up",
        "the deployment is done",
        "DEPLOY again: server down",
        "ok",
    ] {
        say(&mut alice, text);
    }
    // Kept: 3 to 7. Message 1 said "deploy" but is deleted.
    let mut bob = v1_from(&server, "127.0.0.3", "den", "bob");
    let (found, v) = search(&mut bob, "deploy");
    assert_eq!(found, [6, 4], "{v}");
    let first = &v["results"][0];
    assert_eq!(first["text"], "DEPLOY again: server down");
    assert_eq!(first["from"], "alice");
    assert_ts(first);
    assert_eq!(v["room"], "den");
    assert_eq!(search(&mut bob, "server DEPLOY").0, [6, 4]);
    assert_eq!(search(&mut bob, "deploy worked").0, [4]);
    assert_eq!(search(&mut bob, "lunch").0, Vec::<u64>::new());
    assert_eq!(search(&mut bob, "nowhere").0, Vec::<u64>::new());
    // Another room's messages are its own.
    assert_eq!(search(&mut carol, "deploy").0, [1]);
    // After a room's history was trimmed, new messages are found at once.
    let id = say(&mut alice, "deploy once more");
    assert_eq!(search(&mut bob, "deploy").0, [id, 6, 4]);
    for bad in [
        json!({"type": "search"}),
        json!({"type": "search", "q": "  ?! "}),
    ] {
        send_json(&mut bob, bad);
        expect_error(&mut bob, "bad_field");
    }
}

#[test]
fn neither_works_before_a_join_and_raw_clients_relay_such_text() {
    let server = Server::start(&[]);
    let mut lurker = connect_v1(&server.url("/ws"));
    for ask in [
        json!({"type": "history"}),
        json!({"type": "search", "q": "x"}),
    ] {
        send_json(&mut lurker, ask);
        expect_error(&mut lurker, "not_joined");
    }
    // A raw client's text is relayed as it is, whatever it says.
    let mut alice = v1_from(&server, "127.0.0.2", "lobby", "alice");
    let mut raw = connect(&server.url("/ws?name=tut"));
    assert_eq!(wait_join(&mut alice), "tut");
    let text = r#"{"type":"history","before":5}"#;
    send_text(&mut raw, text);
    let v = next_of(&mut alice, "message");
    assert_eq!((&v["from"], &v["text"]), (&json!("tut"), &json!(text)));
}

#[test]
fn with_redis_pages_read_the_stream_and_search_scans_it() {
    let redis = Redis::start();
    let server = Server::start(&["--redis", &redis.url(), "--history", "3"]);
    let mut alice = v1_from(&server, "127.0.0.2", "den", "alice");
    let mut carol = v1_from(&server, "127.0.0.4", "ops", "carol");
    say(&mut carol, "deploy from ops");
    for i in 1..=12 {
        let text = match i % 5 {
            0 => format!("Déploy number {i}"),
            _ => format!("chat {i}"),
        };
        assert_eq!(say(&mut alice, &text), i);
    }
    let mut bob = v1_from(&server, "127.0.0.3", "den", "bob");
    let (events, pages) = read_back(&mut bob, 5);
    assert_eq!(
        ids(&Value::from(events.clone())),
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(pages, 3);
    assert_eq!(events[4]["text"], "Déploy number 5");
    // Case and accents do not count.
    assert_eq!(search(&mut bob, "DEPLOY").0, [10, 5]);
    assert_eq!(search(&mut bob, "deploy 10").0, [10]);
    assert_eq!(search(&mut carol, "deploy").0, [1]);
}
