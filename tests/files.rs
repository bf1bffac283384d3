//! `GET /files/ROOM/ID/NAME`: files sent in a room, downloaded over HTTP
//! from the history store, before and after a restart.

mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::*;

const BIG: usize = 5 * 1024 * 1024;

/// The files alice sends: name, mime, bytes.
fn files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(bytes(2000, 3));
    vec![
        ("big.bin", "application/octet-stream", bytes(BIG, 1)),
        (
            "page.html",
            "text/html",
            b"<!doctype html><script>alert(document.cookie)</script>".to_vec(),
        ),
        (
            "logo.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
        ("cat #1 ü.png", "image/png", png),
    ]
}

/// Sends a file as a v1 client and waits for its acknowledgement, which
/// comes once the file is stored.
fn send_file(ws: &mut Client, name: &str, mime: &str, data: &[u8]) -> Value {
    send_json(
        ws,
        json!({"type": "file", "name": name, "size": data.len(), "mime": mime}),
    );
    send_binary(ws, data.to_vec());
    let ack = expect_type(ws, "file");
    assert_eq!(ack["name"], name, "{ack}");
    ack
}

/// Joins room `r` as `name` and reads the replay of `count` files: each
/// file's url by its name.
fn replayed_urls(server: &Server, name: &str, count: usize) -> HashMap<String, String> {
    let mut ws = join_v1(server, "r", name);
    (0..count)
        .map(|_| {
            let f = expect_type(&mut ws, "file");
            assert_eq!(f["replay"], true, "{f}");
            let url = f["url"]
                .as_str()
                .unwrap_or_else(|| panic!("a replayed file without a url: {f}"));
            let name = f["name"].as_str().unwrap();
            (name.to_owned(), url.to_owned())
        })
        .collect()
}

fn request(server: &Server, method: &str, path: &str, extra: &[&str]) -> String {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.addr
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text + "\r\n"
}

fn get(server: &Server, path: &str, extra: &[&str]) -> HttpResponse {
    http_request(&server.addr, &request(server, "GET", path, extra))
}

/// A HEAD's answer: its status line and headers, and whatever followed
/// them before the server closed (nothing, if all is well).
fn head(server: &Server, path: &str, extra: &[&str]) -> (u16, Vec<(String, String)>, String) {
    let raw = http_raw(&server.addr, &request(server, "HEAD", path, extra));
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a whole head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    (status.parse().unwrap(), headers, rest.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What every file is sent with.
fn assert_file_headers(got: &HttpResponse, what: &str) {
    assert_eq!(
        got.header("X-Content-Type-Options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        got.header("Content-Security-Policy"),
        Some("default-src 'none'; sandbox"),
        "{what}"
    );
    assert_eq!(got.header("Accept-Ranges"), Some("bytes"), "{what}");
    assert!(got.header("ETag").is_some(), "{what}: no ETag");
    assert_eq!(
        got.header("Cache-Control"),
        Some("private, max-age=31536000, immutable"),
        "{what}"
    );
}

#[test]
fn files_sent_in_a_room_are_served_from_the_store_across_a_restart() {
    let dir = TempDir::new("files");
    let db = dir.path.join("history.db");
    let db = db.to_str().unwrap();
    let server = Server::start(&["--db", db]);
    let files = files();
    let mut alice = join_v1(&server, "r", "alice");
    let mut ids = HashMap::new();
    for (name, mime, data) in &files {
        let ack = send_file(&mut alice, name, mime, data);
        ids.insert(*name, ack["id"].as_u64().expect("an id"));
    }

    let urls = replayed_urls(&server, "bob", files.len());
    let path = |url: &str| url.split_once('?').expect("a signed url").0.to_owned();
    assert_eq!(
        path(&urls["big.bin"]),
        format!("/files/r/{}/big.bin", ids["big.bin"])
    );
    assert_eq!(
        path(&urls["cat #1 ü.png"]),
        format!("/files/r/{}/cat%20%231%20%C3%BC.png", ids["cat #1 ü.png"])
    );
    // Without a secret the URL does not expire, but it cannot be guessed:
    // the bare path is refused.
    let query = urls["big.bin"].split_once('?').unwrap().1.to_owned();
    assert!(
        query.starts_with("sig=") && !query.contains("exp="),
        "{query}"
    );
    assert_eq!(
        http_fetch(&server.addr, &path(&urls["big.bin"])).status,
        403
    );

    // Byte for byte, with the headers that keep a file from acting as a page.
    let big_url = &urls["big.bin"];
    let big = http_fetch(&server.addr, big_url);
    assert_eq!(big.status, 200, "{:?}", big.headers);
    assert!(big.body == files[0].2, "big.bin differs");
    assert_eq!(big.header("Content-Length"), Some(BIG.to_string().as_str()));
    assert_eq!(big.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(
        big.header("Content-Disposition"),
        Some("attachment; filename=\"big.bin\"; filename*=UTF-8''big.bin")
    );
    assert_file_headers(&big, "big.bin");
    let etag = big.header("ETag").unwrap().to_owned();

    for (name, mime, data) in &files[1..] {
        let got = http_fetch(&server.addr, &urls[*name]);
        assert_eq!(got.status, 200, "{name}");
        assert!(got.body == *data, "{name} differs");
        assert_file_headers(&got, name);
        let disposition = got.header("Content-Disposition").unwrap();
        if *mime == "image/png" {
            assert_eq!(got.header("Content-Type"), Some("image/png"));
            assert!(disposition.starts_with("inline; "), "{disposition}");
        } else {
            // HTML and SVG would run scripts: never inline, never their type.
            assert_eq!(got.header("Content-Type"), Some("application/octet-stream"));
            assert!(disposition.starts_with("attachment; "), "{disposition}");
        }
    }

    // Ranges, read without the rest of the file.
    let part = get(&server, big_url, &["Range: bytes=1000-1999"]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("Content-Range"),
        Some(format!("bytes 1000-1999/{BIG}").as_str())
    );
    assert!(part.body == files[0].2[1000..2000]);
    let tail = get(&server, big_url, &["Range: bytes=-100"]);
    assert_eq!(tail.status, 206);
    assert!(tail.body == files[0].2[BIG - 100..]);
    let from = get(&server, big_url, &[&format!("Range: bytes={}-", BIG - 10)]);
    assert_eq!(from.status, 206);
    assert!(from.body == files[0].2[BIG - 10..]);
    let past = get(&server, big_url, &[&format!("Range: bytes={BIG}-")]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("Content-Range"),
        Some(format!("bytes */{BIG}").as_str())
    );

    // The client's copy is current: 304 without a body.
    let cached = get(&server, big_url, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    // HEAD: the headers alone.
    let (status, headers, rest) = head(&server, big_url, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "Content-Length"),
        Some(BIG.to_string().as_str())
    );
    assert_eq!(header(&headers, "ETag"), Some(etag.as_str()));
    assert!(rest.is_empty(), "a HEAD answered with {} bytes", rest.len());

    // A name that is not the file's does not find it; the signature of
    // one file opens no other.
    let wrong = format!("/files/r/{}/big.html?{query}", ids["big.bin"]);
    assert_eq!(http_fetch(&server.addr, &wrong).status, 404);
    let unknown = format!("/files/r/{}/big.bin?{query}", ids["big.bin"] + 100);
    assert_eq!(http_fetch(&server.addr, &unknown).status, 403);
    let other = format!("/files/r/{}/page.html?{query}", ids["page.html"]);
    assert_eq!(http_fetch(&server.addr, &other).status, 403);
    assert_eq!(http_fetch(&server.addr, "/files/r/x/big.bin").status, 400);

    // The same URLs serve the same bytes after a restart.
    drop(alice);
    server.terminate();
    let server = Server::start(&["--db", db]);
    let again = http_fetch(&server.addr, big_url);
    assert_eq!(again.status, 200);
    assert!(again.body == files[0].2, "big.bin differs after a restart");
    assert_eq!(again.header("ETag"), Some(etag.as_str()));
    assert_eq!(replayed_urls(&server, "carol", files.len()), urls);
    let part = get(&server, big_url, &["Range: bytes=5000-5099"]);
    assert_eq!(part.status, 206);
    assert!(part.body == files[0].2[5000..5100]);
}
