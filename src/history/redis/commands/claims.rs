//! What the dispatcher commands of Redis: name claims and releases, and
//! the bans loaded at start; and keeping this instance's names alive.
//! (Kicks and bans are asked of every instance by `instances.rs`.)

use crate::logs as log;

use redis::Value;

use crate::history::redis::entry;
use crate::history::redis::keys;
use crate::history::redis::link::Link;
use crate::history::redis::{ALIVE_TTL, ClaimOutcome, Moderation, Note, Order};

use super::Worker;

impl Worker {
    pub(super) fn command(&mut self, command: Order) {
        match command {
            Order::Claim {
                token,
                room,
                name,
                skeleton,
                owner,
            } => {
                let outcome = match self.claim(&room, &name, &skeleton, &owner) {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        self.lost(&e);
                        ClaimOutcome::Unavailable
                    }
                };
                (self.note)(Note::Claimed {
                    token,
                    room,
                    outcome,
                });
            }
            Order::Release {
                room,
                name,
                skeleton,
            } => {
                if let Err(e) = self.release(&room, &name, &skeleton) {
                    self.lost(&e);
                    self.releases.push_back((room, name, skeleton));
                }
            }
            Order::Subscribe { .. } | Order::Unsubscribe { .. } => {
                // The subscriber thread's (see `ClusterHandle::send`).
            }
            Order::Typing { room, name } => {
                let json = entry::presence("y", &room, &name, &self.instance);
                if let Ok((conn, publish)) = self.publishing() {
                    let _ = redis::cmd(publish)
                        .arg(keys::Room::new(&room).channel())
                        .arg(json)
                        .query::<()>(conn);
                }
            }
        }
    }

    /// The bans in force, kept in Redis by whichever instance a moderator
    /// used: handed to the dispatcher whenever the connection is made.
    pub(super) fn load_bans(&self, conn: &mut Link) -> redis::RedisResult<()> {
        let bans: Vec<(String, String)> = redis::cmd("HGETALL").arg(keys::BANS).query(conn)?;
        let now = crate::proto::protocol::now_ms();
        for (_, value) in bans {
            let Some((until, name)) = value.split_once('\t') else {
                continue;
            };
            let Ok(until) = until.parse::<u64>() else {
                continue;
            };
            if until > now {
                (self.note)(Note::Moderated(Moderation::Ban {
                    name: name.to_owned(),
                    until,
                }));
            }
        }
        Ok(())
    }

    pub(super) fn claim(
        &mut self,
        room: &str,
        name: &str,
        skeleton: &str,
        owner: &str,
    ) -> redis::RedisResult<ClaimOutcome> {
        let k = keys::Room::new(room);
        let scripts = self.scripts.clone();
        let mut invocation = scripts.claim.prepare_invoke();
        invocation
            .key(k.names())
            .arg(skeleton)
            .arg(owner)
            .arg(name)
            .arg(&*self.instance)
            .arg(k.alive_prefix())
            .arg(ALIVE_TTL.as_secs());
        let instance = self.instance.clone();
        let (conn, publish) = self.publishing()?;
        let result: Vec<Value> = invocation.invoke(conn)?;
        let held: u8 = redis::from_redis_value(result[0].clone())?;
        let spelled: String = redis::from_redis_value(result[1].clone())?;
        if held == 0 {
            return Ok(ClaimOutcome::Taken(spelled));
        }
        let first: u8 = redis::from_redis_value(result[2].clone())?;
        let stale: String = redis::from_redis_value(result[3].clone())?;
        let mut pipe = redis::pipe();
        if !stale.is_empty() {
            pipe.cmd(publish)
                .arg(k.channel())
                .arg(entry::presence("l", room, &stale, &instance))
                .ignore();
        }
        if first == 1 {
            pipe.cmd(publish)
                .arg(k.channel())
                .arg(entry::presence("j", room, &spelled, &instance))
                .ignore();
        }
        if !pipe.is_empty() {
            pipe.query::<()>(conn)?;
        }
        *self.held.entry(room.to_owned()).or_default() += 1;
        Ok(ClaimOutcome::Held { first: first == 1 })
    }

    pub(super) fn release(
        &mut self,
        room: &str,
        name: &str,
        skeleton: &str,
    ) -> redis::RedisResult<()> {
        let k = keys::Room::new(room);
        let scripts = self.scripts.clone();
        let mut invocation = scripts.release.prepare_invoke();
        invocation.key(k.names()).arg(skeleton).arg(&*self.instance);
        let instance = self.instance.clone();
        let (conn, publish) = self.publishing()?;
        let gone: String = invocation.invoke(conn)?;
        if !gone.is_empty() {
            redis::cmd(publish)
                .arg(k.channel())
                .arg(entry::presence("l", room, name, &instance))
                .query::<()>(conn)?;
        }
        if let Some(count) = self.held.get_mut(room) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held.remove(room);
            }
        }
        Ok(())
    }

    /// Keeps this instance's names alive in every room where it holds some,
    /// and reaps the names of instances whose liveness expired, telling
    /// everyone they left.
    pub(super) fn refresh(&mut self) -> redis::RedisResult<()> {
        let rooms: Vec<String> = self.held.keys().cloned().collect();
        let instance = self.instance.clone();
        let reap_hash = self.scripts.reap.get_hash().to_owned();
        let (conn, publish) = self.publishing()?;
        if rooms.is_empty() {
            return redis::cmd("PING").query::<()>(conn);
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            let k = keys::Room::new(room);
            pipe.cmd("SET")
                .arg(format!("{}{instance}", k.alive_prefix()))
                .arg(1)
                .arg("EX")
                .arg(ALIVE_TTL.as_secs())
                .ignore();
            pipe.cmd("EVALSHA")
                .arg(&reap_hash)
                .arg(1)
                .arg(k.names())
                .arg(k.alive_prefix());
        }
        let gone: Vec<Vec<String>> = pipe.query(conn)?;
        let mut leaves = redis::pipe();
        for (room, names) in rooms.iter().zip(gone) {
            for name in names {
                log::info!("event=member_expired room={room:?} name={name:?}");
                leaves
                    .cmd(publish)
                    .arg(keys::Room::new(room).channel())
                    .arg(entry::presence("l", room, &name, &instance))
                    .ignore();
            }
        }
        if leaves.is_empty() {
            return Ok(());
        }
        leaves.query::<()>(conn)
    }
}
