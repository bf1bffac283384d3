//! Edits, deletions and reactions (docs/PROTOCOL.md, "Changing a
//! message"): the commands that ask for them, the one-emoji rule, the
//! events that tell of them, and a message as it stands after them.
//!
//! Each change is a record of its own in the room's history, with its own
//! id, so that a resume with `since` delivers it in order; storing it also
//! changes the message it is about, so that a replay shows the message as
//! it stands (`Changed`).

use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{opt_u64, req_string};
use super::{ErrorCode, Event, FrameRefusal, Reactions};

/// What a change does to its message.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Its text becomes this (the sender's own message only).
    Edit(String),
    /// It is deleted: its text and reactions are gone (the sender's own,
    /// or anyone's by a moderator).
    Delete,
    /// The sender adds this emoji to it.
    React(String),
    /// The sender takes back this emoji.
    Unreact(String),
}

impl Change {
    /// The change's `type`, in commands, events and the store.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Edit(_) => "edit",
            Change::Delete => "delete",
            Change::React(_) => "react",
            Change::Unreact(_) => "unreact",
        }
    }

    /// The text the store keeps with it: an edit's text, a reaction's
    /// emoji, nothing for a deletion.
    pub fn text(&self) -> &str {
        match self {
            Change::Edit(text) | Change::React(text) | Change::Unreact(text) => text,
            Change::Delete => "",
        }
    }

    /// The change of `kind` with the stored `text`, as [`Change::kind`] and
    /// [`Change::text`] gave them.
    pub fn from_stored(kind: &str, text: String) -> Option<Change> {
        match kind {
            "edit" => Some(Change::Edit(text)),
            "delete" => Some(Change::Delete),
            "react" => Some(Change::React(text)),
            "unreact" => Some(Change::Unreact(text)),
            _ => None,
        }
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The room has no such message (never, no longer, deleted, or it is a
    /// file or a change).
    NoSuchMessage,
    /// Only its sender may edit it; only its sender or a moderator delete it.
    NotYours,
}

impl Refusal {
    /// The refusal the client is sent.
    pub fn to_frame(self, target: u64, change: &Change) -> FrameRefusal {
        match self {
            Refusal::NoSuchMessage => FrameRefusal::new(
                ErrorCode::NoSuchMessage,
                format!("the room has no message {target} to {}", change.kind()),
            ),
            Refusal::NotYours => FrameRefusal::new(
                ErrorCode::NotYours,
                match change {
                    Change::Delete => {
                        format!(
                            "message {target} is not yours: only its sender or a moderator may delete it"
                        )
                    }
                    _ => format!("message {target} is not yours: only its sender may edit it"),
                },
            ),
        }
    }
}

/// Whether `actor` (a moderator or not) may make `change` to a message
/// sent by `sender`: edits are the sender's own, deletions the sender's
/// or a moderator's, reactions anyone's. The same person is the same name
/// (by skeleton, as a room holds names).
pub fn allowed(change: &Change, sender: &str, actor: &str, moderator: bool) -> Result<(), Refusal> {
    let own = || crate::proto::names::skeleton(sender) == crate::proto::names::skeleton(actor);
    match change {
        Change::Edit(_) if !own() => Err(Refusal::NotYours),
        Change::Delete if !moderator && !own() => Err(Refusal::NotYours),
        _ => Ok(()),
    }
}

/// Parses `edit`, `delete`, `react` and `unreact` commands: the target
/// message's id and the change (`commands` adds the `cid`).
pub(super) fn parse(kind: &str, obj: &Map<String, Value>) -> Result<(u64, Change), FrameRefusal> {
    let id = opt_u64(obj, "id")?.filter(|&id| id > 0).ok_or_else(|| {
        FrameRefusal::new(ErrorCode::BadField, "field \"id\" must be a message id")
    })?;
    let change = match kind {
        "edit" => Change::Edit(req_string(obj, "text")?),
        "delete" => Change::Delete,
        _ => {
            let emoji = req_string(obj, "emoji")?;
            if !is_one_emoji(&emoji) {
                return Err(FrameRefusal::new(
                    ErrorCode::BadField,
                    "field \"emoji\" must be one emoji",
                ));
            }
            match kind {
                "react" => Change::React(emoji),
                _ => Change::Unreact(emoji),
            }
        }
    };
    Ok((id, change))
}

/// Whether `s` is exactly one emoji: a pictograph with its presentation
/// selector, skin tone and zero-width-joined companions (👍, 👍🏽, ❤️,
/// 👩‍💻), a flag of two regional indicators (🇫🇷), or a keycap (1️⃣). A
/// strict subset of Unicode's emoji sequences, enough for every emoji a
/// picker offers; anything else (text, two emoji, a lone modifier) is not.
pub fn is_one_emoji(s: &str) -> bool {
    const ZWJ: char = '\u{200D}';
    const VS16: char = '\u{FE0F}';
    if s.is_empty() || s.len() > 64 {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    let regional = |c: char| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
    if chars.len() == 2 && chars.iter().all(|&c| regional(c)) {
        return true;
    }
    if let [base, rest @ ..] = &chars[..]
        && (base.is_ascii_digit() || *base == '#' || *base == '*')
    {
        return matches!(rest, [VS16, '\u{20E3}'] | ['\u{20E3}']);
    }
    let modifier = |c: char| ('\u{1F3FB}'..='\u{1F3FF}').contains(&c);
    // Each element: a pictograph, then at most a selector and a modifier.
    for element in chars.split(|&c| c == ZWJ) {
        let [base, rest @ ..] = element else {
            return false;
        };
        if !pictograph(*base) {
            return false;
        }
        let ok = match rest {
            [] => true,
            [a] => *a == VS16 || modifier(*a),
            [a, b] => *a == VS16 && modifier(*b) || modifier(*a) && *b == VS16,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Characters drawn as pictures (an approximation of Unicode's
/// Extended_Pictographic that keeps out letters, digits and punctuation).
fn pictograph(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139
        | 0x2194..=0x21AA
        | 0x231A..=0x23FF
        | 0x24C2
        | 0x25AA..=0x25FE
        | 0x2600..=0x27BF
        | 0x2934 | 0x2935
        | 0x2B05..=0x2B55
        | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x1F000..=0x1F1E5
        | 0x1F200..=0x1F3FA
        | 0x1F400..=0x1FAFF)
}

/// A message as it stands after changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changed {
    /// Its text now; empty once deleted.
    pub text: String,
    /// It was edited (and not deleted since).
    pub edited: bool,
    /// It was deleted: `text` is empty and it has no reactions.
    pub deleted: bool,
    /// Each emoji with the names that reacted with it, in the order of the
    /// first reaction with it, and they in the order they reacted.
    pub reactions: Vec<(String, Vec<String>)>,
}

impl Changed {
    /// What `change` from `from` makes of the message. Changes to a deleted
    /// message change nothing.
    pub fn apply(&mut self, change: &Change, from: &str) {
        if self.deleted {
            return;
        }
        match change {
            Change::Edit(text) => {
                self.text.clone_from(text);
                self.edited = true;
            }
            Change::Delete => {
                *self = Changed {
                    deleted: true,
                    ..Changed::default()
                };
            }
            Change::React(emoji) => match self.reactions.iter_mut().find(|(e, _)| e == emoji) {
                Some((_, names)) if names.iter().any(|n| n == from) => {}
                Some((_, names)) => names.push(from.to_owned()),
                None => self.reactions.push((emoji.clone(), vec![from.to_owned()])),
            },
            Change::Unreact(emoji) => {
                if let Some(at) = self.reactions.iter().position(|(e, _)| e == emoji) {
                    self.reactions[at].1.retain(|n| n != from);
                    if self.reactions[at].1.is_empty() {
                        self.reactions.remove(at);
                    }
                }
            }
        }
    }
}

/// What every record's event carries.
pub(crate) struct Head<'a> {
    pub(crate) id: u64,
    pub(crate) room: &'a str,
    pub(crate) from: &'a str,
    pub(crate) ts: u64,
    pub(crate) cid: Option<&'a str>,
    pub(crate) replay: bool,
}

/// `edit`, `delete`, `react` and `unreact`: their `type` is the change's.
#[derive(Serialize)]
struct ChangeEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    room: &'a str,
    target: u64,
    from: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emoji: Option<&'a str>,
    ts: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replay: bool,
}

/// A change's event: `{"type":"edit","id":61,"target":58,…}`.
pub(crate) fn encode_change(head: &Head<'_>, target: u64, change: &Change) -> String {
    let (text, emoji) = match change {
        Change::Edit(text) => (Some(text.as_str()), None),
        Change::Delete => (None, None),
        Change::React(emoji) | Change::Unreact(emoji) => (None, Some(emoji.as_str())),
    };
    encode(&ChangeEvent {
        kind: change.kind(),
        id: head.id,
        room: head.room,
        target,
        from: head.from,
        text,
        emoji,
        ts: head.ts,
        cid: head.cid,
        replay: head.replay,
    })
}

/// A changed message's event: a `message` that says `edited` or
/// `deleted`, with its `reactions`.
pub(crate) fn encode_changed(head: &Head<'_>, changed: &Changed) -> String {
    super::encode(&Event::Message {
        id: head.id,
        room: head.room,
        from: head.from,
        text: &changed.text,
        ts: head.ts,
        cid: head.cid,
        edited: changed.edited,
        deleted: changed.deleted,
        reactions: (!changed.reactions.is_empty()).then_some(Reactions(&changed.reactions)),
        replay: head.replay,
    })
}

fn encode(event: &impl Serialize) -> String {
    serde_json::to_string(event).expect("events contain only strings and integers")
}

/// A replayed message's frame after `change` from `from`: the frame read
/// back, changed, and encoded again. `None` when the frame is not a
/// message's.
pub(crate) fn amend(frame: &[u8], change: &Change, from: &str) -> Option<String> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(frame) else {
        return None;
    };
    if obj.get("type")?.as_str()? != "message" {
        return None;
    }
    let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut changed = Changed {
        text: obj.get("text")?.as_str()?.to_owned(),
        edited: flag("edited"),
        deleted: flag("deleted"),
        reactions: match obj.get("reactions") {
            Some(Value::Object(r)) => r
                .iter()
                .map(|(emoji, names)| {
                    let names = names.as_array().map_or(&[][..], Vec::as_slice);
                    let names = names.iter().filter_map(Value::as_str);
                    (emoji.clone(), names.map(str::to_owned).collect())
                })
                .collect(),
            _ => Vec::new(),
        },
    };
    changed.apply(change, from);
    let head = Head {
        id: obj.get("id")?.as_u64()?,
        room: obj.get("room")?.as_str()?,
        from: obj.get("from")?.as_str()?,
        ts: obj.get("ts")?.as_u64()?,
        cid: obj.get("cid").and_then(Value::as_str),
        replay: flag("replay"),
    };
    Some(encode_changed(&head, &changed))
}

/// A replayed edit's frame of a message since deleted, as a deletion: the
/// text it gave is no longer replayed. `None` when it is not an edit of
/// `target`.
pub(crate) fn scrub_edit(frame: &[u8], target: u64) -> Option<String> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(frame) else {
        return None;
    };
    if obj.get("type")?.as_str()? != "edit" || obj.get("target")?.as_u64()? != target {
        return None;
    }
    let head = Head {
        id: obj.get("id")?.as_u64()?,
        room: obj.get("room")?.as_str()?,
        from: obj.get("from")?.as_str()?,
        ts: obj.get("ts")?.as_u64()?,
        cid: obj.get("cid").and_then(Value::as_str),
        replay: obj.get("replay").and_then(Value::as_bool).unwrap_or(false),
    };
    Some(encode_change(&head, target, &Change::Delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_emoji_and_nothing_else() {
        for ok in ["👍", "👍🏽", "❤️", "❤", "👩‍💻", "🇫🇷", "1️⃣", "🎉", "😂", "👨‍👩‍👧"]
        {
            assert!(is_one_emoji(ok), "{ok:?}");
        }
        for bad in [
            "", "a", "ok", "👍👍", "🏽", "1", "👍 ", "‍👍", "👍‍", "🇫", "<b>",
        ] {
            assert!(!is_one_emoji(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_frame_amended_is_the_message_as_it_stands() {
        let head = Head {
            id: 5,
            room: "lobby",
            from: "alice",
            ts: 1,
            cid: Some("c1"),
            replay: true,
        };
        let plain = encode_changed(
            &head,
            &Changed {
                text: "hi".into(),
                ..Changed::default()
            },
        );
        let edited = amend(plain.as_bytes(), &Change::Edit("hello".into()), "alice").unwrap();
        let reacted = amend(edited.as_bytes(), &Change::React("👍".into()), "bob").unwrap();
        let v: Value = serde_json::from_str(&reacted).unwrap();
        assert_eq!(v["text"], "hello");
        assert_eq!(v["edited"], true);
        assert_eq!(v["reactions"]["👍"][0], "bob");
        assert_eq!(v["cid"], "c1");
        let gone = amend(reacted.as_bytes(), &Change::Delete, "mod").unwrap();
        let v: Value = serde_json::from_str(&gone).unwrap();
        assert_eq!(
            (v["text"].as_str(), v["deleted"].as_bool()),
            (Some(""), Some(true))
        );
        assert!(v.get("reactions").is_none() && v.get("edited").is_none());
    }
}
