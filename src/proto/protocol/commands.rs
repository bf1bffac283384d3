//! What a `wschat.v1` client sends: each text frame parsed into a
//! [`Command`], or refused with the [`FrameRefusal`] that says why.

use serde_json::Value;

use super::changes;
use super::fields::{opt_cid, opt_string, opt_u64, req_string};
use super::{ErrorCode, FrameRefusal, MAX_FILE_NAME};

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
        "edit" | "delete" | "react" | "unreact" => {
            let (id, change) = changes::parse(kind, &obj)?;
            Ok(Command::Change {
                id,
                change,
                cid: opt_cid(&obj)?,
            })
        }
        other => Err(FrameRefusal::new(
            ErrorCode::UnknownType,
            format!(
                "unknown type {other:?}; expected join, message, file, typing, file_url, \
                 history or search"
            ),
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
