//! WebSocket clients through tungstenite: connecting (from chosen
//! addresses, over small receive buffers, or by a hand-made upgrade), and
//! reading and writing frames under the watchdog.

use std::io::Write;
use std::net::TcpStream;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::http::parse_head;
use super::{HttpResponse, Server, WATCHDOG, read_response_head, tcp_bound_to, upgrade_head};

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url`, optionally offering `subprotocol`.
pub fn connect_with(url: &str, subprotocol: Option<&str>) -> Client {
    let mut request = url.into_client_request().unwrap();
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    let (mut ws, _response) = tungstenite::connect(request).expect("websocket connect");
    set_watchdog(&mut ws);
    ws
}

/// Opens a raw-mode (no subprotocol) WebSocket.
pub fn connect(url: &str) -> Client {
    connect_with(url, None)
}

/// Opens a `wschat.v1` WebSocket.
pub fn connect_v1(url: &str) -> Client {
    connect_with(url, Some("wschat.v1"))
}

/// A ping interval for tests about pings that must last several of them:
/// a peer silent for two intervals is dropped, and one second leaves room
/// for a client thread kept off the CPU for a moment on a busy machine.
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The TCP socket under a client (tests use plain TCP).
pub fn plain_tcp(ws: &Client) -> &TcpStream {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s,
        _ => unreachable!("tests use plain TCP"),
    }
}

fn set_watchdog(ws: &mut Client) {
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
    }
}

/// Reads the next data frame (text or binary, or a close), skipping pings
/// and pongs; fails the test if none comes within the watchdog in total (the
/// server's own pings must not keep a test waiting for ever).
pub fn next_data(ws: &mut Client) -> Message {
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        set_read_deadline(ws, deadline);
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_) | Message::Close(_))) => return m,
            Ok(_) => continue,
            // A signal (a test's child stopping or ending) interrupted the
            // read: nothing was lost, read again.
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                continue;
            }
            Err(e) => panic!("read frame: {e:?}"),
        }
    }
}

/// Sets the client's read timeout to what is left until `deadline`.
fn set_read_deadline(ws: &mut Client, deadline: std::time::Instant) {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    assert!(!left.is_zero(), "nothing arrived within the watchdog");
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(left)).unwrap();
    }
}

/// Reads the next text frame and parses it as JSON.
pub fn next_json(ws: &mut Client) -> serde_json::Value {
    match next_data(ws) {
        Message::Text(t) => serde_json::from_str(t.as_str()).expect("server sent JSON"),
        other => panic!("expected a JSON text frame, got {other:?}"),
    }
}

/// Reads frames until the connection closes and returns the close code, if any.
pub fn close_code(ws: &mut Client) -> Option<u16> {
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        set_read_deadline(ws, deadline);
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
}

/// Builds a tutorial-format file frame: u16 LE name length, name, bytes.
pub fn file_frame(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + name.len() + bytes.len());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Percent-encodes everything but ASCII letters and digits, for query values.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Opens a WebSocket by hand over plain TCP, sending `extra_headers` (each
/// `Name: value`) with the upgrade request. Unlike `connect_with` it accepts
/// any 101 answer, so it can observe which subprotocol the server picked.
pub fn connect_manual(
    server: &Server,
    path: &str,
    extra_headers: &[&str],
) -> (Client, HttpResponse) {
    connect_manual_over(
        TcpStream::connect(&server.addr).unwrap(),
        server,
        path,
        extra_headers,
    )
}

/// `connect_manual` over `s`, a socket already connected to `server`.
pub fn connect_manual_over(
    mut s: TcpStream,
    server: &Server,
    path: &str,
    extra_headers: &[&str],
) -> (Client, HttpResponse) {
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s.write_all(upgrade_head(&server.addr, path, extra_headers).as_bytes())
        .unwrap();
    let head =
        read_response_head(&mut s).unwrap_or_else(|e| panic!("handshake response incomplete: {e}"));
    let text = String::from_utf8_lossy(&head[..head.len() - 4]).into_owned();
    let (status, headers) = parse_head(&text);
    assert_eq!(
        status, 101,
        "expected 101 Switching Protocols, got {text:?}"
    );
    assert_eq!(
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, v)| v.as_str()),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "wrong Sec-WebSocket-Accept"
    );
    let ws = WebSocket::from_raw_socket(
        MaybeTlsStream::Plain(s),
        tungstenite::protocol::Role::Client,
        None,
    );
    let response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    (ws, response)
}

pub fn send_text(ws: &mut Client, text: &str) {
    ws.send(Message::text(text.to_string())).expect("send text");
}

pub fn send_json(ws: &mut Client, value: serde_json::Value) {
    send_text(ws, &value.to_string());
}

pub fn send_binary(ws: &mut Client, bytes: Vec<u8>) {
    ws.send(Message::binary(bytes)).expect("send binary");
}

/// Reads the next data frame, which must be text.
pub fn expect_text(ws: &mut Client) -> String {
    match next_data(ws) {
        Message::Text(t) => t.as_str().to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Reads the next data frame, which must be binary.
pub fn expect_binary(ws: &mut Client) -> Vec<u8> {
    match next_data(ws) {
        Message::Binary(b) => b.to_vec(),
        Message::Text(t) => panic!("expected a binary frame, got text {:?}", t.as_str()),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// Reads until the close frame and returns its code and reason.
pub fn close_frame(ws: &mut Client) -> Option<(u16, String)> {
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no close frame within the watchdog"
        );
        match ws.read() {
            Ok(Message::Close(frame)) => {
                return frame.map(|f| (u16::from(f.code), f.reason.as_str().to_string()));
            }
            Ok(_) => continue,
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
}

/// Reads (discarding data) until the server has ended the connection, by a
/// close frame or by closing/resetting the socket. Returns the close code if
/// a close frame arrived. Fails if the connection is still up at the watchdog.
pub fn wait_disconnected(ws: &mut Client) -> Option<u16> {
    use std::io::ErrorKind::*;
    use tungstenite::Error;
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "still connected at the watchdog"
        );
        match ws.read() {
            Ok(Message::Close(frame)) => return Some(frame.map_or(1005, |f| u16::from(f.code))),
            Ok(_) => continue,
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => return None,
            Err(Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => {
                return None;
            }
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
                ) =>
            {
                return None;
            }
            Err(e) => panic!("connection still up (or failed oddly) at the watchdog: {e}"),
        }
    }
}

/// Sends a WebSocket ping and waits for the matching pong: the connection is
/// open and its reader is alive.
pub fn assert_pong(ws: &mut Client, payload: &[u8]) {
    ws.send(Message::Ping(payload.to_vec().into()))
        .expect("send ping");
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no pong within the watchdog"
        );
        match ws.read().expect("read while waiting for pong") {
            Message::Pong(p) if p.as_ref() == payload => return,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    }
}

// ---- clients from other loopback addresses ----

/// Opens a raw-mode WebSocket to `server` from the local address `from`
/// (any 127.0.0.0/8 address is this machine, so each is a distinct client IP).
pub fn connect_from(server: &Server, from: &str) -> Result<Client, tungstenite::Error> {
    connect_path_from(server, "/ws?room=ip", from)
}

/// Opens a raw-mode WebSocket to `path` on `server` from the local address `from`.
pub fn connect_path_from(
    server: &Server,
    path: &str,
    from: &str,
) -> Result<Client, tungstenite::Error> {
    let stream = tcp_bound_to(from, &server.addr, WATCHDOG);
    let url = server.url(path);
    match tungstenite::client(
        url.as_str(),
        tungstenite::stream::MaybeTlsStream::Plain(stream),
    ) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => unreachable!("blocking socket"),
    }
}

// ---- small receive buffers ----

/// A TCP connection to `server` whose receive buffer (`SO_RCVBUF`) is set to
/// `bytes` before it connects, so that the window it offers stays small and
/// the kernel holds little of what the server sends while the client does
/// not read.
pub fn tcp_with_rcvbuf(server: &Server, bytes: usize) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(bytes).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WATCHDOG)).unwrap();
    stream
}

/// Opens a raw-mode WebSocket to `path` over a socket whose receive buffer
/// is `bytes` (see `tcp_with_rcvbuf`).
pub fn connect_rcvbuf(server: &Server, path: &str, bytes: usize) -> Client {
    let stream = tcp_with_rcvbuf(server, bytes);
    match tungstenite::client(server.url(path).as_str(), MaybeTlsStream::Plain(stream)) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("websocket connect: {e}"),
    }
}
