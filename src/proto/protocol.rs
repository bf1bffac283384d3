//! The wire formats clients send and receive in the chat room: the raw
//! tutorial file header and the `wschat.v1` JSON frames (docs/PROTOCOL.md).
//! Everything here is pure parsing and encoding, with no I/O, so it can be
//! fuzzed and unit-tested on its own.
//!
//! By role: `commands` parses what a v1 client sends, `events` encodes
//! what it receives, `errors` says why a frame was refused (an `error`
//! event), `changes` covers edits, deletions and reactions both ways, and
//! `raw` is the tutorial's binary file frame; `fields` reads a command's
//! typed fields for both parsers.

/// The subprotocol name a client offers to speak JSON.
pub const V1: &str = "wschat.v1";

/// Which protocol a chat-room client speaks, chosen by its subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No subprotocol: the tutorial's byte-for-byte relay.
    Raw,
    /// `wschat.v1` JSON frames.
    V1,
}

pub use crate::proto::names::{MAX_FILE_NAME, MAX_NAME_CHARS};

pub mod changes;
mod commands;
mod errors;
mod events;
mod fields;
mod raw;

pub use commands::{Command, FileMeta, parse_command};
pub use errors::{ErrorCode, FrameRefusal};
pub use events::{Event, Reactions, WelcomeLimits, encode};
pub use raw::{FileHeaderError, file_frame, guess_mime, parse_file_header};

/// Milliseconds since the Unix epoch: what a message's `ts` counts.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
