//! Plain HTTP on the shared port: reading a request head under a deadline,
//! serving the page's files, and writing responses (framed by tiny_http).
//! Its children answer the rest of plain HTTP: `files` (downloads), `proxy`
//! (who the client is behind a trusted proxy), `admin` (the admin view)
//! and `health` (the operator's endpoints).

use std::borrow::Cow;
use std::io::{self, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tiny_http::{HTTPVersion, Header, Response, StatusCode};

pub(crate) mod admin;
pub(crate) mod files;
pub(crate) mod health;
pub mod proxy;

/// Largest request head accepted; a larger one gets 431.
pub const MAX_HEAD: usize = 16 * 1024;

/// The first read of a request head goes into a buffer this large, and
/// the WebSocket handshake's 101 response is written from one. Above the
/// 1,032 bytes up to which glibc keeps a freed chunk in the freeing
/// thread's own cache (tcache), so that these go back to the shared heap
/// when freed: a connection's thread that then only idles would keep a
/// cached chunk for nothing (see "Limits" in docs/ARCHITECTURE.md).
pub(crate) const HEAD_BUFFER: usize = 2048;

/// Most headers parsed in one request head.
const MAX_HEADERS: usize = 64;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/www_files.rs"));
}

/// A parsed HTTP request head.
#[derive(Debug, Clone)]
pub struct Head {
    /// `GET`, `POST`...
    pub method: String,
    /// The request target as sent: path and query, still percent-encoded.
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Every header, in order, as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header lists `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether an `If-None-Match` header names `etag` (or is `*`). Weak
    /// tags match too: the comparison for GET and HEAD is the weak one.
    pub(crate) fn if_none_match(&self, etag: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("If-None-Match"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    }

    /// The target in origin form: an absolute-form target
    /// (`http://host/path`, which RFC 9112 requires servers to accept) loses
    /// its scheme and authority.
    fn origin_form(&self) -> &str {
        let t = self.target.as_str();
        let lower = t.get(..8).unwrap_or(t).to_ascii_lowercase();
        let Some(rest) = ["http://", "https://"]
            .iter()
            .find(|scheme| lower.starts_with(**scheme))
            .map(|scheme| &t[scheme.len()..])
        else {
            return t;
        };
        match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => &rest[i..],
            Some(i) => &rest[i..],
            None => "/",
        }
    }

    /// The path part of the target, before any `?`.
    pub fn path(&self) -> &str {
        self.origin_form().split('?').next().unwrap_or("")
    }

    /// The query part of the target, after the first `?`.
    pub fn query(&self) -> &str {
        self.origin_form().split_once('?').map_or("", |(_, q)| q)
    }

    /// What RFC 9112 requires of a request's framing headers: exactly one
    /// `Host`, and no two `Content-Length`s that differ. `Err` says which,
    /// for a 400.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let count = |name: &str| {
            self.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .count()
        };
        if count("Host") != 1 {
            return Err("a request needs exactly one Host header");
        }
        let mut lengths = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim);
        if let Some(first) = lengths.next()
            && lengths.any(|l| l != first)
        {
            return Err("differing Content-Length headers");
        }
        Ok(())
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The head was not complete before the deadline (a slow or idle client).
    Timeout,
    /// The head grew past [`MAX_HEAD`].
    TooLarge,
    /// Not HTTP/1.x.
    Malformed(httparse::Error),
    /// The peer closed before sending a whole head.
    Closed,
    /// Reading from the socket failed.
    Io(io::Error),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Timeout => write!(f, "request head not complete in time"),
            HeadError::TooLarge => write!(f, "request head over {MAX_HEAD} bytes"),
            HeadError::Malformed(e) => write!(f, "malformed request head: {e}"),
            HeadError::Closed => write!(f, "closed before a request head"),
            HeadError::Io(e) => write!(f, "reading request head: {e}"),
        }
    }
}

impl std::error::Error for HeadError {}

impl HeadError {
    /// Why the request counts as refused in `wschat_handshakes_refused_total`:
    /// when it was late or malformed (not when the peer simply went away).
    pub(crate) fn metric(&self) -> Option<crate::metrics::RefusalReason> {
        match self {
            HeadError::Timeout => Some(crate::metrics::RefusalReason::Timeout),
            HeadError::TooLarge | HeadError::Malformed(_) => {
                Some(crate::metrics::RefusalReason::BadRequest)
            }
            HeadError::Closed | HeadError::Io(_) => None,
        }
    }
}

/// Reads and parses one request head, which must be complete within
/// `timeout` in total, however slowly the bytes trickle in. Returns the head
/// and any bytes the client sent after it.
pub(crate) fn read_head(sock: &TcpStream, timeout: Duration) -> Result<(Head, Vec<u8>), HeadError> {
    let deadline = Instant::now() + timeout;
    // Read straight into `buf`: a connection's thread keeps every stack page
    // it ever touched, so large arrays on the stack cost every connection.
    let mut buf = Vec::with_capacity(HEAD_BUFFER);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        sock.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        if buf.len() == buf.capacity() {
            buf.reserve(HEAD_BUFFER);
        }
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = (&*sock).read(&mut buf[start..]);
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Err(HeadError::Closed),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        }
        if let Some((head, used)) = parse_head(&buf)? {
            return Ok((head, buf.split_off(used)));
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a request head from the start of `buf`; `None` if incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    // On the heap, for the reason given in `read_head`.
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD => {
            let head = Head {
                method: req.method.unwrap_or("").to_owned(),
                target: req.path.unwrap_or("").to_owned(),
                version: req.version.unwrap_or(1),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, used)))
        }
        Ok(httparse::Status::Complete(_)) => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e)),
    }
}

/// Where the page's files come from.
#[derive(Debug, Clone)]
pub(crate) enum Site {
    /// The copy of `www/` built into the binary.
    Embedded,
    /// A directory on disk, read on every request.
    Dir(PathBuf),
}

/// What the built-in page's files are sent with: a Content-Security-Policy that lets
/// the page load only its own scripts, styles and WebSocket (and the images
/// and files it makes itself as `data:` and `blob:` URLs), and may not be
/// framed.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob:; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A file of the site, found for a request path.
struct File {
    body: Cow<'static, [u8]>,
    content_type: &'static str,
    etag: Cow<'static, str>,
}

impl Site {
    /// Answers a GET or HEAD of a page file: 304 when the client's copy (by
    /// `If-None-Match`) is current, else the file; with its `ETag` either way.
    pub(crate) fn serve(&self, sock: &TcpStream, head: &Head) -> io::Result<()> {
        let Some(file) = self.lookup(head.path()) else {
            return respond_to(sock, head, text_response(404, "not found\n"));
        };
        let mut headers = vec![
            ("ETag", file.etag.as_ref()),
            ("Cache-Control", "no-cache"),
            ("Referrer-Policy", "no-referrer"),
        ];
        // A page served with --www is the operator's own, and may need what
        // this policy forbids (the tutorial's page has inline handlers).
        if let Site::Embedded = self {
            headers.push(("Content-Security-Policy", CONTENT_SECURITY_POLICY));
        }
        if head.if_none_match(&file.etag) {
            // The length a 200 would have, as RFC 9110 allows; no body.
            let not_modified = Response::new(
                StatusCode(304),
                Vec::new(),
                io::empty(),
                Some(file.body.len()),
                None,
            );
            return respond_to(sock, head, with_headers(not_modified, &headers));
        }
        let ok = Response::from_data(file.body.into_owned())
            .with_header(header("Content-Type", file.content_type));
        respond_to(sock, head, with_headers(ok, &headers))
    }

    /// Finds the file for a request path. Anything that could name a file
    /// outside the site (`..`, encoded or not, backslashes, absolute paths)
    /// is simply not found.
    fn lookup(&self, path: &str) -> Option<File> {
        let decoded = percent_decode(path)?;
        let rel = match decoded.strip_prefix('/')? {
            "" => "index.html",
            rel => rel,
        };
        let safe = rel
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && !rel.contains(['\\', '\0']);
        if !safe {
            return None;
        }
        let content_type = content_type(rel);
        match self {
            Site::Embedded => embedded::FILES
                .iter()
                .find(|(name, _, _)| *name == rel)
                .map(|(_, bytes, etag)| File {
                    body: Cow::Borrowed(*bytes),
                    content_type,
                    etag: Cow::Borrowed(*etag),
                }),
            Site::Dir(root) => {
                let bytes = read_inside(root, rel)?;
                Some(File {
                    etag: Cow::Owned(etag(&bytes)),
                    body: Cow::Owned(bytes),
                    content_type,
                })
            }
        }
    }
}

/// A strong ETag for `bytes`: FNV-1a, 64 bits, as `build.rs` computes it
/// for the embedded page.
pub(crate) fn etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Reads `root/rel` if it is a regular file that really lies inside `root`
/// (symbolic links pointing out are refused).
fn read_inside(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let root = root.canonicalize().ok()?;
    let file = root.join(rel).canonicalize().ok()?;
    if !file.starts_with(&root) || !file.is_file() {
        return None;
    }
    std::fs::read(file).ok()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` if an escape is broken or the result is not
/// UTF-8. `+` is kept as is (it means a space only in queries).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parses a query string into decoded pairs (`+` is a space), one at a
/// time: a WebSocket's handshake keeps the few it wants and collects no
/// list (a connection's thread keeps the small chunks it frees).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((
                percent_decode(&k.replace('+', " "))?,
                percent_decode(&v.replace('+', " "))?,
            ))
        })
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

/// A response with a body in memory and these headers.
pub(crate) fn data_response(
    status: u16,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Response<io::Cursor<Vec<u8>>> {
    with_headers(Response::from_data(body).with_status_code(status), headers)
}

/// A short plain-text response.
pub(crate) fn text_response(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    let content_type = [("Content-Type", "text/plain; charset=utf-8")];
    data_response(status, body.as_bytes().to_vec(), &content_type)
}

/// An error response with extra headers (`Retry-After`, `Upgrade`…).
pub(crate) fn error_response(
    status: u16,
    body: &str,
    extra: &[(&str, &str)],
) -> Response<io::Cursor<Vec<u8>>> {
    with_headers(text_response(status, body), extra)
}

fn with_headers<R: Read>(response: Response<R>, headers: &[(&str, &str)]) -> Response<R> {
    headers
        .iter()
        .fold(response, |r, (k, v)| r.with_header(header(k, v)))
}

/// Writes the response to `head`'s request: without its body if that was a
/// HEAD.
pub(crate) fn respond_to<R: Read>(
    sock: &TcpStream,
    head: &Head,
    response: Response<R>,
) -> io::Result<()> {
    respond_with(sock, response, head.method == "HEAD", &[])
}

/// As [`respond_to`], with headers tiny_http refuses to set (`Upgrade`).
pub(crate) fn respond_to_with<R: Read>(
    sock: &TcpStream,
    head: &Head,
    response: Response<R>,
    forbidden: &[(&str, &str)],
) -> io::Result<()> {
    respond_with(sock, response, head.method == "HEAD", forbidden)
}

/// Writes `response` and closes, whatever the request's method.
pub(crate) fn respond<R: Read>(
    sock: &TcpStream,
    response: Response<R>,
    head_only: bool,
) -> io::Result<()> {
    respond_with(sock, response, head_only, &[])
}

/// Writes a response and says `Connection: close` (we answer one request
/// per connection). tiny_http drops `Connection` and `Upgrade` from a
/// response's headers, so the response is printed into a buffer (every body
/// is in memory already) and those lines are written in after its status
/// line.
fn respond_with<R: Read>(
    sock: &TcpStream,
    response: Response<R>,
    head_only: bool,
    forbidden: &[(&str, &str)],
) -> io::Result<()> {
    let response = response
        .with_chunked_threshold(usize::MAX)
        .with_header(header("Server", "wschat"))
        .with_header(header("X-Content-Type-Options", "nosniff"));
    let mut out = Vec::new();
    response.raw_print(&mut out, HTTPVersion(1, 1), &[], head_only, None)?;
    let mut extra = String::from("Connection: close\r\n");
    for (name, value) in forbidden {
        extra.push_str(&format!("{name}: {value}\r\n"));
    }
    let after_status = out
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(out.len(), |i| i + 2);
    out.splice(after_status..after_status, extra.into_bytes());
    io::Write::write_all(&mut &*sock, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_not_found() {
        let site = Site::Embedded;
        for path in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "//etc/passwd",
            "/..%2fCargo.toml",
            "/a\\b",
            "/%zz",
        ] {
            assert!(site.lookup(path).is_none(), "{path}");
        }
    }

    #[test]
    fn embedded_etags_are_the_runtime_hash() {
        for (name, bytes, tag) in embedded::FILES {
            assert_eq!(*tag, etag(bytes), "{name}");
        }
    }

    #[test]
    fn if_none_match_lists() {
        let (head, _) = parse_head(
            b"GET / HTTP/1.1\r\nIf-None-Match: \"a\", W/\"b\"\r\nIf-None-Match: \"c\"\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        for tag in ["\"a\"", "\"b\"", "\"c\""] {
            assert!(head.if_none_match(tag), "{tag}");
        }
        assert!(!head.if_none_match("\"d\""));
        let (star, _) = parse_head(b"GET / HTTP/1.1\r\nIf-None-Match: *\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(star.if_none_match("\"anything\""));
    }

    #[test]
    fn index_is_the_root() {
        assert!(Site::Embedded.lookup("/").is_some());
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
    }

    #[test]
    fn head_parsing() {
        let (head, used) = parse_head(b"GET /ws?room=a%20b HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(used, 40);
        assert_eq!(head.path(), "/ws");
        assert_eq!(
            query_pairs(head.query()).collect::<Vec<_>>(),
            vec![("room".into(), "a b".into())]
        );
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(parse_head(b"\x00\x01\r\n\r\n").is_err());
    }
}
