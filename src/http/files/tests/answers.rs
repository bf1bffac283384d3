//! What a download answers: the file byte for byte, its headers, HEAD,
//! what is shown inline and the names given for saving.

use super::*;
use crate::testing::bytes;

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
