//! Proves the Origin check on WebSocket upgrades: no Origin and the server's
//! own origin are accepted, any other origin gets 403 (and never enters the
//! room) unless `--allow-origin` lists it or is `*`.

mod support;

use support::*;

/// Opens `/echo` with `Origin: origin` and checks that it works.
fn accepted(server: &Server, origin: Option<&str>) {
    let header = origin.map(|o| format!("Origin: {o}"));
    let headers: Vec<&str> = header.iter().map(String::as_str).collect();
    let (mut ws, response) = connect_manual(server, "/echo", &headers);
    assert_eq!(response.status, 101);
    send_text(&mut ws, "hello");
    assert_eq!(expect_text(&mut ws), "hello");
}

/// Tries to join room `r` as `mallory` from `origin`; checks the 403.
fn refused(server: &Server, origin: &str) {
    let response = upgrade_request(
        &server.addr,
        "/ws?room=r&name=mallory",
        &[&format!("Origin: {origin}")],
    );
    assert_eq!(response.status, 403, "origin {origin}: {}", response.text());
}

#[test]
fn no_origin_is_accepted() {
    let server = Server::start(&[]);
    accepted(&server, None);
}

#[test]
fn same_origin_is_accepted() {
    let server = Server::start(&[]);
    accepted(&server, Some(&format!("http://{}", server.addr)));
}

#[test]
fn other_origin_is_refused_with_403_and_never_joins() {
    let mut room = Watched::start(&[]);
    refused(&room.server, "http://evil.example");
    // mallory never joined: bob's message is alice's next event.
    send_json(
        &mut room.bob,
        serde_json::json!({"type": "message", "text": "still here"}),
    );
    let v = next_json(&mut room.alice);
    assert_eq!(v["type"], "message", "{v}");
    room.base.wait_back(&room.server);
}

#[test]
fn same_host_on_another_port_is_refused() {
    let server = Server::start(&[]);
    refused(&server, "http://127.0.0.1:1");
}

#[test]
fn echo_from_another_origin_is_refused() {
    let server = Server::start(&[]);
    let response = upgrade_request(&server.addr, "/echo", &["Origin: http://evil.example"]);
    assert_eq!(response.status, 403);
}

#[test]
fn allowed_origin_is_accepted_and_others_still_refused() {
    let server = Server::start(&["--allow-origin", "http://good.example"]);
    accepted(&server, Some("http://good.example"));
    accepted(&server, Some(&format!("http://{}", server.addr)));
    refused(&server, "http://evil.example");
    refused(&server, "http://good.example.evil.example");
}

#[test]
fn several_allowed_origins() {
    let server = Server::start(&[
        "--allow-origin",
        "http://good.example",
        "--allow-origin",
        "https://also.example",
    ]);
    accepted(&server, Some("http://good.example"));
    accepted(&server, Some("https://also.example"));
    refused(&server, "http://also.example");
}

#[test]
fn star_allows_every_origin() {
    let server = Server::start(&["--allow-origin", "*"]);
    accepted(&server, Some("http://evil.example"));
    accepted(&server, Some("null"));
}
