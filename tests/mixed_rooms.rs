//! Proves rooms shared by raw and v1 clients: raw text becomes a v1 `message`
//! from the raw client's name, v1 text reaches raw clients as `name: text`, files
//! cross in both directions in each side's format, and raw clients are members.

mod support;

use serde_json::json;
use support::*;

fn is_guest_name(name: &str) -> bool {
    name.strip_prefix("guest-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn raw_text_reaches_v1_as_message_from_query_name() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, name) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    assert_eq!(name, "bob");
    send_text(&mut bob, "hello from raw");
    let v = expect_type(&mut alice, "message");
    assert_eq!(v["id"], 1, "{v}");
    assert_eq!(v["room"], "lobby", "{v}");
    assert_eq!(v["from"], "bob", "{v}");
    assert_eq!(v["text"], "hello from raw", "{v}");
    assert_ts(&v);
}

#[test]
fn raw_client_without_name_is_a_distinct_guest() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut g1, n1) = connect_raw_synced(&server, &mut alice, "/ws");
    let (_g2, n2) = connect_raw_synced(&server, &mut alice, "/ws");
    assert!(is_guest_name(&n1), "raw default name {n1:?}");
    assert!(is_guest_name(&n2), "raw default name {n2:?}");
    assert_ne!(n1, n2);
    send_text(&mut g1, "anonymous");
    let v = expect_type(&mut alice, "message");
    assert_eq!(v["from"], n1.as_str(), "{v}");
    assert_eq!(v["text"], "anonymous", "{v}");
}

#[test]
fn v1_message_reaches_raw_as_name_colon_text_and_nothing_else() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "den", "w");
    let (mut bob, _) = connect_raw_synced(&server, &mut watcher, "/ws?room=den&name=bob");
    // alice's join, typing and a v1 error must not reach the raw client.
    let mut alice = join_v1(&server, "den", "alice");
    send_json(&mut alice, json!({"type": "typing"}));
    send_text(&mut alice, "not json");
    expect_error(&mut alice, "bad_json");
    send_json(
        &mut alice,
        json!({"type": "message", "text": "hi there: ✓"}),
    );
    assert_eq!(expect_text(&mut bob), "alice: hi there: ✓");
    // alice's leave must not reach it either.
    drop(alice);
    assert_eq!(wait_leave(&mut watcher), "alice");
    send_json(&mut watcher, json!({"type": "message", "text": "after"}));
    assert_eq!(expect_text(&mut bob), "w: after");
}

#[test]
fn raw_text_reaches_other_raw_unchanged_in_mixed_room() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    let (mut carol, _) = connect_raw_synced(&server, &mut alice, "/ws?name=carol");
    send_text(&mut bob, "exact bytes");
    assert_eq!(expect_text(&mut carol), "exact bytes");
    assert_eq!(expect_type(&mut alice, "message")["text"], "exact bytes");
    // bob got nothing back: his next frame is carol's text.
    send_text(&mut carol, "reply");
    assert_eq!(expect_text(&mut bob), "reply");
}

#[test]
fn raw_file_reaches_v1_as_announcement_then_bytes() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 31 % 256) as u8).collect();
    send_binary(&mut bob, file_frame("cat.png", &bytes));
    let f = expect_type(&mut alice, "file");
    assert_eq!(f["from"], "bob", "{f}");
    assert_eq!(f["room"], "lobby", "{f}");
    assert_eq!(f["name"], "cat.png", "{f}");
    assert_eq!(f["size"], 3000, "{f}");
    assert_eq!(f["mime"], "image/png", "{f}");
    assert_eq!(f["id"], 1, "{f}");
    assert_ts(&f);
    assert_eq!(expect_binary(&mut alice), bytes);
}

#[test]
fn raw_file_with_unknown_extension_is_octet_stream() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    send_binary(&mut bob, file_frame("data.zzqx", b"xyz"));
    let f = expect_type(&mut alice, "file");
    assert_eq!(f["mime"], "application/octet-stream", "{f}");
    assert_eq!(f["size"], 3, "{f}");
    assert_eq!(expect_binary(&mut alice), b"xyz");
}

#[test]
fn v1_file_reaches_raw_in_tutorial_format() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "lobby", "w");
    let (mut bob, _) = connect_raw_synced(&server, &mut watcher, "/ws?name=bob");
    let mut alice = join_v1(&server, "lobby", "alice");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i % 199) as u8).collect();
    send_json(
        &mut alice,
        json!({"type": "file", "name": "notes é.txt", "size": 4096, "mime": "text/plain"}),
    );
    send_binary(&mut alice, bytes.clone());
    assert_eq!(expect_binary(&mut bob), file_frame("notes é.txt", &bytes));
}

#[test]
fn raw_clients_appear_in_presence_in_join_order() {
    let server = Server::start(&[]);
    let mut watcher = join_v1(&server, "lobby", "w");
    let _bob = connect_raw_synced(&server, &mut watcher, "/ws?name=bob");
    let (_alice, _, presence) = join_v1_path(&server, "/ws?name=alice");
    assert_eq!(presence["users"], json!(["w", "bob", "alice"]));
}

#[test]
fn raw_close_is_a_leave_for_v1() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    bob.close(None).unwrap();
    let leave = expect_type(&mut alice, "leave");
    assert_eq!(leave["name"], "bob");
    assert_eq!(leave["room"], "lobby");
}

#[test]
fn raw_text_is_kept_in_history() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let (mut bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    send_text(&mut bob, "remember me");
    assert_eq!(expect_type(&mut alice, "message")["id"], 1);
    let (mut carol, welcome, _) = join_v1_path(&server, "/ws?name=carol");
    assert_eq!(welcome["last_id"], 1);
    let v = expect_type(&mut carol, "message");
    assert_eq!(v["from"], "bob", "{v}");
    assert_eq!(v["text"], "remember me", "{v}");
    assert_eq!(v["replay"], true, "{v}");
}

#[test]
fn raw_name_cannot_take_a_v1_name_and_vice_versa() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "lobby", "alice");
    let mut dup = connect(&server.url("/ws?name=alice"));
    let (code, reason) = close_frame(&mut dup).expect("close frame with a code");
    assert_eq!(code, 1008);
    assert!(reason.contains("name taken"), "reason {reason:?}");
    let (_bob, _) = connect_raw_synced(&server, &mut alice, "/ws?name=bob");
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(&mut ws, json!({"type": "join", "name": "bob"}));
    expect_error(&mut ws, "name_taken");
}
