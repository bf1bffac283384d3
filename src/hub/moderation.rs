//! What a moderator may ask of the dispatcher, what it answers, and the
//! bans it keeps. The admin HTTP handler (`admin.rs`) sends a [`Request`]
//! with a reply channel in an `Input::Admin`; the dispatcher, which owns
//! the rooms, answers from its own thread (`hub/dispatcher/moderate.rs`). No
//! map is shared.

use std::collections::HashMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::proto::names;

/// Longest ban, in minutes: a year.
pub const MAX_BAN_MINUTES: u64 = 366 * 24 * 60;

/// The close reason a kicked client is sent, with code 1008.
pub const KICKED: &str = "kicked by moderator";

/// The close reason a client is sent when its name is banned, with 1008.
pub const BANNED: &str = "banned by moderator";

/// A moderator's question or action.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Every room, who is in it, and the bans in force.
    Overview,
    /// Closes every connection of the person called `name` (or a name that
    /// looks the same) in `room`, or in every room.
    Kick { name: String, room: Option<String> },
    /// Refuses the name (and names that look the same) in every room for
    /// `minutes`, and closes the connections that hold it now.
    /// `until` is `minutes` from when the moderator asked, in milliseconds
    /// since the Unix epoch: one time for every hub that carries it out.
    Ban {
        name: String,
        minutes: u64,
        until: u64,
    },
    /// Lifts a ban.
    Unban { name: String },
}

/// The dispatcher's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Overview(Overview),
    Kicked {
        name: String,
        /// Connections closed.
        kicked: usize,
    },
    Banned {
        name: String,
        /// When the ban ends, in milliseconds since the Unix epoch.
        until: u64,
        kicked: usize,
    },
    Unbanned {
        name: String,
        /// Whether there was a ban to lift.
        unbanned: bool,
    },
    /// The request names no one that could be in a room.
    Refused {
        error: &'static str,
        message: String,
    },
}

/// Every room and who is in it. Read back from JSON too: another
/// instance's answer (`hub/everywhere.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Overview {
    pub rooms: Vec<RoomView>,
    /// Connections the dispatcher knows, in rooms or not (echo, joining).
    pub connections: usize,
    pub bans: Vec<BanView>,
    /// Where the bans are kept: `"memory"` (this process: a restart lifts
    /// them) or `"redis"` (shared, outliving any one instance). Not read
    /// back: the instance putting answers together says it.
    #[serde(skip_deserializing)]
    pub bans_kept: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomView {
    pub name: String,
    /// People in order of joining; one entry per person.
    pub people: Vec<PersonView>,
    /// Connections in the room (a person may have several).
    pub connections: usize,
    /// Messages and files kept for replay.
    pub history: usize,
    /// Id of the newest stored message or file.
    pub last_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonView {
    pub name: String,
    pub connections: usize,
    /// `raw` or `v1`, one per connection, in order of joining.
    #[serde(deserialize_with = "modes")]
    pub modes: Vec<&'static str>,
    /// The instance these connections are on, with shared rooms (a person
    /// on two instances is listed once for each); `None` on one instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanView {
    pub name: String,
    pub until: u64,
}

/// Names refused until a time, by skeleton, so that a lookalike spelling
/// is refused too.
#[derive(Debug, Default)]
pub struct Bans {
    by_skeleton: HashMap<String, BanView>,
}

impl Bans {
    /// Bans `name` until `until` (ms since the epoch).
    pub fn ban(&mut self, name: &names::Name, until: u64) {
        self.by_skeleton.insert(
            name.skeleton.clone(),
            BanView {
                name: name.text.clone(),
                until,
            },
        );
    }

    /// Lifts the ban on `name`; whether there was one.
    pub fn unban(&mut self, name: &names::Name) -> bool {
        self.by_skeleton.remove(&name.skeleton).is_some()
    }

    /// When the ban on a name that looks like `skeleton`'s ends, if one is
    /// in force; an ended ban is forgotten here.
    pub fn until(&mut self, skeleton: &str, now: u64) -> Option<u64> {
        match self.by_skeleton.get(skeleton) {
            Some(ban) if ban.until > now => Some(ban.until),
            Some(_) => {
                self.by_skeleton.remove(skeleton);
                None
            }
            None => None,
        }
    }

    /// The bans in force, soonest to end first.
    pub fn list(&mut self, now: u64) -> Vec<BanView> {
        self.by_skeleton.retain(|_, ban| ban.until > now);
        let mut bans: Vec<BanView> = self.by_skeleton.values().cloned().collect();
        bans.sort_by(|a, b| (a.until, &a.name).cmp(&(b.until, &b.name)));
        bans
    }
}

/// The answer to a request naming someone no one could be called.
pub fn not_a_name(e: names::NameError) -> Reply {
    Reply::Refused {
        error: "invalid_name",
        message: format!("no one can be called that: {e}"),
    }
}

/// Two hubs' answers to one request, as one: each hub knows only its own
/// rooms and clients, and every hub keeps the same bans.
pub fn merge(a: Reply, b: Reply) -> Reply {
    match (a, b) {
        (Reply::Overview(mut a), Reply::Overview(b)) => {
            a.rooms.extend(b.rooms);
            a.rooms.sort_by(|x, y| x.name.cmp(&y.name));
            a.connections += b.connections;
            Reply::Overview(a)
        }
        (Reply::Kicked { name, kicked }, Reply::Kicked { kicked: more, .. }) => Reply::Kicked {
            name,
            kicked: kicked + more,
        },
        (
            Reply::Banned {
                name,
                until,
                kicked,
            },
            Reply::Banned {
                until: other,
                kicked: more,
                ..
            },
        ) => Reply::Banned {
            name,
            until: until.max(other),
            kicked: kicked + more,
        },
        (Reply::Unbanned { name, unbanned }, Reply::Unbanned { unbanned: also, .. }) => {
            Reply::Unbanned {
                name,
                unbanned: unbanned || also,
            }
        }
        // A refusal is about the request, the same from every hub.
        (refused @ Reply::Refused { .. }, _) | (_, refused @ Reply::Refused { .. }) => refused,
        (a, _) => a,
    }
}

/// A connection's modes, as another instance's answer spells them, read
/// back as this build's own `&'static str`s.
fn modes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
    Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|text| {
            ["v1", "raw"]
                .into_iter()
                .find(|l| *l == text)
                .ok_or_else(|| D::Error::custom(format!("unknown mode {text:?}")))
        })
        .collect()
}

pub(crate) use crate::proto::protocol::now_ms;

/// A time in milliseconds since the Unix epoch as RFC 3339, UTC, to the
/// millisecond (`2026-11-26T23:50:09.098Z`): the form of the log's own `ts`,
/// so that a ban's end reads like the time of the line beside it.
pub fn rfc3339(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let of_day = ms % 86_400_000;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1_000 % 60,
        of_day % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_737_009_098), "2026-11-26T23:50:09.098Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn bans_cover_lookalikes_and_end() {
        let mut bans = Bans::default();
        bans.ban(&names::name("bob").unwrap(), 2_000);
        let lookalike = names::name("b\u{43e}b").unwrap().skeleton;
        assert_eq!(bans.until(&lookalike, 1_000), Some(2_000));
        assert_eq!(bans.list(1_000).len(), 1);
        assert_eq!(bans.until(&lookalike, 2_000), None);
        assert!(bans.list(1_000).is_empty(), "an ended ban is forgotten");
        bans.ban(&names::name("bob").unwrap(), 5_000);
        assert!(bans.unban(&names::name("bob").unwrap()));
        assert!(!bans.unban(&names::name("bob").unwrap()));
    }

    #[test]
    fn hubs_answers_add_up() {
        let kicked = |n| Reply::Kicked {
            name: "bob".into(),
            kicked: n,
        };
        assert_eq!(merge(kicked(2), kicked(3)), kicked(5));
        let overview = |room: &str, connections| {
            Reply::Overview(Overview {
                rooms: vec![RoomView {
                    name: room.into(),
                    people: Vec::new(),
                    connections,
                    history: 0,
                    last_id: 0,
                }],
                connections,
                bans: Vec::new(),
                bans_kept: "memory",
            })
        };
        let Reply::Overview(both) = merge(overview("b", 2), overview("a", 1)) else {
            panic!("an overview");
        };
        assert_eq!(both.connections, 3);
        let names: Vec<&str> = both.rooms.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn replies_are_plain_json() {
        let reply = Reply::Banned {
            name: "bob".into(),
            until: 7,
            kicked: 2,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"name":"bob","until":7,"kicked":2}"#
        );
    }
}
