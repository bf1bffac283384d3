//! Secrets given as options (`--auth-secret`, `--admin-token` and their
//! files): read, checked for length, never printed.

use std::fmt;
use std::path::Path;

use subtle::ConstantTimeEq;

/// Shortest `--auth-secret`: HS256 wants a key at least as long as its
/// hash, 256 bits (RFC 7518 §3.2).
pub(crate) const MIN_SECRET: usize = 32;

/// Shortest `--admin-token`.
pub(crate) const MIN_ADMIN_TOKEN: usize = 16;

/// A secret from the options: never printed, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

impl Secret {
    /// The secret itself, to sign and check with.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `presented` is this secret, taking the same time whichever
    /// byte differs and whatever its length, so that timing tells a guesser
    /// nothing: the SHA-256 digests of both are compared, which are always
    /// 32 bytes, in constant time. (Comparing the bytes themselves returns
    /// at once when the lengths differ, which tells the secret's length.)
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        let ours: [u8; 32] = Sha256::digest(&self.0).into();
        let theirs: [u8; 32] = Sha256::digest(presented).into();
        bool::from(ours.ct_eq(&theirs))
    }
}

fn secret_of(value: &str, least: usize, what: &str) -> Result<Secret, String> {
    if value.len() < least {
        return Err(format!("{what} must be at least {least} bytes long"));
    }
    Ok(Secret(value.as_bytes().to_vec()))
}

/// Reads a secret from a file, without the line end an editor or `echo`
/// leaves after it.
fn secret_from_file(path: &str, least: usize, what: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    secret_of(text.trim_end_matches(['\n', '\r']), least, what).map_err(|e| format!("{path}: {e}"))
}

/// `--auth-secret`.
pub(crate) fn parse_secret(s: &str) -> Result<Secret, String> {
    secret_of(s, MIN_SECRET, "the secret")
}

/// `--auth-secret-file`.
pub(crate) fn read_secret_file(path: &str) -> Result<Secret, String> {
    secret_from_file(path, MIN_SECRET, "the secret")
}

/// `--admin-token`.
pub(crate) fn parse_admin_token(s: &str) -> Result<Secret, String> {
    secret_of(s, MIN_ADMIN_TOKEN, "the admin token")
}

/// `--admin-token-file`.
pub(crate) fn read_admin_token_file(path: &str) -> Result<Secret, String> {
    secret_from_file(path, MIN_ADMIN_TOKEN, "the admin token")
}
