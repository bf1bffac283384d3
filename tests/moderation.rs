//! Moderation: the admin routes (`--admin-token`), kicking and banning
//! through the JSON API, and the log line every action leaves. The admin
//! page itself is driven in Chromium by tests/browser.rs.

mod support;

use serde_json::{Value, json};
use support::admin_api as api;
use support::*;

const ADMIN: &str = "an admin token for the tests";

fn json_of(r: &HttpResponse) -> Value {
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json"),
        "{}: {}",
        r.status,
        r.text()
    );
    serde_json::from_slice(&r.body).expect("a JSON body")
}

fn admin_server() -> (Server, ServerLog) {
    Server::start_logged(&["--admin-token", ADMIN])
}

/// Waits for the log line of an admin action that has every field given.
/// Milliseconds since the epoch of an RFC 3339 UTC time with milliseconds
/// (`2026-11-26T23:50:09.098Z`); `None` for anything else.
fn rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + n(11..13)?) * 60 + n(14..16)?) * 60_000 + n(17..19)? * 1000 + n(20..23)?;
    u64::try_from(ms).ok()
}

fn logged(log: &ServerLog, fields: &[&str]) -> String {
    log.wait_for(WATCHDOG, |l| fields.iter().all(|f| l.contains(f)))
        .unwrap_or_else(|| {
            panic!(
                "no log line with {fields:?} in:\n{}",
                log.lines().join("\n")
            )
        })
}

#[test]
fn without_an_admin_token_the_admin_routes_do_not_exist() {
    let server = Server::start(&[]);
    for (method, path) in [
        ("GET", "/admin"),
        ("GET", "/admin.html"),
        ("GET", "/admin.js"),
        ("GET", "/api/rooms"),
        ("POST", "/api/kick"),
        ("POST", "/api/ban"),
    ] {
        let r = api(
            &server,
            method,
            path,
            Some(ADMIN),
            Some(json!({"name": "x"})),
        );
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
    }
    // The chat page is still there.
    assert_eq!(http_fetch(&server.addr, "/").status, 200);
}

#[test]
fn a_missing_or_wrong_token_is_refused_and_logged() {
    let (server, log) = admin_server();
    let wrong = "an admin token for the tests!";
    for (method, path, body) in [
        ("GET", "/api/rooms", None),
        ("POST", "/api/kick", Some(json!({"name": "bob"}))),
        (
            "POST",
            "/api/ban",
            Some(json!({"name": "bob", "minutes": 5})),
        ),
        ("POST", "/api/unban", Some(json!({"name": "bob"}))),
    ] {
        for token in [None, Some(wrong), Some("x"), Some("")] {
            let r = api(&server, method, path, token, body.clone());
            assert_eq!(
                r.status,
                401,
                "{method} {path} with {token:?}: {}",
                r.text()
            );
            assert_eq!(
                r.header("WWW-Authenticate"),
                Some("Bearer realm=\"wschat admin\"")
            );
            assert_eq!(json_of(&r)["error"], "unauthorized");
        }
        let action = path.trim_start_matches("/api/");
        logged(
            &log,
            &[
                "event=admin",
                &format!("action={action}"),
                "outcome=denied",
                "by=\"tester\"",
                "peer=127.0.0.1:",
            ],
        );
    }
    // The right token opens them; the page itself holds no data and is
    // served to anyone once the view exists, under the page's policy.
    assert_eq!(
        api(&server, "GET", "/api/rooms", Some(ADMIN), None).status,
        200
    );
    let page = http_fetch(&server.addr, "/admin");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("admin.js"), "{}", page.text());
    assert!(
        page.header("Content-Security-Policy")
            .is_some_and(|c| c.contains("script-src 'self'"))
    );
    // Wrong methods and unknown API paths.
    assert_eq!(
        api(&server, "POST", "/api/rooms", Some(ADMIN), Some(json!({}))).status,
        405
    );
    assert_eq!(
        api(&server, "GET", "/api/kick", Some(ADMIN), None).status,
        405
    );
    assert_eq!(
        api(&server, "GET", "/api/nothing", Some(ADMIN), None).status,
        404
    );
}

#[test]
fn rooms_lists_people_once_with_their_connections() {
    let (server, _log) = admin_server();
    let mut alice = join_v1(&server, "r", "alice");
    let key = json!({"type": "join", "room": "r", "name": "bob", "key": "bobs-browser-key-1"});
    let mut bob1 = connect_v1(&server.url("/ws"));
    send_json(&mut bob1, key.clone());
    expect_type(&mut bob1, "welcome");
    let mut bob2 = connect_v1(&server.url("/ws"));
    send_json(&mut bob2, key);
    expect_type(&mut bob2, "welcome");
    assert_eq!(wait_join(&mut alice), "bob");
    let (_raw, joined) = connect_raw_synced(&server, &mut alice, "/ws?room=r&name=carol");
    assert_eq!(joined, "carol");
    let overview = json_of(&api(&server, "GET", "/api/rooms", Some(ADMIN), None));
    let room = overview["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "r")
        .unwrap_or_else(|| panic!("room r in {overview}"));
    assert_eq!(room["connections"], 4, "{room}");
    assert_eq!(
        room["people"],
        json!([
            {"name": "alice", "connections": 1, "modes": ["v1"]},
            {"name": "bob", "connections": 2, "modes": ["v1", "v1"]},
            {"name": "carol", "connections": 1, "modes": ["raw"]},
        ])
    );
    assert_eq!(overview["bans"], json!([]));
}

#[test]
fn kick_closes_every_connection_of_the_person_and_is_logged() {
    let (server, log) = admin_server();
    let mut alice = join_v1(&server, "r", "alice");
    let join = json!({"type": "join", "room": "r", "name": "bob", "key": "bobs-browser-key-1"});
    let mut tabs: Vec<Client> = (0..2)
        .map(|_| {
            let mut ws = connect_v1(&server.url("/ws"));
            send_json(&mut ws, join.clone());
            expect_type(&mut ws, "welcome");
            ws
        })
        .collect();
    assert_eq!(wait_join(&mut alice), "bob");
    // Bob in another room is not touched by a kick from this one.
    let mut elsewhere = join_v1(&server, "other", "bob");

    let r = api(
        &server,
        "POST",
        "/api/kick",
        Some(ADMIN),
        Some(json!({"name": "bob", "room": "r"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r), json!({"name": "bob", "kicked": 2}));
    for tab in &mut tabs {
        assert_eq!(
            close_frame(tab),
            Some((1008, "kicked by moderator".to_string()))
        );
    }
    assert_eq!(wait_leave(&mut alice), "bob");
    logged(
        &log,
        &[
            "event=admin",
            "action=kick",
            "peer=127.0.0.1:",
            "by=\"tester\"",
            "name=\"bob\"",
            "room=\"r\"",
            "kicked=2",
            "outcome=done",
        ],
    );
    // Kicked is not banned: bob may come back.
    join_v1(&server, "r", "bob");
    assert_relayed(
        &mut elsewhere,
        &mut join_v1(&server, "other", "eve"),
        "still in other",
    );

    // Nobody by that name: nothing is closed, and the log says so.
    let r = api(
        &server,
        "POST",
        "/api/kick",
        Some(ADMIN),
        Some(json!({"name": "zed", "room": "r"})),
    );
    assert_eq!(json_of(&r), json!({"name": "zed", "kicked": 0}));
    logged(&log, &["action=kick", "name=\"zed\"", "kicked=0"]);
}

#[test]
fn ban_closes_the_name_everywhere_and_refuses_it_until_it_ends() {
    let (server, log) = admin_server();
    let mut alice = join_v1(&server, "r", "alice");
    let mut bob = join_v1(&server, "r", "bob");
    assert_eq!(wait_join(&mut alice), "bob");
    let (mut raw_bob, _) = {
        let mut watcher = join_v1(&server, "raw", "watcher");
        connect_raw_synced(&server, &mut watcher, "/ws?room=raw&name=bob")
    };
    let before = now_ms();
    let r = api(
        &server,
        "POST",
        "/api/ban",
        Some(ADMIN),
        Some(json!({"name": "bob", "minutes": 5})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let banned = json_of(&r);
    let until = banned["until"].as_u64().unwrap();
    assert!(
        until >= before + 5 * 60_000 && until <= now_ms() + 5 * 60_000,
        "{banned}"
    );
    assert_eq!(banned["kicked"], 2, "{banned}");
    assert_eq!(
        close_frame(&mut bob),
        Some((1008, "banned by moderator".to_string()))
    );
    assert_eq!(close_code(&mut raw_bob), Some(1008));
    assert_eq!(wait_leave(&mut alice), "bob");
    let line = logged(
        &log,
        &[
            "event=admin",
            "action=ban",
            "by=\"tester\"",
            "name=\"bob\"",
            "minutes=5",
            "kicked=2",
        ],
    );
    // The log gives the ban's end in RFC 3339, the API in milliseconds.
    let logged_until = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("until="))
        .unwrap_or_else(|| panic!("no until in {line}"));
    assert_eq!(rfc3339_ms(logged_until), Some(until), "{line}");

    // The name, and names that look like it, are refused with the ban's end.
    for name in ["bob", "b\u{43e}b"] {
        let mut ws = connect_v1(&server.url("/ws"));
        send_json(
            &mut ws,
            json!({"type": "join", "room": "elsewhere", "name": name}),
        );
        let e = expect_error(&mut ws, "banned");
        assert_eq!(e["until"], until, "{e}");
    }
    let mut raw = connect(&server.url("/ws?room=r&name=bob"));
    assert_eq!(close_frame(&mut raw), Some((1008, "banned".to_string())));
    let overview = json_of(&api(&server, "GET", "/api/rooms", Some(ADMIN), None));
    assert_eq!(overview["bans"], json!([{"name": "bob", "until": until}]));
    assert_eq!(overview["bans_kept"], "memory", "a restart lifts them");
    // The refused joins left no room behind: "elsewhere" was never entered.
    let rooms: Vec<&str> = overview["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["r"], "{overview}");

    // Lifted, the name is free again.
    let r = api(
        &server,
        "POST",
        "/api/unban",
        Some(ADMIN),
        Some(json!({"name": "bob"})),
    );
    assert_eq!(json_of(&r), json!({"name": "bob", "unbanned": true}));
    logged(
        &log,
        &["event=admin", "action=unban", "name=\"bob\"", "lifted=true"],
    );
    join_v1(&server, "r", "bob");
}

#[test]
fn bad_requests_are_refused_precisely() {
    let server = Server::start(&["--admin-token", ADMIN, "--handshake-timeout", "0.5"]);
    let post = |body: &str, length: bool| {
        let addr = &server.addr;
        let length = if length {
            format!("Content-Length: {}\r\n", body.len())
        } else {
            String::new()
        };
        http_request(
            addr,
            &format!(
                "POST /api/ban HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n{length}\r\n{body}"
            ),
        )
    };
    for (body, status) in [
        ("not json", 400),
        (r#"{"name":"bob"}"#, 400),
        (r#"{"name":"bob","minutes":0}"#, 400),
        (r#"{"name":"bob","minutes":-1}"#, 400),
        (r#"{"name":"bob","minutes":5,"extra":1}"#, 400),
        (r#"{"name":"\u200b","minutes":5}"#, 400),
    ] {
        let r = post(body, true);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(json_of(&r)["message"].is_string());
    }
    assert_eq!(post(r#"{"name":"bob","minutes":5}"#, false).status, 411);
    let huge = format!(r#"{{"name":"{}","minutes":5}}"#, "x".repeat(5000));
    assert_eq!(post(&huge, true).status, 413);
    // A body that is announced but never comes is given up on.
    let r = http_request(
        &server.addr,
        &format!(
            "POST /api/ban HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 40\r\n\r\n{{",
            server.addr
        ),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}
