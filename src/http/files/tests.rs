//! Tests of serving downloads: paths, signatures, ranges, and the
//! outbound share.

use std::io::Read;
use std::net::TcpListener;

use tungstenite::Bytes;

use super::*;
use crate::history::sqlite::tests::{Running, TempDb, WAIT};
use crate::history::sqlite::{self, Body, Options, Record};
use crate::proto::capability::url;

/// When the test files were sent.
const TS: u64 = 1_700_000_000_000;

/// A store on a temporary file, its thread running.
struct Fixture {
    downloads: Downloads,
    store: Option<Running>,
    _db: TempDb,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        Fixture::with_bytes(tag, 1 << 30)
    }

    fn with_bytes(tag: &str, retain_bytes: u64) -> Fixture {
        let db = TempDb::new(&format!("files-{tag}"));
        let store = sqlite::open(&Options {
            path: db.path(),
            retain_messages: 1000,
            retain_bytes,
            fsync: false,
        })
        .unwrap();
        Fixture {
            downloads: downloads(store.reader().into()),
            store: Some(Running::start(store)),
            _db: db,
        }
    }

    fn append(&self, record: Record, data: Option<Bytes>) -> bool {
        self.store.as_ref().expect("running").append(record, data)
    }

    /// Stores a file sent at `ts`.
    fn put_at(&self, room: &str, id: u64, name: &str, mime: &str, data: &[u8], ts: u64) {
        let record = Record {
            room: room.to_owned(),
            id,
            from: "ada".to_owned(),
            ts,
            cid: None,
            body: Body::File {
                name: name.to_owned(),
                size: data.len() as u64,
                mime: mime.to_owned(),
                available: true,
            },
        };
        assert!(self.append(record, Some(Bytes::copy_from_slice(data))));
    }

    fn put(&self, room: &str, id: u64, name: &str, mime: &str, data: &[u8]) {
        self.put_at(room, id, name, mime, data, TS + id);
    }

    /// Answers `method path` with these extra header lines, over a real
    /// socket.
    fn request(&self, method: &str, path: &str, extra: &[&str]) -> Answer {
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: chat.test\r\n");
        for line in extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        let (head, _) = http::parse_head(text.as_bytes()).unwrap().unwrap();
        answer_over_socket(&self.downloads, &head)
    }

    /// `request`, with the URL signed first, as the server gives it out.
    fn signed(&self, method: &str, path: &str, extra: &[&str]) -> Answer {
        self.request(method, &sign(&self.downloads.signer, path), extra)
    }

    /// A GET of `path`, signed.
    fn get(&self, path: &str, extra: &[&str]) -> Answer {
        self.signed("GET", path, extra)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.stop();
        }
    }
}

/// A response as the client read it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} twice: {self:?}");
        first
    }

    fn content_length(&self) -> u64 {
        self.header("Content-Length")
            .expect("a Content-Length")
            .parse()
            .unwrap()
    }
}

/// Writes the answer to `head` through [`serve`] into a socket and reads
/// it from the other end, up to the close.
fn answer_over_socket(reader: &Downloads, head: &Head) -> Answer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut raw = Vec::new();
    std::thread::scope(|s| {
        s.spawn(move || {
            serve(&server, head, reader).unwrap();
        });
        client.read_to_end(&mut raw).unwrap();
    });
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let text = std::str::from_utf8(&raw[..end]).expect("an ASCII head");
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    Answer {
        status: status.parse().unwrap(),
        headers: lines
            .map(|l| l.split_once(": ").expect("a header line"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        body: raw[end + 4..].to_vec(),
    }
}

/// What serving needs, around `source`: a signer with a fixed key, and
/// an outbound share that is never full.
fn downloads(source: Source) -> Downloads {
    Downloads {
        source,
        signer: Signer::with_key([9; 32]),
        outbound: Share::new("outbound", 1 << 30),
    }
}

/// `path` with its signature added to its query, if it is a file's.
fn sign(signer: &Signer, path: &str) -> String {
    let (bare, query) = path.split_once('?').unwrap_or((path, ""));
    let Some(target) = parse(bare) else {
        return path.to_owned();
    };
    let sig = signer.query(&target.room, target.id).unwrap();
    if query.is_empty() {
        format!("{bare}?{sig}")
    } else {
        format!("{bare}?{query}&{sig}")
    }
}

use crate::testing::{bytes, xorshift};

#[test]
fn a_whole_file_byte_for_byte_with_its_headers() {
    let fx = Fixture::new("whole");
    let data = bytes(300_000, 7);
    fx.put("lobby", 3, "report.bin", "application/octet-stream", &data);
    let got = fx.get(&url("lobby", 3, "report.bin"), &[]);
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body == data, "bytes differ");
    assert_eq!(got.content_length(), data.len() as u64);
    assert_eq!(got.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(
        got.header("Content-Disposition"),
        Some("attachment; filename=\"report.bin\"; filename*=UTF-8''report.bin")
    );
    assert_eq!(got.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(
        got.header("Content-Security-Policy"),
        Some("default-src 'none'; sandbox")
    );
    assert_eq!(
        got.header("Cache-Control"),
        Some("private, max-age=31536000, immutable")
    );
    assert_eq!(got.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(got.header("Content-Range"), None);
    let etag = got.header("ETag").expect("an ETag");
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    // The same file has the same tag every time.
    let again = fx.get(&url("lobby", 3, "report.bin"), &[]);
    assert_eq!(again.header("ETag"), Some(etag));
}

#[test]
fn head_has_the_headers_and_no_body() {
    let fx = Fixture::new("head");
    let data = bytes(70_000, 8);
    fx.put("lobby", 1, "a.bin", "application/zip", &data);
    let path = url("lobby", 1, "a.bin");
    let get = fx.get(&path, &[]);
    let head = fx.signed("HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{} bytes", head.body.len());
    assert_eq!(head.content_length(), data.len() as u64);
    for name in [
        "ETag",
        "Content-Type",
        "Content-Disposition",
        "Cache-Control",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Accept-Ranges",
    ] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    let ranged = fx.signed("HEAD", &path, &["Range: bytes=10-19"]);
    assert_eq!(ranged.status, 206);
    assert!(ranged.body.is_empty());
    assert_eq!(ranged.content_length(), 10);
    assert_eq!(ranged.header("Content-Range"), Some("bytes 10-19/70000"));
    assert_eq!(fx.signed("HEAD", "/files/lobby/2/a.bin", &[]).status, 404);
}

#[test]
fn only_raster_images_are_inline() {
    let fx = Fixture::new("inline");
    let cases = [
        ("cat.png", "image/png", Some("image/png")),
        ("Cat.PNG", "Image/PNG; x=y", Some("image/png")),
        ("cat", "image/png", Some("image/png")),
        ("photo.jpg", "image/jpeg", Some("image/jpeg")),
        ("photo.jpeg", "image/jpeg", Some("image/jpeg")),
        ("anim.gif", "image/gif", Some("image/gif")),
        ("pic.webp", "image/webp", Some("image/webp")),
        ("page.html", "text/html", None),
        ("page.html", "text/html; charset=utf-8", None),
        ("logo.svg", "image/svg+xml", None),
        ("page.html", "image/png", None),
        ("page.htm", "image/png", None),
        ("logo.svg", "image/png", None),
        ("photo.png", "image/jpeg", None),
        ("cat.png", "image/x-png", None),
        ("cat.png", "application/octet-stream", None),
        ("notes.txt", "text/plain", None),
        ("icon.ico", "image/x-icon", None),
        ("script.js", "text/javascript", None),
        ("cat.png", "", None),
    ];
    for (i, (name, mime, inline)) in cases.iter().enumerate() {
        let id = i as u64 + 1;
        fx.put(
            "r",
            id,
            name,
            mime,
            b"\x89PNG\r\n\x1a\n<html><script>1</script>",
        );
        let got = fx.get(&url("r", id, name), &[]);
        assert_eq!(got.status, 200, "{name} {mime}");
        let disposition = got.header("Content-Disposition").unwrap();
        match inline {
            Some(kind) => {
                assert_eq!(got.header("Content-Type"), Some(*kind), "{name} {mime}");
                assert!(disposition.starts_with("inline; "), "{name} {mime}");
            }
            None => {
                assert_eq!(
                    got.header("Content-Type"),
                    Some("application/octet-stream"),
                    "{name} {mime}"
                );
                assert!(disposition.starts_with("attachment; "), "{name} {mime}");
            }
        }
        assert_eq!(got.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(
            got.header("Content-Security-Policy"),
            Some("default-src 'none'; sandbox")
        );
    }
}

#[test]
fn names_in_content_disposition() {
    assert_eq!(
        disposition(false, "a \"b\"\\ é%.png"),
        "attachment; filename=\"a _b__ __.png\"; \
         filename*=UTF-8''a%20%22b%22%5C%20%C3%A9%25.png"
    );
    assert_eq!(
        disposition(true, "日本.png"),
        "inline; filename=\"__.png\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png"
    );
    // Nothing that could end the header or start another.
    let odd = disposition(false, "a\r\nSet-Cookie: x=1;\t\u{7f}.txt");
    assert!(odd.bytes().all(|b| (0x20..0x7f).contains(&b)), "{odd:?}");
    assert!(odd.starts_with("attachment; filename=\"a__Set-Cookie: x=1;__.txt\"; "));
    let fx = Fixture::new("names");
    let name = "résumé \"final\" 100%.pdf";
    fx.put("r", 1, name, "application/pdf", b"%PDF");
    let got = fx.get(&url("r", 1, name), &[]);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("Content-Disposition"),
        Some(disposition(false, name).as_str())
    );
}

#[test]
fn ranges() {
    let fx = Fixture::new("ranges");
    let data = bytes(100_000, 9);
    fx.put("r", 1, "v.bin", "application/octet-stream", &data);
    let path = url("r", 1, "v.bin");
    let etag = fx.get(&path, &[]).header("ETag").unwrap().to_owned();
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=10-19", 10, 19),
        ("bytes=0-0", 0, 0),
        ("bytes=99999-", 99_999, 99_999),
        ("bytes=500-", 500, 99_999),
        ("bytes=-10", 99_990, 99_999),
        ("bytes=-100000", 0, 99_999),
        ("bytes=-999999", 0, 99_999),
        ("bytes=90000-200000", 90_000, 99_999),
        ("bytes=0-99999999999999999999999", 0, 99_999),
        ("Bytes = 5 - 6", 5, 6),
    ];
    for (range, start, end) in cases {
        let got = fx.get(&path, &[&format!("Range: {range}")]);
        assert_eq!(got.status, 206, "{range}: {got:?}");
        assert_eq!(
            got.header("Content-Range"),
            Some(format!("bytes {start}-{end}/100000").as_str()),
            "{range}"
        );
        assert!(got.body == data[*start..=*end], "{range}: bytes differ");
        assert_eq!(got.content_length(), (end - start + 1) as u64);
        assert_eq!(got.header("ETag"), Some(etag.as_str()));
        assert_eq!(got.header("Accept-Ranges"), Some("bytes"));
        assert_eq!(got.header("Content-Type"), Some("application/octet-stream"));
    }
    // Several ranges, malformed ones and other units get the whole file.
    for range in [
        "bytes=0-1,5-6",
        "bytes=5-1",
        "bytes=a-b",
        "bytes=-",
        "bytes=1",
        "bytes=+1-2",
        "bytes=-+1",
        "items=0-1",
        "0-1",
        "bytes=1-2-3",
    ] {
        let got = fx.get(&path, &[&format!("Range: {range}")]);
        assert_eq!(got.status, 200, "{range}");
        assert!(got.body == data, "{range}: bytes differ");
        assert_eq!(got.header("Content-Range"), None);
    }
    let two = fx.get(&path, &["Range: bytes=0-1", "Range: bytes=2-3"]);
    assert_eq!((two.status, two.body.len()), (200, data.len()));
    // If-Range: the range only of the version the client has.
    let same = fx.get(&path, &["Range: bytes=1-2", &format!("If-Range: {etag}")]);
    assert_eq!((same.status, &same.body[..]), (206, &data[1..=2]));
    for other in ["\"0000\"", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let got = fx.get(&path, &["Range: bytes=1-2", &format!("If-Range: {other}")]);
        assert_eq!((got.status, got.body.len()), (200, data.len()), "{other}");
    }
    let weak = fx.get(&path, &["Range: bytes=1-2", &format!("If-Range: W/{etag}")]);
    assert_eq!(weak.status, 200);
}

#[test]
fn unsatisfiable_ranges_get_416() {
    let fx = Fixture::new("416");
    let data = bytes(1000, 10);
    fx.put("r", 1, "v.bin", "application/octet-stream", &data);
    fx.put("r", 2, "empty.bin", "application/octet-stream", b"");
    for (id, name, range, size) in [
        (1, "v.bin", "bytes=1000-", 1000),
        (1, "v.bin", "bytes=1000-2000", 1000),
        (1, "v.bin", "bytes=-0", 1000),
        (1, "v.bin", "bytes=99999999999999999999999-", 1000),
        (2, "empty.bin", "bytes=0-", 0),
        (2, "empty.bin", "bytes=-5", 0),
    ] {
        let got = fx.get(&url("r", id, name), &[&format!("Range: {range}")]);
        assert_eq!(got.status, 416, "{range}: {got:?}");
        assert_eq!(
            got.header("Content-Range"),
            Some(format!("bytes */{size}").as_str()),
            "{range}"
        );
    }
    let empty = fx.get(&url("r", 2, "empty.bin"), &[]);
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    assert_eq!(empty.content_length(), 0);
}

#[test]
fn a_current_copy_gets_304() {
    let fx = Fixture::new("304");
    let data = bytes(5000, 11);
    fx.put("r", 1, "cat.png", "image/png", &data);
    let path = url("r", 1, "cat.png");
    let etag = fx.get(&path, &[]).header("ETag").unwrap().to_owned();
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        for method in ["GET", "HEAD"] {
            let got = fx.signed(method, &path, &[&format!("If-None-Match: {inm}")]);
            assert_eq!(got.status, 304, "{method} {inm}");
            assert!(got.body.is_empty());
            assert_eq!(got.header("ETag"), Some(etag.as_str()));
            assert_eq!(
                got.header("Cache-Control"),
                Some("private, max-age=31536000, immutable")
            );
        }
    }
    // A 304 wins over a range.
    let ranged = fx.get(
        &path,
        &[&format!("If-None-Match: {etag}"), "Range: bytes=0-1"],
    );
    assert_eq!(ranged.status, 304);
    let stale = fx.get(&path, &["If-None-Match: \"0123456789abcdef\""]);
    assert_eq!(stale.status, 200);
    assert!(stale.body == data);
}

#[test]
fn the_tag_changes_with_a_new_database_reusing_the_id() {
    let first = Fixture::new("epoch1");
    let second = Fixture::new("epoch2");
    first.put_at("r", 1, "a.bin", "application/octet-stream", b"one", TS);
    second.put_at("r", 1, "a.bin", "application/octet-stream", b"two", TS + 1);
    let path = url("r", 1, "a.bin");
    let (a, b) = (first.get(&path, &[]), second.get(&path, &[]));
    assert_eq!((a.status, b.status), (200, 200));
    assert_ne!(a.header("ETag"), b.header("ETag"));
    let etag = a.header("ETag").unwrap();
    let got = second.get(&path, &[&format!("If-None-Match: {etag}")]);
    assert_eq!((got.status, &got.body[..]), (200, &b"two"[..]));
}

#[test]
fn wrong_names_ids_and_rooms_are_not_found() {
    let fx = Fixture::with_bytes("404", 1500);
    // Announced but larger than all the bytes kept: not stored.
    fx.put(
        "r",
        1,
        "big.bin",
        "application/octet-stream",
        &bytes(2000, 1),
    );
    let message = Record {
        room: "r".to_owned(),
        id: 2,
        from: "ada".to_owned(),
        ts: TS,
        cid: None,
        body: Body::Text("hello".to_owned()),
    };
    assert!(fx.append(message, None));
    fx.put("r", 3, "cat.png", "image/png", b"meow");
    assert_eq!(fx.get(&url("r", 3, "cat.png"), &[]).status, 200);
    for path in [
        url("r", 3, "dog.png"),
        url("r", 3, "Cat.png"),
        url("r", 3, "cat.png.html"),
        url("r", 3, "cat.png "),
        url("r", 2, "cat.png"),
        url("r", 2, "hello"),
        url("r", 1, "big.bin"),
        url("r", 4, "cat.png"),
        url("R", 3, "cat.png"),
        url("other", 3, "cat.png"),
        url("r", u64::MAX, "cat.png"),
    ] {
        let got = fx.get(&path, &[]);
        assert_eq!(got.status, 404, "{path}");
        assert_eq!(got.header("Cache-Control"), Some("no-store"), "{path}");
        assert_eq!(
            got.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(fx.signed("HEAD", &path, &[]).status, 404, "{path}");
    }
    // Once evicted, a file that was there is not found either.
    fx.put("r", 5, "a.bin", "application/octet-stream", &bytes(600, 2));
    assert_eq!(fx.get(&url("r", 5, "a.bin"), &[]).status, 200);
    fx.put("r", 6, "b.bin", "application/octet-stream", &bytes(600, 3));
    assert_eq!(fx.get(&url("r", 5, "a.bin"), &[]).status, 404);
    assert_eq!(fx.get(&url("r", 6, "b.bin"), &[]).status, 200);
}

#[test]
fn malformed_paths_are_bad_requests() {
    let fx = Fixture::new("400");
    fx.put("r", 1, "a.bin", "application/octet-stream", b"x");
    for path in [
        "/files/",
        "/files/r",
        "/files/r/",
        "/files/r/1",
        "/files/r/1/",
        "/files/r/1/a.bin/",
        "/files/r/1/a.bin/x",
        "/files//1/a.bin",
        "/files/r//a.bin",
        "/files/r/01/a.bin",
        "/files/r/0/a.bin",
        "/files/r/-1/a.bin",
        "/files/r/+1/a.bin",
        "/files/r/1.0/a.bin",
        "/files/r/%31/a.bin",
        "/files/r/x/a.bin",
        "/files/r/99999999999999999999/a.bin",
        "/files/r/1/%zz",
        "/files/r/1/%",
        "/files/r/1/a%2",
        "/files/r/1/%ff",
        "/files/%c3/1/a.bin",
        "/files/r/1/%00",
    ] {
        let got = fx.get(path, &[]);
        let expected = if path == "/files/r/1/%00" { 404 } else { 400 };
        assert_eq!(got.status, expected, "{path}");
    }
    // The query is not part of the path.
    assert_eq!(fx.get("/files/r/1/a.bin?download=1", &[]).status, 200);
    let post = fx.signed("POST", "/files/r/1/a.bin", &[]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn unsigned_tampered_and_foreign_urls_are_forbidden() {
    let fx = Fixture::new("403");
    fx.put("r", 1, "a.bin", "application/octet-stream", b"secret");
    fx.put("r", 2, "b.bin", "application/octet-stream", b"other");
    let good = sign(&fx.downloads.signer, &url("r", 1, "a.bin"));
    assert_eq!(fx.request("GET", &good, &[]).status, 200);
    let sig = good.split_once("sig=").unwrap().1;
    let mut flipped = sig.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for path in [
        url("r", 1, "a.bin"),
        format!("{}?sig=", url("r", 1, "a.bin")),
        format!("{}?sig={flipped}", url("r", 1, "a.bin")),
        format!("{}?sig={sig}", url("r", 2, "b.bin")),
        format!("{}?sig={sig}", url("R", 1, "a.bin")),
        format!("{}?sig={}", url("r", 1, "a.bin"), &sig[..32]),
        format!("{}?exp=99999999999&sig={sig}", url("r", 1, "a.bin")),
    ] {
        for method in ["GET", "HEAD"] {
            let got = fx.request(method, &path, &[]);
            assert_eq!(got.status, 403, "{method} {path}");
            assert_eq!(got.header("Cache-Control"), Some("no-store"));
            assert!(got.header("ETag").is_none(), "{path}");
        }
    }
    // Another server's key signs nothing here.
    let other = Signer::with_key([8; 32]);
    let foreign = sign(&other, &url("r", 1, "a.bin"));
    assert_eq!(fx.request("GET", &foreign, &[]).status, 403);
}

#[test]
fn a_download_holds_one_chunk_of_the_outbound_share() {
    let mut fx = Fixture::new("share");
    let data = bytes(5 * CHUNK as usize + 17, 13);
    fx.put("r", 1, "big.bin", "application/octet-stream", &data);
    fx.put("r", 2, "small.bin", "application/octet-stream", b"tiny");
    // Room for one chunk and a little: a whole file could never fit.
    fx.downloads.outbound = Share::new("outbound", CHUNK as usize + 100);
    let path = url("r", 1, "big.bin");
    let got = fx.get(&path, &[]);
    assert_eq!(got.status, 200);
    assert!(got.body == data, "bytes differ");
    assert_eq!(fx.downloads.outbound.used(), 0, "all given back");
    let part = fx.get(&path, &["Range: bytes=70000-200000"]);
    assert_eq!(part.status, 206);
    assert!(part.body == data[70000..=200000], "bytes differ");
    // A share already full: the client is asked to come back.
    assert!(fx.downloads.outbound.try_take(200));
    let busy = fx.get(&path, &[]);
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.header("Retry-After"), Some("1"));
    // What needs no bytes held still works.
    assert_eq!(fx.signed("HEAD", &path, &[]).status, 200);
    assert_eq!(fx.get(&url("r", 2, "small.bin"), &[]).status, 200);
    fx.downloads.outbound.give(200);
    assert_eq!(fx.get(&path, &[]).status, 200);
}

#[test]
fn url_round_trips() {
    let names = [
        "a b",
        "a/b",
        "../../etc/passwd",
        "100%",
        "%2F",
        "%",
        "what?",
        "#1",
        "a?b#c&d=e;f",
        "été",
        "日本語のファイル.png",
        "🐈‍⬛.gif",
        ".",
        "..",
        "...",
        ".~",
        "..~",
        "~",
        "a~b",
        "%2E%2E",
        "+plus+",
        "\\",
        "tab\there",
        "line\nbreak",
        "\u{202e}fdp.exe",
        "a.b-c_d",
    ];
    for room in names {
        for name in names {
            for id in [1, 42, u64::MAX] {
                let path = url(room, id, name);
                let target = Target {
                    room: room.to_owned(),
                    id,
                    name: name.to_owned(),
                };
                assert_eq!(parse(&path), Some(target), "{path}");
                assert!(is_files_path(&path), "{path}");
                assert!(path.is_ascii(), "{path}");
                assert!(!path.contains(['?', '#', ' ', '\\']), "{path}");
                let segments: Vec<&str> = path.split('/').collect();
                assert_eq!(segments.len(), 5, "{path}");
                assert!(
                    segments[2..]
                        .iter()
                        .all(|s| !s.is_empty() && *s != "." && *s != ".."),
                    "{path}"
                );
            }
        }
    }
    assert_eq!(url("lobby", 7, "cat.png"), "/files/lobby/7/cat.png");
    assert_eq!(url("a b", 1, "c/d"), "/files/a%20b/1/c%2Fd");
    assert_eq!(url(".", 1, ".."), "/files/.~/1/..~");
    assert_eq!(url("~", 1, "é"), "/files/%7E/1/%C3%A9");
}

#[test]
fn a_url_with_every_odd_character_serves_its_file() {
    let fx = Fixture::new("odd");
    let room = "r/ü ?#%";
    let name = "a b/c?d#e%f ü.png";
    fx.put(room, 9, name, "image/png", b"png");
    let got = fx.get(&url(room, 9, name), &[]);
    assert_eq!((got.status, &got.body[..]), (200, &b"png"[..]));
    fx.put("..", 1, ".", "text/plain", b"dots");
    let got = fx.get(&url("..", 1, "."), &[]);
    assert_eq!((got.status, &got.body[..]), (200, &b"dots"[..]));
}

#[test]
fn a_store_that_cannot_be_read_gets_503() {
    let db = TempDb::new("503");
    let store = sqlite::open(&Options {
        path: db.path(),
        retain_messages: 10,
        retain_bytes: 1 << 20,
        fsync: false,
    })
    .unwrap();
    let reader = downloads(Source::from(store.reader()));
    // The reader opens its connections when first asked; by then the
    // file is gone, and may not be created by a reader.
    db.remove();
    let path = sign(&reader.signer, "/files/r/1/a.bin");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, _) = http::parse_head(request.as_bytes()).unwrap().unwrap();
    let got = answer_over_socket(&reader, &head);
    assert_eq!(got.status, 503, "{got:?}");
    assert_eq!(got.header("Retry-After"), Some(RETRY_AFTER));
    assert_eq!(got.header("Cache-Control"), Some("no-store"));
    drop(store);
}

#[test]
fn no_input_panics() {
    let fx = Fixture::new("fuzz");
    fx.put("r", 1, "a.png", "image/png", &bytes(100, 12));
    fx.put("r", 2, "e", "", b"");
    let pieces = [
        "/files/",
        "r",
        "/",
        "1",
        "2",
        "0",
        "a.png",
        "e",
        "%",
        "%2",
        "%zz",
        "%ff",
        "%2F",
        "..",
        ".",
        "~",
        "?",
        "#",
        "é",
        "18446744073709551615",
        "18446744073709551616",
        "-",
        " ",
        "\u{0}",
    ];
    let ranges = [
        "bytes=",
        "-",
        "0",
        "99",
        "100",
        "18446744073709551615",
        "99999999999999999999",
        ",",
        " ",
        "=",
        "+",
        "a",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| (xorshift(&mut x) % n as u64) as usize;
    for _ in 0..3000 {
        let mut path = String::from("/files/");
        for _ in 0..next(8) {
            path.push_str(pieces[next(pieces.len())]);
        }
        let mut range = String::new();
        for _ in 0..next(6) {
            range.push_str(ranges[next(ranges.len())]);
        }
        let head = Head {
            method: ["GET", "HEAD", "PUT"][next(3)].to_owned(),
            target: path,
            version: 1,
            headers: vec![
                ("Host".to_owned(), "x".to_owned()),
                ("Range".to_owned(), range),
                (
                    "If-Range".to_owned(),
                    ["", "\"x\"", "*"][next(3)].to_owned(),
                ),
                (
                    "If-None-Match".to_owned(),
                    ["", "\"x\"", ","][next(3)].to_owned(),
                ),
            ],
        };
        let _ = answer(&fx.downloads, &head);
    }
    for id in [1, 2] {
        let name = if id == 1 { "a.png" } else { "e" };
        for range in ranges {
            for suffix in ranges {
                let head = Head {
                    method: "GET".to_owned(),
                    target: sign(&fx.downloads.signer, &url("r", id, name)),
                    version: 1,
                    headers: vec![("Range".to_owned(), format!("{range}{suffix}"))],
                };
                let status = answer(&fx.downloads, &head).status();
                assert!(matches!(status, 200 | 206 | 416), "{status}");
            }
        }
    }
}
