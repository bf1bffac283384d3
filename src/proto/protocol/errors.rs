//! Why a client's frame was refused: the `error` event's codes, as a
//! client program matches on them (docs/PROTOCOL.md, "error").

use super::{Event, encode};

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
    pub(crate) const ALL: [ErrorCode; 26] = [
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
