//! Events as Redis keeps and publishes them: one JSON object each. A
//! message's entry is written by the append script, which puts its `id`
//! and `epoch` in front of what the sender's instance encoded.

use serde::{Deserialize, Serialize};
use tungstenite::Bytes;

use super::{Change, Moderation};
use crate::history::sqlite::{Body, Record};

/// A message or file as it arrived from Redis.
#[derive(Debug)]
pub struct Arrival {
    pub record: Record,
    /// The room's epoch the id belongs to.
    pub epoch: String,
    /// The instance and client that sent it.
    pub instance: String,
    pub client: u64,
    /// Whether the sender spoke the raw protocol (raw receivers then get
    /// the text as it was, not prefixed with the sender's name).
    pub raw: bool,
    /// A file's bytes, read by the subscriber before handing it on; `None`
    /// when Redis no longer has them.
    pub data: Option<Bytes>,
}

/// Every field any published event may carry.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Wire {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub t: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    pub room: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub from: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// The instance it comes from.
    pub o: String,
    /// The client it comes from, on that instance.
    #[serde(default)]
    pub c: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw: bool,
    /// When a ban ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// A change's kind (`edit`, `delete`, `react`, `unreact`; its `text`
    /// the edit's text or the emoji) and the message it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<u64>,
    /// A moderator's question's id: every instance answers it on the
    /// reply list of that id (`instances.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// What the append script is given: the entry without its leading brace
/// (the script writes `{"t":"m","id":…,"epoch":…,` in front).
pub fn entry_tail(record: &Record, instance: &str, client: u64, raw: bool) -> String {
    let mut wire = Wire {
        room: record.room.clone(),
        from: record.from.clone(),
        ts: Some(record.ts),
        cid: record.cid.clone(),
        o: instance.to_owned(),
        c: client,
        raw,
        ..Wire::default()
    };
    match &record.body {
        Body::Text(_) | Body::Changed(_) | Body::Change { .. } => {
            wire.text = record.body.text().map(str::to_owned);
            let (kind, target) = record.body.change_columns();
            wire.kind = kind.map(str::to_owned);
            wire.target = target;
        }
        Body::File {
            name, size, mime, ..
        } => {
            wire.name = name.clone();
            wire.size = Some(*size);
            wire.mime = Some(mime.clone());
        }
    }
    let json = serde_json::to_string(&wire).expect("plain fields serialise");
    json[1..].to_owned()
}

/// A presence event's JSON (`t` is `j`oined, `l`eft or t`y`ping).
pub fn presence(t: &str, room: &str, name: &str, instance: &str) -> String {
    serde_json::to_string(&Wire {
        t: t.to_owned(),
        room: room.to_owned(),
        name: name.to_owned(),
        o: instance.to_owned(),
        ..Wire::default()
    })
    .expect("plain fields serialise")
}

/// What a moderator asks of every instance (`instances` carries it).
#[derive(Debug, Clone, PartialEq)]
pub enum Asked {
    /// The rooms and people this instance hosts, and the bans.
    Overview,
    /// Carry out this action on this instance's clients.
    Act(Moderation),
}

/// A question as published: its id, the instance asking, and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: String,
    pub from: String,
    pub asked: Asked,
}

/// A moderator's question as published (`t` is `o`verview, `k`ick, `b`an
/// or `u`nban; a kick's `room`, empty, means every room), with its id in
/// `q` and the asking instance in `o`.
pub fn question(question: &Question) -> String {
    let (t, name, room, until) = match &question.asked {
        Asked::Overview => ("o", String::new(), String::new(), None),
        Asked::Act(Moderation::Kick { name, room }) => {
            ("k", name.clone(), room.clone().unwrap_or_default(), None)
        }
        Asked::Act(Moderation::Ban { name, until }) => {
            ("b", name.clone(), String::new(), Some(*until))
        }
        Asked::Act(Moderation::Unban { name }) => ("u", name.clone(), String::new(), None),
    };
    serde_json::to_string(&Wire {
        t: t.to_owned(),
        room,
        name,
        o: question.from.clone(),
        until,
        q: Some(question.id.clone()),
        ..Wire::default()
    })
    .expect("plain fields serialise")
}

impl Change {
    /// The change a presence event's `t` stands for.
    pub fn from_tag(t: &str) -> Option<Change> {
        match t {
            "j" => Some(Change::Joined),
            "l" => Some(Change::Left),
            "y" => Some(Change::Typing),
            _ => None,
        }
    }
}

impl Wire {
    /// The moderator's question this event carries, if it is one.
    pub fn into_question(mut self) -> Option<Question> {
        let id = self.q.take()?;
        let from = std::mem::take(&mut self.o);
        let asked = match self.t.as_str() {
            "o" => Asked::Overview,
            _ => Asked::Act(self.into_moderation()?),
        };
        Some(Question { id, from, asked })
    }

    /// The moderator's action this event carries, if it is one.
    fn into_moderation(self) -> Option<Moderation> {
        match self.t.as_str() {
            "k" => Some(Moderation::Kick {
                name: self.name,
                room: Some(self.room).filter(|r| !r.is_empty()),
            }),
            "b" => Some(Moderation::Ban {
                name: self.name,
                until: self.until?,
            }),
            "u" => Some(Moderation::Unban { name: self.name }),
            _ => None,
        }
    }

    pub fn parse(json: &[u8]) -> Option<Wire> {
        serde_json::from_slice(json).ok()
    }

    /// The message or file this entry holds; `available` says whether a
    /// file's bytes are still kept.
    pub fn into_arrival(self, available: bool) -> Option<Arrival> {
        let body = match (self.text, self.size, self.mime) {
            (Some(text), _, _) => match (self.kind, self.target) {
                (Some(kind), Some(target)) => Body::Change {
                    target,
                    change: crate::history::Change::from_stored(&kind, text)?,
                    moderator: false,
                },
                _ => Body::Text(text),
            },
            (None, Some(size), Some(mime)) => Body::File {
                name: self.name,
                size,
                mime,
                available,
            },
            _ => return None,
        };
        Some(Arrival {
            record: Record {
                room: self.room,
                id: self.id?,
                from: self.from,
                ts: self.ts.unwrap_or(0),
                cid: self.cid,
                body,
            },
            epoch: self.epoch?,
            instance: self.o,
            client: self.c,
            raw: self.raw,
            data: None,
        })
    }
}
