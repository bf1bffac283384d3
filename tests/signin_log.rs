//! A refused sign-in leaves one log line with its reason and the client's
//! address, whether it is refused at the upgrade (no token, a forged one,
//! an expired one, one not valid yet) or in a join frame (a room the token does not allow, a
//! name that is not the token's), and never with the names involved.
//! Clients come from distinct loopback addresses, as different users.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::nginx::ws_from;
use support::*;

const SECRET: &str = "a secret for the sign-in log tests, 32 bytes or more";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(claims: Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// A server that needs tokens, logging at `info` (the default).
fn server() -> Server {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wschat"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
        .env("WSCHAT_AUTH_SECRET", SECRET)
        .stderr(std::process::Stdio::piped());
    Server::spawn(command)
}

/// The one sign-in line logged for `code`, which must name `peer`.
fn refusal_line(server: &Server, code: &str, peer: &str) -> String {
    let log = server.log();
    let line = log
        .wait_for(WATCHDOG, |l| {
            l.contains("event=signin") && l.contains(&format!("code={code} "))
        })
        .unwrap_or_else(|| panic!("no sign-in line for {code}:\n{}", log.lines().join("\n")));
    assert!(line.contains("outcome=denied"), "{line}");
    assert!(line.contains(&format!(" peer={peer}:")), "{line}");
    assert!(line.contains(" why=\""), "{line}");
    let count = log
        .lines()
        .iter()
        .filter(|l| l.contains("event=signin") && l.contains(&format!("code={code} ")))
        .count();
    assert_eq!(
        count,
        1,
        "logged more than once:\n{}",
        log.lines().join("\n")
    );
    line
}

/// An upgrade to `path` from `from` that must be refused with `status`.
fn refused_upgrade(server: &Server, path: &str, from: &str, status: u16) {
    match ws_from(&server.addr, path, from, &[]) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), status, "{path}"),
        other => panic!("{path} from {from} was not refused: {other:?}"),
    }
}

#[test]
fn refusals_at_the_upgrade_are_logged_with_reason_and_address() {
    let server = server();
    refused_upgrade(&server, "/ws?room=lobby", "127.0.0.2", 401);
    let line = refusal_line(&server, "token_required", "127.0.0.2");
    assert!(line.contains("via=upgrade"), "{line}");

    let forged = signed(
        json!({"sub": "alice", "exp": now() + 3600}),
        "another key, 32 bytes long or more",
    );
    refused_upgrade(&server, &format!("/ws?token={forged}"), "127.0.0.3", 401);
    let line = refusal_line(&server, "token_invalid", "127.0.0.3");
    assert!(line.contains("bad signature"), "{line}");

    let expired = signed(json!({"sub": "alice", "exp": now() - 60}), SECRET);
    refused_upgrade(&server, &format!("/ws?token={expired}"), "127.0.0.4", 401);
    let line = refusal_line(&server, "token_expired", "127.0.0.4");
    assert!(line.contains("via=upgrade"), "{line}");
    assert!(!line.contains(&expired), "the token is logged: {line}");
}

/// Opens a v1 connection from `from` and sends a join frame.
fn join_from(server: &Server, from: &str, frame: Value) -> Client {
    let mut ws = ws_from(
        &server.addr,
        "/ws",
        from,
        &["Sec-WebSocket-Protocol: wschat.v1"],
    )
    .expect("the upgrade itself needs no token");
    send_json(&mut ws, frame);
    ws
}

#[test]
fn refusals_of_a_join_frame_are_logged_without_names() {
    let server = server();
    let only_a = signed(
        json!({"sub": "alice", "exp": now() + 3600, "rooms": ["a"]}),
        SECRET,
    );
    let mut ws = join_from(
        &server,
        "127.0.0.5",
        json!({"type": "join", "room": "b", "name": "alice", "token": only_a}),
    );
    expect_error(&mut ws, "room_forbidden");
    let line = refusal_line(&server, "room_forbidden", "127.0.0.5");
    assert!(line.contains("via=join"), "{line}");

    let alice = signed(json!({"sub": "alice", "exp": now() + 3600}), SECRET);
    let mut ws = join_from(
        &server,
        "127.0.0.6",
        json!({"type": "join", "room": "a", "name": "mallory", "token": alice}),
    );
    expect_error(&mut ws, "name_mismatch");
    let line = refusal_line(&server, "name_mismatch", "127.0.0.6");
    assert!(line.contains("via=join"), "{line}");
    for name in ["alice", "mallory"] {
        assert!(!line.contains(name), "a name is logged at info: {line}");
    }

    let mut ws = join_from(
        &server,
        "127.0.0.7",
        json!({"type": "join", "room": "a", "name": "bob"}),
    );
    expect_error(&mut ws, "token_required");
    let line = refusal_line(&server, "token_required", "127.0.0.7");
    assert!(line.contains("via=join"), "{line}");
}

#[test]
fn a_token_not_valid_yet_is_logged_with_its_reason() {
    let server = server();
    let ahead = signed(
        json!({"sub": "alice", "exp": now() + 2 * 86_400, "nbf": now() + 86_400}),
        SECRET,
    );
    refused_upgrade(&server, &format!("/ws?token={ahead}"), "127.0.0.9", 401);
    let line = refusal_line(&server, "token_invalid", "127.0.0.9");
    assert!(line.contains("nbf"), "{line}");
    assert!(!line.contains(&ahead), "the token is logged: {line}");
}
