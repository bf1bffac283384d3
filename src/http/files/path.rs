//! A file's path, `/files/ROOM/ID/NAME`: written by [`url`], read by
//! [`parse`].

use super::PREFIX;
use crate::http;

/// Whether `path` (a request's path, still percent-encoded) is a file's.
pub fn is_files_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// A file's path: `/files/ROOM/ID/NAME`, with `room` and `name` each
/// percent-encoded as one path segment (every byte but ASCII letters,
/// digits, `-`, `.` and `_`). A browser would take a segment `.` or `..` for
/// a step in the path and drop it, so those two names are written `.~` and
/// `..~` (a `~` of a name is always written `%7E`). [`parse`] is its
/// inverse, for every non-empty `room` and `name`.
pub fn url(room: &str, id: u64, name: &str) -> String {
    format!(
        "{PREFIX}{}/{id}/{}",
        encode_segment(room),
        encode_segment(name)
    )
}

/// A file's address, as [`url`] writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub room: String,
    pub id: u64,
    pub name: String,
}

/// Reads `/files/ROOM/ID/NAME`: exactly three segments, `ROOM` and `NAME`
/// non-empty and percent-encoded UTF-8, `ID` a positive decimal number
/// without leading zeros. `None` if `path` is not one.
pub fn parse(path: &str) -> Option<Target> {
    let rest = path.strip_prefix(PREFIX)?;
    let mut segments = rest.split('/');
    let (room, id, name) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    if id.starts_with('0') || !all_digits(id) {
        return None;
    }
    let id = id.parse().ok()?;
    Some(Target {
        room: decode_segment(room)?,
        id,
        name: decode_segment(name)?,
    })
}

pub(super) fn encode_segment(value: &str) -> String {
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

pub(super) fn decode_segment(segment: &str) -> Option<String> {
    match segment {
        ".~" => Some(".".to_owned()),
        "..~" => Some("..".to_owned()),
        _ => http::percent_decode(segment).filter(|s| !s.is_empty()),
    }
}

pub(super) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
