//! Unit tests of `auth`.

use super::*;
use crate::config::secret::{parse_admin_token, parse_secret};

fn secret() -> Secret {
    parse_secret("a test secret that is long enough to sign").unwrap()
}

fn signed(claims: &serde_json::Value, key: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn minted_tokens_verify() {
    let s = secret();
    let token = mint(&s, " alice ", &[], Duration::from_secs(60)).unwrap();
    let id = verify(&s, &token).unwrap();
    assert_eq!(id.subject, "alice");
    assert!(id.allows("anywhere"));
    let token = mint(
        &s,
        "bob",
        &["den".into(), "lab".into()],
        Duration::from_secs(60),
    )
    .unwrap();
    let id = verify(&s, &token).unwrap();
    assert!(id.allows("den") && id.allows(" lab") && id.allows("d\u{435}n"));
    assert!(!id.allows("lobby"));
}

#[test]
fn bad_tokens_are_refused_precisely() {
    let s = secret();
    let claims = |exp: u64| serde_json::json!({"sub": "alice", "exp": exp});
    let good = signed(&claims(now() + 60), s.bytes(), Algorithm::HS256);
    assert!(verify(&s, &good).is_ok());

    let forged = signed(
        &claims(now() + 60),
        b"another secret, just as long as ours",
        Algorithm::HS256,
    );
    assert_eq!(
        verify(&s, &forged).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    let expired = signed(&claims(now() - 1), s.bytes(), Algorithm::HS256);
    assert_eq!(verify(&s, &expired), Err(AuthError::Expired));
    let with_nbf = |nbf: u64| {
        let claims = serde_json::json!({"sub": "alice", "exp": now() + 86_400 * 2, "nbf": nbf});
        signed(&claims, s.bytes(), Algorithm::HS256)
    };
    assert_eq!(
        verify(&s, &with_nbf(now() + 86_400)),
        Err(AuthError::NotYetValid)
    );
    assert_eq!(
        verify(&s, &with_nbf(now() + 86_400)).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    assert!(
        verify(&s, &with_nbf(now() + 5)).is_ok(),
        "within the leeway"
    );
    assert!(verify(&s, &with_nbf(now() - 60)).is_ok());
    let text_nbf = signed(
        &serde_json::json!({"sub": "alice", "exp": now() + 60, "nbf": "soon"}),
        s.bytes(),
        Algorithm::HS256,
    );
    assert_eq!(
        verify(&s, &text_nbf).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    let other_alg = signed(&claims(now() + 60), s.bytes(), Algorithm::HS512);
    assert_eq!(
        verify(&s, &other_alg).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    let no_exp = signed(
        &serde_json::json!({"sub": "alice"}),
        s.bytes(),
        Algorithm::HS256,
    );
    assert_eq!(
        verify(&s, &no_exp),
        Err(AuthError::Invalid("no \"exp\" claim".into()))
    );
    let no_sub = signed(
        &serde_json::json!({"exp": now() + 60}),
        s.bytes(),
        Algorithm::HS256,
    );
    assert_eq!(
        verify(&s, &no_sub).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    let bad_rooms = signed(
        &serde_json::json!({"sub": "a", "exp": now() + 60, "rooms": "den"}),
        s.bytes(),
        Algorithm::HS256,
    );
    assert_eq!(
        verify(&s, &bad_rooms).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    // An unsigned token ("alg": "none") is no token.
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims(now() + 60).to_string())
    );
    assert_eq!(
        verify(&s, &none).unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
    assert_eq!(
        verify(&s, "not a token").unwrap_err().code(),
        ErrorCode::TokenInvalid
    );
}

fn b64(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits: Vec<u8> = s
        .bytes()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    bits.chunks(6)
        .map(|c| {
            let v = c.iter().enumerate().fold(0, |v, (i, b)| v | (b << (5 - i)));
            ALPHABET[v as usize] as char
        })
        .collect()
}

#[test]
fn names_and_rooms_are_checked_against_the_token() {
    let s = secret();
    let id = verify(
        &s,
        &mint(&s, "alice", &["den".into()], Duration::from_secs(60)).unwrap(),
    )
    .unwrap();
    assert!(check(&id, Some("den"), Some("alice")).is_ok());
    assert!(check(&id, Some("den"), Some("\u{430}lice")).is_ok());
    assert_eq!(check(&id, Some("lobby"), None).unwrap_err().status(), 403);
    assert_eq!(
        check(&id, None, Some("bob")).unwrap_err(),
        AuthError::NameMismatch {
            subject: "alice".into(),
            asked: "bob".into()
        }
    );
}

#[test]
fn secrets_are_long_and_compared_whole() {
    assert!(parse_secret("short").is_err());
    assert!(parse_admin_token("fifteen chars..").is_err());
    let t = parse_admin_token("sixteen chars...").unwrap();
    assert!(t.matches(b"sixteen chars..."));
    assert!(!t.matches(b"sixteen chars..!"));
    assert!(!t.matches(b"sixteen chars"));
    assert!(!format!("{t:?}").contains("sixteen"));
}

#[test]
fn keys() {
    assert!(valid_key("abcdefghijklmnop"));
    assert!(valid_key("Zx-_0123456789abcdefgh"));
    assert!(!valid_key("short"));
    assert!(!valid_key("has a space in it!!"));
    assert!(!valid_key(&"k".repeat(129)));
}
