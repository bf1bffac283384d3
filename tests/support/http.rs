//! Plain HTTP against the server: raw requests, parsed responses (by
//! length, chunked, or to the end of the stream), the metrics page, and
//! upgrade requests whatever their answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Server, WATCHDOG, upgrade_head};

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
    http_raw(addr, &get_request(addr, path))
}

/// A minimal HTTP/1.1 GET of `path` that asks the server to close after it.
fn get_request(addr: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

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
pub(super) fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
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
    http_request(addr, &get_request(addr, path))
}

/// Sends an upgrade request for `path` (plus `extra_headers`, each
/// `Name: value`) over a fresh connection and reads the answer, whatever
/// its status.
pub fn upgrade_request(addr: &str, path: &str, extra_headers: &[&str]) -> HttpResponse {
    http_request(addr, &upgrade_head(addr, path, extra_headers))
}

/// An admin API request: `method path` with the admin token `token` (none
/// if `None`), the label `tester`, and a JSON body.
pub fn admin_api(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> HttpResponse {
    let addr = &server.addr;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-Admin-Name: tester\r\n"
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    http_request(addr, &request)
}
