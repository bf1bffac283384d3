//! Proves v1 history replay: `--history N` keeps exactly the last N events, `since`
//! replays exactly what came after it, lost events are reported by `gap` with exact
//! numbers, replays carry `replay: true`, and replayed files have no binary frame.

mod support;

use serde_json::{Value, json};
use support::*;

/// Posts `n` messages `m1..mn` from a fresh v1 client in `room` and returns it.
fn post(server: &Server, room: &str, n: u64) -> Client {
    let mut alice = join_v1(server, room, "alice");
    for i in 1..=n {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("m{i}")}),
        );
        let v = expect_type(&mut alice, "message");
        assert_eq!(v["id"], i, "{v}");
    }
    alice
}

fn expect_replay(ws: &mut Client, id: u64) -> Value {
    let v = expect_type(ws, "message");
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["text"], format!("m{id}"), "{v}");
    assert_eq!(v["from"], "alice", "{v}");
    assert_eq!(v["replay"], true, "{v}");
    assert_ts(&v);
    v
}

/// After a replay, the next frame must be live: alice posts once more.
fn expect_live_next(alice: &mut Client, ws: &mut Client, id: u64) {
    send_json(alice, json!({"type": "message", "text": "live"}));
    let v = expect_type(ws, "message");
    assert_eq!(v["text"], "live", "expected the live message next, got {v}");
    assert_eq!(v["id"], id, "{v}");
    assert_ne!(v["replay"], true, "live event marked as replay: {v}");
}

fn join_bob(server: &Server, query: &str) -> (Client, Value) {
    let (bob, welcome, presence) = join_v1_path(server, &format!("/ws?room=den&name=bob{query}"));
    assert_eq!(presence["users"], json!(["alice", "bob"]));
    (bob, welcome)
}

#[test]
fn history_keeps_exactly_the_last_n() {
    let server = Server::start(&["--history", "5"]);
    let mut alice = post(&server, "den", 8);
    let (mut bob, welcome) = join_bob(&server, "");
    assert_eq!(welcome["last_id"], 8);
    for id in 4..=8 {
        expect_replay(&mut bob, id);
    }
    assert_eq!(expect_type(&mut alice, "join")["name"], "bob");
    expect_live_next(&mut alice, &mut bob, 9);
}

#[test]
fn whole_history_replayed_when_it_fits() {
    let server = Server::start(&["--history", "5"]);
    let mut alice = post(&server, "den", 3);
    let (mut bob, welcome) = join_bob(&server, "");
    assert_eq!(welcome["last_id"], 3);
    for id in 1..=3 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 4);
}

#[test]
fn no_gap_without_since_even_when_history_was_trimmed() {
    let server = Server::start(&["--history", "5"]);
    let mut alice = post(&server, "den", 12);
    let (mut bob, _) = join_bob(&server, "");
    // First frame after presence is the oldest kept event, not a gap.
    for id in 8..=12 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 13);
}

#[test]
fn since_in_query_replays_exactly_later_events() {
    let server = Server::start(&["--history", "10"]);
    let mut alice = post(&server, "den", 6);
    let (mut bob, welcome) = join_bob(&server, "&since=3");
    assert_eq!(welcome["last_id"], 6);
    for id in 4..=6 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 7);
}

#[test]
fn since_in_join_frame_replays_exactly_later_events() {
    let server = Server::start(&["--history", "10"]);
    let mut alice = post(&server, "den", 6);
    let mut bob = connect_v1(&server.url("/ws"));
    send_json(
        &mut bob,
        json!({"type": "join", "room": "den", "name": "bob", "since": 4}),
    );
    assert_eq!(expect_type(&mut bob, "welcome")["last_id"], 6);
    expect_type(&mut bob, "presence");
    for id in 5..=6 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 7);
}

#[test]
fn since_equal_to_last_id_replays_nothing() {
    let server = Server::start(&["--history", "10"]);
    let mut alice = post(&server, "den", 4);
    let (mut bob, _) = join_bob(&server, "&since=4");
    expect_live_next(&mut alice, &mut bob, 5);
}

#[test]
fn since_beyond_last_id_is_another_history_replayed_whole() {
    // Ids the server never gave: the client knew another history, so it is
    // told to start over and gets everything kept.
    let server = Server::start(&["--history", "10"]);
    let mut alice = post(&server, "den", 4);
    let (mut bob, welcome) = join_bob(&server, "&since=100");
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "epoch", "{welcome}");
    for id in 1..=4 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 5);
}

#[test]
fn since_zero_replays_everything_kept() {
    let server = Server::start(&["--history", "10"]);
    let mut alice = post(&server, "den", 3);
    let (mut bob, _) = join_bob(&server, "&since=0");
    for id in 1..=3 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 4);
}

#[test]
fn lost_events_yield_gap_with_exact_numbers() {
    // Ids 1..12 posted, 8..12 kept: since=3 lost 4..7.
    let server = Server::start(&["--history", "5"]);
    let mut alice = post(&server, "den", 12);
    let (mut bob, _) = join_bob(&server, "&since=3");
    let gap = expect_type(&mut bob, "gap");
    assert_eq!(gap["room"], "den", "{gap}");
    assert_eq!(gap["since"], 3, "{gap}");
    assert_eq!(gap["first"], 8, "{gap}");
    for id in 8..=12 {
        expect_replay(&mut bob, id);
    }
    expect_live_next(&mut alice, &mut bob, 13);
}

#[test]
fn gap_of_one_event_is_reported() {
    // 8..12 kept: since=6 lost exactly event 7.
    let server = Server::start(&["--history", "5"]);
    let _alice = post(&server, "den", 12);
    let (mut bob, _) = join_bob(&server, "&since=6");
    let gap = expect_type(&mut bob, "gap");
    assert_eq!(gap["since"], 6, "{gap}");
    assert_eq!(gap["first"], 8, "{gap}");
    expect_replay(&mut bob, 8);
}

#[test]
fn no_gap_when_since_is_just_before_oldest_kept() {
    // 8..12 kept: since=7 lost nothing.
    let server = Server::start(&["--history", "5"]);
    let _alice = post(&server, "den", 12);
    let (mut bob, _) = join_bob(&server, "&since=7");
    for id in 8..=12 {
        expect_replay(&mut bob, id);
    }
}

#[test]
fn since_zero_after_trim_yields_gap_from_zero() {
    let server = Server::start(&["--history", "5"]);
    let _alice = post(&server, "den", 12);
    let (mut bob, _) = join_bob(&server, "&since=0");
    let gap = expect_type(&mut bob, "gap");
    assert_eq!(gap["since"], 0, "{gap}");
    assert_eq!(gap["first"], 8, "{gap}");
    expect_replay(&mut bob, 8);
}

#[test]
fn replayed_file_has_no_binary_frame() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "den", "alice");
    send_json(
        &mut alice,
        json!({"type": "file", "name": "cat.png", "size": 4, "mime": "image/png"}),
    );
    send_binary(&mut alice, vec![1, 2, 3, 4]);
    let live = expect_type(&mut alice, "file");
    let (mut bob, welcome) = join_bob(&server, "");
    assert_eq!(welcome["last_id"], 1);
    let f = expect_type(&mut bob, "file");
    assert_eq!(f["replay"], true, "{f}");
    for key in ["id", "room", "from", "name", "size", "mime", "ts"] {
        assert_eq!(f[key], live[key], "replayed file differs in {key}: {f}");
    }
    // The next frame is live text, not the file's bytes.
    send_json(&mut alice, json!({"type": "message", "text": "live"}));
    let v = expect_type(&mut bob, "message");
    assert_eq!(v["text"], "live");
    assert_eq!(v["id"], 2);
}

#[test]
fn history_is_per_room() {
    let server = Server::start(&[]);
    let _alice = post(&server, "den", 3);
    let mut carol = join_v1(&server, "attic", "carol");
    send_json(&mut carol, json!({"type": "message", "text": "attic only"}));
    assert_eq!(expect_type(&mut carol, "message")["id"], 1);
    let (mut dave, welcome, _) = join_v1_path(&server, "/ws?room=attic&name=dave");
    assert_eq!(welcome["last_id"], 1);
    let v = expect_type(&mut dave, "message");
    assert_eq!(v["text"], "attic only");
    assert_eq!(v["replay"], true);
    // Nothing from den follows: the next frame is carol's live message.
    send_json(&mut carol, json!({"type": "message", "text": "live"}));
    assert_eq!(expect_type(&mut dave, "message")["text"], "live");
}

#[test]
fn history_survives_everyone_leaving() {
    let server = Server::start(&[]);
    let mut alice = post(&server, "den", 2);
    alice.close(None).unwrap();
    wait_disconnected(&mut alice);
    let (mut bob, welcome, _) = join_v1_path(&server, "/ws?room=den&name=bob");
    assert_eq!(welcome["last_id"], 2);
    expect_replay(&mut bob, 1);
    expect_replay(&mut bob, 2);
}
