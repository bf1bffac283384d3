//! Proves the HTTP side of the port: the embedded page and its assets, 404s,
//! refusal of path escapes, `--www DIR`, a prompt answer to a plain GET of
//! /ws, HEAD without a body, ETags and `If-None-Match`, and the page's
//! security headers.

mod support;

use support::*;

fn repo_file(rel: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn content_type(r: &HttpResponse) -> String {
    r.header("content-type")
        .unwrap_or_else(|| panic!("no Content-Type in {:?}", r.headers))
        .to_ascii_lowercase()
        .replace(' ', "")
}

#[test]
fn root_serves_embedded_index_as_utf8_html() {
    let server = Server::start(&[]);
    let r = http_fetch(&server.addr, "/");
    assert_eq!(r.status, 200);
    let ct = content_type(&r);
    assert!(ct.starts_with("text/html"), "Content-Type {ct:?}");
    assert!(ct.contains("charset=utf-8"), "Content-Type {ct:?}");
    assert!(
        r.body == repo_file("www/index.html"),
        "GET / is not www/index.html"
    );
}

#[test]
fn app_js_served_with_javascript_type() {
    let server = Server::start(&[]);
    let r = http_fetch(&server.addr, "/app.js");
    assert_eq!(r.status, 200);
    let ct = content_type(&r);
    assert!(
        ct.starts_with("text/javascript") || ct.starts_with("application/javascript"),
        "Content-Type {ct:?}"
    );
    assert!(
        r.body == repo_file("www/app.js"),
        "GET /app.js is not www/app.js"
    );
}

#[test]
fn style_css_served_with_css_type() {
    let server = Server::start(&[]);
    let r = http_fetch(&server.addr, "/style.css");
    assert_eq!(r.status, 200);
    let ct = content_type(&r);
    assert!(ct.starts_with("text/css"), "Content-Type {ct:?}");
    assert!(
        r.body == repo_file("www/style.css"),
        "GET /style.css is not www/style.css"
    );
}

#[test]
fn missing_file_is_404() {
    let server = Server::start(&[]);
    for path in ["/no-such-file.txt", "/nested/missing.js", "/app.js.bak"] {
        let r = http_fetch(&server.addr, path);
        assert_eq!(r.status, 404, "GET {path}");
    }
}

const ESCAPES: &[&str] = &[
    "/../Cargo.toml",
    "/%2e%2e/Cargo.toml",
    "/%2E%2E/Cargo.toml",
    "//etc/passwd",
    "/..%2fCargo.toml",
    "/%2e%2e%2fCargo.toml",
    "/www/../../Cargo.toml",
    "/../../../../../../etc/passwd",
];

#[test]
fn path_escapes_are_404_with_embedded_page() {
    let server = Server::start(&[]);
    for path in ESCAPES {
        let r = http_fetch(&server.addr, path);
        assert_eq!(r.status, 404, "GET {path}");
        let body = r.text();
        assert!(
            !body.contains("[package]") && !body.contains("root:"),
            "GET {path} leaked a file"
        );
    }
}

#[test]
fn path_escapes_are_404_with_www_dir() {
    // root/secret.txt sits next to the served directory root/www.
    let root = TempDir::new("escape");
    let secret = root.write("secret.txt", b"TOP-SECRET");
    root.write("www/index.html", b"<!doctype html><title>t</title>");
    root.write("www/sub/ok.txt", b"fine");
    let www = root.path.join("www");
    let server = Server::start(&["--www", www.to_str().unwrap()]);
    assert_eq!(http_fetch(&server.addr, "/sub/ok.txt").status, 200);
    let absolute = format!("/{}", secret.to_str().unwrap());
    let mut paths: Vec<String> = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "//etc/passwd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    paths.push(absolute);
    for path in &paths {
        let r = http_fetch(&server.addr, path);
        assert_eq!(r.status, 404, "GET {path}");
        let body = r.text();
        assert!(
            !body.contains("TOP-SECRET") && !body.contains("root:"),
            "GET {path} leaked a file"
        );
    }
}

#[test]
fn plain_get_of_ws_is_refused_promptly() {
    // A long handshake timeout: only an active refusal can answer in time.
    let server = Server::start(&["--handshake-timeout", "60"]);
    let r = http_request(
        &server.addr,
        &format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUser-Agent: test\r\n\r\n",
            server.addr
        ),
    );
    assert!(
        r.status == 426 || r.status == 400,
        "plain GET /ws answered {}",
        r.status
    );
}

#[test]
fn plain_get_of_echo_is_refused_promptly() {
    let server = Server::start(&["--handshake-timeout", "60"]);
    let r = http_request(
        &server.addr,
        &format!("GET /echo HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
    );
    assert!(
        r.status == 426 || r.status == 400,
        "plain GET /echo answered {}",
        r.status
    );
}

#[test]
fn www_option_serves_files_from_that_dir() {
    let dir = TempDir::new("www");
    let index = b"<!doctype html><title>from disk 7f3a</title>".to_vec();
    dir.write("index.html", &index);
    dir.write("sub/note.txt", b"a note on disk");
    let server = Server::start(&["--www", dir.path.to_str().unwrap()]);

    let r = http_fetch(&server.addr, "/");
    assert_eq!(r.status, 200);
    assert!(content_type(&r).starts_with("text/html"));
    assert_eq!(r.body, index);

    let r = http_fetch(&server.addr, "/sub/note.txt");
    assert_eq!(r.status, 200);
    assert!(
        content_type(&r).starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body, b"a note on disk");

    // The embedded page's assets are not served when a directory is given.
    assert_eq!(http_fetch(&server.addr, "/app.js").status, 404);
}

#[test]
fn www_option_reads_files_at_request_time() {
    let dir = TempDir::new("www-live");
    dir.write("index.html", b"first");
    let server = Server::start(&["--www", dir.path.to_str().unwrap()]);
    assert_eq!(http_fetch(&server.addr, "/").body, b"first");
    dir.write("later.txt", b"added after start");
    let r = http_fetch(&server.addr, "/later.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"added after start");
}

/// Sends `request` and reads to the end: the head and whatever followed it.
fn raw_head_and_rest(addr: &str, request: &str) -> (String, String) {
    let raw = http_raw(addr, request);
    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head: {raw:?}"));
    (head.to_string(), rest.to_string())
}

#[test]
fn head_is_answered_with_the_headers_of_get_and_no_body() {
    let server = Server::start(&[]);
    for path in ["/", "/app.js", "/style.css", "/missing.txt", "/ws"] {
        let get = http_fetch(&server.addr, path);
        assert!(
            get.header("transfer-encoding").is_none(),
            "GET {path} is chunked: {:?}",
            get.headers
        );
        let (head, rest) = raw_head_and_rest(
            &server.addr,
            &format!("HEAD {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr),
        );
        assert!(rest.is_empty(), "HEAD {path} sent a body: {rest:?}");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {} ", get.status)),
            "HEAD {path}: {head}"
        );
        let lower = format!("{}\r\n", head.to_ascii_lowercase());
        assert!(!lower.contains("transfer-encoding"), "HEAD {path}: {head}");
        assert!(
            lower.contains(&format!("\r\ncontent-length: {}\r\n", get.body.len())),
            "HEAD {path} does not give GET's length {}: {head}",
            get.body.len()
        );
    }
}

#[test]
fn files_carry_an_etag_and_if_none_match_gets_304() {
    let server = Server::start(&[]);
    let app = http_fetch(&server.addr, "/app.js");
    let etag = app.header("etag").expect("an ETag").to_string();
    assert!(etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'));
    assert_ne!(
        http_fetch(&server.addr, "/").header("etag"),
        Some(etag.as_str())
    );
    assert_eq!(
        http_fetch(&server.addr, "/app.js").header("etag"),
        Some(etag.as_str())
    );

    let conditional = |method: &str, tags: &str| {
        raw_head_and_rest(
            &server.addr,
            &format!(
                "{method} /app.js HTTP/1.1\r\nHost: {}\r\nIf-None-Match: {tags}\r\n\r\n",
                server.addr
            ),
        )
    };
    for tags in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        for method in ["GET", "HEAD"] {
            let (head, rest) = conditional(method, &tags);
            assert!(head.starts_with("HTTP/1.1 304 "), "{method} {tags}: {head}");
            assert!(head.contains(&format!("ETag: {etag}\r\n")), "{head}");
            assert!(rest.is_empty(), "a 304 with a body: {rest:?}");
        }
    }
    let (head, rest) = conditional("GET", "\"other\"");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(rest.as_bytes(), app.body);
}

#[test]
fn a_www_file_gets_a_new_etag_when_it_changes() {
    let dir = TempDir::new("www-etag");
    dir.write("index.html", b"first");
    let server = Server::start(&["--www", dir.path.to_str().unwrap()]);
    let first = http_fetch(&server.addr, "/");
    let etag = first.header("etag").expect("an ETag").to_string();
    // The operator's own page: no policy of ours, the other headers still.
    assert!(first.header("content-security-policy").is_none());
    assert_eq!(first.header("referrer-policy"), Some("no-referrer"));
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nIf-None-Match: {etag}\r\n\r\n",
        server.addr
    );
    assert_eq!(http_request(&server.addr, &request).status, 304);
    dir.write("index.html", b"second");
    let changed = http_request(&server.addr, &request);
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body, b"second");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[test]
fn the_page_carries_security_headers() {
    let server = Server::start(&[]);
    for path in ["/", "/app.js", "/style.css"] {
        let r = http_fetch(&server.addr, path);
        let csp = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("no CSP on {path}: {:?}", r.headers));
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing from {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    }
    let missing = http_fetch(&server.addr, "/missing");
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
}
