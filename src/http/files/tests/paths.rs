//! File URLs: built and parsed back whatever the room and name, malformed
//! ones refused, and no input that makes serving panic.

use super::*;
use crate::testing::{bytes, xorshift};

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
