//! A moderator's request where instances share rooms (`--redis`): asked of
//! every live instance, each answering from its own hubs
//! (`history/redis/instances.rs` carries the question and the answers),
//! and the answers put together here — rooms merged by name, each person
//! listed with the instance they are on, closed connections added up — with
//! the instances that did not answer named, never silently left out.

use crate::logs as log;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::history::redis::{Answerer, Asked, Everywhere, Moderation};
use crate::hub::hubs::Hubs;
use crate::hub::moderation::{BanView, Overview, Reply, Request, RoomView, not_a_name};
use crate::proto::names;

/// Which instances an answer comes from.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Reach {
    /// The instances that answered, in the order they did.
    pub instances: Vec<String>,
    /// The live instances that did not answer in time: their clients are
    /// not in the answer, and an action was not carried out there.
    pub missing: Vec<String>,
}

/// How many connections an instance closed, or whether it lifted a ban:
/// the parts of a kick's, ban's or unban's answer that add up.
#[derive(Debug, Deserialize)]
struct Count {
    #[serde(default)]
    kicked: usize,
    #[serde(default)]
    unbanned: bool,
}

/// How this instance answers another's question: its hubs' answer, as
/// JSON.
pub fn answerer(hubs: Hubs) -> Answerer {
    std::sync::Arc::new(move |asked: &Asked, wait: Duration| {
        let request = match asked.clone() {
            Asked::Overview => Request::Overview,
            Asked::Act(Moderation::Kick { name, room }) => Request::Kick { name, room },
            // `minutes` is only for the asking instance's log.
            Asked::Act(Moderation::Ban { name, until }) => Request::Ban {
                name,
                minutes: 0,
                until,
            },
            Asked::Act(Moderation::Unban { name }) => Request::Unban { name },
        };
        let reply = hubs.moderate(request, wait)?;
        Some(serde_json::to_string(&reply).expect("replies are plain data"))
    })
}

/// Asks `request` of every live instance and puts their answers together.
/// A name no one could have is refused here, as every hub would. An error
/// when Redis does not answer.
pub fn ask(everywhere: &Everywhere, request: &Request) -> redis::RedisResult<(Reply, Reach)> {
    let (asked, name) = match request {
        Request::Overview => (Asked::Overview, None),
        Request::Kick { name, room } => (
            Asked::Act(Moderation::Kick {
                name: name.clone(),
                room: room.clone(),
            }),
            Some(name),
        ),
        Request::Ban { name, until, .. } => (
            Asked::Act(Moderation::Ban {
                name: name.clone(),
                until: *until,
            }),
            Some(name),
        ),
        Request::Unban { name } => (
            Asked::Act(Moderation::Unban { name: name.clone() }),
            Some(name),
        ),
    };
    let name = match name.map(|n| names::name(n)) {
        Some(Err(e)) => return Ok((not_a_name(e), Reach::default())),
        Some(Ok(name)) => name.text,
        None => String::new(),
    };
    let gathered = everywhere.ask(asked)?;
    let mut reach = Reach {
        instances: Vec::new(),
        missing: gathered.missing,
    };
    let mut overview = Overview {
        bans_kept: "redis",
        ..Overview::default()
    };
    let (mut kicked, mut unbanned) = (0, false);
    for (instance, json) in gathered.answers {
        let read = match request {
            Request::Overview => serde_json::from_str::<Overview>(&json)
                .map(|theirs| add_overview(&mut overview, theirs, &instance)),
            _ => serde_json::from_str::<Count>(&json).map(|count| {
                kicked += count.kicked;
                unbanned |= count.unbanned;
            }),
        };
        match read {
            Ok(()) => reach.instances.push(instance),
            Err(e) => {
                log::warn!(
                    "event=admin_bad_answer instance={instance} error={:?}",
                    e.to_string()
                );
                reach.missing.push(instance);
            }
        }
    }
    let reply = match request {
        Request::Overview => Reply::Overview(overview),
        Request::Kick { .. } => Reply::Kicked { name, kicked },
        Request::Ban { until, .. } => Reply::Banned {
            name,
            until: *until,
            kicked,
        },
        Request::Unban { .. } => Reply::Unbanned { name, unbanned },
    };
    Ok((reply, reach))
}

/// Adds one instance's overview to the whole: its people marked with the
/// instance, its rooms merged by name with those of other instances, its
/// bans (the same everywhere, from Redis) once.
fn add_overview(whole: &mut Overview, theirs: Overview, instance: &str) {
    whole.connections += theirs.connections;
    for mut room in theirs.rooms {
        for person in &mut room.people {
            person.instance = Some(instance.to_owned());
        }
        let key = names::skeleton(&room.name);
        match whole
            .rooms
            .iter_mut()
            .find(|r| names::skeleton(&r.name) == key)
        {
            Some(ours) => merge_room(ours, room),
            None => whole.rooms.push(room),
        }
    }
    whole.rooms.sort_by(|a, b| a.name.cmp(&b.name));
    for ban in theirs.bans {
        if !whole.bans.iter().any(|b| b.name == ban.name) {
            whole.bans.push(ban);
        }
    }
    whole
        .bans
        .sort_by(|a: &BanView, b| (a.until, &a.name).cmp(&(b.until, &b.name)));
}

/// One room as two instances see it: everyone on either, every connection,
/// and the history of the one that read further.
fn merge_room(ours: &mut RoomView, theirs: RoomView) {
    ours.people.extend(theirs.people);
    ours.connections += theirs.connections;
    ours.history = ours.history.max(theirs.history);
    ours.last_id = ours.last_id.max(theirs.last_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::moderation::PersonView;

    fn overview(room: &str, person: &str) -> Overview {
        Overview {
            rooms: vec![RoomView {
                name: room.into(),
                people: vec![PersonView {
                    name: person.into(),
                    connections: 1,
                    modes: vec!["v1"],
                    instance: None,
                }],
                connections: 1,
                history: 3,
                last_id: 3,
            }],
            connections: 1,
            bans: vec![BanView {
                name: "eve".into(),
                until: 9,
            }],
            bans_kept: "redis",
        }
    }

    #[test]
    fn rooms_merge_by_name_and_people_keep_their_instance() {
        let mut whole = Overview::default();
        // Through JSON, as answers travel.
        for (instance, room, person) in [("a", "hall", "ann"), ("b", "h\u{430}ll", "bob")] {
            let json = serde_json::to_string(&overview(room, person)).unwrap();
            add_overview(&mut whole, serde_json::from_str(&json).unwrap(), instance);
        }
        assert_eq!(whole.rooms.len(), 1, "look-alike names are one room");
        let people: Vec<(&str, Option<&str>)> = whole.rooms[0]
            .people
            .iter()
            .map(|p| (p.name.as_str(), p.instance.as_deref()))
            .collect();
        assert_eq!(people, [("ann", Some("a")), ("bob", Some("b"))]);
        assert_eq!(whole.rooms[0].connections, 2);
        assert_eq!(whole.connections, 2);
        assert_eq!(whole.bans.len(), 1, "the shared bans once");
    }

    #[test]
    fn an_unknown_label_is_refused() {
        let json = serde_json::to_string(&overview("hall", "ann"))
            .unwrap()
            .replace("\"v1\"", "\"v9\"");
        assert!(serde_json::from_str::<Overview>(&json).is_err());
    }
}
