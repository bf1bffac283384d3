//! The subscriber thread: the events of the rooms this instance hosts,
//! handed to the dispatcher in the order Redis delivered them, and
//! moderators' questions, handed to the admin thread (`instances.rs`).
//!
//! It holds the set of rooms the hubs asked for ([`Order::Subscribe`],
//! [`Order::Unsubscribe`]) and subscribes to their channels between reads:
//! it reads with a short timeout and looks at its orders after each read.
//! Whenever a room's channel is subscribed (again, after a lost
//! connection) it says so with [`Note::Subscribed`], and the room's hub
//! reads what was published before from the room's stream.

use crate::logs as log;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tungstenite::Bytes;

use super::entry::Question;
use super::entry::Wire;
use super::keys::{self, CHANNEL};
use super::link::{Link, Target};
use super::resp::{self, Value};
use super::{COMMAND_TIMEOUT, Change, Note, Order, PubSub, Status};

/// How long the subscription may stay silent before Redis is pinged, to
/// find out whether it is still there.
pub(super) const SILENCE: Duration = Duration::from_secs(2);

/// How long a read waits before the orders are looked at: at most this
/// passes between a hub's order and its (un)subscription when nothing
/// arrives meanwhile.
pub(super) const POLL: Duration = Duration::from_millis(20);

mod shards;

pub struct Subscriber {
    target: Target,
    instance: Arc<str>,
    status: Arc<Status>,
    note: Arc<dyn Fn(Note) + Send + Sync>,
    orders: Receiver<Order>,
    /// Where moderators' questions go: the admin thread.
    questions: Sender<Question>,
    /// The rooms whose events are wanted here, by channel, as their hub
    /// spells them.
    rooms: HashMap<String, String>,
}

impl Subscriber {
    pub fn new(
        target: Target,
        instance: Arc<str>,
        status: Arc<Status>,
        note: Arc<dyn Fn(Note) + Send + Sync>,
        (orders, questions): (Receiver<Order>, Sender<Question>),
    ) -> Subscriber {
        Subscriber {
            target,
            instance,
            status,
            note,
            orders,
            questions,
            rooms: HashMap::new(),
        }
    }

    /// Listens until the process ends, subscribing again whenever the
    /// connection is lost.
    pub fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let Err(e) = self.listen() else { return };
            if self.status.subscribed.swap(false, Ordering::SeqCst) {
                log::error!(
                    "event=redis_unavailable role=subscriber error={:?}",
                    e.to_string()
                );
                backoff = Duration::from_millis(100);
            }
            // Orders that came meanwhile change what is subscribed next.
            while let Ok(order) = self.orders.try_recv() {
                let _ = self.take(order, None);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn listen(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let mut files = self.target.connect(COMMAND_TIMEOUT * 5)?;
        if self.target.is_cluster() == Some(true) {
            return self.listen_sharded(&mut files);
        }
        let mut conn = resp::Conn::open(self.target.client(), COMMAND_TIMEOUT)?;
        let pubsub = pubsub_on(&mut conn)?;
        while let Ok(order) = self.orders.try_recv() {
            self.take(order, None)?;
        }
        conn.send(&[b"SUBSCRIBE", CHANNEL.as_bytes()])?;
        for channel in self.rooms.keys() {
            conn.send(&[pubsub.subscribe().as_bytes(), channel.as_bytes()])?;
        }
        conn.set_read_timeout(Some(POLL))?;
        let mut heard = Instant::now();
        let mut pinged = false;
        loop {
            match conn.read()? {
                Some(value) => {
                    heard = Instant::now();
                    pinged = false;
                    self.heard(value, pubsub, &mut files)?;
                }
                None if heard.elapsed() >= SILENCE => {
                    if pinged {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "Redis did not answer a ping",
                        )
                        .into());
                    }
                    conn.send(&[b"PING"])?;
                    pinged = true;
                    heard = Instant::now();
                }
                None => {}
            }
            while let Ok(order) = self.orders.try_recv() {
                self.take(order, Some((&mut conn, pubsub)))?;
            }
        }
    }

    /// Adds a room to the set or takes one out; subscribes or unsubscribes
    /// at once when connected.
    fn take(&mut self, order: Order, conn: Option<(&mut resp::Conn, PubSub)>) -> io::Result<()> {
        let (subscribe, channel) = match order {
            Order::Subscribe { room } => {
                let channel = keys::Room::new(&room).channel();
                match self.rooms.insert(channel.clone(), room) {
                    Some(_) => {
                        // Already subscribed: the hub is told all the same.
                        let room = self.rooms[&channel].clone();
                        (self.note)(Note::Subscribed { room });
                        return Ok(());
                    }
                    None => (true, channel),
                }
            }
            Order::Unsubscribe { room } => {
                let channel = keys::Room::new(&room).channel();
                if self.rooms.remove(&channel).is_none() {
                    return Ok(());
                }
                (false, channel)
            }
            _ => return Ok(()),
        };
        if let Some((conn, pubsub)) = conn {
            let command = match subscribe {
                true => pubsub.subscribe(),
                false => pubsub.unsubscribe(),
            };
            conn.send(&[command.as_bytes(), channel.as_bytes()])?;
        }
        Ok(())
    }

    /// What came on the subscription: an event, or Redis confirming a
    /// subscription.
    fn heard(
        &mut self,
        value: Value,
        pubsub: PubSub,
        files: &mut Link,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let items = match value {
            Value::Array(Some(items)) => items,
            Value::Error(e) => return Err(e.into()),
            _ => return Ok(()),
        };
        let kind = items.first().and_then(Value::bytes).unwrap_or_default();
        let channel = items.get(1).and_then(Value::bytes).unwrap_or_default();
        match kind {
            b"message" | b"smessage" => {
                crate::metrics::get().redis_event();
                let payload = items.get(2).and_then(Value::bytes).unwrap_or_default();
                let Some(wire) = Wire::parse(payload) else {
                    log::warn!("event=redis_bad_event bytes={}", payload.len());
                    return Ok(());
                };
                if let Some(note) = self.note_for(wire, files)? {
                    (self.note)(note);
                }
            }
            b"subscribe" if channel == CHANNEL.as_bytes() => {
                log::info!(
                    "event=redis_connected role=subscriber pubsub={}",
                    pubsub.label()
                );
                self.status.subscribed.store(true, Ordering::SeqCst);
            }
            b"subscribe" | b"ssubscribe" => {
                let room = std::str::from_utf8(channel)
                    .ok()
                    .and_then(|c| self.rooms.get(c));
                // A room let go of meanwhile is not told.
                if let Some(room) = room {
                    (self.note)(Note::Subscribed { room: room.clone() });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn note_for(&self, wire: Wire, files: &mut Link) -> redis::RedisResult<Option<Note>> {
        if wire.q.is_some() {
            // Asked of every instance, this one included.
            if let Some(question) = wire.into_question() {
                let _ = self.questions.send(question);
            }
            return Ok(None);
        }
        if wire.t != "m" {
            let Some(change) = Change::from_tag(&wire.t) else {
                return Ok(None);
            };
            return Ok(Some(Note::Presence {
                own: wire.o == *self.instance,
                room: wire.room,
                name: wire.name,
                change,
            }));
        }
        let Some(mut arrival) = wire.into_arrival(true) else {
            return Ok(None);
        };
        if let crate::history::sqlite::Body::File { available, .. } = &mut arrival.record.body {
            let data: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(keys::Room::new(&arrival.record.room).files())
                .arg(arrival.record.id)
                .query(files)?;
            *available = data.is_some();
            arrival.data = data.map(Bytes::from);
        }
        Ok(Some(Note::Arrived(arrival)))
    }
}

/// Whether the server `conn` reaches has sharded pub/sub.
fn pubsub_on(conn: &mut resp::Conn) -> Result<PubSub, Box<dyn std::error::Error>> {
    Ok(match conn.call(&[b"COMMAND", b"INFO", b"SPUBLISH"])? {
        Value::Array(Some(info)) => {
            // An unknown command's entry is nil.
            PubSub::from_command_info(matches!(info.first(), Some(Value::Array(Some(_)))))
        }
        Value::Error(e) => return Err(e.into()),
        _ => PubSub::Plain,
    })
}
