//! Rooms shared by every instance that names the same Redis (`--redis`).
//!
//! Redis is the second implementation of the history store's interface
//! (`sqlite::Request` in, `sqlite::Reply` out) and, beside it, the bus that
//! carries each room's events to every instance:
//!
//! - The **command thread** (`commands`) answers the store's requests.
//!   An append runs one Lua script that gives the message the room's next
//!   id, adds it to the room's stream and publishes it on the room's own
//!   channel, all at once; so every instance sees one order, and an id is
//!   never given twice. It also claims and releases names, keeps this
//!   instance's membership alive and reaps the members of instances that
//!   died.
//! - The **subscriber thread** (`subscriber`) holds the subscriptions: the
//!   channel of every room this instance hosts (someone is in it through
//!   this instance), asked for by the hubs with [`Order::Subscribe`] and
//!   [`Order::Unsubscribe`], and one channel for moderation. It hands each
//!   event to the dispatcher as a [`Note`], and says when a room's channel
//!   is subscribed ([`Note::Subscribed`]): the hub then reads what was
//!   published before from the room's stream. The dispatcher delivers a
//!   room's messages strictly by id and asks the store for any it missed,
//!   so a dropped subscription costs a fetch, never a message.
//!
//! Rooms use sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`) when Redis has it
//! (7 and later), plain `PUBLISH`/`SUBSCRIBE` on per-room channels
//! otherwise ([`PubSub`]). Files are read from Redis by any thread
//! (`files`).
//!
//! Clients' `history` pages and `search`es are read on a third thread,
//! `redis-lookups` (`commands/lookups.rs`), with a connection of its own.
//!
//! A fourth, `redis-admin` (`instances`), keeps this instance in the
//! registry of live instances and answers moderators' questions, which
//! every instance hears on the moderation channel: so the admin view of
//! any instance lists and acts on every instance's clients.
//!
//! `--redis` may name a single Redis or any node of a Redis Cluster
//! (`link`): with a cluster, commands go to each key's master, and the
//! subscriber listens on each master that owns a hosted room
//! (`subscriber/shards.rs`).
//!
//! Four threads per instance, whatever the number of rooms or clients
//! (plus one reader per master subscribed on, with a cluster). The key
//! layout and the failure cases are in `docs/SCALING.md`.

mod changes;
mod commands;
mod entry;
mod files;
mod instances;
mod keys;
mod link;
mod resp;
mod scripts;
mod subscriber;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::history::sqlite::{self, StoreHandle};

pub use entry::Arrival;
pub use entry::Asked;
pub use files::Files;
pub use instances::{Answerer, Everywhere};

/// How long a command may take before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an instance's membership lives without being refreshed: a
/// killed instance's members leave everyone's presence within about this.
const ALIVE_TTL: Duration = Duration::from_secs(10);

/// How often membership is refreshed and dead instances' members reaped.
const REFRESH_EVERY: Duration = Duration::from_secs(3);

/// Where the shared rooms live.
#[derive(Debug, Clone)]
pub struct Options {
    /// `redis://host:port/db`, as the `redis` crate takes it.
    pub url: String,
    /// Messages kept per room's stream (`--retain-messages`).
    pub retain_messages: usize,
    /// File bytes kept per room (`--retain-bytes`).
    pub retain_bytes: u64,
}

/// Why `--redis` cannot be used: said at start-up, naming the URL.
#[derive(Debug)]
pub struct ClusterError {
    url: String,
    source: redis::RedisError,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--redis {}: {}", self.url, self.source)
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What the cluster tells the dispatcher, beside the store's replies.
#[derive(Debug)]
pub enum Note {
    /// A message or file of some instance, this one included, in the order
    /// Redis gave it.
    Arrived(Arrival),
    /// The answer to a fetch for `FetchFor::Fill(token)`: the
    /// room's messages the dispatcher missed, with their senders and file
    /// bytes, and the names held in the room on live instances when it was
    /// read; `None` when Redis did not answer.
    Filled {
        token: u64,
        room: String,
        epoch: Option<String>,
        arrivals: Option<Vec<Arrival>>,
        members: Option<Vec<String>>,
    },
    /// Someone joined or left a room on another instance, or is typing
    /// there.
    Presence {
        room: String,
        name: String,
        change: Change,
        /// It comes from this instance (whose own clients were told of a
        /// join or a typing at once; a leave is told when Redis says the
        /// person left every instance).
        own: bool,
    },
    /// A claim of a name (see [`Order::Claim`]) in `room` was decided.
    Claimed {
        token: u64,
        room: String,
        outcome: ClaimOutcome,
    },
    /// A resend: the message with this `cid` was given `id` before, and
    /// nothing was delivered again. `record` is the stored message, read
    /// back from the room's stream (`None` if it could not be read).
    Duplicate {
        room: String,
        id: u64,
        client: u64,
        record: Option<crate::history::sqlite::Record>,
    },
    /// An append could not reach Redis: nothing was delivered.
    Unavailable {
        room: String,
        client: u64,
        cid: Option<String>,
    },
    /// A ban kept in Redis, placed before this instance started (or while
    /// it was cut off): this instance refuses the name too.
    Moderated(Moderation),
    /// The room's channel is subscribed (asked by [`Order::Subscribe`], or
    /// made again after the connection was lost): what was published before
    /// was not heard here, and the room must be read up to date.
    Subscribed { room: String },
}

impl Note {
    /// The room it is about, whose hub it goes to; `None` for what every
    /// hub must hear.
    pub fn about_room(&self) -> Option<&str> {
        match self {
            Note::Arrived(arrival) => Some(&arrival.record.room),
            Note::Filled { room, .. }
            | Note::Subscribed { room }
            | Note::Presence { room, .. }
            | Note::Claimed { room, .. }
            | Note::Duplicate { room, .. }
            | Note::Unavailable { room, .. } => Some(room),
            Note::Moderated(_) => None,
        }
    }
}

/// How a claim of a name was decided.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// The person holds it now; `first` when nobody held it before, on any
    /// instance: the room is told of the join.
    Held { first: bool },
    /// Someone else holds a name that looks the same, spelled so.
    Taken(String),
    /// Redis did not answer.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Joined,
    Left,
    Typing,
}

/// What the dispatcher asks of the cluster, beside the store's requests.
#[derive(Debug)]
pub enum Order {
    /// Claim `name` in `room` for `owner` across every instance; answered
    /// with [`Note::Claimed`]. Sent once per person per instance: further
    /// connections of the same person share the local seat.
    Claim {
        token: u64,
        room: String,
        name: String,
        skeleton: String,
        owner: String,
    },
    /// This instance's last connection of the person left the room.
    Release {
        room: String,
        name: String,
        skeleton: String,
    },
    /// Someone here is typing: told to the other instances.
    Typing { room: String, name: String },
    /// Someone joined `room` through this instance, where nobody was: its
    /// events are wanted here from now on (told by [`Note::Subscribed`]).
    /// Goes to the subscriber thread.
    Subscribe { room: String },
    /// The last of them left: the room's events are no longer wanted here.
    Unsubscribe { room: String },
}

/// How rooms' events travel: sharded pub/sub where Redis has it (7 and
/// later: a room's channel lives on the shard that holds its keys), plain
/// pub/sub on the same per-room channels otherwise. Every instance finds
/// out for itself, on each connection, from the same server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubSub {
    Sharded,
    Plain,
}

impl PubSub {
    /// Whether the server knows `SPUBLISH`, from `COMMAND INFO SPUBLISH`'s
    /// answer (a nil entry for an unknown command).
    pub(crate) fn from_command_info(known: bool) -> PubSub {
        match known {
            true => PubSub::Sharded,
            false => PubSub::Plain,
        }
    }

    pub(crate) fn publish(self) -> &'static str {
        match self {
            PubSub::Sharded => "SPUBLISH",
            PubSub::Plain => "PUBLISH",
        }
    }

    pub(crate) fn subscribe(self) -> &'static str {
        match self {
            PubSub::Sharded => "SSUBSCRIBE",
            PubSub::Plain => "SUBSCRIBE",
        }
    }

    pub(crate) fn unsubscribe(self) -> &'static str {
        match self {
            PubSub::Sharded => "SUNSUBSCRIBE",
            PubSub::Plain => "UNSUBSCRIBE",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            PubSub::Sharded => "sharded",
            PubSub::Plain => "plain",
        }
    }
}

/// A moderator's action, as every instance carries it out.
#[derive(Debug, Clone, PartialEq)]
pub enum Moderation {
    /// Close the person's connections in `room`, or in every room.
    Kick { name: String, room: Option<String> },
    /// Refuse the name until `until` (ms since the epoch), and close its
    /// connections.
    Ban { name: String, until: u64 },
    /// Lift a ban.
    Unban { name: String },
}

/// Whether Redis answers, for `/readyz` and for raw senders, who wait
/// while it does not.
#[derive(Debug, Default)]
pub struct Status {
    commands: AtomicBool,
    subscribed: AtomicBool,
    /// The instance is stopping and has left the registry of live
    /// instances: it must not register again.
    stopping: AtomicBool,
}

impl Status {
    /// Both connections are up.
    pub fn up(&self) -> bool {
        self.commands.load(Ordering::SeqCst) && self.subscribed.load(Ordering::SeqCst)
    }
}

/// Sends [`Order`]s to the command thread (subscriptions to the
/// subscriber thread); cheap to clone.
#[derive(Clone)]
pub struct ClusterHandle {
    commands: Sender<Order>,
    subscriptions: Sender<Order>,
    status: Arc<Status>,
    /// This instance's id, as it appears in published events.
    pub instance: Arc<str>,
}

impl ClusterHandle {
    pub fn send(&self, command: Order) {
        let _ = match command {
            Order::Subscribe { .. } | Order::Unsubscribe { .. } => self.subscriptions.send(command),
            _ => self.commands.send(command),
        };
    }

    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// A handle for instance `instance` whose commands the test reads.
    #[cfg(test)]
    pub(crate) fn for_tests(instance: &str) -> (ClusterHandle, crossbeam_channel::Receiver<Order>) {
        let (commands, inbox) = crossbeam_channel::unbounded();
        let handle = ClusterHandle {
            subscriptions: commands.clone(),
            commands,
            status: Arc::default(),
            instance: instance.into(),
        };
        (handle, inbox)
    }
}

/// The running cluster side: its two threads.
pub struct Cluster {
    pub store: StoreHandle,
    pub handle: ClusterHandle,
    /// Ends after the store's `Shutdown`; the subscriber thread lives as
    /// long as the process.
    pub thread: JoinHandle<()>,
    pub files: Files,
    /// Asks moderators' questions of every instance.
    pub everywhere: Everywhere,
}

/// Checks the URL; nothing is connected yet (an unreachable Redis is
/// retried, and `/readyz` says 503 meanwhile).
pub fn client(url: &str) -> Result<redis::Client, ClusterError> {
    redis::Client::open(url).map_err(|source| ClusterError {
        url: url.to_owned(),
        source,
    })
}

/// Starts the command, subscriber and admin threads. Store replies go to
/// `reply`, cluster notes to `note`, both on those threads; moderators'
/// questions are answered by `answer`, on the admin thread.
pub fn spawn(
    options: Options,
    client: redis::Client,
    reply: Box<dyn Fn(sqlite::Reply) + Send>,
    note: Arc<dyn Fn(Note) + Send + Sync>,
    answer: Answerer,
) -> std::io::Result<Cluster> {
    let instance: Arc<str> = format!("{:016x}", crate::history::sqlite::random_u64()).into();
    let status = Arc::new(Status::default());
    let (requests_tx, requests) = crossbeam_channel::unbounded();
    let (commands_tx, commands) = crossbeam_channel::unbounded();
    let (subscriptions_tx, subscriptions) = crossbeam_channel::unbounded();
    let store = StoreHandle::from_sender(requests_tx);
    let handle = ClusterHandle {
        commands: commands_tx,
        subscriptions: subscriptions_tx,
        status: status.clone(),
        instance: instance.clone(),
    };
    // Whether `--redis` names a cluster is found on the first connection
    // and shared by every thread's connections.
    let target = link::Target::new(client);
    let worker = commands::Worker::new(
        target.clone(),
        options,
        instance.clone(),
        status.clone(),
        reply,
        note.clone(),
    );
    let command_thread = thread::Builder::new()
        .name("redis-commands".into())
        .spawn(move || worker.run(&requests, &commands))?;
    let (questions_tx, questions) = crossbeam_channel::unbounded();
    let responder = instances::Responder {
        target: target.clone(),
        instance: instance.clone(),
        status: status.clone(),
        questions,
        answer,
    };
    thread::Builder::new()
        .name("redis-admin".into())
        .spawn(move || responder.run())?;
    let listener = subscriber::Subscriber::new(
        target.clone(),
        instance.clone(),
        status.clone(),
        note,
        (subscriptions, questions_tx),
    );
    thread::Builder::new()
        .name("redis-subscriber".into())
        .spawn(move || listener.run())?;
    Ok(Cluster {
        store,
        handle,
        thread: command_thread,
        everywhere: Everywhere::new(target.clone(), instance),
        files: Files { target },
    })
}
