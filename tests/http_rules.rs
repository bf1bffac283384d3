//! Proves the HTTP rules every request meets, with the exact status codes:
//! the Host is checked (421 for a name that is not this server's, against
//! DNS rebinding), a request needs exactly one Host and consistent
//! Content-Lengths (400), absolute-form targets are served, a wrong
//! WebSocket version gets 426 with the version we speak, one address gets
//! only its share of unfinished request heads, and bad option values stop
//! the server with status 2 and a message naming the option. Every answer
//! says `Connection: close`, and a 426 says `Upgrade: websocket`, although
//! tiny_http drops both headers.

mod support;

use std::io::Write;
use std::process::Command;

use support::nginx::tcp_from;
use support::*;

fn get(addr: &str, host_lines: &str) -> HttpResponse {
    http_request(addr, &format!("GET / HTTP/1.1\r\n{host_lines}\r\n"))
}

#[test]
fn a_foreign_host_name_gets_421_and_ip_and_localhost_are_served() {
    let server = Server::start(&[]);
    let port = server.addr.rsplit(':').next().unwrap();
    let rebound = get(&server.addr, &format!("Host: attacker.example:{port}\r\n"));
    assert_eq!(rebound.status, 421, "{}", rebound.text());
    // The same goes for a WebSocket from a page on that name.
    let ws = http_request(
        &server.addr,
        &format!(
            "GET /ws HTTP/1.1\r\nHost: attacker.example:{port}\r\nOrigin: http://attacker.example:{port}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        ),
    );
    assert_eq!(ws.status, 421);
    for host in [server.addr.clone(), format!("localhost:{port}")] {
        let ok = get(&server.addr, &format!("Host: {host}\r\n"));
        assert_eq!(ok.status, 200, "Host {host}: {}", ok.text());
    }
}

#[test]
fn with_a_public_url_only_its_host_is_served() {
    let server = Server::start(&["--public-url", "https://chat.example.com"]);
    assert_eq!(get(&server.addr, "Host: chat.example.com\r\n").status, 200);
    assert_eq!(
        get(&server.addr, "Host: chat.example.com:443\r\n").status,
        200
    );
    assert_eq!(
        get(&server.addr, &format!("Host: {}\r\n", server.addr)).status,
        421
    );
    // Health checks answer by any name.
    let health = http_request(
        &server.addr,
        "GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:8080\r\n\r\n",
    );
    assert_eq!(health.status, 200);
}

#[test]
fn a_request_needs_exactly_one_host_and_one_length() {
    let server = Server::start(&[]);
    let host = format!("Host: {}\r\n", server.addr);
    assert_eq!(get(&server.addr, "").status, 400, "no Host");
    assert_eq!(
        get(&server.addr, &format!("{host}{host}")).status,
        400,
        "two Hosts"
    );
    let lengths = format!("{host}Content-Length: 0\r\nContent-Length: 5\r\n");
    assert_eq!(get(&server.addr, &lengths).status, 400, "differing lengths");
    let same = format!("{host}Content-Length: 0\r\nContent-Length: 0\r\n");
    assert_eq!(
        get(&server.addr, &same).status,
        200,
        "the same length twice"
    );
}

#[test]
fn an_absolute_form_target_is_served() {
    let server = Server::start(&[]);
    let r = http_request(
        &server.addr,
        &format!(
            "GET http://{0}/index.html HTTP/1.1\r\nHost: {0}\r\n\r\n",
            server.addr
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<html"), "the page itself");
}

#[test]
fn a_wrong_websocket_version_gets_426_with_the_version_we_speak() {
    let server = Server::start(&[]);
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        server.addr
    )
    .unwrap();
    let r = read_http_response(&mut s);
    assert_eq!(r.status, 426);
    assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn one_address_gets_only_its_share_of_unfinished_request_heads() {
    let server = Server::start(&["--max-handshakes-per-ip", "4"]);
    // Four heads that never finish, from one address.
    let mut slow: Vec<_> = (0..4)
        .map(|_| {
            let mut s = tcp_from(&server.addr, "127.0.0.2");
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // Its fifth is refused at once; another address is served.
    let mut fifth = tcp_from(&server.addr, "127.0.0.2");
    write!(fifth, "GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).unwrap();
    assert_eq!(read_http_response(&mut fifth).status, 503);
    let mut other = tcp_from(&server.addr, "127.0.0.3");
    write!(other, "GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).unwrap();
    assert_eq!(read_http_response(&mut other).status, 200);
    // Once one of the four finishes, the address has a slot again (its
    // slot is given back before its answer is written).
    write!(slow[0], "Host: {}\r\n\r\n", server.addr).unwrap();
    assert_eq!(read_http_response(&mut slow[0]).status, 200);
    let mut again = tcp_from(&server.addr, "127.0.0.2");
    write!(again, "GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).unwrap();
    assert_eq!(read_http_response(&mut again).status, 200);
}

#[test]
fn bad_option_values_exit_2_naming_the_option() {
    for (option, value) in [
        ("--ping-interval", "0"),
        ("--rate", "=-5"),
        ("--rate", "nan"),
        ("--connect-rate", "0"),
        ("--max-text", "0"),
        ("--trusted-proxy", "10.0.0.0/40"),
        ("--public-url", "chat.example.com"),
    ] {
        // `--rate=-5`, or a value that clap would take for a flag.
        let arg = match value.strip_prefix('=') {
            Some(v) => format!("{option}={v}"),
            None => format!("{option}={value}"),
        };
        let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .args(["--listen", "127.0.0.1:0", &arg])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
}

#[test]
fn responses_say_connection_close_and_426_says_upgrade() {
    let server = Server::start(&[]);
    let page = http_fetch(&server.addr, "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("Connection"), Some("close"));
    let plain = http_fetch(&server.addr, "/ws");
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("Upgrade"), Some("websocket"));
    assert_eq!(plain.header("Connection"), Some("close"));
}
