//! Proves the connection caps (`--max-connections`, `--max-connections-per-ip`):
//! the upgrade beyond the cap gets HTTP 503 with `Retry-After` and never
//! enters the room, the connections already open keep working, and once one
//! of them closes a new one is accepted.

mod support;

use support::*;

/// Fills the cap of 2 with alice and bob, checks that a third client is
/// refused, then frees bob's place and checks that it can be taken.
fn cap_of_two(options: &[&str]) {
    let mut room = Watched::start(options);
    let refused = upgrade_request(
        &room.server.addr,
        "/ws?room=r&name=mallory",
        &["Sec-WebSocket-Protocol: wschat.v1"],
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    let retry = refused.header("Retry-After").expect("a Retry-After header");
    let secs: u64 = retry.parse().expect("Retry-After in seconds");
    assert!(secs > 0, "Retry-After {secs}");
    // The refused client never joined: bob's message is alice's next event.
    send_json(
        &mut room.bob,
        serde_json::json!({"type": "message", "text": "still here"}),
    );
    let v = next_json(&mut room.alice);
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["text"], "still here");
    room.base.wait_back(&room.server);

    // bob leaves; once his thread is gone, his place is free again.
    room.bob.close(None).unwrap();
    wait_disconnected(&mut room.bob);
    assert_eq!(wait_leave(&mut room.alice), "bob");
    let one_left = room.base.threads - 1;
    room.server
        .wait_until("bob's thread to end", |s| s.threads() <= one_left);
    let mut carol = join_v1(&room.server, "r", "carol");
    assert_eq!(wait_join(&mut room.alice), "carol");
    assert_relayed(&mut carol, &mut room.alice, "carol took the place");
}

#[test]
fn max_connections_refuses_the_next_upgrade_with_503_until_one_closes() {
    cap_of_two(&["--max-connections", "2"]);
}

#[test]
fn max_connections_per_ip_refuses_the_next_upgrade_with_503_until_one_closes() {
    cap_of_two(&["--max-connections-per-ip", "2"]);
}

#[test]
fn echo_upgrade_over_the_cap_is_refused_too() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut first = connect(&server.url("/echo"));
    let refused = upgrade_request(&server.addr, "/echo", &[]);
    assert_eq!(refused.status, 503);
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    send_text(&mut first, "still echoing");
    assert_eq!(expect_text(&mut first), "still echoing");
}

#[test]
fn a_page_load_counts_against_the_cap() {
    let server = Server::start(&["--max-connections", "1"]);
    let _ws = connect(&server.url("/echo"));
    let page = http_fetch(&server.addr, "/");
    assert_eq!(page.status, 503, "{}", page.text());
}

#[test]
fn refused_connections_leave_nothing_behind() {
    let server = Server::start(&["--max-connections", "1"]);
    let mut first = connect(&server.url("/echo"));
    send_text(&mut first, "up");
    assert_eq!(expect_text(&mut first), "up");
    let base = Baseline::take(&server);
    for _ in 0..50 {
        assert_eq!(upgrade_request(&server.addr, "/echo", &[]).status, 503);
    }
    base.wait_back(&server);
    send_text(&mut first, "still echoing");
    assert_eq!(expect_text(&mut first), "still echoing");
}

#[test]
fn per_ip_cap_counts_each_address_apart() {
    let server = Server::start(&["--max-connections-per-ip", "1"]);
    let _first = connect_from(&server, "127.0.0.1").expect("first client from .1");
    match connect_from(&server, "127.0.0.1") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!(
            "second client from .1 should get 503, got {:?}",
            other.map(|_| ())
        ),
    }
    // Another address has a cap of its own.
    let mut other = connect_from(&server, "127.0.0.2").expect("client from .2");
    other.close(None).unwrap();
    wait_disconnected(&mut other);
}
