//! Shared helpers for the integration tests: start a real `wschat` process on
//! an ephemeral localhost port and talk to it through real WebSocket clients.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

pub mod chromium;
pub mod nginx;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// How long any single blocking read in a test may take before the test fails.
/// It is a watchdog against hangs, not a synchronisation device.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    /// What it writes to stderr, when that is collected rather than inherited.
    log: Option<ServerLog>,
}

impl Server {
    /// Starts `wschat --listen 127.0.0.1:0 ARGS…` and waits for its
    /// `listening on` line, which carries the port the kernel chose.
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
        command.stderr(Stdio::inherit());
        Server::start_command(command, args)
    }

    /// Like `start`, but runs `command`, which must end up exec'ing `wschat`
    /// with the arguments it is given (see `start_with_nofile`). Its stderr
    /// is left as the command set it; if that is a pipe, its lines are
    /// collected from the start (see `ServerLog`).
    pub fn start_command(mut command: Command, args: &[&str]) -> Server {
        command
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts `command` (a `wschat` command line built by the test: its own
    /// options, environment and stderr) and waits for its `listening on`
    /// line. Its stdout must be left alone.
    pub fn spawn(mut command: Command) -> Server {
        // Tests run side by side in one directory: each server keeps its
        // history in memory unless the test names a database (a flag wins
        // over this).
        if !command.get_envs().any(|(k, _)| k == "WSCHAT_DB") {
            command.env("WSCHAT_DB", ":memory:");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn wschat");
        let log = child.stderr.take().map(ServerLog::collect);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("wschat listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        // Keep draining stdout so the server can never block on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Number of threads of the server process, from /proc.
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Number of open file descriptors of the server process, from /proc.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Resident set size of the server process in KiB, from /proc.
    pub fn rss_kib(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until `f` holds, re-checking whenever the server may have changed
    /// state. Used for counts (threads, fds) that the server changes on its own
    /// schedule and that no event reports; fails the test after the watchdog.
    pub fn wait_until(&self, what: &str, mut f: impl FnMut(&Server) -> bool) {
        let deadline = std::time::Instant::now() + WATCHDOG;
        while !f(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// The server's metrics (`GET /metrics`), by sample: `name{labels}` as
/// written, or just `name`, to its value.
pub fn scrape(addr: &str) -> std::collections::HashMap<String, f64> {
    let r = http_fetch(addr, "/metrics");
    assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample line");
            (name.to_string(), value.parse().expect("a numeric sample"))
        })
        .collect()
}

/// One sample of `scrape`'s result; 0 when absent (a labelled counter
/// appears only once it has counted something).
pub fn sample(metrics: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

impl Server {
    /// Waits until the sample `name` satisfies `f`, scraping `/metrics` again
    /// and again (the server updates its metrics on its own schedule).
    pub fn wait_metric(&self, name: &str, f: impl Fn(f64) -> bool) -> f64 {
        let deadline = std::time::Instant::now() + WATCHDOG;
        loop {
            let v = sample(&scrape(&self.addr), name);
            if f(v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} stayed at {v} for the whole watchdog"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Sends a raw HTTP request over plain TCP and returns the whole response.
pub fn http_raw(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// GETs `path` with a minimal HTTP/1.1 request.
pub fn http_get(addr: &str, path: &str) -> String {
    http_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

// ---------------------------------------------------------------------------
// HTTP responses
// ---------------------------------------------------------------------------

/// One parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a complete chunked body, or returns `None` if more bytes are needed.
fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find_subslice(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size line");
        let size_text = size_text.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers (if any) end with an empty line.
            find_subslice(data, b"\r\n")?;
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parses one response head (`status line` + headers, without the blank line).
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// Reads one HTTP response from `s`: the head, then a body delimited by
/// `Content-Length`, chunked encoding, or the end of the stream. It never
/// waits for a keep-alive connection to close once the body is complete.
pub fn read_http_response(s: &mut TcpStream) -> HttpResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find_subslice(&buf, b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a complete response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "no complete response head within the watchdog ({e}): {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let (status, headers) = parse_head(&head);
    let mut body = buf[head_end + 4..].to_vec();
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: Option<usize> = response
        .header("content-length")
        .map(|v| v.parse().expect("numeric Content-Length"));
    if status == 101 || status == 204 || status == 304 {
        response.body = body;
        return response;
    }
    loop {
        if chunked {
            if let Some(decoded) = decode_chunked(&body) {
                response.body = decoded;
                return response;
            }
        } else if let Some(len) = length
            && body.len() >= len
        {
            body.truncate(len);
            response.body = body;
            return response;
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                assert!(
                    !chunked && length.is_none(),
                    "connection closed before the body was complete"
                );
                response.body = body;
                return response;
            }
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("body not complete within the watchdog: {e}"),
        }
    }
}

/// Sends `request` over a fresh TCP connection and reads one response.
pub fn http_request(addr: &str, request: &str) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_http_response(&mut s)
}

/// GETs `path` and parses the response.
pub fn http_fetch(addr: &str, path: &str) -> HttpResponse {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("wschat-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// Writes `contents` to `rel` inside the directory, creating parents.
    pub fn write(&self, rel: &str, contents: &[u8]) -> std::path::PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// WebSocket helpers
// ---------------------------------------------------------------------------

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
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        server.addr
    );
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // Read the head byte by byte so no frame bytes are swallowed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "handshake response incomplete ({other:?}): {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
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

/// Reads the next JSON event and checks its `type`.
pub fn expect_type(ws: &mut Client, ty: &str) -> serde_json::Value {
    let v = next_json(ws);
    assert_eq!(v["type"], ty, "expected a {ty:?} event, got {v}");
    v
}

/// Reads the next JSON event, which must be an error with `code`.
pub fn expect_error(ws: &mut Client, code: &str) -> serde_json::Value {
    let v = next_json(ws);
    assert_eq!(v["type"], "error", "expected error {code:?}, got {v}");
    assert_eq!(v["code"], code, "expected error {code:?}, got {v}");
    assert!(v["message"].is_string(), "error without a message: {v}");
    v
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Checks that `v["ts"]` is a millisecond timestamp within a minute of now.
pub fn assert_ts(v: &serde_json::Value) {
    let ts = v["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer ts: {v}"));
    let now = now_ms();
    assert!(
        ts.abs_diff(now) < 60_000,
        "ts {ts} is not milliseconds near now ({now}): {v}"
    );
}

/// Connects a v1 client to `path` (which already names the user, e.g.
/// `/ws?room=r&name=alice`), reads `welcome` and `presence`, and returns
/// them. Replayed history, if any, is left for the caller to read.
pub fn join_v1_path(server: &Server, path: &str) -> (Client, serde_json::Value, serde_json::Value) {
    let mut ws = connect_v1(&server.url(path));
    let welcome = expect_type(&mut ws, "welcome");
    let presence = expect_type(&mut ws, "presence");
    (ws, welcome, presence)
}

/// Joins `room` as `name` in v1 mode; returns after `welcome` and `presence`.
pub fn join_v1(server: &Server, room: &str, name: &str) -> Client {
    let path = format!("/ws?room={}&name={}", pct(room), pct(name));
    let (ws, welcome, presence) = join_v1_path(server, &path);
    assert_eq!(welcome["name"], name, "{welcome}");
    assert_eq!(welcome["room"], room, "{welcome}");
    assert_eq!(presence["room"], room, "{presence}");
    ws
}

/// Reads events until a `join` arrives (skipping others) and returns the name.
pub fn wait_join(ws: &mut Client) -> String {
    loop {
        let v = next_json(ws);
        if v["type"] == "join" {
            return v["name"].as_str().expect("join name").to_string();
        }
    }
}

/// Reads events until a `leave` arrives (skipping others) and returns the name.
pub fn wait_leave(ws: &mut Client) -> String {
    loop {
        let v = next_json(ws);
        if v["type"] == "leave" {
            return v["name"].as_str().expect("leave name").to_string();
        }
    }
}

/// Connects a raw client to `path` and returns once `watcher` (a v1 client in
/// the same room) has seen it join, i.e. once the server has it in the room.
/// Returns the client and the name it joined under.
pub fn connect_raw_synced(server: &Server, watcher: &mut Client, path: &str) -> (Client, String) {
    let ws = connect(&server.url(path));
    let name = wait_join(watcher);
    (ws, name)
}

/// Connects `n` raw clients named `{prefix}{i}` to `room`, returning once all
/// are members of the room. A temporary v1 watcher observes the joins and
/// leaves again before this returns.
pub fn raw_room(server: &Server, room: &str, prefix: &str, n: usize) -> Vec<Client> {
    let mut watcher = join_v1(server, room, "sync-watcher");
    let clients = (0..n)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let path = format!("/ws?room={}&name={}", pct(room), pct(&name));
            let (ws, joined) = connect_raw_synced(server, &mut watcher, &path);
            assert_eq!(joined, name);
            ws
        })
        .collect();
    watcher.close(None).expect("close watcher");
    clients
}

// ---------------------------------------------------------------------------
// Hardening: hand-built frames, resource baselines, process control
// ---------------------------------------------------------------------------

/// The mask key of every hand-built client frame.
pub const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Applies (or removes) the WebSocket mask `key` to `data`.
pub fn apply_mask(data: &[u8], key: [u8; 4]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect()
}

/// A frame header: `first` is the FIN/RSV/opcode byte; `len` is the payload
/// length announced, whatever follows. A masked header ends with `MASK_KEY`.
pub fn frame_header(first: u8, len: u64, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK_KEY);
    }
    out
}

/// A complete client frame, masked as RFC 6455 requires of clients.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(first, payload.len() as u64, true);
    out.extend_from_slice(&apply_mask(payload, MASK_KEY));
    out
}

/// A complete frame without a mask, which a client must never send.
pub fn unmasked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(first, payload.len() as u64, false);
    out.extend_from_slice(payload);
    out
}

/// One frame as the server sent it.
#[derive(Debug)]
pub struct WireFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A WebSocket spoken by hand over plain TCP, for input that no client
/// library would produce and for clients that never answer pings.
pub struct RawSocket {
    pub tcp: TcpStream,
}

impl RawSocket {
    /// Upgrades `path` by hand (see `connect_manual`) and keeps the bare
    /// socket, positioned just after the 101 response head.
    pub fn open(server: &Server, path: &str, extra_headers: &[&str]) -> RawSocket {
        let (ws, _response) = connect_manual(server, path, extra_headers);
        let tcp = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => s.try_clone().expect("clone socket"),
            _ => unreachable!("tests use plain TCP"),
        };
        tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        RawSocket { tcp }
    }

    /// Like `open`, over `tcp`, a socket already connected to `server`
    /// (from a chosen address, or with chosen buffer sizes).
    pub fn open_over(tcp: TcpStream, server: &Server, path: &str) -> RawSocket {
        let (ws, _response) = connect_manual_over(tcp, server, path, &[]);
        let tcp = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => s.try_clone().expect("clone socket"),
            _ => unreachable!("tests use plain TCP"),
        };
        tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        RawSocket { tcp }
    }

    /// Whether the server has sent something (or closed) within `timeout`.
    pub fn readable_within(&mut self, timeout: Duration) -> bool {
        self.tcp.set_read_timeout(Some(timeout)).unwrap();
        let readable = match self.tcp.peek(&mut [0u8; 1]) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        readable
    }

    /// Like `open`, offering the `wschat.v1` subprotocol.
    pub fn open_v1(server: &Server, path: &str) -> RawSocket {
        RawSocket::open(server, path, &["Sec-WebSocket-Protocol: wschat.v1"])
    }

    /// Writes `bytes` as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("write to server");
        self.tcp.flush().unwrap();
    }

    /// Reads exactly `buf.len()` bytes; `false` if the connection ended first.
    fn fill(&mut self, buf: &mut [u8]) -> bool {
        let mut got = 0;
        while got < buf.len() {
            match self.tcp.read(&mut buf[got..]) {
                Ok(0) => return false,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("no frame from the server within the read timeout")
                }
                Err(_) => return false, // reset
            }
        }
        true
    }

    /// Reads the next frame the server sends; `None` once the connection has
    /// ended (EOF or reset). Panics if nothing arrives within the socket's
    /// read timeout (the watchdog unless changed).
    pub fn read_frame(&mut self) -> Option<WireFrame> {
        let (first, len) = self.read_header()?;
        let payload = self.read_payload(usize::try_from(len).expect("frame length"))?;
        Some(WireFrame {
            fin: first & 0x80 != 0,
            opcode: first & 0x0f,
            payload,
        })
    }

    /// Reads only the header of the next frame: its FIN/RSV/opcode byte and
    /// its payload length. The payload is left to `read_payload`, which may
    /// take it in parts. `None` once the connection has ended.
    pub fn read_header(&mut self) -> Option<(u8, u64)> {
        let mut head = [0u8; 2];
        if !self.fill(&mut head) {
            return None;
        }
        assert_eq!(head[1] & 0x80, 0, "the server masked a frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                if !self.fill(&mut b) {
                    return None;
                }
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                if !self.fill(&mut b) {
                    return None;
                }
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        Some((head[0], len))
    }

    /// Reads exactly `n` bytes of payload; `None` if the connection ended first.
    pub fn read_payload(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut payload = vec![0u8; n];
        self.fill(&mut payload).then_some(payload)
    }

    /// Reads, skipping other frames, until the server's close frame and
    /// returns its code and reason; `None` if the connection ended without
    /// one.
    pub fn read_close(&mut self) -> Option<(u16, String)> {
        loop {
            let frame = self.read_frame()?;
            if frame.opcode == 8 {
                assert!(frame.payload.len() >= 2, "close frame without a code");
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                let reason =
                    String::from_utf8(frame.payload[2..].to_vec()).expect("close reason is UTF-8");
                return Some((code, reason));
            }
        }
    }

    /// Reads the next text frame, skipping control frames, as JSON.
    pub fn read_json(&mut self) -> serde_json::Value {
        loop {
            let frame = self.read_frame().expect("connection ended");
            match frame.opcode {
                1 => return serde_json::from_slice(&frame.payload).expect("server sent JSON"),
                8..=10 => continue,
                op => panic!("expected a text frame, got opcode {op}"),
            }
        }
    }
}

/// The server's thread and file descriptor counts at one moment, to check
/// that everything a test opened has been given back.
pub struct Baseline {
    pub threads: usize,
    pub fds: usize,
}

impl Baseline {
    /// Counts the server's threads and fds now. The server prints its
    /// address before it starts its dispatcher thread, so this first waits
    /// for that thread. Every connection open at this point must be fully
    /// up (a frame received from it), or its writer thread may be missed.
    pub fn take(server: &Server) -> Baseline {
        server.wait_until("the dispatcher thread to start", |s| {
            s.thread_names().iter().any(|n| n == "dispatcher")
        });
        Baseline {
            threads: server.threads(),
            fds: server.fds(),
        }
    }

    /// Waits until the server's threads and fds are back at (or below) this.
    pub fn wait_back(&self, server: &Server) {
        server.wait_until("threads back at baseline", |s| s.threads() <= self.threads);
        server.wait_until("fds back at baseline", |s| s.fds() <= self.fds);
    }
}

/// `speaker` (a joined v1 client) says `text`; waits until `listener` (v1)
/// receives it, skipping other events: the room is still relaying. The
/// speaker's own copy is left unread.
pub fn assert_relayed(speaker: &mut Client, listener: &mut Client, text: &str) {
    send_json(
        speaker,
        serde_json::json!({"type": "message", "text": text}),
    );
    loop {
        let v = next_json(listener);
        assert_ne!(v["type"], "error", "unexpected error: {v}");
        if v["type"] == "message" && v["text"] == text {
            return;
        }
    }
}

/// Sends an upgrade request for `path` (plus `extra_headers`, each
/// `Name: value`) over a fresh connection and reads the answer, whatever
/// its status.
pub fn upgrade_request(addr: &str, path: &str, extra_headers: &[&str]) -> HttpResponse {
    http_request(addr, &upgrade_head(addr, path, extra_headers))
}

/// The head of a WebSocket upgrade for `path` on `addr`, with extra header
/// lines (`Name: value`).
pub fn upgrade_head(addr: &str, path: &str, extra_headers: &[&str]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

impl Server {
    /// Names of the server's threads, from /proc.
    pub fn thread_names(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|tasks| {
                tasks
                    .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|n| n.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the server process is still running (it has not exited or
    /// crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("query server status")
            .is_none()
    }

    /// Sends `signal` (a name like `TERM`) without waiting for anything.
    pub fn signal(&self, signal: &str) {
        unsafe_kill(self.child.id(), signal);
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for server")
    }
}

/// A server with room `r` holding two v1 clients, `alice` who listens and
/// `bob` who speaks, and the server's resource counts once both are in.
pub struct Watched {
    pub server: Server,
    pub alice: Client,
    pub bob: Client,
    pub base: Baseline,
}

impl Watched {
    pub fn start(options: &[&str]) -> Watched {
        let server = Server::start(options);
        let mut alice = join_v1(&server, "r", "alice");
        let bob = join_v1(&server, "r", "bob");
        assert_eq!(wait_join(&mut alice), "bob");
        let base = Baseline::take(&server);
        Watched {
            server,
            alice,
            bob,
            base,
        }
    }

    /// Opens a bare socket to room `r` as `name` (v1 when `v1`) and waits
    /// until alice has seen it join.
    pub fn socket(&mut self, name: &str, v1: bool) -> RawSocket {
        let path = format!("/ws?room=r&name={}", pct(name));
        let s = if v1 {
            RawSocket::open_v1(&self.server, &path)
        } else {
            RawSocket::open(&self.server, &path, &[])
        };
        assert_eq!(wait_join(&mut self.alice), name);
        s
    }

    /// Connects a raw client to room `r` as `name`, once it is in the room.
    pub fn raw(&mut self, name: &str) -> Client {
        let path = format!("/ws?room=r&name={}", pct(name));
        let (ws, joined) = connect_raw_synced(&self.server, &mut self.alice, &path);
        assert_eq!(joined, name);
        ws
    }

    /// Connects a v1 client to room `r` as `name`, once it is in the room.
    pub fn v1(&mut self, name: &str) -> Client {
        let ws = join_v1(&self.server, "r", name);
        assert_eq!(wait_join(&mut self.alice), name);
        ws
    }

    /// After the offender `name` was closed and dropped: alice sees it leave
    /// without having received anything it sent, bob's next message still
    /// reaches alice, and the server is back at its resource baseline.
    pub fn check_recovered(mut self, name: &str) {
        loop {
            let v = next_json(&mut self.alice);
            assert!(
                v["type"] != "file" && v["type"] != "message",
                "the offender's frame was relayed: {v}"
            );
            if v["type"] == "leave" {
                assert_eq!(v["name"], name, "{v}");
                break;
            }
        }
        assert_relayed(&mut self.bob, &mut self.alice, "still here");
        self.base.wait_back(&self.server);
        assert!(self.server.is_running(), "the server process has exited");
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
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(WATCHDOG)).unwrap();
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

impl RawSocket {
    /// Like `open`, over a socket whose receive buffer is `bytes` (see
    /// `tcp_with_rcvbuf`).
    pub fn open_rcvbuf(
        server: &Server,
        path: &str,
        extra_headers: &[&str],
        bytes: usize,
    ) -> RawSocket {
        let stream = tcp_with_rcvbuf(server, bytes);
        let (ws, _response) = connect_manual_over(stream, server, path, extra_headers);
        let tcp = match ws.get_ref() {
            MaybeTlsStream::Plain(s) => s.try_clone().expect("clone socket"),
            _ => unreachable!("tests use plain TCP"),
        };
        tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        RawSocket { tcp }
    }
}

// ---- a server under a resource limit, and what it logs ----

/// The lines a server wrote to its stderr, collected as they come (and
/// passed on to the test's own stderr).
#[derive(Clone)]
pub struct ServerLog {
    lines: std::sync::Arc<(std::sync::Mutex<LogState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    ended: bool,
}

impl ServerLog {
    /// Collects the lines of `stderr` on a thread of its own until it ends.
    pub fn collect(stderr: impl Read + Send + 'static) -> ServerLog {
        let log = ServerLog {
            lines: Default::default(),
        };
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let (state, changed) = &*shared.lines;
                state.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            let (state, changed) = &*shared.lines;
            state.lock().unwrap().ended = true;
            changed.notify_all();
        });
        log
    }

    /// Waits for a line for which `f` holds and returns it; `None` if the
    /// server's stderr ended or `within` passed without one.
    pub fn wait_for(&self, within: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        let (state, changed) = &*self.lines;
        let mut state = state.lock().unwrap();
        loop {
            if let Some(line) = state.lines.iter().find(|l| f(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if state.ended || left.is_zero() {
                return None;
            }
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().lines.clone()
    }
}

impl Server {
    /// Starts `wschat ARGS…` (as `start` does) with its open-file limit
    /// (`RLIMIT_NOFILE`, soft and hard) set to `nofile`, and collects what it
    /// writes to stderr.
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> (Server, ServerLog) {
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
                env!("CARGO_BIN_EXE_wschat"),
            ])
            .stderr(Stdio::piped());
        let server = Server::start_command(command, args);
        let log = server.log.clone().expect("stderr is collected");
        (server, log)
    }
}

/// Makes sure the Debian package `package` is installed, judged by the file
/// `path` it provides: installs it with apt-get when it is missing and the
/// tests run as root (as `.ci/run` does), and otherwise fails with the
/// command to run. A test that needs a system tool is never skipped.
pub fn require_debian_package(path: &str, package: &str) {
    let install = format!("apt-get update && apt-get install -y {package}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !std::path::Path::new(path).exists() && root {
        let installed = Command::new("sh")
            .args(["-c", &install])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "{install} failed");
    }
    assert!(
        std::path::Path::new(path).exists(),
        "{path} not found: install it with: {install}"
    );
}

impl Server {
    /// Starts `wschat ARGS…` (as `start` does) logging at `info`, and
    /// collects what it writes to stderr.
    pub fn start_logged(args: &[&str]) -> (Server, ServerLog) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
        command
            .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .stderr(Stdio::piped());
        let server = Server::spawn(command);
        let log = server.log.clone().expect("stderr is collected");
        (server, log)
    }
}
