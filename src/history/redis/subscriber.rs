//! The subscriber thread: every event any instance publishes, handed to
//! the dispatcher in the order Redis delivered it.

use crate::logs as log;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Connection;
use tungstenite::Bytes;

use super::entry::Wire;
use super::keys::{self, CHANNEL};
use super::{COMMAND_TIMEOUT, Change, Note, Status};

/// How long the subscription may stay silent before Redis is pinged, to
/// find out whether it is still there.
const SILENCE: Duration = Duration::from_secs(2);

pub struct Subscriber {
    client: redis::Client,
    instance: Arc<str>,
    status: Arc<Status>,
    note: Arc<dyn Fn(Note) + Send + Sync>,
}

impl Subscriber {
    pub fn new(
        client: redis::Client,
        instance: Arc<str>,
        status: Arc<Status>,
        note: Arc<dyn Fn(Note) + Send + Sync>,
    ) -> Subscriber {
        Subscriber {
            client,
            instance,
            status,
            note,
        }
    }

    /// Listens until the process ends, subscribing again whenever the
    /// connection is lost.
    pub fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.listen() {
                Ok(()) => return,
                Err(e) => {
                    if self.status.subscribed.swap(false, Ordering::SeqCst) {
                        log::error!(
                            "event=redis_unavailable role=subscriber error={:?}",
                            e.to_string()
                        );
                        backoff = Duration::from_millis(100);
                    }
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn listen(&self) -> redis::RedisResult<()> {
        let mut files = self.client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        files.set_read_timeout(Some(COMMAND_TIMEOUT * 5))?;
        let mut conn = self.client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe(CHANNEL)?;
        pubsub.set_read_timeout(Some(SILENCE))?;
        log::info!("event=redis_connected role=subscriber");
        self.status.subscribed.store(true, Ordering::SeqCst);
        // Whatever was published while the subscription was down must be
        // read from the rooms' streams.
        (self.note)(Note::Subscribed);
        loop {
            let msg = match pubsub.get_message() {
                Ok(msg) => msg,
                Err(e) if e.is_timeout() => {
                    pubsub.ping::<redis::Value>()?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let payload = msg.get_payload_bytes();
            let Some(wire) = Wire::parse(payload) else {
                log::warn!("event=redis_bad_event bytes={}", payload.len());
                continue;
            };
            if let Some(note) = self.note_for(wire, &mut files)? {
                (self.note)(note);
            }
        }
    }

    fn note_for(&self, wire: Wire, files: &mut Connection) -> redis::RedisResult<Option<Note>> {
        if wire.t != "m" {
            let Some(change) = Change::from_tag(&wire.t) else {
                // Our own actions were carried out here already.
                if wire.o == *self.instance {
                    return Ok(None);
                }
                return Ok(wire.into_moderation().map(Note::Moderated));
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
