//! Who may say what: signed identity tokens (`--auth-secret`), a browser's
//! key that lets its own tabs share a name, and names and rooms that cannot
//! pass for someone else's. Against a real server, through real clients.

mod support;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

const SECRET: &str = "a secret for the tests, at least thirty-two bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with `key`, with these claims.
fn signed(claims: Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A good token for `sub`, valid for an hour.
fn token(sub: &str) -> String {
    signed(json!({"sub": sub, "exp": now() + 3600}), SECRET)
}

fn with_secret() -> Server {
    Server::start(&["--auth-secret", SECRET])
}

/// Sends a join frame (with these extra fields) on a fresh v1 connection.
fn join_frame(server: &Server, room: &str, extra: Value) -> Client {
    let mut ws = connect_v1(&server.url("/ws"));
    let mut frame = json!({"type": "join", "room": room});
    for (k, v) in extra.as_object().unwrap() {
        frame[k] = v.clone();
    }
    send_json(&mut ws, frame);
    ws
}

/// Joins `room` with a join frame; returns after `welcome` and `presence`.
fn join_with(server: &Server, room: &str, extra: Value) -> (Client, Value, Value) {
    let mut ws = join_frame(server, room, extra);
    let welcome = expect_type(&mut ws, "welcome");
    let presence = expect_type(&mut ws, "presence");
    (ws, welcome, presence)
}

/// The status and body of an upgrade to `path` that the server refuses.
fn refused_upgrade(server: &Server, path: &str, v1: bool) -> (u16, String) {
    let protocol = ["Sec-WebSocket-Protocol: wschat.v1"];
    let extra: &[&str] = if v1 { &protocol } else { &[] };
    let r = upgrade_request(&server.addr, path, extra);
    (r.status, r.text())
}

/// `speaker` says `text` and `listener`'s next event must be that message:
/// nothing (no join, no leave) came before it.
fn next_is_message(speaker: &mut Client, listener: &mut Client, text: &str) {
    send_json(speaker, json!({"type": "message", "text": text}));
    let v = next_json(listener);
    assert_eq!(v["type"], "message", "expected {text:?} next, got {v}");
    assert_eq!(v["text"], text, "{v}");
}

/// Closes `ws` and waits until the server has let go of it: its reader
/// tells the dispatcher before the connection gauge drops, so whatever is
/// sent after this reaches the room after the leave.
fn close_and_wait(server: &Server, mut ws: Client, v1_left_open: f64) {
    ws.close(None).unwrap();
    let _ = close_frame(&mut ws);
    server.wait_metric("wschat_connections{mode=\"v1\"}", |n| n == v1_left_open);
}

#[test]
fn a_token_is_required_when_a_secret_is_set() {
    let server = with_secret();
    // A raw client has no join frame: it is refused before the upgrade.
    let (status, body) = refused_upgrade(&server, "/ws?room=r", false);
    assert_eq!(status, 401, "{body}");
    assert!(body.starts_with("token_required"), "{body}");
    // So is a v1 client that joins from the query.
    let (status, body) = refused_upgrade(&server, "/ws?room=r&name=alice", true);
    assert_eq!(
        (status, body.starts_with("token_required")),
        (401, true),
        "{body}"
    );
    // A v1 client that joins with a frame is told in an error event, and
    // may try again with a token.
    let mut ws = join_frame(&server, "r", json!({"name": "alice"}));
    expect_error(&mut ws, "token_required");
    send_json(
        &mut ws,
        json!({"type": "join", "room": "r", "token": token("alice")}),
    );
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["name"], "alice", "{welcome}");
    // Without a secret the server stays open.
    let open = Server::start(&[]);
    join_v1(&open, "r", "alice");
}

#[test]
fn forged_expired_and_malformed_tokens_are_refused_with_their_codes() {
    let server = with_secret();
    let forged = signed(
        json!({"sub": "alice", "exp": now() + 3600}),
        "somebody else's secret, also thirty-two bytes",
    );
    let expired = signed(json!({"sub": "alice", "exp": now() - 10}), SECRET);
    let no_exp = signed(json!({"sub": "alice"}), SECRET);
    // Not valid before tomorrow: far past the leeway given to clocks.
    let not_yet = signed(
        json!({"sub": "alice", "exp": now() + 2 * 86_400, "nbf": now() + 86_400}),
        SECRET,
    );
    for (token, code) in [
        (forged.as_str(), "token_invalid"),
        (expired.as_str(), "token_expired"),
        (no_exp.as_str(), "token_invalid"),
        (not_yet.as_str(), "token_invalid"),
        ("not.a.token", "token_invalid"),
    ] {
        // At the upgrade, raw and v1 alike.
        for v1 in [false, true] {
            let (status, body) =
                refused_upgrade(&server, &format!("/ws?room=r&token={}", pct(token)), v1);
            assert_eq!(status, 401, "{code}: {body}");
            assert!(body.starts_with(code), "{code}: {body}");
        }
        // In a join frame: an error event, and no room.
        let mut ws = join_frame(&server, "r", json!({"token": token}));
        let e = expect_error(&mut ws, code);
        assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
        send_json(&mut ws, json!({"type": "message", "text": "hi"}));
        expect_error(&mut ws, "not_joined");
    }
}

#[test]
fn a_tokens_name_cannot_be_taken_by_another_client() {
    let server = with_secret();
    let (mut alice, welcome, _) = join_with(&server, "r", json!({"token": token("alice")}));
    assert_eq!(welcome["name"], "alice");
    // Bob's token does not let him ask for alice's name…
    let mut bob = join_frame(
        &server,
        "r",
        json!({"token": token("bob"), "name": "alice"}),
    );
    let e = expect_error(&mut bob, "name_mismatch");
    assert!(e["message"].as_str().unwrap().contains("bob"), "{e}");
    let (status, body) = refused_upgrade(
        &server,
        &format!("/ws?room=r&name=alice&token={}", token("bob")),
        false,
    );
    assert_eq!(
        (status, body.starts_with("name_mismatch")),
        (403, true),
        "{body}"
    );
    // …nor does a token for a name that only looks like hers.
    let mut lookalike = join_frame(&server, "r", json!({"token": token("\u{430}lice")}));
    expect_error(&mut lookalike, "name_taken");
    // Bob's own token gets him in under his own name, raw or v1.
    let (raw, joined) = connect_raw_synced(
        &server,
        &mut alice,
        &format!("/ws?room=r&token={}", token("bob")),
    );
    assert_eq!(joined, "bob");
    drop(raw);
    assert_eq!(wait_leave(&mut alice), "bob");
}

#[test]
fn a_room_outside_the_tokens_list_is_refused() {
    let server = with_secret();
    let limited = signed(
        json!({"sub": "alice", "exp": now() + 3600, "rooms": ["den", "lab"]}),
        SECRET,
    );
    let mut ws = join_frame(&server, "lobby", json!({"token": limited}));
    let e = expect_error(&mut ws, "room_forbidden");
    assert!(e["message"].as_str().unwrap().contains("lobby"), "{e}");
    // Raw clients go to the lobby unless they say otherwise.
    let (status, body) = refused_upgrade(&server, &format!("/ws?token={limited}"), false);
    assert_eq!(
        (status, body.starts_with("room_forbidden")),
        (403, true),
        "{body}"
    );
    let (status, _) = refused_upgrade(&server, &format!("/ws?room=lobby&token={limited}"), true);
    assert_eq!(status, 403);
    // The rooms it lists are open to it.
    send_json(
        &mut ws,
        json!({"type": "join", "room": "lab", "token": limited}),
    );
    assert_eq!(expect_type(&mut ws, "welcome")["room"], "lab");
    let (raw, _) = connect_manual(&server, &format!("/ws?room=den&token={limited}"), &[]);
    drop(raw);
}

#[test]
fn two_tabs_with_one_token_are_one_presence_entry() {
    let server = with_secret();
    let (mut bob, _, _) = join_with(&server, "r", json!({"token": token("bob")}));
    let (mut tab1, _, _) = join_with(&server, "r", json!({"token": token("alice")}));
    assert_eq!(wait_join(&mut bob), "alice");
    // The second tab gets in, as alice, listed once.
    let (mut tab2, welcome, presence) = join_with(&server, "r", json!({"token": token("alice")}));
    assert_eq!(welcome["name"], "alice");
    assert_eq!(presence["users"], json!(["bob", "alice"]), "{presence}");
    // Bob was told nothing: the next thing he hears is a message.
    next_is_message(&mut tab2, &mut bob, "from the second tab");
    expect_type(&mut tab1, "message");
    // One tab closing is no leave; the last one is.
    close_and_wait(&server, tab1, 2.0);
    next_is_message(&mut tab2, &mut bob, "still here");
    // A raw connection with the same token is alice again, quietly: what
    // it says comes after its join, and is the next thing bob hears.
    let mut raw = connect(&server.url(&format!("/ws?room=r&token={}", token("alice"))));
    send_text(&mut raw, "and raw too");
    let v = next_json(&mut bob);
    assert_eq!(
        (&v["type"], &v["from"], &v["text"]),
        (&json!("message"), &json!("alice"), &json!("and raw too")),
        "{v}"
    );
    drop(raw);
    tab2.close(None).unwrap();
    assert_eq!(wait_leave(&mut bob), "alice");
}

#[test]
fn a_browsers_key_makes_its_tabs_one_person_and_keeps_others_out() {
    let server = Server::start(&[]);
    let key = "k3y-0f-th1s_br0wser";
    let mut bob = join_v1(&server, "r", "bob");
    let (tab1, _, _) = join_with(&server, "r", json!({"name": "alice", "key": key}));
    assert_eq!(wait_join(&mut bob), "alice");
    let (mut tab2, welcome, presence) =
        join_with(&server, "r", json!({"name": "alice", "key": key}));
    assert_eq!(welcome["name"], "alice");
    assert_eq!(presence["users"], json!(["bob", "alice"]), "{presence}");
    next_is_message(&mut tab2, &mut bob, "second tab");
    // Anyone else asking for the name is refused, with another key, none,
    // from the query or raw.
    for extra in [
        json!({"name": "alice", "key": "another-browsers-key"}),
        json!({"name": "alice"}),
        json!({"name": "\u{430}lice", "key": "yet-another-browsers-key"}),
    ] {
        let mut other = join_frame(&server, "r", extra);
        expect_error(&mut other, "name_taken");
    }
    let mut raw = connect(&server.url("/ws?room=r&name=alice"));
    assert_eq!(close_frame(&mut raw).unwrap().0, 1008);
    // A key must look like one.
    let mut bad = join_frame(&server, "r", json!({"name": "carol", "key": "short"}));
    expect_error(&mut bad, "bad_field");
    drop(bad);
    close_and_wait(&server, tab1, 2.0);
    next_is_message(&mut tab2, &mut bob, "one tab left");
    tab2.close(None).unwrap();
    assert_eq!(wait_leave(&mut bob), "alice");
}

#[test]
fn names_that_pass_for_alice_are_refused_while_she_is_in() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "r", "alice");
    for (name, code) in [
        ("alice\u{200b}", "invalid_name"),
        ("al\u{200d}ice", "invalid_name"),
        ("alice\u{feff}", "invalid_name"),
        ("\u{202e}ecila", "invalid_name"),
        ("\u{2066}alice\u{2069}", "invalid_name"),
        ("al\u{3164}ice", "invalid_name"),
        ("\u{430}lice", "name_taken"),
        ("ａｌｉｃｅ", "name_taken"),
        ("alice\u{fe0f}", "name_taken"),
        ("\u{200b}\u{200b}", "invalid_name"),
        ("\u{2800}", "invalid_name"),
        ("\u{301}", "invalid_name"),
        ("\u{3164}", "invalid_name"),
    ] {
        let mut ws = join_frame(&server, "r", json!({"name": name}));
        let e = expect_error(&mut ws, code);
        assert!(!e["message"].as_str().unwrap().is_empty(), "{name:?}: {e}");
    }
    // Raw clients meet the same rules, and are closed saying which.
    for (name, reason) in [
        ("\u{430}lice", "name taken"),
        ("alice\u{200b}", "invalid name"),
    ] {
        let mut raw = connect(&server.url(&format!("/ws?room=r&name={}", pct(name))));
        assert_eq!(close_frame(&mut raw), Some((1008, reason.to_string())));
    }
    // Nobody got in: the next thing alice hears is her own message.
    send_json(&mut alice, json!({"type": "message", "text": "alone"}));
    assert_eq!(expect_type(&mut alice, "message")["text"], "alone");
}

#[test]
fn ordinary_names_in_many_scripts_are_accepted() {
    let server = Server::start(&[]);
    let names = [
        "alice",
        "Alice",
        "José",
        "Zoë Ångström",
        "李小龙",
        "محمد",
        "Дмитрий",
        "שרה",
        "अनु",
        "さくら",
        "김민준",
        "Ἀθηνᾶ",
        "❤️ fan",
    ];
    let mut clients = Vec::new();
    for name in names {
        let (ws, welcome, _) = join_with(&server, "many", json!({"name": name}));
        assert_eq!(welcome["name"], name);
        clients.push(ws);
    }
    let (_, _, presence) = join_with(&server, "many", json!({"name": "last"}));
    let mut want: Vec<&str> = names.to_vec();
    want.push("last");
    assert_eq!(presence["users"], json!(want));
    // Decomposed input is stored composed.
    let (_, welcome, _) = join_with(&server, "many", json!({"name": "Rene\u{301}"}));
    assert_eq!(welcome["name"], "René");
}

#[test]
fn rooms_that_look_alike_are_one_room() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    // A Cyrillic "о" does not make another room beside the lobby.
    let (mut bob, welcome, presence) = join_with(&server, "l\u{43e}bby", json!({"name": "bob"}));
    assert_eq!(welcome["room"], "lobby");
    assert_eq!(presence["users"], json!(["alice", "bob"]));
    assert_eq!(wait_join(&mut alice), "bob");
    next_is_message(&mut bob, &mut alice, "same room");
    for room in ["lobby\u{202e}", "\u{200b}", "lob\u{200d}by"] {
        let mut ws = join_frame(&server, room, json!({"name": "carol"}));
        expect_error(&mut ws, "invalid_room");
    }
}

#[test]
fn a_raw_file_name_meets_the_v1_rules_before_v1_clients_see_it() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "f", "watcher");
    let (mut raw_in, _) = connect_raw_synced(&server, &mut watcher, "/ws?room=f&name=raw-in");
    let (mut sender, _) = connect_raw_synced(&server, &mut watcher, "/ws?room=f&name=sender");
    let name = "../invoice\u{202e}fdp.exe";
    let frame = file_frame(name, b"bytes");
    send_binary(&mut sender, frame.clone());
    let v = expect_type(&mut watcher, "file");
    assert_eq!(v["name"], ".._invoice_fdp.exe", "{v}");
    assert_eq!(expect_binary(&mut watcher), b"bytes");
    // Raw clients get the tutorial's frame byte for byte.
    assert_eq!(expect_binary(&mut raw_in), frame);
    // A v1 client may not announce such a name at all.
    send_json(
        &mut watcher,
        json!({"type": "file", "name": "invoice\u{202e}fdp.exe", "size": 1}),
    );
    expect_error(&mut watcher, "bad_field");
}

/// `wschat token …` with this environment.
fn token_command(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
    command.arg("token").args(args);
    for var in [
        "WSCHAT_AUTH_SECRET",
        "WSCHAT_AUTH_SECRET_FILE",
        "WSCHAT_CONFIG",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn the_token_subcommand_mints_tokens_the_server_accepts() {
    let server = with_secret();
    let minted = token_command(
        &["alice", "--rooms", "den,lab", "--ttl", "60"],
        &[("WSCHAT_AUTH_SECRET", SECRET)],
    );
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    let (_, welcome, _) = join_with(&server, "den", json!({"token": token}));
    assert_eq!(welcome["name"], "alice");
    let mut ws = join_frame(&server, "lobby", json!({"token": token}));
    expect_error(&mut ws, "room_forbidden");

    // From a file named by an option, after the subcommand.
    let dir = TempDir::new("token-secret");
    let file = dir.write("secret", format!("{SECRET}\n").as_bytes());
    let minted = token_command(&["bob", "--auth-secret-file", file.to_str().unwrap()], &[]);
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_string();
    let (_, welcome, _) = join_with(&server, "lobby", json!({"token": token}));
    assert_eq!(welcome["name"], "bob");

    // No secret, or a name that could never join: status 2 and why.
    let none = token_command(&["carol"], &[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--auth-secret"));
    let bad = token_command(&["carol\u{200b}"], &[("WSCHAT_AUTH_SECRET", SECRET)]);
    assert_eq!(bad.status.code(), Some(2));
    let short = token_command(&["carol"], &[("WSCHAT_AUTH_SECRET", "too short")]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("32 bytes"));
}

/// `GET /api/info` tells a page, before it joins, whether this server
/// needs a token: public (no admin token asked, none configured), JSON,
/// and true exactly when `--auth-secret` is set.
#[test]
fn api_info_says_whether_a_token_is_required() {
    let info = |server: &Server| {
        let res = http_fetch(&server.addr, "/api/info");
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("Content-Type"), Some("application/json"));
        assert_eq!(res.header("Cache-Control"), Some("no-store"));
        serde_json::from_slice::<Value>(&res.body).unwrap()
    };
    let open = Server::start(&[]);
    assert_eq!(info(&open), json!({"token_required": false}));
    let guarded = with_secret();
    assert_eq!(info(&guarded), json!({"token_required": true}));
    // With an admin token too, it stays public; the rest of /api/ does not.
    let admin = Server::start(&[
        "--auth-secret",
        SECRET,
        "--admin-token",
        "an admin token for the tests",
    ]);
    assert_eq!(info(&admin), json!({"token_required": true}));
    assert_eq!(http_fetch(&admin.addr, "/api/rooms").status, 401);
    assert_eq!(http_fetch(&open.addr, "/api/rooms").status, 404);
    let post = http_request(
        &open.addr,
        &format!(
            "POST /api/info HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            open.addr
        ),
    );
    assert_eq!(post.status, 405);
}
