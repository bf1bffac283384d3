//! The wire formats clients send and receive in the chat room: the raw
//! tutorial file header and the `wschat.v1` JSON frames (docs/PROTOCOL.md).
//! Everything here is pure parsing and encoding, with no I/O, so it can be
//! fuzzed and unit-tested on its own.

use serde::Serialize;
use serde_json::{Map, Value};

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

/// Milliseconds since the Unix epoch: what a message's `ts` counts.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A frame from a `wschat.v1` client, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Enter a room (one per connection).
    Join {
        /// The room; the query's, else `lobby`.
        room: Option<String>,
        /// The name to go by; the query's if not given.
        name: Option<String>,
        /// The last id the client has seen: resume after it.
        since: Option<u64>,
        /// The room's epoch when the client learnt `since`.
        epoch: Option<String>,
        /// An identity token, when the server asks for one.
        token: Option<String>,
        /// A browser's random key: its own tabs may share a name.
        key: Option<String>,
    },
    /// Say something in the room.
    Message {
        /// What is said.
        text: String,
        /// The client's own id for it, so that a resend is not delivered
        /// twice.
        cid: Option<String>,
    },
    /// Announce a file, whose bytes follow in one binary frame.
    File(FileMeta),
    /// The client is typing.
    Typing,
    /// Asks for a fresh download URL of a file of the client's room (the
    /// one its event gave has expired).
    FileUrl {
        /// The file's id.
        id: u64,
        /// Its name, as its event gave it.
        name: String,
    },
    /// Reads the room's history: an older page, or a search
    /// (`proto::lookup`).
    Lookup(crate::proto::lookup::Ask),
    /// Edit, delete or react to message `id` (see `changes`).
    Change {
        /// The message's id.
        id: u64,
        /// What changes.
        change: changes::Change,
        /// As a message's `cid`.
        cid: Option<String>,
    },
}

/// What a `file` announcement says about the binary frame that follows.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    /// The file's name, without directories.
    pub name: String,
    /// The binary frame's exact length.
    pub size: u64,
    /// Its media type, `application/octet-stream` when not given.
    pub mime: String,
    /// As a message's `cid`.
    pub cid: Option<String>,
}

/// Longest `cid`, in characters.
pub(crate) const MAX_CID_CHARS: usize = 64;

/// A client's id for a message: 1-64 characters, none of them control.
fn opt_cid(obj: &Map<String, Value>) -> Result<Option<String>, FrameRefusal> {
    let cid = opt_string(obj, "cid")?;
    if let Some(cid) = &cid {
        let chars = cid.chars().count();
        if chars == 0 || chars > MAX_CID_CHARS || cid.chars().any(char::is_control) {
            return Err(FrameRefusal::new(
                ErrorCode::BadField,
                "field \"cid\" must be 1-64 characters without control characters",
            ));
        }
    }
    Ok(cid)
}

/// The `code` of an `error` event, each listed in docs/PROTOCOL.md
/// ("error"): what a client program matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The text frame is not a JSON object.
    BadJson,
    /// `type` is missing, not a string, or not a client type.
    UnknownType,
    /// A field is missing or has the wrong type.
    BadField,
    /// A message's text is over `--max-text` bytes.
    TextTooLong,
    /// A message's text is empty.
    EmptyText,
    /// The name breaks the name rules.
    InvalidName,
    /// The room name breaks the name rules.
    InvalidRoom,
    /// Someone else in the room holds the name, or one that looks the same.
    NameTaken,
    /// A moderator has banned the name, until the event's `until`.
    Banned,
    /// The server needs an identity token and the join brought none.
    TokenRequired,
    /// The token is not one of the server's.
    TokenInvalid,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The token's `rooms` claim does not list the room.
    RoomForbidden,
    /// The join names someone other than the token's `sub`.
    NameMismatch,
    /// A message, file or typing frame before joining.
    NotJoined,
    /// A second `join`.
    AlreadyJoined,
    /// A file announced over `--max-file-size`.
    FileTooLarge,
    /// The memory budget cannot take the file announced now.
    ServerBusy,
    /// A binary frame with no file announced.
    UnexpectedBinary,
    /// The binary frame's length is not the size announced.
    SizeMismatch,
    /// A text frame while a file's bytes were awaited.
    UnexpectedFrame,
    /// With `--redis`: Redis did not answer; send again shortly.
    Unavailable,
    /// A `file_url` for an id the room has not given out.
    NoSuchFile,
    /// A `history` or `search` over the connection's allowance of them.
    RateLimited,
    /// A change to a message the room does not have (or has deleted).
    NoSuchMessage,
    /// A change only the message's sender (or a moderator) may make.
    NotYours,
}

impl ErrorCode {
    /// Every code, for the test that holds the document to them.
    #[cfg(test)]
    const ALL: [ErrorCode; 26] = [
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::BadField,
        ErrorCode::TextTooLong,
        ErrorCode::EmptyText,
        ErrorCode::InvalidName,
        ErrorCode::InvalidRoom,
        ErrorCode::NameTaken,
        ErrorCode::Banned,
        ErrorCode::TokenRequired,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::RoomForbidden,
        ErrorCode::NameMismatch,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::FileTooLarge,
        ErrorCode::ServerBusy,
        ErrorCode::UnexpectedBinary,
        ErrorCode::SizeMismatch,
        ErrorCode::UnexpectedFrame,
        ErrorCode::Unavailable,
        ErrorCode::NoSuchFile,
        ErrorCode::RateLimited,
        ErrorCode::NoSuchMessage,
        ErrorCode::NotYours,
    ];

    /// The code as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadField => "bad_field",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::Banned => "banned",
            ErrorCode::TokenRequired => "token_required",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::RoomForbidden => "room_forbidden",
            ErrorCode::NameMismatch => "name_mismatch",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::UnexpectedBinary => "unexpected_binary",
            ErrorCode::SizeMismatch => "size_mismatch",
            ErrorCode::UnexpectedFrame => "unexpected_frame",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NoSuchFile => "no_such_file",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoSuchMessage => "no_such_message",
            ErrorCode::NotYours => "not_yours",
        }
    }
}

/// Why a client frame was refused; becomes an `error` event.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRefusal {
    /// What a program matches on.
    pub code: ErrorCode,
    /// What a person reads: why, in words.
    pub message: String,
    /// For a refusal that ends (`banned`): when, in ms since the epoch.
    pub until: Option<u64>,
    /// For a refused message or file (`unavailable`): the `cid` it was sent
    /// with, so that the client knows which to send again.
    pub cid: Option<String>,
}

impl FrameRefusal {
    /// A refusal that does not end by itself.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> FrameRefusal {
        FrameRefusal {
            code,
            message: message.into(),
            until: None,
            cid: None,
        }
    }

    /// The same refusal, naming the message it refuses.
    pub fn with_cid(self, cid: Option<String>) -> FrameRefusal {
        FrameRefusal { cid, ..self }
    }

    /// The same refusal, saying when it ends.
    pub fn until(self, until: u64) -> FrameRefusal {
        FrameRefusal {
            until: Some(until),
            ..self
        }
    }

    /// The `error` event for this refusal, as JSON text.
    pub fn to_json(&self) -> String {
        encode(&Event::Error {
            code: self.code.as_str(),
            message: &self.message,
            until: self.until,
            cid: self.cid.as_deref(),
        })
    }
}

/// Parses one text frame from a `wschat.v1` client. Limits that depend on
/// configuration (text length, file size) are checked by the caller.
pub fn parse_command(text: &str) -> Result<Command, FrameRefusal> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FrameRefusal::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(FrameRefusal::new(
            ErrorCode::BadJson,
            "a frame must be a JSON object",
        ));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(FrameRefusal::new(
                ErrorCode::UnknownType,
                "\"type\" must be a string",
            ));
        }
        None => {
            return Err(FrameRefusal::new(
                ErrorCode::UnknownType,
                "missing \"type\"",
            ));
        }
    };
    match kind {
        "join" => Ok(Command::Join {
            room: opt_string(&obj, "room")?,
            name: opt_string(&obj, "name")?,
            since: opt_u64(&obj, "since")?,
            epoch: opt_string(&obj, "epoch")?,
            token: opt_string(&obj, "token")?,
            key: opt_string(&obj, "key")?,
        }),
        "message" => Ok(Command::Message {
            text: req_string(&obj, "text")?,
            cid: opt_cid(&obj)?,
        }),
        "file" => {
            let name = req_string(&obj, "name")?;
            validate_file_name(&name)?;
            let size = opt_u64(&obj, "size")?
                .ok_or_else(|| FrameRefusal::new(ErrorCode::BadField, "missing field \"size\""))?;
            let mime = opt_string(&obj, "mime")?
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            if mime.len() > 255 || mime.chars().any(char::is_control) {
                return Err(FrameRefusal::new(
                    ErrorCode::BadField,
                    "field \"mime\" is not a media type",
                ));
            }
            Ok(Command::File(FileMeta {
                name,
                size,
                mime,
                cid: opt_cid(&obj)?,
            }))
        }
        "typing" => Ok(Command::Typing),
        "file_url" => {
            let id = opt_u64(&obj, "id")?
                .ok_or_else(|| FrameRefusal::new(ErrorCode::BadField, "missing field \"id\""))?;
            let name = req_string(&obj, "name")?;
            validate_file_name(&name)?;
            Ok(Command::FileUrl { id, name })
        }
        "history" | "search" => crate::proto::lookup::parse(kind, &obj).map(Command::Lookup),
        "edit" | "delete" | "react" | "unreact" => changes::parse(kind, &obj),
        other => Err(FrameRefusal::new(
            ErrorCode::UnknownType,
            format!(
                "unknown type {other:?}; expected join, message, file, typing, file_url, \
                 history or search"
            ),
        )),
    }
}

fn opt_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, FrameRefusal> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FrameRefusal::new(
            ErrorCode::BadField,
            format!("field \"{field}\" must be a string"),
        )),
    }
}

fn req_string(obj: &Map<String, Value>, field: &str) -> Result<String, FrameRefusal> {
    opt_string(obj, field)?
        .ok_or_else(|| FrameRefusal::new(ErrorCode::BadField, format!("missing field \"{field}\"")))
}

fn opt_u64(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, FrameRefusal> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(_) => Err(FrameRefusal::new(
            ErrorCode::BadField,
            format!("field \"{field}\" must be a non-negative integer"),
        )),
    }
}

fn validate_file_name(name: &str) -> Result<(), FrameRefusal> {
    if name.is_empty()
        || name.len() > MAX_FILE_NAME
        || name
            .chars()
            .any(|c| c.is_control() || crate::proto::names::is_format(c) || c == '/' || c == '\\')
    {
        return Err(FrameRefusal::new(
            ErrorCode::BadField,
            "field \"name\" must be a file name of 1-255 bytes without control, format or direction characters or slashes",
        ));
    }
    Ok(())
}

/// Why a raw binary frame is not a tutorial-format file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHeaderError {
    /// Fewer than two bytes, or fewer than the name length announces.
    Truncated,
    /// The name bytes are not UTF-8.
    NameNotUtf8,
}

/// Splits a tutorial-format file frame (`u16` LE name length, name, bytes)
/// into its name and the offset where the file's bytes begin.
pub fn parse_file_header(frame: &[u8]) -> Result<(&str, usize), FileHeaderError> {
    let [lo, hi, rest @ ..] = frame else {
        return Err(FileHeaderError::Truncated);
    };
    let len = u16::from_le_bytes([*lo, *hi]) as usize;
    let name = rest.get(..len).ok_or(FileHeaderError::Truncated)?;
    let name = std::str::from_utf8(name).map_err(|_| FileHeaderError::NameNotUtf8)?;
    Ok((name, 2 + len))
}

/// Builds a tutorial-format file frame.
pub fn file_frame(name: &str, bytes: &[u8]) -> Vec<u8> {
    // A name longer than u16::MAX cannot be expressed; v1 names are <= 255 bytes.
    let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(2 + name.len() + bytes.len());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(bytes);
    out
}

/// A media type for a file name, from its extension.
pub fn guess_mime(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// What a v1 client may send, told in its `welcome` so that it can refuse
/// what the server would refuse before sending it.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct WelcomeLimits {
    /// Longest `message` text, in bytes (`--max-text`).
    pub(crate) text: usize,
    /// Largest file, in bytes (`--max-file-size`).
    pub(crate) file: usize,
    /// Largest text frame, in bytes (`--max-message-size`).
    pub message: usize,
    /// Sustained frames per second (`--rate`).
    pub(crate) rate: f64,
    /// Frames in a burst above the rate (`--burst`).
    pub(crate) burst: u32,
}

/// A frame the server sends to `wschat.v1` clients.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The join succeeded: first of the frames a joiner gets.
    Welcome {
        /// The name the client goes by (a token's holder, its `sub`).
        name: &'a str,
        /// The room, as the server spells it.
        room: &'a str,
        /// The room's newest id: the replay that follows ends there.
        last_id: u64,
        /// Names the room's history; ids compare only within one epoch.
        epoch: &'a str,
        /// With `since`: whether the replay is exactly what was missed.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        /// Why not: `epoch` or `trimmed`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        /// What the client may send.
        limits: &'a WelcomeLimits,
    },
    /// Who is in the room, once each, in order of joining.
    Presence {
        /// The room.
        room: &'a str,
        /// Their names.
        users: Vec<&'a str>,
    },
    /// The client is over its rate: what it sends is read more slowly.
    SlowDown {
        /// How long before its next frame is read.
        wait_ms: u64,
    },
    /// Events after `since` and before `first` are lost to the client.
    Gap {
        /// The room.
        room: &'a str,
        /// The last id the client had.
        since: u64,
        /// The first id it gets.
        first: u64,
    },
    /// Someone entered the room.
    Join {
        /// The room.
        room: &'a str,
        /// Who.
        name: &'a str,
        /// When, in ms since the epoch.
        ts: u64,
    },
    /// Someone left the room (their last connection to it).
    Leave {
        /// The room.
        room: &'a str,
        /// Who.
        name: &'a str,
        /// When, in ms since the epoch.
        ts: u64,
    },
    /// Something said in the room.
    Message {
        /// Its id in the room's history.
        id: u64,
        /// The room.
        room: &'a str,
        /// Who said it.
        from: &'a str,
        /// What was said.
        text: &'a str,
        /// When, in ms since the epoch.
        ts: u64,
        /// The sender's own id for it.
        #[serde(skip_serializing_if = "Option::is_none")]
        cid: Option<&'a str>,
        /// Sent again from history, not live.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
    },
    /// A file shared in the room; live, its bytes follow in a binary frame.
    File {
        /// Its id in the room's history.
        id: u64,
        /// The room.
        room: &'a str,
        /// Who shared it.
        from: &'a str,
        /// The file's name.
        name: &'a str,
        /// Its length in bytes.
        size: u64,
        /// Its media type.
        mime: &'a str,
        /// When, in ms since the epoch.
        ts: u64,
        /// The sender's own id for it.
        #[serde(skip_serializing_if = "Option::is_none")]
        cid: Option<&'a str>,
        /// Where a replayed file's bytes can be downloaded, while kept.
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<&'a str>,
        /// `false` when the bytes are no longer kept.
        #[serde(skip_serializing_if = "Option::is_none")]
        available: Option<bool>,
        /// Sent again from history, not live.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
    },
    /// Someone is typing.
    Typing {
        /// The room.
        room: &'a str,
        /// Who.
        name: &'a str,
    },
    /// A fresh download URL, answering the client's `file_url`.
    FileUrl {
        /// The file's id.
        id: u64,
        /// The room.
        room: &'a str,
        /// The file's name, as asked.
        name: &'a str,
        /// Where to download it, signed for the room.
        url: &'a str,
    },
    /// A frame of the client's was refused (see [`FrameRefusal`]).
    Error {
        /// An [`ErrorCode`], as sent.
        code: &'a str,
        /// Why, in words.
        message: &'a str,
        /// When a `banned` refusal ends, in ms since the epoch.
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        /// The refused message's `cid`.
        #[serde(skip_serializing_if = "Option::is_none")]
        cid: Option<&'a str>,
    },
}

/// Encodes an event as JSON text.
pub fn encode(event: &Event) -> String {
    serde_json::to_string(event).expect("events contain only strings and integers")
}

#[cfg(test)]
mod tests;
