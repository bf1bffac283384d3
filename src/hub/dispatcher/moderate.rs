//! The dispatcher's side of moderation: it owns the rooms, so it answers
//! the admin view's questions and carries out kicks and bans itself, on its
//! own thread, between two events like any other.

use crossbeam_channel::Sender;

use super::{Dispatcher, Seat};
use crate::history::redis::Moderation;
use crate::hub::moderation::{
    self, BanView, Overview, PersonView, Reply, Request, RoomView, not_a_name,
};
use crate::proto::close::Close;
use crate::proto::names;
use crate::proto::protocol::Mode;

impl Dispatcher {
    /// Answers one request on `reply`. The asker waits for the answer with
    /// a deadline; if it has stopped waiting, the answer is dropped.
    pub(super) fn moderate(&mut self, request: Request, reply: Sender<Reply>) {
        let answer = match request {
            Request::Overview => Reply::Overview(self.overview()),
            Request::Kick { name, room } => match names::name(&name) {
                Ok(name) => Reply::Kicked {
                    kicked: self.act(Moderation::Kick {
                        name: name.text.clone(),
                        room,
                    }),
                    name: name.text,
                },
                Err(e) => not_a_name(e),
            },
            Request::Ban { name, until, .. } => match names::name(&name) {
                Ok(name) => Reply::Banned {
                    kicked: self.act(Moderation::Ban {
                        name: name.text.clone(),
                        until,
                    }),
                    name: name.text,
                    until,
                },
                Err(e) => not_a_name(e),
            },
            Request::Unban { name } => match names::name(&name) {
                Ok(name) => {
                    let unbanned = self.banned_until(&name).is_some();
                    self.act(Moderation::Unban {
                        name: name.text.clone(),
                    });
                    Reply::Unbanned {
                        unbanned,
                        name: name.text,
                    }
                }
                Err(e) => not_a_name(e),
            },
        };
        let _ = reply.try_send(answer);
    }

    /// Carries out a moderator's action on this hub. With shared rooms the
    /// request was asked of every instance, each of which carries it out
    /// (`history/redis/instances.rs`), so nothing is told onward from here.
    /// Returns how many connections were closed here.
    fn act(&mut self, action: Moderation) -> usize {
        self.carry_out(&action)
    }

    /// Carries out a moderator's action on this instance's clients;
    /// returns how many connections were closed.
    pub(super) fn carry_out(&mut self, action: &Moderation) -> usize {
        let Ok(name) = names::name(match action {
            Moderation::Kick { name, .. }
            | Moderation::Ban { name, .. }
            | Moderation::Unban { name } => name,
        }) else {
            return 0;
        };
        match action {
            Moderation::Kick { room, .. } => self.kick(&name, room.as_deref(), moderation::KICKED),
            Moderation::Ban { until, .. } => {
                self.bans.ban(&name, *until);
                self.kick(&name, None, moderation::BANNED)
            }
            Moderation::Unban { .. } => {
                self.bans.unban(&name);
                0
            }
        }
    }

    /// When the ban on `name` ends, if it is banned now.
    pub(super) fn banned_until(&mut self, name: &names::Name) -> Option<u64> {
        self.bans.until(&name.skeleton, moderation::now_ms())
    }

    fn overview(&mut self) -> Overview {
        let mut rooms: Vec<RoomView> = self
            .rooms
            .iter()
            .map(|(room_name, room)| {
                let mut people: Vec<PersonView> = Vec::new();
                for member in room.members.values() {
                    let Some(client) = self.clients.get(member) else {
                        continue;
                    };
                    let Some(Seat { name, .. }) = &client.seat else {
                        continue;
                    };
                    let mode = match client.mode {
                        Mode::V1 => "v1",
                        Mode::Raw => "raw",
                    };
                    match people.iter_mut().find(|p| &p.name == name) {
                        Some(person) => {
                            person.connections += 1;
                            person.modes.push(mode);
                        }
                        None => people.push(PersonView {
                            name: name.clone(),
                            connections: 1,
                            modes: vec![mode],
                            instance: None,
                        }),
                    }
                }
                RoomView {
                    name: room_name.clone(),
                    connections: room.members.len(),
                    people,
                    history: room.history.len(),
                    last_id: room.last_id,
                }
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        let bans: Vec<BanView> = self.bans.list(moderation::now_ms());
        Overview {
            rooms,
            connections: self.clients.len(),
            bans,
            bans_kept: self.backend.bans_kept(),
        }
    }

    /// Closes with 1008 `reason` every connection of the person whose name
    /// looks like `name`, in the rooms whose name looks like `room` (every
    /// room if `None`). Returns how many connections were closed.
    fn kick(&mut self, name: &names::Name, room: Option<&str>, reason: &'static str) -> usize {
        let room = room.map(names::skeleton);
        let mut kicked = Vec::new();
        for (room_name, r) in &self.rooms {
            if room
                .as_ref()
                .is_some_and(|s| *s != names::skeleton(room_name))
            {
                continue;
            }
            let Some((holder, _)) = r.people.find(&name.text) else {
                continue;
            };
            kicked.extend(r.members.values().copied().filter(|m| {
                self.clients
                    .get(m)
                    .and_then(|c| c.seat.as_ref())
                    .is_some_and(|s| s.name == holder)
            }));
        }
        for id in &kicked {
            if let Some(client) = self.clients.remove(id) {
                self.vacate(client, Some(Close::policy(reason)));
            }
        }
        kicked.len()
    }
}
