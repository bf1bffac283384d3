//! Instances sharing rooms through one real `redis-server` (`--redis`):
//! messages reach every instance once and in one order, presence and names
//! span instances, a killed instance's clients resume elsewhere without a
//! gap, and Redis going away is loud and loses nothing; a Redis that
//! refuses `INFO` is taken for a single one.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::redis::{Redis, instance};
use support::*;

fn status(addr: &str, path: &str) -> u16 {
    http_fetch(addr, path).status
}

#[test]
fn messages_reach_every_instance_once_in_one_order() {
    let redis = Redis::start();
    let servers: Vec<Server> = (0..3).map(|_| instance(&redis)).collect();
    let names = ["ann", "bob", "cat"];
    let mut clients: Vec<Client> = servers
        .iter()
        .zip(names)
        .map(|(s, n)| join_v1(s, "hall", n))
        .collect();
    // A raw client of the tutorial, on the third instance.
    let mut raw = connect(&servers[2].url("/ws?room=hall"));
    // Everyone has seen everyone join before anything is said.
    for (i, ws) in clients.iter_mut().enumerate() {
        let mut joined = HashSet::new();
        while joined.len() < 3 - i {
            joined.insert(wait_join(ws));
        }
    }
    const EACH: usize = 20;
    for k in 0..EACH {
        for (i, ws) in clients.iter_mut().enumerate() {
            say(
                ws,
                &format!("{} {k}", names[i]),
                &format!("{}-{k}", names[i]),
            );
        }
        send_text(&mut raw, &format!("raw {k}"));
    }
    let total = EACH * 4;
    let mut orders = Vec::new();
    for ws in clients.iter_mut() {
        let got = messages(ws, total);
        let ids: Vec<u64> = got.iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (1..=total as u64).collect::<Vec<_>>(),
            "ids in order, once each"
        );
        let texts: Vec<String> = got.iter().map(|m| m["text"].to_string()).collect();
        orders.push(texts);
    }
    assert_eq!(
        orders[0], orders[1],
        "instances A and B disagree on the order"
    );
    assert_eq!(
        orders[0], orders[2],
        "instances A and C disagree on the order"
    );
    // Each sender's own messages are among them, in the order sent.
    for name in names {
        let own: Vec<&String> = orders[0].iter().filter(|t| t.contains(name)).collect();
        let sent: Vec<String> = (0..EACH).map(|k| format!("\"{name} {k}\"")).collect();
        assert_eq!(own, sent.iter().collect::<Vec<_>>());
    }
    // The raw client got the others' messages, tutorial style, once each.
    let mut seen = Vec::new();
    while seen.len() < EACH * 3 {
        seen.push(expect_text(&mut raw));
    }
    let expected: Vec<String> = orders[0]
        .iter()
        .filter(|t| !t.starts_with("\"raw"))
        .map(|t| {
            let t: String = serde_json::from_str(t).unwrap();
            format!("{}: {t}", t.split(' ').next().unwrap())
        })
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn presence_and_names_span_instances() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let c = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    let (mut cat, _, presence) = join_v1_path(&c, "/ws?room=hall&name=cat");
    assert_eq!(users_sorted(&presence), ["ann", "bob", "cat"], "{presence}");
    assert_eq!(wait_join(&mut ann), "cat");
    assert_eq!(wait_join(&mut bob), "cat");

    // A name held on A is refused on B, lookalikes included.
    let mut again = connect_v1(&b.url("/ws"));
    send_json(
        &mut again,
        json!({"type": "join", "room": "hall", "name": "ann"}),
    );
    expect_error(&mut again, "name_taken");
    send_json(
        &mut again,
        json!({"type": "join", "room": "hall", "name": "\u{430}nn"}),
    );
    expect_error(&mut again, "name_taken");

    // Typing crosses instances too.
    send_json(&mut cat, json!({"type": "typing"}));
    let typing = next_of(&mut ann, "typing");
    assert_eq!(typing["name"], "cat");

    // Leaving frees the name everywhere.
    drop(cat);
    assert_eq!(wait_leave(&mut ann), "cat");
    assert_eq!(wait_leave(&mut bob), "cat");
    join_v1(&a, "hall", "cat");
}

#[test]
fn a_killed_instances_clients_resume_on_another_without_a_gap() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    // Ann's page, with its per-browser key, as the page sends it.
    let mut ann = connect_v1(&a.url("/ws"));
    send_json(
        &mut ann,
        json!({"type": "join", "room": "hall", "name": "ann", "key": "ann-browser-key-1"}),
    );
    let welcome = expect_type(&mut ann, "welcome");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    expect_type(&mut ann, "presence");
    let mut cat = join_v1(&a, "hall", "cat");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "cat");
    assert_eq!(wait_join(&mut ann), "bob");
    assert_eq!(wait_join(&mut cat), "bob");
    for k in 0..10 {
        say(&mut ann, &format!("before {k}"), &format!("a{k}"));
    }
    let last = messages(&mut ann, 10).last().unwrap()["id"]
        .as_u64()
        .unwrap();
    messages(&mut bob, 10);

    // Instance A dies without a word; its connections just end.
    Command::new("kill")
        .args(["-9", &a.pid().to_string()])
        .status()
        .unwrap();
    wait_disconnected(&mut ann);
    wait_disconnected(&mut cat);
    for k in 0..5 {
        say(&mut bob, &format!("meanwhile {k}"), &format!("b{k}"));
    }
    messages(&mut bob, 5);

    // Ann's page comes back through B with what it had, under her name.
    let mut ann = connect_v1(&b.url("/ws"));
    send_json(
        &mut ann,
        json!({"type": "join", "room": "hall", "name": "ann", "key": "ann-browser-key-1",
               "since": last, "epoch": epoch}),
    );
    let welcome = expect_type(&mut ann, "welcome");
    assert_eq!(welcome["recovered"], true, "{welcome}");
    expect_type(&mut ann, "presence");
    let replay = messages(&mut ann, 5);
    let ids: Vec<u64> = replay.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (last + 1..=last + 5).collect::<Vec<_>>());
    assert!(replay.iter().all(|m| m["replay"] == true));

    // Cat, who does not come back, leaves everyone's presence once the dead
    // instance's membership expires (about ten seconds); ann never left.
    assert_eq!(wait_leave(&mut bob), "cat");
    say(&mut bob, "still here?", "b-last");
    assert_eq!(next_of(&mut ann, "message")["text"], "still here?");
}

#[test]
fn files_are_shared_and_served_by_any_instance() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    send_json(
        &mut ann,
        json!({"type": "file", "name": "data.bin", "size": bytes.len(), "mime": "application/octet-stream", "cid": "f1"}),
    );
    send_binary(&mut ann, bytes.clone());
    let announced = next_of(&mut bob, "file");
    assert_eq!(announced["name"], "data.bin");
    assert_eq!(expect_binary(&mut bob), bytes);
    let id = announced["id"].as_u64().unwrap();
    let echo = next_of(&mut ann, "file");
    assert_eq!(echo["cid"], "f1");
    // Its URL is signed under a key every instance shares (kept in
    // Redis); the bare path opens nothing.
    let url = file_url(&mut bob, id, "data.bin");
    assert!(
        url.starts_with(&format!("/files/hall/{id}/data.bin?sig=")),
        "{url}"
    );
    assert_eq!(file_url(&mut ann, id, "data.bin"), url);
    // Any instance serves it, this one included, whole or in part.
    for server in [&a, &b] {
        let got = http_fetch(&server.addr, &url);
        assert_eq!(got.status, 200);
        assert_eq!(got.body, bytes);
        let request = format!(
            "GET {url} HTTP/1.1\r\nHost: {}\r\nRange: bytes=100-199\r\n\r\n",
            server.addr
        );
        let part = http_request(&server.addr, &request);
        assert_eq!(part.status, 206);
        assert_eq!(part.body, bytes[100..200]);
        let bare = format!("/files/hall/{id}/data.bin");
        assert_eq!(http_fetch(&server.addr, &bare).status, 403);
    }
}

/// A fresh URL of file `id`, asked for with `file_url`. Until an instance
/// has read the shared key from Redis (just after it starts) the answer is
/// `unavailable`, and the question is asked again.
fn file_url(ws: &mut Client, id: u64, name: &str) -> String {
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        send_json(ws, json!({"type": "file_url", "id": id, "name": name}));
        let answer = next_json(ws);
        if answer["type"] == "file_url" {
            return answer["url"].as_str().expect("a url").to_owned();
        }
        assert_eq!(answer["code"], "unavailable", "{answer}");
        assert!(std::time::Instant::now() < deadline, "no key: {answer}");
    }
}

#[test]
fn redis_restarted_without_persistence_is_told_honestly() {
    let mut redis = Redis::start();
    let a = instance(&redis);
    let (mut ann, welcome, _) = join_v1_path(&a, "/ws?room=hall&name=ann");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    say(&mut ann, "kept?", "k1");
    assert_eq!(messages(&mut ann, 1)[0]["id"], 1);

    redis.restart();
    // The instance finds the room's history gone: everyone in it is told
    // to come back.
    let (code, reason) = close_frame(&mut ann).expect("a close frame");
    assert_eq!((code, reason.as_str()), (1012, "history reset"));
    let mut welcome;
    loop {
        // Until the instance has its subscription back, a join may be
        // refused as unavailable; the page retries the same way.
        let mut ws = connect_v1(&a.url("/ws"));
        send_json(
            &mut ws,
            json!({"type": "join", "room": "hall", "name": "ann", "since": 1, "epoch": epoch}),
        );
        welcome = next_json(&mut ws);
        if welcome["type"] == "welcome" {
            break;
        }
        assert_eq!(welcome["code"], "unavailable", "{welcome}");
        wait_for_ready(&a);
    }
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "epoch", "{welcome}");
    assert_ne!(welcome["epoch"], epoch.as_str());
}

/// Waits (polling `/readyz`, which no event reports) for the instance to
/// reach Redis again.
fn wait_for_ready(server: &Server) {
    server.wait_until("/readyz 200", |s| status(&s.addr, "/readyz") == 200);
}

#[test]
fn redis_unreachable_is_loud_and_loses_nothing() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    let mut raw = connect(&a.url("/ws?room=hall"));
    wait_join(&mut bob);
    assert_eq!(status(&a.addr, "/readyz"), 200);

    // Redis stops answering for five seconds.
    let paused = std::time::Instant::now();
    redis.pause();
    say(&mut ann, "during", "d1");
    let error = next_of(&mut ann, "error");
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["cid"], "d1", "{error}");
    a.wait_until("/readyz 503", |s| status(&s.addr, "/readyz") == 503);
    // A raw client has no error to read: its message waits.
    send_text(&mut raw, "raw during");
    // The outage lasts its five seconds whatever the test saw of it.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(paused.elapsed()));
    redis.resume();
    wait_for_ready(&a);

    // The page sends again what was refused, with the same cid.
    say(&mut ann, "during", "d1");
    say(&mut ann, "after", "d2");
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = next_of(&mut bob, "message");
        got.push(m["text"].as_str().unwrap().to_owned());
    }
    got.sort();
    assert_eq!(got, ["after", "during", "raw during"], "each once");
    // Nothing more is on its way: a marker sent last is the next message.
    say(&mut ann, "marker", "m");
    assert_eq!(next_of(&mut bob, "message")["text"], "marker");
}

#[test]
fn a_redis_url_that_is_not_one_stops_the_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["--listen", "127.0.0.1:0", "--redis", "http://example.org/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--redis http://example.org/"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_instance_started_before_redis_is_unready_until_it_comes() {
    let port = support::redis::free_port();
    let server = Server::start(&["--redis", &format!("redis://127.0.0.1:{port}/")]);
    assert_eq!(status(&server.addr, "/readyz"), 503);
    // A join cannot load its room: the client is told, and may try again.
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "room": "hall", "name": "ann"}),
    );
    expect_error(&mut ws, "unavailable");
    let _redis = Redis::start_on(port);
    wait_for_ready(&server);
    send_json(
        &mut ws,
        json!({"type": "join", "room": "hall", "name": "ann"}),
    );
    expect_type(&mut ws, "welcome");
}

#[test]
fn a_quiet_instance_stays_subscribed_and_ready() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    // Nothing is said for several of the subscriber's silence checks (2 s
    // each); a check that dropped the subscription would show as a 503.
    let quiet = std::time::Instant::now();
    while quiet.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            status(&b.addr, "/readyz"),
            200,
            "after {:?}",
            quiet.elapsed()
        );
    }
    say(&mut ann, "still there?", "q1");
    assert_eq!(next_of(&mut bob, "message")["text"], "still there?");
}

const ADMIN: &str = "an admin token for the tests";

/// `POST /api/PATH` with the admin token and a JSON body.
fn admin(server: &Server, path: &str, body: Value) -> HttpResponse {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}",
        addr = server.addr,
        len = body.len()
    );
    http_request(&server.addr, &request)
}

#[test]
fn a_ban_on_one_instance_holds_on_every_instance_and_on_those_started_later() {
    let redis = Redis::start();
    let with_admin =
        |redis: &Redis| Server::start(&["--redis", &redis.url(), "--admin-token", ADMIN]);
    let a = with_admin(&redis);
    let b = with_admin(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");

    // Banned through A, bob is closed on B and everyone hears him leave.
    let r = admin(&a, "/api/ban", json!({"name": "bob", "minutes": 5}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        close_frame(&mut bob),
        Some((1008, "banned by moderator".to_string()))
    );
    assert_eq!(wait_leave(&mut ann), "bob");
    // B refuses him and his look-alikes now; so does an instance that
    // starts after the ban.
    let c = with_admin(&redis);
    for server in [&b, &c] {
        let mut again = connect_v1(&server.url("/ws"));
        send_json(
            &mut again,
            json!({"type": "join", "room": "hall", "name": "b\u{43e}b"}),
        );
        expect_error(&mut again, "banned");
    }
    // Lifted through C, the ban is gone everywhere.
    let r = admin(&c, "/api/unban", json!({"name": "bob"}));
    assert_eq!(r.status, 200, "{}", r.text());
    b.wait_until("the unban to reach B", |b| {
        let mut ws = connect_v1(&b.url("/ws"));
        send_json(
            &mut ws,
            json!({"type": "join", "room": "lobby", "name": "bob"}),
        );
        next_json(&mut ws)["type"] == "welcome"
    });

    // A kick through B closes ann on A.
    let r = admin(&b, "/api/kick", json!({"name": "ann"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        close_frame(&mut ann),
        Some((1008, "kicked by moderator".to_string()))
    );
}

#[test]
fn a_redis_that_refuses_info_is_taken_for_a_single_one() {
    // `INFO cluster` is how an instance tells a cluster from one Redis.
    let redis = Redis::start_with(
        support::redis::free_port(),
        &["--rename-command", "INFO", ""],
    );
    let a = instance(&redis);
    let b = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    say(&mut bob, "heard?", "b1");
    assert_eq!(next_of(&mut ann, "message")["text"], "heard?");
}

#[test]
fn a_single_redis_is_given_no_command_it_refuses() {
    // The scripts ask a cluster's master for its id (`CLUSTER MYID`); one
    // Redis is not asked, which it would count as an error each time.
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let mut ann = join_v1(&a, "hall", "ann");
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    say(&mut bob, "counted?", "b1");
    assert_eq!(next_of(&mut ann, "message")["text"], "counted?");
    let stats = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "INFO", "commandstats"])
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.contains("cmdstat_evalsha"), "{stats}");
    assert!(!stats.contains("cmdstat_cluster"), "{stats}");
}
