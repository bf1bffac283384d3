//! The subscriber with a Redis Cluster: each room's channel is subscribed
//! on the master that owns its slot (`SSUBSCRIBE`), so an event is carried
//! only by the shard that holds the room.
//!
//! It keeps one connection per master that owns a subscribed room (and
//! the moderation channel, whose plain `PUBLISH` reaches every node), each
//! read by a small thread of its own that hands what it reads to this
//! thread; only this thread writes to them. The slot map comes from
//! `CLUSTER SLOTS`. When the map is wrong (`-MOVED`), a shard gives up a
//! room's channel unasked (its slot moved, or its master became a
//! replica), or a connection drops or stops answering pings, everything is
//! made again from a fresh map: every room is subscribed anew and its hub
//! told ([`Note::Subscribed`]), and reads the room's stream, so nothing
//! published in between is lost.

use std::collections::HashMap;
use std::io;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, select};

use super::super::keys::{self, CHANNEL};
use super::super::link::{Addr, Link};
use super::super::resp::{self, Value};
use super::super::{COMMAND_TIMEOUT, Order, PubSub};
use super::{POLL, SILENCE, Subscriber, pubsub_on};

/// Which master owns each slot range, inclusive.
struct SlotMap {
    ranges: Vec<(u16, u16, Addr)>,
    /// Every node named, masters and replicas.
    nodes: Vec<Addr>,
}

impl SlotMap {
    fn owner(&self, channel: &str) -> Option<&Addr> {
        let slot = keys::slot(channel.as_bytes());
        self.ranges
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, addr)| addr)
    }

    /// From `CLUSTER SLOTS`' answer: `[start, end, [ip, port, id…], replicas…]`
    /// per range; an empty ip means the node that answered (`asked`).
    fn parse(value: Value, asked: &Addr) -> Option<SlotMap> {
        let Value::Array(Some(rows)) = value else {
            return None;
        };
        let mut ranges = Vec::new();
        let mut nodes = Vec::new();
        for row in rows {
            let Value::Array(Some(row)) = row else {
                return None;
            };
            let (Some(Value::Int(start)), Some(Value::Int(end))) = (row.first(), row.get(1)) else {
                return None;
            };
            let first = nodes.len();
            for node in &row[2..] {
                let Value::Array(Some(node)) = node else {
                    return None;
                };
                let ip = node.first().and_then(Value::bytes)?;
                let Some(Value::Int(port)) = node.get(1) else {
                    return None;
                };
                let ip = match ip.is_empty() {
                    true => asked.0.clone(),
                    false => String::from_utf8_lossy(ip).into_owned(),
                };
                let addr = (ip, u16::try_from(*port).ok()?);
                if !nodes.contains(&addr) {
                    nodes.push(addr);
                }
            }
            let master = nodes.get(first).or_else(|| nodes.last())?.clone();
            ranges.push((
                u16::try_from(*start).ok()?,
                u16::try_from(*end).ok()?,
                master,
            ));
        }
        Some(SlotMap { ranges, nodes })
    }
}

/// This thread's side of one master's connection.
struct Shard {
    writer: resp::Conn,
    heard: Instant,
    pinged: bool,
}

impl Drop for Shard {
    /// Its reader thread's blocked read returns, and the thread ends.
    fn drop(&mut self) {
        self.writer.shutdown();
    }
}

/// The connections of one listening: dropped whole when anything is amiss.
struct Shards {
    map: SlotMap,
    conns: Vec<Shard>,
    by_addr: HashMap<Addr, usize>,
    /// What every reader thread read, with its shard's index.
    events: Sender<(usize, io::Result<Value>)>,
    seed: redis::ConnectionInfo,
}

impl Shards {
    /// The shard owning `channel`'s slot, connected if it was not.
    fn owner(&mut self, channel: &str) -> io::Result<usize> {
        let addr = self
            .map
            .owner(channel)
            .ok_or_else(|| io::Error::other("no master owns the slot"))?
            .clone();
        if let Some(&i) = self.by_addr.get(&addr) {
            return Ok(i);
        }
        let writer = open(&self.seed, &addr)?;
        let mut reader = writer.try_clone()?;
        reader.set_read_timeout(None)?;
        let i = self.conns.len();
        let events = self.events.clone();
        thread::Builder::new()
            .name("redis-shard".into())
            .spawn(move || {
                loop {
                    let read = match reader.read() {
                        Ok(None) => continue,
                        Ok(Some(value)) => Ok(value),
                        Err(e) => Err(e),
                    };
                    let ended = read.is_err();
                    if events.send((i, read)).is_err() || ended {
                        return;
                    }
                }
            })?;
        self.conns.push(Shard {
            writer,
            heard: Instant::now(),
            pinged: false,
        });
        self.by_addr.insert(addr, i);
        Ok(i)
    }

    fn send(&mut self, channel: &str, command: &str) -> io::Result<()> {
        let i = self.owner(channel)?;
        self.conns[i]
            .writer
            .send(&[command.as_bytes(), channel.as_bytes()])
    }

    /// Pings a shard silent for [`SILENCE`]; fails when one did not answer.
    fn keep_alive(&mut self) -> io::Result<()> {
        for shard in &mut self.conns {
            if shard.heard.elapsed() < SILENCE {
                continue;
            }
            if shard.pinged {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a Redis Cluster master did not answer a ping",
                ));
            }
            shard.writer.send(&[b"PING"])?;
            shard.pinged = true;
            shard.heard = Instant::now();
        }
        Ok(())
    }
}

/// The slot map as the node at `addr` sees it, and whether it has sharded
/// pub/sub.
fn slot_map_of(
    seed: &redis::ConnectionInfo,
    addr: &Addr,
) -> Result<(SlotMap, PubSub), Box<dyn std::error::Error>> {
    let mut conn = open(seed, addr)?;
    let pubsub = pubsub_on(&mut conn)?;
    let value = conn.call(&[b"CLUSTER", b"SLOTS"])?;
    if let Value::Error(e) = value {
        return Err(e.into());
    }
    let map = SlotMap::parse(value, addr).ok_or("a CLUSTER SLOTS answer not understood")?;
    Ok((map, pubsub))
}

/// A connection to the master at `addr`, with `--redis`'s credentials.
fn open(seed: &redis::ConnectionInfo, addr: &Addr) -> io::Result<resp::Conn> {
    let info = seed
        .clone()
        .set_addr(redis::ConnectionAddr::Tcp(addr.0.clone(), addr.1));
    let client = redis::Client::open(info).map_err(io::Error::other)?;
    resp::Conn::open(&client, COMMAND_TIMEOUT)
}

impl Subscriber {
    /// Listens on the masters of a cluster until something is amiss.
    pub(super) fn listen_sharded(
        &mut self,
        files: &mut Link,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let seed = self.target.client().get_connection_info().clone();
        let (map, pubsub) = self.slot_map()?;
        while let Ok(order) = self.orders.try_recv() {
            self.take(order, None)?;
        }
        let (events_tx, events): (_, Receiver<(usize, io::Result<Value>)>) =
            crossbeam_channel::unbounded();
        let mut shards = Shards {
            map,
            conns: Vec::new(),
            by_addr: HashMap::new(),
            events: events_tx,
            seed,
        };
        shards.send(CHANNEL, "SUBSCRIBE")?;
        let channels: Vec<String> = self.rooms.keys().cloned().collect();
        for channel in &channels {
            shards.send(channel, pubsub.subscribe())?;
        }
        loop {
            select! {
                recv(events) -> event => {
                    let (i, read) = event?;
                    let shard = &mut shards.conns[i];
                    shard.heard = Instant::now();
                    shard.pinged = false;
                    let value = read?;
                    self.check_unasked(&value)?;
                    self.heard(value, pubsub, files)?;
                }
                recv(self.orders) -> order => {
                    let Ok(order) = order else { return Ok(()) };
                    self.take_sharded(order, &mut shards, pubsub)?;
                }
                default(POLL) => {}
            }
            shards.keep_alive()?;
        }
    }

    /// The slot map from the first node that gives one (`--redis`'s node
    /// first, then every node last seen), and whether the cluster has
    /// sharded pub/sub.
    fn slot_map(&self) -> Result<(SlotMap, PubSub), Box<dyn std::error::Error>> {
        let mut last: Box<dyn std::error::Error> = "no node of the cluster is known".into();
        for info in self.target.nodes() {
            let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
                return Err("a Redis Cluster is reached over TCP only".into());
            };
            let addr = (host.clone(), *port);
            match slot_map_of(&info, &addr) {
                Ok((map, pubsub)) => {
                    self.target.learn(map.nodes.clone());
                    return Ok((map, pubsub));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A shard let go of a room still wanted here: its slot moved or its
    /// master stepped down.
    fn check_unasked(&self, value: &Value) -> io::Result<()> {
        let Value::Array(Some(items)) = value else {
            return Ok(());
        };
        let kind = items.first().and_then(Value::bytes);
        let channel = items.get(1).and_then(Value::bytes).unwrap_or_default();
        let wanted = std::str::from_utf8(channel).is_ok_and(|c| self.rooms.contains_key(c));
        match kind == Some(b"sunsubscribe") && wanted {
            true => Err(io::Error::other("a shard gave up a room's channel")),
            false => Ok(()),
        }
    }

    /// Adds a room to the set or takes one out, on its owner's connection.
    fn take_sharded(
        &mut self,
        order: Order,
        shards: &mut Shards,
        pubsub: PubSub,
    ) -> io::Result<()> {
        let (room, subscribe) = match &order {
            Order::Subscribe { room } => (room, true),
            Order::Unsubscribe { room } => (room, false),
            _ => return Ok(()),
        };
        let channel = keys::Room::new(room).channel();
        let known = self.rooms.contains_key(&channel);
        self.take(order, None)?;
        match (subscribe, known) {
            (true, false) => shards.send(&channel, pubsub.subscribe()),
            (false, true) => shards.send(&channel, pubsub.unsubscribe()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Value {
        Value::Int(n)
    }

    fn text(s: &str) -> Value {
        Value::Bytes(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn a_slot_map_names_each_rooms_master() {
        let node = |ip: &str, port| Value::Array(Some(vec![text(ip), int(port), text("id")]));
        let answer = Value::Array(Some(vec![
            Value::Array(Some(vec![int(0), int(8000), node("10.0.0.1", 7001)])),
            Value::Array(Some(vec![int(8001), int(16383), node("", 7002)])),
        ]));
        let asked = ("seed".to_owned(), 7000);
        let map = SlotMap::parse(answer, &asked).unwrap();
        // "foo" is in slot 12182; "a" in 15495.
        assert_eq!(map.owner("{foo}x"), Some(&("seed".to_owned(), 7002)));
        let low = (0..)
            .map(|n| format!("{{r{n}}}"))
            .find(|c| keys::slot(c.as_bytes()) <= 8000);
        assert_eq!(
            map.owner(&low.unwrap()),
            Some(&("10.0.0.1".to_owned(), 7001))
        );
        assert!(SlotMap::parse(text("nonsense"), &asked).is_none());
    }
}
