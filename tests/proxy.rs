//! Proves wschat behind a real nginx (Debian's, configured as docs/DEPLOY.md
//! shows), with clients at distinct loopback addresses: with
//! `--trusted-proxy` the per-address cap and the connect rate see each
//! client's own address, so one address meeting a limit costs no other
//! anything; the origin check uses the host and scheme nginx received;
//! raw and v1 clients chat through it under the default options, a burst
//! arrives whole and in order while others carry on, and a crowd connecting
//! at once is let in. A forged `X-Forwarded-For` or `Forwarded`, sent
//! straight to wschat or through nginx, gains nothing; and without
//! `--trusted-proxy` everyone behind nginx is one address.

mod support;

use std::sync::{Arc, Barrier};

use support::nginx::{Nginx, refused_from, ws_from};
use support::*;
use tungstenite::client::IntoClientRequest;

const V1: &str = "Sec-WebSocket-Protocol: wschat.v1";

/// Joins `room` as `name` in v1 mode through `addr` (nginx, or wschat
/// itself) from the local address `from`; returns after `welcome` and
/// `presence`.
fn join_from(addr: &str, room: &str, name: &str, from: &str) -> Client {
    let path = format!("/ws?room={}&name={}", pct(room), pct(name));
    let mut ws = ws_from(addr, &path, from, &[V1])
        .unwrap_or_else(|e| panic!("{name} from {from} could not join through {addr}: {e}"));
    let welcome = expect_type(&mut ws, "welcome");
    assert_eq!(welcome["name"], name, "{welcome}");
    expect_type(&mut ws, "presence");
    ws
}

/// Reads events until the message `text` from `from` arrives.
fn wait_message(ws: &mut Client, from: &str, text: &str) {
    loop {
        let v = next_json(ws);
        assert_ne!(v["type"], "error", "unexpected error: {v}");
        if v["type"] == "message" && v["text"] == text {
            assert_eq!(v["from"], from, "{v}");
            return;
        }
    }
}

/// Checks a refusal's status and that it says when to come back.
fn assert_refused(response: &HttpResponse, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let retry = response
        .header("Retry-After")
        .unwrap_or_else(|| panic!("{what}: no Retry-After in {response:?}"));
    let secs: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry:?} is not seconds"));
    assert!(secs > 0, "{what}: Retry-After {secs}");
}

/// Two clients at 127.0.0.2 fill that address's cap of 2; a third from
/// there gets wschat's 503 through nginx and never joins, while a client at
/// 127.0.0.3 comes in and chats with both.
#[test]
fn per_address_cap_sees_clients_behind_nginx_apart() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--max-connections-per-ip",
        "2",
    ]);
    let nginx = Nginx::in_front_of(&server);
    let mut alice = join_from(&nginx.addr, "r", "alice", "127.0.0.2");
    let mut bob = join_from(&nginx.addr, "r", "bob", "127.0.0.2");
    assert_eq!(wait_join(&mut alice), "bob");

    let third = refused_from(&nginx.addr, "/ws?room=r&name=mallory", "127.0.0.2", &[V1]);
    assert_refused(&third, 503, "a third client from 127.0.0.2");

    let mut carol = join_from(&nginx.addr, "r", "carol", "127.0.0.3");
    // mallory never joined: the next join either of them sees is carol's.
    assert_eq!(wait_join(&mut alice), "carol");
    assert_eq!(wait_join(&mut bob), "carol");
    send_json(
        &mut carol,
        serde_json::json!({"type": "message", "text": "hello from 127.0.0.3"}),
    );
    wait_message(&mut alice, "carol", "hello from 127.0.0.3");
    wait_message(&mut bob, "carol", "hello from 127.0.0.3");
    assert_relayed(&mut alice, &mut carol, "hello from 127.0.0.2");
}

/// With a connect rate of 1 per second and a burst of 3, the fourth quick
/// connection from 127.0.0.2 gets 429 with `Retry-After`; the three it
/// already has keep working, and 127.0.0.3 connects at once.
#[test]
fn connect_rate_is_counted_per_client_address_behind_nginx() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--connect-rate",
        "1",
        "--connect-burst",
        "3",
    ]);
    let nginx = Nginx::in_front_of(&server);
    let started = std::time::Instant::now();
    let mut first = join_from(&nginx.addr, "r", "a1", "127.0.0.2");
    let _second = join_from(&nginx.addr, "r", "a2", "127.0.0.2");
    let _third = join_from(&nginx.addr, "r", "a3", "127.0.0.2");
    let fourth = refused_from(&nginx.addr, "/ws?room=r&name=a4", "127.0.0.2", &[V1]);
    let took = started.elapsed();
    assert_refused(
        &fourth,
        429,
        &format!("the fourth connection from 127.0.0.2, {took:?} after the first"),
    );

    let mut other = join_from(&nginx.addr, "r", "b", "127.0.0.3");
    loop {
        let name = wait_join(&mut first);
        assert_ne!(name, "a4", "the refused client joined");
        if name == "b" {
            break;
        }
    }
    assert_relayed(&mut other, &mut first, "another address is not held back");
    assert_relayed(
        &mut first,
        &mut other,
        "and the refused one's open connections work",
    );
}

/// A client that reaches wschat directly from 127.0.0.2, not through a
/// trusted proxy, and claims another address in `X-Forwarded-For` or
/// `Forwarded` is still 127.0.0.2: over its cap of 1, it gets 503.
fn forged_headers_sent_straight_gain_nothing(options: &[&str]) {
    let mut args = vec!["--max-connections-per-ip", "1"];
    args.extend_from_slice(options);
    let server = Server::start(&args);
    let _first = ws_from(&server.addr, "/ws?room=r", "127.0.0.2", &[]).expect("first from .2");
    for forged in [
        "X-Forwarded-For: 10.9.9.9",
        "X-Forwarded-For: 10.9.9.9, 10.8.8.8",
        "Forwarded: for=10.9.9.9",
        "X-Forwarded-For: 127.0.0.3",
    ] {
        let refused = refused_from(&server.addr, "/ws?room=r", "127.0.0.2", &[forged]);
        assert_refused(
            &refused,
            503,
            &format!("a second client from .2 sending {forged}"),
        );
    }
    // The cap is 127.0.0.2's own: another address still gets in.
    let mut other = ws_from(&server.addr, "/echo", "127.0.0.3", &[]).expect("a client from .3");
    send_text(&mut other, "still open");
    assert_eq!(expect_text(&mut other), "still open");
}

#[test]
fn forged_forwarding_headers_gain_nothing_without_a_trusted_proxy() {
    forged_headers_sent_straight_gain_nothing(&[]);
}

#[test]
fn forged_forwarding_headers_gain_nothing_from_outside_the_trusted_range() {
    forged_headers_sent_straight_gain_nothing(&["--trusted-proxy", "127.0.0.1"]);
}

/// Through nginx, whatever a client writes into `X-Forwarded-For` or
/// `Forwarded` itself stays to the left of the address nginx appends, so
/// the client is still counted as 127.0.0.2.
#[test]
fn forged_forwarding_headers_through_nginx_gain_nothing() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--max-connections-per-ip",
        "1",
    ]);
    let nginx = Nginx::in_front_of(&server);
    let _first = ws_from(&nginx.addr, "/ws?room=r", "127.0.0.2", &[]).expect("first from .2");
    for forged in [
        "X-Forwarded-For: 10.9.9.9",
        "X-Forwarded-For: 127.0.0.1",
        "Forwarded: for=10.9.9.9",
    ] {
        let refused = refused_from(&nginx.addr, "/ws?room=r", "127.0.0.2", &[forged]);
        assert_refused(
            &refused,
            503,
            &format!("a second client from .2 sending {forged}"),
        );
    }
    // docs/DEPLOY.md keeps /echo off the public side: a v1 join proves the
    // connection through nginx instead.
    let mut other = ws_from(
        &nginx.addr,
        "/ws?room=r",
        "127.0.0.3",
        &["Sec-WebSocket-Protocol: wschat.v1"],
    )
    .expect("a client from .3");
    send_json(
        &mut other,
        serde_json::json!({"type": "join", "room": "r", "name": "other"}),
    );
    expect_type(&mut other, "welcome");
}

/// A browser's upgrade through nginx carries the origin of the page it
/// loaded from nginx: that is accepted. A foreign site, the same address
/// over another scheme, and wschat's own address behind nginx are not.
#[test]
fn origin_is_compared_with_the_address_nginx_received() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let nginx = Nginx::in_front_of(&server);
    let page_origin = format!("Origin: http://{}", nginx.addr);
    let mut alice = ws_from(
        &nginx.addr,
        "/ws?room=r&name=alice",
        "127.0.0.2",
        &[&page_origin, V1],
    )
    .expect("the page's own origin through nginx");
    expect_type(&mut alice, "welcome");
    for foreign in [
        "http://evil.example".to_string(),
        format!("https://{}", nginx.addr),
        format!("http://{}", server.addr),
    ] {
        let refused = refused_from(
            &nginx.addr,
            "/ws?room=r&name=mallory",
            "127.0.0.2",
            &[&format!("Origin: {foreign}"), V1],
        );
        assert_eq!(
            refused.status,
            403,
            "Origin {foreign} through nginx at {}: {}",
            nginx.addr,
            refused.text()
        );
    }
    expect_type(&mut alice, "presence");
    send_json(
        &mut alice,
        serde_json::json!({"type": "message", "text": "alone"}),
    );
    // No one else joined: alice's own message is her next event.
    let v = expect_type(&mut alice, "message");
    assert_eq!(v["text"], "alone", "{v}");
}

/// Under the default options (plus `--trusted-proxy`), a raw client (the
/// tutorial's protocol) and a v1 client talk through nginx: text both
/// ways, and a file from the raw client with its bytes intact.
#[test]
fn raw_and_v1_clients_chat_through_nginx_under_the_defaults() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let nginx = Nginx::in_front_of(&server);
    let mut alice = join_from(&nginx.addr, "lobby", "alice", "127.0.0.2");
    let mut bob = ws_from(&nginx.addr, "/ws?name=bob", "127.0.0.3", &[]).expect("raw bob");
    assert_eq!(wait_join(&mut alice), "bob");

    send_text(&mut bob, "hello from raw");
    wait_message(&mut alice, "bob", "hello from raw");
    send_json(
        &mut alice,
        serde_json::json!({"type": "message", "text": "hi bob ✓"}),
    );
    assert_eq!(expect_text(&mut bob), "alice: hi bob ✓");

    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 256) as u8).collect();
    send_binary(&mut bob, file_frame("notes.bin", &bytes));
    let file = loop {
        let v = next_json(&mut alice);
        if v["type"] == "file" {
            break v;
        }
        assert_eq!(v["type"], "message", "{v}");
    };
    assert_eq!(file["from"], "bob", "{file}");
    assert_eq!(file["name"], "notes.bin", "{file}");
    assert_eq!(file["size"], bytes.len(), "{file}");
    assert_eq!(expect_binary(&mut alice), bytes);
}

/// A raw client at 127.0.0.2 sends a burst of 300 messages through nginx
/// under the default options: all 300 reach a v1 observer, in order, none
/// lost. A client at 127.0.0.3 who speaks after the burst was sent is
/// heard before the burst has been delivered: the burst holds back only
/// its sender.
#[test]
fn burst_through_nginx_arrives_whole_and_in_order_without_holding_up_others() {
    const BURST: usize = 300;
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let nginx = Nginx::in_front_of(&server);
    let mut observer = join_from(&nginx.addr, "lobby", "observer", "127.0.0.4");
    let mut flooder =
        ws_from(&nginx.addr, "/ws?name=flooder", "127.0.0.2", &[]).expect("raw flooder");
    assert_eq!(wait_join(&mut observer), "flooder");
    let mut bystander = join_from(&nginx.addr, "lobby", "bystander", "127.0.0.3");
    assert_eq!(wait_join(&mut observer), "bystander");

    for i in 0..BURST {
        send_text(&mut flooder, &format!("burst {i}"));
    }
    send_json(
        &mut bystander,
        serde_json::json!({"type": "message", "text": "am I held up?"}),
    );

    let mut next = 0;
    let mut bystander_heard_after = None;
    while next < BURST || bystander_heard_after.is_none() {
        let v = next_json(&mut observer);
        assert_eq!(v["type"], "message", "{v}");
        match v["from"].as_str() {
            Some("flooder") => {
                assert_eq!(v["text"], format!("burst {next}"), "lost or reordered: {v}");
                next += 1;
            }
            Some("bystander") => bystander_heard_after = Some(next),
            _ => panic!("unexpected {v}"),
        }
    }
    let heard_after = bystander_heard_after.unwrap();
    assert!(
        heard_after < BURST,
        "the bystander was heard only after the whole burst ({heard_after} of {BURST})"
    );
}

/// Forty clients, each at an address of its own, connect through nginx at
/// the same moment (as pages do when they reconnect together): all are let
/// in, though every request head reaches wschat from nginx's one address.
#[test]
fn a_crowd_connecting_at_once_through_nginx_is_let_in() {
    const CROWD: usize = 40;
    let server = Server::start(&["--trusted-proxy", "127.0.0.1"]);
    let nginx = Nginx::in_front_of(&server);
    let addr = Arc::new(nginx.addr.clone());
    let start = Arc::new(Barrier::new(CROWD));
    let clients: Vec<_> = (0..CROWD)
        .map(|i| {
            let (addr, start) = (Arc::clone(&addr), Arc::clone(&start));
            std::thread::spawn(move || {
                let from = format!("127.0.0.{}", 10 + i);
                let socket = support::nginx::tcp_from(&addr, &from);
                start.wait();
                // /ws, not /echo, which docs/DEPLOY.md keeps off nginx.
                let url = format!("ws://{addr}/ws?room=crowd");
                let mut request = url.as_str().into_client_request().unwrap();
                request.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    tungstenite::http::HeaderValue::from_static("wschat.v1"),
                );
                match tungstenite::client(
                    request,
                    tungstenite::stream::MaybeTlsStream::Plain(socket),
                ) {
                    Ok((mut ws, _)) => {
                        let join = serde_json::json!({"type": "join", "room": "crowd", "name": format!("c{i}")});
                        send_json(&mut ws, join);
                        expect_type(&mut ws, "welcome");
                        Ok(ws)
                    }
                    Err(tungstenite::HandshakeError::Failure(e)) => Err(format!("{from}: {e}")),
                    Err(tungstenite::HandshakeError::Interrupted(_)) => unreachable!(),
                }
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        refused.is_empty(),
        "{} of {CROWD} refused: {refused:?}",
        refused.len()
    );
}

/// Without `--trusted-proxy`, wschat believes no forwarding header: every
/// client behind nginx has nginx's address and shares its cap, which is
/// why docs/DEPLOY.md asks for the option.
#[test]
fn without_trusted_proxy_everyone_behind_nginx_is_one_address() {
    let server = Server::start(&["--max-connections-per-ip", "2"]);
    let nginx = Nginx::in_front_of(&server);
    let mut alice = join_from(&nginx.addr, "r", "alice", "127.0.0.2");
    let _bob = join_from(&nginx.addr, "r", "bob", "127.0.0.3");
    assert_eq!(wait_join(&mut alice), "bob");
    let refused = refused_from(&nginx.addr, "/ws?room=r&name=carol", "127.0.0.4", &[V1]);
    assert_refused(&refused, 503, "a third client behind nginx");
    // The same address going straight to wschat is a client of its own.
    let mut direct = join_from(&server.addr, "r", "dave", "127.0.0.4");
    assert_eq!(wait_join(&mut alice), "dave");
    assert_relayed(&mut direct, &mut alice, "straight in");
}
