//! A file's path, `/files/ROOM/ID/NAME`, read back: [`parse`] is the
//! inverse of [`url`](crate::proto::capability::url), which writes it.

use crate::http;
use crate::proto::capability::PREFIX;

/// Whether `path` (a request's path, still percent-encoded) is a file's.
pub fn is_files_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// A file's address, as [`url`](crate::proto::capability::url) writes it.
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
