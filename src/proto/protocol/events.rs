//! What a `wschat.v1` client receives: every server frame is an
//! [`Event`], encoded once as JSON text.

use serde::Serialize;
use serde::ser::SerializeMap;

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
        /// Edited since it was sent (replayed as it stands now).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        edited: bool,
        /// Deleted since it was sent: `text` is empty.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        /// Its reactions, when it has any.
        #[serde(skip_serializing_if = "Option::is_none")]
        reactions: Option<Reactions<'a>>,
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

/// A message's reactions, encoded as a JSON object of emoji to the names
/// of who reacted, in the order they were given.
#[derive(Debug)]
pub struct Reactions<'a>(pub(crate) &'a [(String, Vec<String>)]);

impl Serialize for Reactions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (emoji, names) in self.0 {
            map.serialize_entry(emoji, names)?;
        }
        map.end()
    }
}
