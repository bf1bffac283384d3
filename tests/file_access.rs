//! A file URL is a capability: with `--auth-secret`, `/files/…` serves only
//! URLs the server signed for that room and file, until they expire, and
//! only members of the room can have one signed (`file_url`). Without a
//! secret, URLs carry a signature under a random key, so that a room, an
//! id and a name are not enough to fetch a file.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Sha256;
use support::*;

const SECRET: &str = "a secret for the tests, at least thirty-two bytes";

/// How the server derives the key of file URLs from its secret, and what
/// it signs (docs/DECISIONS.md, "File URLs"): crafted here to make URLs the
/// server never gave out.
fn craft_sig(room: &str, id: u64, exp: u64) -> String {
    let mut derive = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    derive.update(b"wschat file urls v1");
    let key = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}:{room}/{id}/{exp}", room.len()).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `sub`, for `rooms` only, valid for an hour.
fn token(sub: &str, rooms: &[&str]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": now() + 3600, "rooms": rooms}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Joins `room` as `sub`, with a token for that room.
fn join_with_token(server: &Server, room: &str, sub: &str) -> Client {
    let path = format!(
        "/ws?room={room}&name={sub}&token={}",
        pct(&token(sub, &[room]))
    );
    join_v1_path(server, &path).0
}

/// Sends a file and waits for its acknowledgement; returns its id.
fn send_file(ws: &mut Client, name: &str, data: &[u8]) -> u64 {
    send_json(
        ws,
        json!({"type": "file", "name": name, "size": data.len(), "mime": "image/png"}),
    );
    send_binary(ws, data.to_vec());
    let ack = expect_type(ws, "file");
    ack["id"].as_u64().expect("an id")
}

/// Asks for a fresh URL of file `id`; returns the answer.
fn ask_url(ws: &mut Client, id: u64, name: &str) -> Value {
    send_json(ws, json!({"type": "file_url", "id": id, "name": name}));
    next_json(ws)
}

fn status(server: &Server, path: &str) -> u16 {
    http_fetch(&server.addr, path).status
}

/// The values of `exp` and `sig` in a URL's query.
fn query(url: &str) -> (Option<u64>, String) {
    let (_, query) = url.split_once('?').expect("a signed url");
    let mut exp = None;
    let mut sig = String::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("exp", v)) => exp = Some(v.parse().expect("a numeric exp")),
            Some(("sig", v)) => sig = v.to_owned(),
            _ => panic!("unexpected {pair} in {url}"),
        }
    }
    (exp, sig)
}

#[test]
fn with_a_secret_only_signed_unexpired_urls_serve_and_members_renew_them() {
    let dir = TempDir::new("file-access");
    let db = dir.path.join("wschat.db");
    let server = Server::start(&["--auth-secret", SECRET, "--db", db.to_str().unwrap()]);
    let plan = b"\x89PNG\r\n\x1a\nthe plan".to_vec();
    let mut alice = join_with_token(&server, "ops", "alice");
    let id = send_file(&mut alice, "plan.png", &plan);
    let path = format!("/files/ops/{id}/plan.png");

    // A member's replay carries a signed URL that expires in a day.
    let mut bob = join_with_token(&server, "ops", "bob");
    let replayed = expect_type(&mut bob, "file");
    let url = replayed["url"].as_str().expect("a url").to_owned();
    assert!(url.starts_with(&format!("{path}?")), "{url}");
    let (exp, sig) = query(&url);
    let exp = exp.expect("an exp");
    assert!(exp > now() + 23 * 3600 && exp <= now() + 24 * 3600, "{exp}");
    let got = http_fetch(&server.addr, &url);
    assert_eq!(got.status, 200);
    assert!(got.body == plan, "the file differs");

    // No signature, a tampered one, a changed exp: 403.
    let mut flipped = sig.clone().into_bytes();
    flipped[0] = if flipped[0] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    for refused in [
        path.clone(),
        format!("{path}?exp={exp}"),
        format!("{path}?sig={sig}"),
        format!("{path}?exp={exp}&sig={flipped}"),
        format!("{path}?exp={}&sig={sig}", exp + 1),
        format!("/files/ops/{}/plan.png?exp={exp}&sig={sig}", id + 1),
    ] {
        let got = http_fetch(&server.addr, &refused);
        assert_eq!(got.status, 403, "{refused}");
        assert!(got.body != plan, "{refused} served the file");
    }
    // Signed as the server signs, so only the expiry differs: a minute
    // ahead serves, a minute past does not.
    let ahead = now() + 60;
    let fresh = format!("{path}?exp={ahead}&sig={}", craft_sig("ops", id, ahead));
    assert_eq!(status(&server, &fresh), 200);
    let past = now() - 60;
    let expired = format!("{path}?exp={past}&sig={}", craft_sig("ops", id, past));
    let got = http_fetch(&server.addr, &expired);
    assert_eq!(got.status, 403);
    assert!(got.text().contains("expired"), "{}", got.text());

    // A member renews it.
    let answer = ask_url(&mut bob, id, "plan.png");
    assert_eq!(answer["type"], "file_url", "{answer}");
    assert_eq!(
        (answer["id"].as_u64(), &answer["room"]),
        (Some(id), &json!("ops"))
    );
    let renewed = answer["url"].as_str().expect("a url");
    assert!(renewed.starts_with(&format!("{path}?")), "{renewed}");
    assert!(query(renewed).0.expect("an exp") >= exp);
    assert_eq!(status(&server, renewed), 200);
    // An id the room has not given out is not signed.
    expect_error_answer(ask_url(&mut bob, id + 50, "plan.png"), "no_such_file");

    // Carol's token is for the lobby: she cannot join ops, and what she is
    // given in the lobby opens nothing in ops.
    let mut carol = join_with_token(&server, "lobby", "carol");
    let hers = ask_url(&mut carol, id, "plan.png");
    expect_error_answer(hers, "no_such_file");
    let mut dave = join_with_token(&server, "lobby", "dave");
    let lobby_id = send_file(&mut dave, "plan.png", b"lobby bytes");
    assert_eq!(lobby_id, id, "both rooms count from 1");
    // Carol sees dave come in and send it (its bytes follow live).
    expect_type(&mut carol, "join");
    expect_type(&mut carol, "file");
    next_data(&mut carol);
    let hers = ask_url(&mut carol, lobby_id, "plan.png");
    let lobby_url = hers["url"].as_str().expect("a url").to_owned();
    assert!(lobby_url.starts_with("/files/lobby/"), "{lobby_url}");
    assert_eq!(status(&server, &lobby_url), 200);
    let moved = lobby_url.replacen("/files/lobby/", "/files/ops/", 1);
    assert_eq!(status(&server, &moved), 403);

    // Before a join: nothing.
    let mut stranger = connect_v1(&server.url("/ws"));
    send_json(
        &mut stranger,
        json!({"type": "file_url", "id": id, "name": "plan.png"}),
    );
    expect_error(&mut stranger, "not_joined");
}

/// Checks that `v` is an error event with `code`.
fn expect_error_answer(v: Value, code: &str) {
    assert_eq!(
        (&v["type"], &v["code"]),
        (&json!("error"), &json!(code)),
        "{v}"
    );
}

#[test]
fn without_a_secret_urls_cannot_be_guessed_and_survive_a_restart() {
    let dir = TempDir::new("file-access-open");
    let db = dir.path.join("wschat.db");
    let db = db.to_str().unwrap();
    let server = Server::start(&["--db", db]);
    let mut alice = join_v1(&server, "r", "alice");
    let id = send_file(&mut alice, "a.png", b"open room");
    let path = format!("/files/r/{id}/a.png");
    let answer = ask_url(&mut alice, id, "a.png");
    let url = answer["url"].as_str().expect("a url").to_owned();
    let (exp, sig) = query(&url);
    assert_eq!(exp, None, "{url}");
    assert_eq!(sig.len(), 64, "{url}");
    assert_eq!(status(&server, &url), 200);
    for guessed in [
        path.clone(),
        format!("{path}?sig="),
        format!("{path}?sig={}", "0".repeat(64)),
        format!("{path}?sig={}", &sig[..63]),
    ] {
        assert_eq!(status(&server, &guessed), 403, "{guessed}");
    }
    // The key is kept with the history: the same URL works after a restart.
    drop(alice);
    server.terminate();
    let server = Server::start(&["--db", db]);
    assert_eq!(status(&server, &url), 200);
    let mut bob = join_v1(&server, "r", "bob");
    let replayed = expect_type(&mut bob, "file");
    assert_eq!(replayed["url"], url.as_str());
}
