//! Downloads refused: files not found, URLs not signed by this server, a
//! store that cannot be read, and an outbound share that is full.

use super::*;
use crate::testing::bytes;

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
