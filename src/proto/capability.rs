//! A file's URL is a capability: `/files/ROOM/ID/NAME?exp=…&sig=…`, where
//! `sig` is an HMAC-SHA256 of the room, the id and `exp` under a key only
//! the server knows. Ids are sequential and names guessable, so without the
//! signature anyone could fetch any room's files; with it, only those the
//! server gave the URL to (members of the room) can.
//!
//! - With `--auth-secret`, the key is derived from the secret (so every
//!   instance sharing the secret shares it), and a URL expires
//!   [`LIFETIME`] after it was signed: a member who left, or a URL that
//!   leaked, stops working. The page asks for a fresh one (`file_url`).
//! - Without a secret, rooms are open to anyone who names them, so a URL
//!   need only be unguessable: it has no `exp`, and the key is random, kept
//!   in the database (or in Redis, shared by every instance) so that URLs
//!   survive a restart.
//!
//! The name is not signed: it is checked against the stored file's, and a
//! URL with another name is not found.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long a URL signed under `--auth-secret` works.
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What the key of signed URLs is derived from the auth secret with:
/// HMAC-SHA256(secret, this), so that the secret itself signs nothing but
/// tokens.
pub const DERIVATION: &[u8] = b"wschat file urls v1";

/// Bytes of a URL key.
pub const KEY_BYTES: usize = 32;

/// Signs file URLs and checks them; cheap to clone, shared by the
/// dispatcher (which writes URLs into file events) and the connection
/// threads (which check them).
#[derive(Clone)]
pub struct Signer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set once: at start-up, or (with Redis and no secret) when Redis
    /// first answers.
    key: OnceLock<[u8; KEY_BYTES]>,
    /// Whether URLs carry an `exp` (with `--auth-secret`).
    expiring: bool,
}

/// Why a URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `sig` (or, with a secret, no `exp`).
    Missing,
    /// A signature that is not the server's for this room and id.
    Bad,
    /// A signed URL whose `exp` has passed.
    Expired,
    /// The key is not known yet (Redis has not answered since start-up).
    NoKey,
}

impl Refusal {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Bad => "bad",
            Refusal::Expired => "expired",
            Refusal::NoKey => "no_key",
        }
    }
}

impl std::fmt::Debug for Signer {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("ready", &self.ready())
            .field("expiring", &self.inner.expiring)
            .finish()
    }
}

impl Signer {
    /// Expiring URLs under a key derived from the auth secret.
    pub fn from_secret(secret: &[u8]) -> Signer {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(DERIVATION);
        let signer = Signer::pending(true);
        signer.set_key(mac.finalize().into_bytes().into());
        signer
    }

    /// URLs that never expire, under a random key kept elsewhere.
    pub fn with_key(key: [u8; KEY_BYTES]) -> Signer {
        let signer = Signer::pending(false);
        signer.set_key(key);
        signer
    }

    /// A signer whose key comes later ([`Signer::set_key`]); until then it
    /// neither signs nor accepts anything.
    pub fn pending(expiring: bool) -> Signer {
        Signer {
            inner: Arc::new(Inner {
                key: OnceLock::new(),
                expiring,
            }),
        }
    }

    /// Sets the key, once; later calls are ignored.
    pub fn set_key(&self, key: [u8; KEY_BYTES]) {
        let _ = self.inner.key.set(key);
    }

    /// Whether the key is known.
    pub fn ready(&self) -> bool {
        self.inner.key.get().is_some()
    }

    /// The query that makes `/files/ROOM/ID/NAME` work for now (`exp=…&sig=…`
    /// or `sig=…`); `None` until the key is known.
    pub fn query(&self, room: &str, id: u64) -> Option<String> {
        self.query_at(room, id, now())
    }

    fn query_at(&self, room: &str, id: u64, now: u64) -> Option<String> {
        let key = self.inner.key.get()?;
        if self.inner.expiring {
            let exp = now.saturating_add(LIFETIME.as_secs());
            let sig = hex(&sign(key, room, id, Some(exp)));
            Some(format!("exp={exp}&sig={sig}"))
        } else {
            Some(format!("sig={}", hex(&sign(key, room, id, None))))
        }
    }

    /// Whether `exp` and `sig` (a request's query values) let their holder
    /// download file `id` of `room`.
    pub fn check(
        &self,
        room: &str,
        id: u64,
        exp: Option<&str>,
        sig: Option<&str>,
    ) -> Result<(), Refusal> {
        self.check_at(room, id, exp, sig, now())
    }

    fn check_at(
        &self,
        room: &str,
        id: u64,
        exp: Option<&str>,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), Refusal> {
        let key = self.inner.key.get().ok_or(Refusal::NoKey)?;
        let sig = sig.ok_or(Refusal::Missing)?;
        if self.inner.expiring && exp.is_none() {
            return Err(Refusal::Missing);
        }
        let exp = match exp {
            None => None,
            Some(exp) if !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()) => {
                Some(exp.parse::<u64>().map_err(|_| Refusal::Bad)?)
            }
            Some(_) => return Err(Refusal::Bad),
        };
        let presented = unhex(sig).ok_or(Refusal::Bad)?;
        // The MAC's own comparison takes the same time whichever byte
        // differs.
        mac(key, room, id, exp)
            .verify_slice(&presented)
            .map_err(|_| Refusal::Bad)?;
        // Checked after the signature, so that only a real URL learns that
        // it has expired.
        if exp.is_some_and(|exp| now > exp) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// A fresh random key, from the operating system.
pub fn random_key() -> std::io::Result<[u8; KEY_BYTES]> {
    let mut key = [0; KEY_BYTES];
    getrandom::fill(&mut key).map_err(std::io::Error::other)?;
    Ok(key)
}

fn mac(key: &[u8], room: &str, id: u64, exp: Option<u64>) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    // The room's length first, so that no room and id can be read as
    // another pair.
    let exp = exp.map_or(String::new(), |e| e.to_string());
    mac.update(format!("{}:{room}/{id}/{exp}", room.len()).as_bytes());
    mac
}

fn sign(key: &[u8], room: &str, id: u64, exp: Option<u64>) -> Vec<u8> {
    mac(key, room, id, exp).finalize().into_bytes().to_vec()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads hex of either case; `None` if it is not.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Where file paths begin.
pub const PREFIX: &str = "/files/";

/// A file's path: `/files/ROOM/ID/NAME`, with `room` and `name` each
/// percent-encoded as one path segment (every byte but ASCII letters,
/// digits, `-`, `.` and `_`). A browser would take a segment `.` or `..` for
/// a step in the path and drop it, so those two names are written `.~` and
/// `..~` (a `~` of a name is always written `%7E`). `http::files::parse` is its
/// inverse, for every non-empty `room` and `name`.
pub fn url(room: &str, id: u64, name: &str) -> String {
    format!(
        "{PREFIX}{}/{id}/{}",
        encode_segment(room),
        encode_segment(name)
    )
}

fn encode_segment(value: &str) -> String {
    match value {
        "." => return ".~".to_owned(),
        ".." => return "..~".to_owned(),
        _ => {}
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file's URL as given to members of its room: [`url`] with the query
/// that lets its holder download it (see this module); `None` while the
/// signer has no key yet.
pub fn signed_url(signer: &Signer, room: &str, id: u64, name: &str) -> Option<String> {
    let query = signer.query(room, id)?;
    Some(format!("{}?{query}", url(room, id, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> (Option<String>, Option<String>) {
        let mut exp = None;
        let mut sig = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "exp" => exp = Some(v.to_owned()),
                "sig" => sig = Some(v.to_owned()),
                _ => panic!("{pair}"),
            }
        }
        (exp, sig)
    }

    #[test]
    fn signed_urls_work_until_they_expire() {
        let s = Signer::from_secret(b"a test secret that is long enough to sign");
        let (exp, sig) = pairs(&s.query_at("ops", 1, 1000).unwrap());
        let (exp, sig) = (exp.as_deref(), sig.as_deref());
        assert_eq!(exp, Some("87400"));
        assert_eq!(s.check_at("ops", 1, exp, sig, 1000), Ok(()));
        assert_eq!(s.check_at("ops", 1, exp, sig, 87_400), Ok(()));
        assert_eq!(
            s.check_at("ops", 1, exp, sig, 87_401),
            Err(Refusal::Expired)
        );
        assert_eq!(s.check_at("ops", 2, exp, sig, 1000), Err(Refusal::Bad));
        assert_eq!(s.check_at("opt", 1, exp, sig, 1000), Err(Refusal::Bad));
        assert_eq!(
            s.check_at("ops", 1, Some("99999"), sig, 1000),
            Err(Refusal::Bad)
        );
        assert_eq!(s.check_at("ops", 1, None, sig, 1000), Err(Refusal::Missing));
        assert_eq!(s.check_at("ops", 1, exp, None, 1000), Err(Refusal::Missing));
        for bad in ["", "zz", "abc", "é", &"0".repeat(64)] {
            assert_eq!(
                s.check_at("ops", 1, exp, Some(bad), 1000),
                Err(Refusal::Bad),
                "{bad}"
            );
        }
        for bad in ["", "+1", "-1", "1e3", "99999999999999999999999"] {
            assert_eq!(
                s.check_at("ops", 1, Some(bad), sig, 1000),
                Err(Refusal::Bad),
                "{bad}"
            );
        }
        let other = Signer::from_secret(b"another secret, just as long as ours");
        assert_eq!(other.check_at("ops", 1, exp, sig, 1000), Err(Refusal::Bad));
    }

    #[test]
    fn random_keys_sign_for_good() {
        let s = Signer::with_key(random_key().unwrap());
        let query = s.query_at("lobby", 7, 1000).unwrap();
        assert!(!query.contains("exp"), "{query}");
        let (_, sig) = pairs(&query);
        assert_eq!(
            s.check_at("lobby", 7, None, sig.as_deref(), u64::MAX),
            Ok(())
        );
        assert_eq!(
            s.check_at("lobby", 7, None, None, 1000),
            Err(Refusal::Missing)
        );
        let again = Signer::with_key(random_key().unwrap());
        assert_eq!(
            again.check_at("lobby", 7, None, sig.as_deref(), 1000),
            Err(Refusal::Bad)
        );
    }

    #[test]
    fn a_pending_signer_signs_and_accepts_nothing() {
        let s = Signer::pending(false);
        assert_eq!(s.query("r", 1), None);
        assert_eq!(s.check("r", 1, None, Some("00")), Err(Refusal::NoKey));
        s.set_key([7; KEY_BYTES]);
        assert!(s.ready());
        let (_, sig) = pairs(&s.query("r", 1).unwrap());
        assert_eq!(s.check("r", 1, None, sig.as_deref()), Ok(()));
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("AbCd"), Some(vec![0xab, 0xcd]));
    }
}
