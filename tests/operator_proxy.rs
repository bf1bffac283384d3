//! Behind a real nginx configured as docs/DEPLOY.md says: `/metrics` and
//! `/echo` are refused from outside, however the path is spelled, while
//! wschat's own address still serves `/metrics` to Prometheus and the admin
//! API serves the same text with the token; `/healthz` and the chat pass.
//! And the log names a client behind the proxy by its own address, without
//! the port nginx connected from.

mod support;

use std::io::Write;

use support::nginx::{Nginx, refused_from, tcp_from, ws_from};
use support::*;

const ADMIN: &str = "the admin token of the proxy tests";

/// `GET path` through `addr` from the local address `from`.
fn get_from(addr: &str, path: &str, from: &str, headers: &str) -> HttpResponse {
    let mut s = tcp_from(addr, from);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    read_http_response(&mut s)
}

fn server() -> Server {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wschat"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
        .args(["--trusted-proxy", "127.0.0.1"])
        .env("WSCHAT_ADMIN_TOKEN", ADMIN)
        .stderr(std::process::Stdio::piped());
    Server::spawn(command)
}

#[test]
fn the_documented_nginx_keeps_metrics_and_echo_inside() {
    let server = server();
    let nginx = Nginx::in_front_of(&server);
    for path in [
        "/metrics",
        "/metrics?x=1",
        "/%6Detrics",
        "//metrics",
        "/./metrics",
    ] {
        let r = get_from(&nginx.addr, path, "127.0.0.2", "");
        assert_eq!(r.status, 403, "{path} through nginx: {}", r.text());
        assert!(!r.text().contains("wschat_"), "{path}: {}", r.text());
    }
    let r = refused_from(&nginx.addr, "/echo", "127.0.0.2", &[]);
    assert_eq!(r.status, 403, "/echo through nginx");

    // Inside: Prometheus scrapes wschat itself.
    let direct = http_fetch(&server.addr, "/metrics");
    assert_eq!(direct.status, 200);
    assert!(
        direct.text().contains("wschat_connections"),
        "{}",
        direct.text()
    );
    // The admin view's copy, with the token, through nginx.
    let auth = format!("Authorization: Bearer {ADMIN}\r\n");
    let api = get_from(&nginx.addr, "/api/metrics", "127.0.0.2", &auth);
    assert_eq!(api.status, 200, "{}", api.text());
    assert!(api.text().contains("wschat_connections"), "{}", api.text());
    assert_eq!(
        get_from(&nginx.addr, "/api/metrics", "127.0.0.2", "").status,
        401
    );
    // What the public side needs still passes.
    assert_eq!(
        get_from(&nginx.addr, "/healthz", "127.0.0.2", "").status,
        200
    );
    assert_eq!(get_from(&nginx.addr, "/", "127.0.0.2", "").status, 200);
    ws_from(&nginx.addr, "/ws?room=r", "127.0.0.2", &[]).expect("the chat through nginx");
}

#[test]
fn a_client_behind_nginx_is_logged_without_nginx_port() {
    let server = server();
    let nginx = Nginx::in_front_of(&server);
    let mut ws = ws_from(&nginx.addr, "/ws?room=logged", "127.0.0.9", &[]).expect("connect");
    let log = server.log();
    let connect = log
        .wait_for(WATCHDOG, |l| l.contains("event=connect"))
        .expect("a connect line");
    assert!(connect.contains(" peer=127.0.0.9 "), "{connect}");
    ws.close(None).unwrap();
    wait_disconnected(&mut ws);
    let disconnect = log
        .wait_for(WATCHDOG, |l| l.contains("event=disconnect"))
        .expect("a disconnect line");
    assert!(disconnect.contains(" peer=127.0.0.9 "), "{disconnect}");

    // Straight to wschat, the client's own port is its own.
    let direct = ws_from(&server.addr, "/ws?room=logged", "127.0.0.8", &[]).expect("connect");
    let tungstenite::stream::MaybeTlsStream::Plain(tcp) = direct.get_ref() else {
        unreachable!("plain TCP")
    };
    let port = tcp.local_addr().unwrap().port();
    log.wait_for(WATCHDOG, |l| {
        l.contains("event=connect") && l.contains(&format!(" peer=127.0.0.8:{port} "))
    })
    .expect("the direct client's address and port");
}
