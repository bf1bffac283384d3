//! Ranges and validators: partial content, unsatisfiable ranges,
//! If-Range, If-None-Match and the tag a file carries.

use super::*;
use crate::testing::bytes;

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
