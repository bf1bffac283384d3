//! The command thread: the store's interface over Redis, names claimed
//! across instances, and this instance's liveness.

use crate::logs as log;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use redis::Value;
use tungstenite::Bytes;

use super::entry::{self, Wire};
use super::keys;
use super::link::{Link, Target};
use super::scripts::Scripts;
use super::{Arrival, COMMAND_TIMEOUT, Note, Options, Order, PubSub, REFRESH_EVERY, Status};
use crate::history::sqlite::{self, FetchFor, Origin, Record, Reply, Request};

/// Appends sent to Redis in one pipeline, at most.
mod claims;
mod lookups;

const PIPELINE: usize = 256;

/// How long a `cid` is remembered for a resend; an append without one is
/// remembered only long enough for this instance to retry it.
const CID_TTL_SECS: u64 = 600;
const RETRY_TTL_SECS: u64 = 60;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// An append waiting to be sent, with the key that makes resending it
/// harmless.
struct Append {
    record: Record,
    data: Option<Bytes>,
    origin: Origin,
    sent_key: String,
    ttl: u64,
}

pub struct Worker {
    target: Target,
    conn: Option<Link>,
    /// How rooms' events are published, found on connecting.
    pubsub: PubSub,
    options: Options,
    instance: Arc<str>,
    status: Arc<Status>,
    reply: Box<dyn Fn(Reply) + Send>,
    note: Arc<dyn Fn(Note) + Send + Sync>,
    scripts: Arc<Scripts>,
    /// Rooms where this instance holds names, and how many people.
    held: HashMap<String, usize>,
    /// Raw clients' appends that could not reach Redis: retried, in order,
    /// until it answers (their senders wait meanwhile).
    retry: VecDeque<Append>,
    /// Releases that could not reach Redis, retried likewise.
    releases: VecDeque<(String, String, String)>,
    next_refresh: Instant,
    next_attempt: Instant,
    backoff: Duration,
    /// Counts appends, for the dedup keys of those without a `cid`.
    sent: u64,
    /// Clients' pages and searches, read on a thread of their own.
    lookups: Option<lookups::Lookups>,
}

impl Worker {
    pub fn new(
        target: Target,
        options: Options,
        instance: Arc<str>,
        status: Arc<Status>,
        reply: Box<dyn Fn(Reply) + Send>,
        note: Arc<dyn Fn(Note) + Send + Sync>,
    ) -> Worker {
        Worker {
            target,
            conn: None,
            pubsub: PubSub::Plain,
            options,
            instance,
            status,
            reply,
            note,
            scripts: Arc::new(Scripts::new()),
            held: HashMap::new(),
            retry: VecDeque::new(),
            releases: VecDeque::new(),
            next_refresh: Instant::now(),
            next_attempt: Instant::now(),
            backoff: Duration::from_millis(100),
            sent: 0,
            lookups: None,
        }
    }

    pub fn run(mut self, requests: &Receiver<Request>, commands: &Receiver<Order>) {
        self.connection();
        loop {
            let wake = self.next_refresh.min(if self.idle() {
                self.next_refresh
            } else {
                self.next_attempt
            });
            let timeout = wake.saturating_duration_since(Instant::now());
            select! {
                recv(requests) -> request => {
                    let Ok(first) = request else { break };
                    let mut batch = vec![first];
                    batch.extend(requests.try_iter().take(PIPELINE - 1));
                    if !self.handle(batch) {
                        break;
                    }
                }
                recv(commands) -> command => {
                    if let Ok(command) = command {
                        self.command(command);
                    }
                }
                default(timeout) => {}
            }
            self.on_timers();
        }
        // Leaving: this instance's names go at once rather than when its
        // liveness expires.
        let mut pipe = redis::pipe();
        for room in self.held.keys() {
            let alive = format!("{}{}", keys::Room::new(room).alive_prefix(), self.instance);
            pipe.cmd("DEL").arg(alive).ignore();
        }
        if !pipe.is_empty()
            && let Some(conn) = self.connection()
        {
            let _ = pipe.query::<()>(conn);
        }
    }

    /// Nothing waits to be retried.
    fn idle(&self) -> bool {
        self.retry.is_empty() && self.releases.is_empty() && self.conn.is_some()
    }

    /// Handles a batch of the store's requests; false after `Shutdown`.
    fn handle(&mut self, batch: Vec<Request>) -> bool {
        let mut appends = Vec::new();
        for request in batch {
            match request {
                Request::Append {
                    record,
                    data,
                    origin,
                    ..
                } => appends.push(self.prepare(record, data, origin)),
                Request::Open { room, recent } => {
                    self.append(std::mem::take(&mut appends));
                    let reply = self.open(room, recent);
                    (self.reply)(reply);
                }
                Request::Fetch {
                    room,
                    after,
                    upto,
                    limit,
                    token,
                    ..
                } => {
                    self.append(std::mem::take(&mut appends));
                    self.fetch(room, after, upto, limit, token);
                }
                Request::Lookup(lookup) => {
                    self.append(std::mem::take(&mut appends));
                    self.lookup(lookup);
                }
                Request::Shutdown => {
                    self.append(appends);
                    self.unregister();
                    return false;
                }
            }
        }
        self.append(appends);
        true
    }

    fn prepare(&mut self, record: Record, data: Option<Bytes>, origin: Origin) -> Append {
        self.sent += 1;
        let (sent_key, ttl) = match &record.cid {
            Some(cid) => (format!("{}\u{1f}{cid}", record.from), CID_TTL_SECS),
            None => (format!("~{}:{}", self.instance, self.sent), RETRY_TTL_SECS),
        };
        Append {
            record,
            data,
            origin,
            sent_key,
            ttl,
        }
    }

    /// Sends appends in one pipeline. A message is delivered (to every
    /// instance, its sender's included) when it comes back through the
    /// subscription; here only a resend or a failure is answered.
    fn append(&mut self, appends: Vec<Append>) {
        if appends.is_empty() {
            return;
        }
        // A raw client's messages stay in order behind its earlier ones.
        let (mut raw, v1): (Vec<Append>, Vec<Append>) = match self.retry.is_empty() {
            true => (Vec::new(), appends),
            false => appends.into_iter().partition(|a| a.origin.raw),
        };
        self.retry.extend(raw.drain(..));
        if v1.is_empty() {
            return;
        }
        match self.send_appends(&v1) {
            Ok(results) => self.answer_appends(&v1, results),
            Err(e) => {
                self.lost(&e);
                for append in v1 {
                    if append.origin.raw {
                        self.retry.push_back(append);
                    } else {
                        (self.note)(Note::Unavailable {
                            room: append.record.room,
                            client: append.origin.client,
                            cid: append.record.cid,
                        });
                    }
                }
            }
        }
    }

    fn send_appends<'a>(
        &mut self,
        appends: impl IntoIterator<Item = &'a Append>,
    ) -> redis::RedisResult<Vec<Value>> {
        let fresh = sqlite::new_epoch();
        // Connected first: the way to publish is found on connecting.
        self.connected()?;
        let publish = self.pubsub.publish();
        let clustered = self.target.clustered();
        let mut pipe = redis::pipe();
        for a in appends {
            let k = keys::Room::new(&a.record.room);
            let tail = entry::entry_tail(&a.record, &self.instance, a.origin.client, a.origin.raw);
            let (is_file, bytes): (&str, &[u8]) = match (&a.record.body, &a.data) {
                (sqlite::Body::File { .. }, Some(data)) => ("1", data),
                _ => ("0", b""),
            };
            pipe.cmd("EVALSHA")
                .arg(self.scripts.append.get_hash())
                .arg(5)
                .arg(k.meta())
                .arg(k.log())
                .arg(k.files())
                .arg(k.file_queue())
                .arg(k.sent(&a.sent_key))
                .arg(&fresh)
                .arg(self.options.retain_messages)
                .arg(a.ttl)
                .arg(tail)
                .arg(k.channel())
                .arg(is_file)
                .arg(bytes)
                .arg(self.options.retain_bytes)
                .arg(publish)
                .arg(clustered);
        }
        let conn = self.connected()?;
        pipe.query(conn)
    }

    /// A resend of a `cid` already sent is answered with the stored event,
    /// read back from the room's stream: Redis, not this instance's memory,
    /// knows every message it keeps.
    fn answer_appends(&mut self, appends: &[Append], results: Vec<Value>) {
        for (append, result) in appends.iter().zip(results) {
            let Ok((_epoch, id, duplicate)) = redis::from_redis_value::<(String, u64, u8)>(result)
            else {
                continue;
            };
            if duplicate == 1 {
                let room = &append.record.room;
                let at = format!("0-{id}");
                let record = match self.read(room, &at, &at, 1, false) {
                    Ok(read) => read.arrivals.into_iter().next().map(|a| a.record),
                    Err(e) => {
                        self.lost(&e);
                        None
                    }
                };
                (self.note)(Note::Duplicate {
                    room: room.clone(),
                    id,
                    client: append.origin.client,
                    record,
                });
            }
        }
    }

    fn open(&mut self, room: String, recent: usize) -> Reply {
        match self.read(&room, "-", "+", recent, true) {
            Ok(read) => Reply::Opened {
                room,
                spelling: None,
                epoch: read.epoch,
                last_id: read.last_id,
                recent: folded(read.arrivals.into_iter().rev()),
                loaded: true,
                members: read.members,
            },
            Err(e) => {
                self.lost(&e);
                Reply::Opened {
                    room,
                    spelling: None,
                    epoch: sqlite::new_epoch(),
                    last_id: 0,
                    recent: Vec::new(),
                    loaded: false,
                    members: Vec::new(),
                }
            }
        }
    }

    fn fetch(&mut self, room: String, after: u64, upto: u64, limit: usize, token: FetchFor) {
        let first = format!("0-{}", after.saturating_add(1));
        let last = match upto {
            u64::MAX => "+".to_owned(),
            upto => format!("0-{upto}"),
        };
        if let FetchFor::Fill(token) = token {
            let read = self
                .read(&room, &first, &last, limit, false)
                .and_then(|read| {
                    let arrivals = self.with_files(&room, read.arrivals)?;
                    Ok((read.epoch, arrivals, read.members))
                });
            let (epoch, arrivals, members) = match read {
                Ok((epoch, arrivals, members)) => (Some(epoch), Some(arrivals), Some(members)),
                Err(e) => {
                    self.lost(&e);
                    (None, None, None)
                }
            };
            (self.note)(Note::Filled {
                token,
                room,
                epoch,
                arrivals,
                members,
            });
            return;
        }
        let reply = match self.read(&room, &first, &last, limit, false) {
            Ok(read) => Reply::Fetched {
                room,
                token,
                records: folded(read.arrivals.into_iter()),
                frames: Vec::new(),
            },
            Err(e) => {
                self.lost(&e);
                Reply::Fetched {
                    room,
                    token,
                    records: Vec::new(),
                    frames: Vec::new(),
                }
            }
        };
        (self.reply)(reply);
    }

    /// Adds their bytes to the files among `arrivals`.
    fn with_files(
        &mut self,
        room: &str,
        mut arrivals: Vec<Arrival>,
    ) -> redis::RedisResult<Vec<Arrival>> {
        let files: Vec<usize> = (0..arrivals.len())
            .filter(|&i| matches!(arrivals[i].record.body, sqlite::Body::File { .. }))
            .collect();
        if files.is_empty() {
            return Ok(arrivals);
        }
        let k = keys::Room::new(room);
        let mut pipe = redis::pipe();
        for &i in &files {
            pipe.cmd("HGET").arg(k.files()).arg(arrivals[i].record.id);
        }
        let conn = self.connected()?;
        let data: Vec<Option<Vec<u8>>> = pipe.query(conn)?;
        for (i, data) in files.into_iter().zip(data) {
            if let sqlite::Body::File { available, .. } = &mut arrivals[i].record.body {
                *available = data.is_some();
            }
            arrivals[i].data = data.map(Bytes::from);
        }
        Ok(arrivals)
    }

    fn read(
        &mut self,
        room: &str,
        first: &str,
        last: &str,
        count: usize,
        newest_first: bool,
    ) -> redis::RedisResult<Read> {
        let k = keys::Room::new(room);
        let scripts = self.scripts.clone();
        let mut invocation = scripts.read.prepare_invoke();
        invocation
            .key(k.meta())
            .key(k.log())
            .key(k.files())
            .key(k.file_queue())
            .key(k.names())
            .arg(sqlite::new_epoch())
            .arg(first)
            .arg(last)
            .arg(count)
            .arg(if newest_first { "1" } else { "0" })
            .arg(k.alive_prefix())
            .arg(self.target.clustered());
        let conn = self.connected()?;
        let (epoch, last_id, rows, members): ReadReply = invocation.invoke(conn)?;
        let arrivals = rows
            .into_iter()
            .filter_map(|(json, kept)| Wire::parse(&json)?.into_arrival(kept == 1))
            .collect();
        Ok(Read {
            epoch,
            last_id,
            arrivals,
            members,
        })
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        if !self.idle() && now >= self.next_attempt {
            self.retry_failed();
        }
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH_EVERY;
            if let Err(e) = self.refresh() {
                self.lost(&e);
            }
        }
    }

    /// Sends again what failed, in order; backs off while Redis is away.
    fn retry_failed(&mut self) {
        if self.connection().is_none() {
            self.back_off();
            return;
        }
        while let Some((room, name, skeleton)) = self.releases.pop_front() {
            if let Err(e) = self.release(&room, &name, &skeleton) {
                self.lost(&e);
                self.releases.push_front((room, name, skeleton));
                self.back_off();
                return;
            }
        }
        while !self.retry.is_empty() {
            let n = self.retry.len().min(PIPELINE);
            let pending: Vec<Append> = self.retry.drain(..n).collect();
            if let Err(e) = self.send_appends(&pending) {
                self.lost(&e);
                self.back_off();
                for append in pending.into_iter().rev() {
                    self.retry.push_front(append);
                }
                return;
            }
        }
        self.backoff = Duration::from_millis(100);
    }

    fn back_off(&mut self) {
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The command connection, or the error that Redis cannot be reached.
    fn connected(&mut self) -> redis::RedisResult<&mut Link> {
        self.connection()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Io, "not connected")))
    }

    /// The command connection, and how rooms' events are published on it.
    pub(super) fn publishing(&mut self) -> redis::RedisResult<(&mut Link, &'static str)> {
        self.connected()?;
        let publish = self.pubsub.publish();
        Ok((self.conn.as_mut().expect("connected above"), publish))
    }

    /// A stopping instance leaves the registry of live instances at once
    /// (`instances::leave`), on the command connection it still has.
    fn unregister(&mut self) {
        let (status, instance) = (self.status.clone(), self.instance.clone());
        super::instances::leave(&status, &instance, self.connection());
    }

    /// The command connection, made (and the scripts loaded) if there is
    /// none; `None` while Redis cannot be reached.
    fn connection(&mut self) -> Option<&mut Link> {
        if self.conn.is_none() && Instant::now() < self.next_attempt {
            return None;
        }
        if self.conn.is_none() {
            match self.connect() {
                Ok((conn, pubsub)) => {
                    log::info!(
                        "event=redis_connected role=commands pubsub={}",
                        pubsub.label()
                    );
                    self.conn = Some(conn);
                    self.pubsub = pubsub;
                    self.status.commands.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    self.lost(&e);
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    fn connect(&self) -> redis::RedisResult<(Link, PubSub)> {
        let mut conn = self.target.connect(COMMAND_TIMEOUT)?;
        for script in [
            &self.scripts.append,
            &self.scripts.read,
            &self.scripts.claim,
            &self.scripts.release,
            &self.scripts.reap,
        ] {
            script.prepare_invoke().load(&mut conn)?;
        }
        self.load_bans(&mut conn)?;
        let pubsub = pubsub_of(&mut conn)?;
        Ok((conn, pubsub))
    }

    /// Redis did not answer: the connection is dropped (a late answer must
    /// not be taken for the next command's) and made again on next use.
    fn lost(&mut self, e: &redis::RedisError) {
        if self.status.commands.swap(false, Ordering::SeqCst) {
            log::error!(
                "event=redis_unavailable role=commands error={:?}",
                e.to_string()
            );
        }
        self.conn = None;
        if self.next_attempt <= Instant::now() {
            self.back_off();
        }
    }
}

/// Whether the server has sharded pub/sub.
pub(super) fn pubsub_of(conn: &mut Link) -> redis::RedisResult<PubSub> {
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("SPUBLISH")
        .query(conn)?;
    Ok(PubSub::from_command_info(
        info.first().is_some_and(|v| *v != Value::Nil),
    ))
}

/// What the read script returns: the epoch, the last id, each entry with
/// whether its file's bytes are kept, and the names held on live instances.
type ReadReply = (String, u64, Vec<(Vec<u8>, u8)>, Vec<String>);

/// A room's state as read from Redis.
struct Read {
    epoch: String,
    last_id: u64,
    arrivals: Vec<Arrival>,
    members: Vec<String>,
}

/// The records of what was read, oldest first, each message as it stands.
fn folded(arrivals: impl Iterator<Item = super::Arrival>) -> Vec<sqlite::Record> {
    let mut records: Vec<sqlite::Record> = arrivals.map(|a| a.record).collect();
    super::changes::fold(&mut records);
    records
}
