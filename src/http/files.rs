//! Downloads of the files sent in a room: `GET /files/ROOM/ID/NAME`,
//! answered from the history store.
//!
//! A file is whatever its sender says it is, so it is served so that a
//! browser can never run it as a page of this site: as an attachment of type
//! `application/octet-stream`, except for a short list of raster image types
//! (`image/png`, `image/jpeg`, `image/gif`, `image/webp`) whose name does not
//! claim another type; those are shown inline as images. Every answer has a
//! `Content-Security-Policy` of `default-src 'none'; sandbox` and
//! `X-Content-Type-Options: nosniff`. `NAME` must be the stored file's name,
//! so that a URL cannot be made to look like another file.
//!
//! `ETag`/`If-None-Match` (304), `Range` (one range of bytes, read from the
//! store without loading the rest; 206 or 416; `If-Range`) and `HEAD` are
//! answered; several ranges get the whole file.

use crate::logs as log;

use std::io::{self, Cursor};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tiny_http::{Header, Response, StatusCode};

use crate::history::sqlite::{Reader, StoredFile};
use crate::http::{self, Head};
use crate::limits::budget::Share;

mod body;
mod path;

pub use crate::proto::capability::{Refusal, Signer};
pub use body::{Body, CHUNK};
use body::{Bytes, Charge};
use path::all_digits;
pub use path::{Target, is_files_path, parse};

/// Seconds a client is asked to wait when the store cannot be read.
const RETRY_AFTER: &str = "5";

/// What a downloaded file may do: nothing. A page opened from it (were a
/// browser ever to render one) runs no script and loads nothing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

/// A stored file never changes under its URL (the `ETag` covers a new
/// database reusing an id), so it may be kept for good, by the browser only.
const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// Image types shown inline, with the name extensions that go with each.
/// Anything else (SVG and HTML above all) is sent as an attachment of type
/// `application/octet-stream`.
const INLINE: &[(&str, &[&str])] = &[
    ("image/png", &["png"]),
    (
        "image/jpeg",
        &["jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp"],
    ),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
];

/// The type sent for everything that is not shown inline.
const OCTET_STREAM: &str = "application/octet-stream";

/// Least time between two log lines about a store that cannot be read.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(1);

/// What serving downloads needs: where the files are, what signs and checks
/// their URLs, and the memory budget's outbound share, which what is held
/// for sending counts against.
#[derive(Clone)]
pub struct Downloads {
    pub source: Source,
    pub signer: Signer,
    pub outbound: Arc<Share>,
}

/// Answers a request for a file path and writes the answer (headers only
/// for a HEAD), the file's bytes a chunk at a time: a client that does not
/// read holds one chunk until the socket's write timeout drops it.
#[inline(never)]
pub fn serve(sock: &TcpStream, head: &Head, downloads: &Downloads) -> io::Result<()> {
    match answer(downloads, head) {
        Reply::Whole(response) => http::respond_to(sock, head, response),
        Reply::Stream(response, body) => {
            // The head only, with the body's `Content-Length`; then the body.
            http::respond(sock, response, true)?;
            body.send(sock)
        }
    }
}

/// The answer to a request for a file path.
pub enum Reply {
    /// Complete in memory: an error, a 304, a HEAD's headers, an empty body.
    Whole(Response<Cursor<Vec<u8>>>),
    /// Headers (with the `Content-Length` of what follows), then a body
    /// sent by [`Body::send`].
    Stream(Response<Cursor<Vec<u8>>>, Body),
}

impl Reply {
    /// The answer's status.
    #[cfg(test)]
    pub fn status(&self) -> u16 {
        match self {
            Reply::Whole(r) | Reply::Stream(r, _) => r.status_code().0,
        }
    }
}

/// The answer to a request whose path is a file's ([`is_files_path`]): a
/// response to be written with [`http::respond_to`] for the same `head`
/// (which adds `X-Content-Type-Options: nosniff`), or headers and a body
/// to stream. A HEAD's answer has no body, only the `Content-Length` a GET's
/// would have.
pub fn answer(downloads: &Downloads, head: &Head) -> Reply {
    match prepare(downloads, head) {
        Ok(reply) => reply,
        Err(refused) => Reply::Whole(*refused),
    }
}

/// An answer other than the file: boxed, as it is passed up through
/// `Result`s.
type ErrorPage = Box<Response<Cursor<Vec<u8>>>>;

fn prepare(downloads: &Downloads, head: &Head) -> Result<Reply, ErrorPage> {
    if head.method != "GET" && head.method != "HEAD" {
        return Err(failure(
            405,
            "method not allowed\n",
            &[("Allow", "GET, HEAD")],
        ));
    }
    let Some(target) = parse(head.path()) else {
        return Err(failure(400, "malformed file path\n", &[]));
    };
    authorize(&downloads.signer, head, &target)?;
    let with_body = head.method == "GET";
    // The file's meta first (no bytes), so that a 304, a HEAD or a range
    // reads only what it sends.
    let meta = read_meta(&downloads.source, &target)?.ok_or_else(not_found)?;
    let etag = etag(&target, &meta);
    let image = inline_type(&meta.mime, &meta.name);
    let disposition = disposition(image.is_some(), &meta.name);
    let mut headers = vec![
        ("ETag", etag.as_str()),
        ("Cache-Control", CACHE_CONTROL),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("Referrer-Policy", "no-referrer"),
        ("Accept-Ranges", "bytes"),
    ];
    if head.if_none_match(&etag) {
        return Ok(Reply::Whole(sized(304, meta.size, &headers)));
    }
    headers.push(("Content-Type", image.unwrap_or(OCTET_STREAM)));
    headers.push(("Content-Disposition", &disposition));
    let (start, len, content_range) = match range(head, meta.size, &etag) {
        Span::Whole => (0, meta.size, None),
        Span::Part { start, end } => {
            let content_range = format!("bytes {start}-{end}/{}", meta.size);
            (start, end - start + 1, Some(content_range))
        }
        Span::Unsatisfiable => {
            let content_range = format!("bytes */{}", meta.size);
            let extra = [
                ("Content-Range", content_range.as_str()),
                ("Accept-Ranges", "bytes"),
            ];
            return Err(failure(416, "range not satisfiable\n", &extra));
        }
    };
    let status = match &content_range {
        Some(content_range) => {
            headers.push(("Content-Range", content_range));
            206
        }
        None => 200,
    };
    let response = sized(status, len, &headers);
    if !with_body || len == 0 {
        return Ok(Reply::Whole(response));
    }
    let from = match &downloads.source {
        Source::Store(reader) => {
            let charge = charge(&downloads.outbound, &target, len.min(CHUNK))?;
            let from = Bytes::Store {
                reader: reader.clone(),
                target,
                meta,
                start,
                len,
            };
            (from, charge)
        }
        Source::Redis(files) => {
            // Taken before the bytes are read, so that they never pass the
            // share.
            let charge = charge(&downloads.outbound, &target, meta.size)?;
            let data = match files.bytes(&target.room, target.id) {
                Ok(Some(data)) => data,
                Ok(None) => return Err(not_found()),
                Err(e) => {
                    complain(&target, &e);
                    return Err(unreadable());
                }
            };
            if data.len() as u64 != meta.size {
                return Err(changed());
            }
            // Both within the data, whose length is the size: a range ends
            // before it.
            let (start, len) = (start as usize, len as usize);
            (Bytes::Held { data, start, len }, charge)
        }
    };
    Ok(Reply::Stream(response, Body::new(from.0, from.1)))
}

/// Refuses a request whose URL is not one the server signed for this room
/// and file, or has expired: 403, or 503 while the key is not known.
fn authorize(signer: &Signer, head: &Head, target: &Target) -> Result<(), ErrorPage> {
    let pairs: Vec<_> = http::query_pairs(head.query()).collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match signer.check(&target.room, target.id, value("exp"), value("sig")) {
        Ok(()) => Ok(()),
        Err(Refusal::NoKey) => Err(failure(
            503,
            "file URLs cannot be checked yet; retry later\n",
            &[("Retry-After", RETRY_AFTER)],
        )),
        Err(refusal) => {
            log::debug!(
                "event=file_refused room={:?} id={} reason={}",
                target.room,
                target.id,
                refusal.as_str()
            );
            let why = match refusal {
                Refusal::Expired => "this file URL has expired; ask for a fresh one\n",
                _ => "this file URL is not one the server gave out\n",
            };
            Err(failure(403, why, &[]))
        }
    }
}

/// Charges `bytes` to the outbound share for a download, or says the
/// server is too busy sending to take it now.
fn charge(share: &Arc<Share>, target: &Target, bytes: u64) -> Result<Charge, ErrorPage> {
    let taken = usize::try_from(bytes)
        .ok()
        .and_then(|bytes| Charge::take(share, bytes));
    taken.ok_or_else(|| {
        busy(target, bytes);
        failure(
            503,
            "the server is sending too much at the moment; retry shortly\n",
            &[("Retry-After", "1")],
        )
    })
}

/// The file's meta (no bytes), if there is one by that name.
fn read_meta(source: &Source, target: &Target) -> Result<Option<StoredFile>, ErrorPage> {
    match source.meta(&target.room, target.id) {
        Ok(file) => Ok(file.filter(|f| f.name == target.name)),
        Err(e) => {
            complain(target, &*e);
            Err(unreadable())
        }
    }
}

fn unreadable() -> ErrorPage {
    failure(
        503,
        "the history store cannot be read; retry later\n",
        &[("Retry-After", RETRY_AFTER)],
    )
}

fn changed() -> ErrorPage {
    // Another file under the same address between two reads: a database
    // put in this one's place. The next request sees only it.
    failure(
        503,
        "the file changed while it was read\n",
        &[("Retry-After", "1")],
    )
}

/// Where stored files are read from: the embedded database, or Redis when
/// instances share rooms. Cheap to clone.
#[derive(Clone)]
pub enum Source {
    Store(Reader),
    Redis(crate::history::redis::Files),
}

impl From<Reader> for Source {
    fn from(reader: Reader) -> Source {
        Source::Store(reader)
    }
}

impl Source {
    /// File `id` of `room`, without its bytes.
    fn meta(&self, room: &str, id: u64) -> Result<Option<StoredFile>, Box<dyn std::error::Error>> {
        match self {
            Source::Store(reader) => Ok(reader.read_range(room, id, 0, 0)?),
            Source::Redis(files) => Ok(files.meta(room, id)?),
        }
    }
}

/// Logs a download refused for the outbound share being full, at most
/// once a second, as [`complain`] does.
fn busy(target: &Target, bytes: u64) {
    if let Some(left_out) = LOG_BUSY.allow() {
        log::warn!(
            "event=budget_full share=outbound room={:?} id={} bytes={bytes} left_out={left_out} msg=\"download refused\"",
            target.room,
            target.id
        );
    }
}

/// Logs a failed read, at most once a second (the next line says how many
/// were left out), so that a broken disk does not fill the log.
fn complain(target: &Target, e: &dyn std::error::Error) {
    let Some(left_out) = LOG_STORE.allow() else {
        return;
    };
    log::error!(
        "event=store_error op=file room={:?} id={} error={:?} left_out={left_out}",
        target.room,
        target.id,
        e.to_string()
    );
}

/// Lets a kind of log line through at most once a second.
struct Throttle(Mutex<(Option<Instant>, u64)>);

static LOG_STORE: Throttle = Throttle(Mutex::new((None, 0)));
static LOG_BUSY: Throttle = Throttle(Mutex::new((None, 0)));

impl Throttle {
    /// `Some(lines left out since the last one)` if a line may be logged now.
    fn allow(&self) -> Option<u64> {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last
            .0
            .is_some_and(|t| now.duration_since(t) < COMPLAINT_INTERVAL)
        {
            last.1 += 1;
            return None;
        }
        last.0 = Some(now);
        Some(std::mem::take(&mut last.1))
    }
}

/// A strong tag for the file's content. Ids start again at 1 in a new
/// database, so the tag covers when the file was sent and its size too.
fn etag(target: &Target, file: &StoredFile) -> String {
    let key = format!(
        "{}:{}{}:{}:{}:{}",
        target.room.len(),
        target.room,
        target.id,
        file.ts,
        file.size,
        file.name
    );
    http::etag(key.as_bytes())
}

/// The image type to show the file inline as, if it may be: its mime is
/// one of [`INLINE`] (parameters and case aside) and its name has no
/// extension or one of that type's.
fn inline_type(mime: &str, name: &str) -> Option<&'static str> {
    let essence = mime.split(';').next().unwrap_or("").trim();
    let (kind, extensions) = INLINE
        .iter()
        .find(|(kind, _)| kind.eq_ignore_ascii_case(essence))?;
    match name.rsplit_once('.') {
        None => Some(kind),
        Some((_, ext)) => extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case(ext))
            .then_some(kind),
    }
}

/// `Content-Disposition` with the name twice: as printable ASCII for old
/// clients (anything else, `"`, `\` and `%` become `_`), and whole in
/// UTF-8 (RFC 6266, RFC 8187).
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let plain: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut utf8 = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            utf8.push(char::from(b));
        } else {
            utf8.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{plain}\"; filename*=UTF-8''{utf8}")
}

/// What a request's `Range` asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// No range, one that is ignored (malformed, another unit, several
    /// ranges, an `If-Range` that is not the current tag): the whole file.
    Whole,
    /// Bytes `start..=end`, within the file.
    Part { start: u64, end: u64 },
    /// A range that begins past the end (or asks for no bytes): 416.
    Unsatisfiable,
}

fn range(head: &Head, size: u64, etag: &str) -> Span {
    let mut ranges = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Range"));
    let (Some((_, value)), None) = (ranges.next(), ranges.next()) else {
        return Span::Whole;
    };
    // A range of another version of the file would be wrong: send it all.
    // Only a strong tag matches, and dates are not kept.
    if head
        .header("If-Range")
        .is_some_and(|tag| tag.trim() != etag)
    {
        return Span::Whole;
    }
    parse_range(value, size)
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` (RFC 9110, 14.1.2).
fn parse_range(value: &str, size: u64) -> Span {
    let Some((unit, spec)) = value.split_once('=') else {
        return Span::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Span::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Span::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    // Digits too many for a u64 are still a number: a very large one.
    let number = |s: &str| all_digits(s).then(|| s.parse().unwrap_or(u64::MAX));
    if first.is_empty() {
        return match number(last) {
            None => Span::Whole,
            Some(0) => Span::Unsatisfiable,
            Some(_) if size == 0 => Span::Unsatisfiable,
            Some(n) => Span::Part {
                start: size - n.min(size),
                end: size - 1,
            },
        };
    }
    let Some(start) = number(first) else {
        return Span::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return Span::Whole,
        }
    };
    if start >= size {
        return Span::Unsatisfiable;
    }
    Span::Part {
        start,
        end: end.min(size - 1),
    }
}

/// A response whose `Content-Length` says `length`: `body`'s length for a
/// GET; what a GET's would be for a HEAD or a 304, which have no body.
fn sized(status: u16, length: u64, headers: &[(&str, &str)]) -> Response<Cursor<Vec<u8>>> {
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
        .collect();
    Response::new(
        StatusCode(status),
        headers,
        Cursor::new(Vec::new()),
        Some(length),
        None,
    )
}

fn not_found() -> ErrorPage {
    failure(404, "no such file\n", &[])
}

/// An error in plain text, never stored by a cache: the file may come back
/// (a store that could not be read) or be another one (a new database).
fn failure(status: u16, body: &str, extra: &[(&str, &str)]) -> ErrorPage {
    let mut headers = vec![
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ];
    headers.extend_from_slice(extra);
    Box::new(http::error_response(status, body, &headers))
}

#[cfg(test)]
mod tests;
