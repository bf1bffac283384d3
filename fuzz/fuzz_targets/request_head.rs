//! `http::parse_head` on arbitrary bytes from a client, then everything the
//! server derives from a parsed head before upgrading: path and query,
//! `http::percent_decode`, `http::query_pairs`, header look-ups and the
//! Origin check. Inputs that are not a complete head still exercise
//! `percent_decode` and `query_pairs` directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wschat::http::proxy::Seen;
use wschat::http::{self, HeadError, MAX_HEAD};
use wschat::ws::handshake::{self, OriginPolicy};

fuzz_target!(|data: &[u8]| {
    match http::parse_head(data) {
        Ok(Some((head, used))) => {
            assert!(
                used > 0 && used <= data.len(),
                "used {used} of {}",
                data.len()
            );
            assert!(used <= MAX_HEAD);
            assert!(head.version <= 1, "HTTP/1.{}", head.version);
            assert!(!head.method.is_empty() && !head.target.is_empty());
            assert!(head.headers.len() <= 64);
            // The head ends where the parser says: the same bytes without
            // what follows give the same head.
            let (again, used_again) = http::parse_head(&data[..used])
                .expect("a complete head parses alone")
                .expect("a complete head is complete alone");
            assert_eq!(used_again, used);
            assert_eq!(again.method, head.method);
            assert_eq!(again.target, head.target);
            assert_eq!(again.headers, head.headers);

            let path = head.path();
            let query = head.query();
            let lower = head.target.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                // Absolute form: the scheme and authority are dropped.
                assert!(path.is_empty() || path.starts_with('/'), "{path:?}");
                assert!(query.is_empty() || head.target.ends_with(&format!("?{query}")));
            } else {
                assert!(head.target.starts_with(path));
                if head.target.contains('?') {
                    assert_eq!(head.target, format!("{path}?{query}"));
                } else {
                    assert_eq!(path, head.target);
                    assert!(query.is_empty());
                }
            }
            let _ = handshake::endpoint_path(&head);
            check_decode(path);
            check_query(query);

            for (name, value) in &head.headers {
                assert!(!name.is_empty());
                // `header` finds the first header of that name.
                let first = head.header(name).expect("a present header is found");
                let expected = head
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str());
                assert_eq!(Some(first), expected);
                let _ = value;
            }
            let _ = head.header_has_token("Upgrade", "websocket");
            let _ = head.header_has_token("Sec-WebSocket-Protocol", "wschat.v1");
            check_origin(head.header("Origin"), head.header("Host"));
        }
        Ok(None) | Err(HeadError::TooLarge) | Err(HeadError::Malformed(_)) => {
            let text = String::from_utf8_lossy(data);
            check_decode(&text);
            check_query(&text);
            if let Some((origin, host)) = text.split_once('\n') {
                check_origin(Some(origin), Some(host));
            }
        }
        Err(e) => panic!("parse_head did I/O? {e}"),
    }
});

/// Percent-encodes every byte that is not unreserved (RFC 3986).
fn encode(s: &str, space_as_plus: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b == b' ' && space_as_plus {
            out.push(b'+');
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    String::from_utf8(out).expect("ASCII")
}

fn check_decode(s: &str) {
    if let Some(decoded) = http::percent_decode(s) {
        assert!(decoded.len() <= s.len());
        if !s.contains('%') {
            assert_eq!(decoded, s);
        }
        // Decoding is the inverse of encoding, whatever the case of the hex.
        let mut encoded = encode(&decoded, false);
        assert_eq!(http::percent_decode(&encoded).as_deref(), Some(&*decoded));
        if !decoded.bytes().any(|b| b.is_ascii_alphabetic()) {
            encoded.make_ascii_lowercase();
            assert_eq!(http::percent_decode(&encoded).as_deref(), Some(&*decoded));
        }
    } else {
        assert!(s.contains('%'), "{s:?} has no escape but does not decode");
    }
    assert_eq!(http::percent_decode(&encode(s, false)).as_deref(), Some(s));
}

fn check_query(query: &str) {
    let pairs: Vec<(String, String)> = http::query_pairs(query).collect();
    let pieces = query.split('&').filter(|p| !p.is_empty()).count();
    assert!(pairs.len() <= pieces);
    // Encoding the pairs again and parsing them gives the same pairs.
    let rebuilt = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, true), encode(v, true)))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        http::query_pairs(&rebuilt).collect::<Vec<_>>(),
        pairs,
        "query {rebuilt:?}"
    );
}

fn check_origin(origin: Option<&str>, host: Option<&str>) {
    let seen = |host: Option<&str>| Seen {
        scheme: "http".to_owned(),
        host: host.map(str::to_owned),
    };
    let default = OriginPolicy::default();
    let any = OriginPolicy::new(&["*".to_owned()]);
    // Clients without an Origin are not browsers and are let in.
    assert!(default.allows(None, &seen(host)));
    assert!(any.allows(origin, &seen(host)));
    let Some(origin) = origin else { return };
    // A browser origin with no Host to compare to is only let in by a list.
    assert!(!default.allows(Some(origin), &seen(None)));
    // A listed origin is let in, however the list spells it.
    let listed = OriginPolicy::new(&[format!("{}/", origin.trim().to_ascii_uppercase())]);
    assert!(
        listed.allows(Some(origin), &seen(None)),
        "{origin:?} not found in its own list"
    );
    // The server's own origin is let in for an ordinary Host.
    if let Some(host) = host {
        let ordinary = !host.is_empty()
            && host.split_once(':').is_none_or(|(h, p)| {
                !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
            })
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
        if ordinary {
            assert!(
                default.allows(Some(&format!("http://{host}")), &seen(Some(host))),
                "{host:?}"
            );
        }
        let _ = default.allows(Some(origin), &seen(Some(host)));
    }
}
