//! What a connection's reader does with each message it reads: the rules of
//! its endpoint (echo, raw room, wschat.v1), the rate limits, and turning
//! client frames into dispatcher events or error replies. Its only I/O is
//! handing events to the dispatcher and replies to the client's outlet.

use crate::logs as log;

use std::sync::Arc;
use std::time::Duration;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message, Utf8Bytes};

use crate::config::Config;
use crate::hub::dispatcher::{ClientId, Input, JoinRequest};
use crate::hub::hubs::{Hubs, Link, Stopped};
use crate::hub::outlet::Outlet;
use crate::limits::budget::Share;
use crate::limits::ratelimit::TokenBucket;
use crate::proto::close::Close;
use crate::proto::protocol::{self, Command, ErrorCode, FileMeta, FrameRefusal, Mode};
use crate::proto::wire::Encoded;
use crate::ws::auth::RoomQuery;
use crate::ws::handshake::{Endpoint, Kind};

/// Error frames a v1 client may provoke in a burst before it is closed as
/// abusive, and how many per second it earns back.
const ERROR_BURST: u32 = 20;
const ERRORS_PER_SEC: f64 = 1.0;

/// `history` and `search` frames a v1 client may send in a burst, and how
/// many per second it earns back; over that they are refused with
/// `rate_limited` (see docs/DECISIONS.md).
const LOOKUP_BURST: u32 = 10;
const LOOKUPS_PER_SEC: f64 = 2.0;

/// How often a raw client waiting for Redis checks whether it is back.
const REDIS_RECHECK: Duration = Duration::from_millis(100);

/// What the reader does after a message.
pub enum Flow {
    Continue,
    /// Send this close frame, then stop reading.
    Close(Close),
    /// The connection's output has ended; nothing more can be sent.
    Gone,
}

/// What the reader knows about its client: the endpoint's rules, the rate
/// limits and, in v1, a file announced but not yet received.
pub struct Session {
    id: ClientId,
    pub kind: Kind,
    query: RoomQuery,
    pub config: Arc<Config>,
    /// The hubs; the one its room is on hears of it through `link`.
    hubs: Hubs,
    /// Its place with a hub, from `connect` until `disconnect`.
    link: Option<Link>,
    /// Its hub has stopped: at shutdown (which closes the client itself)
    /// or because the hub failed, which closes it with 1011.
    hub_lost: bool,
    /// A v1 client's announced file, until its bytes come. Boxed, as what
    /// is rarely used: the session lives as long as its connection.
    pending_file: Option<Box<FileMeta>>,
    /// Whether a join has been asked for. The dispatcher decides whether it
    /// succeeded; this only lets a file announced before any join be refused
    /// at once rather than after its bytes.
    join_asked: bool,
    /// Every frame the client sends in a room draws on this; when it is
    /// empty the reader waits (see `pace`).
    rate: TokenBucket,
    /// The client has been told `slow_down` and has not since sent a frame
    /// within its rate.
    slowed: bool,
    /// How long the rate limit has held the client back, for the disconnect
    /// log line.
    pub held: Duration,
    /// The close code and reason the peer sent, if it has (1005: no code).
    /// Boxed, as `pending_file`.
    pub peer_close: Option<Box<(u16, String)>>,
    /// Error frames sent draw on this; empty means abuse. Made full when
    /// first drawn on, as `lookups`: most clients never draw on either.
    errors: Option<Box<TokenBucket>>,
    /// `history` and `search` frames draw on this: each is a read of the
    /// store.
    lookups: Option<Box<TokenBucket>>,
    /// The memory budget's share for messages being received: a file is
    /// refused at its announcement when the share cannot hold it now.
    pub incoming: Arc<Share>,
    /// With `--redis`: whether Redis answers. A raw client's message waits
    /// while it does not (see `wait_for_redis`).
    redis: Option<Arc<crate::history::redis::Status>>,
    /// The allowance of bytes to store shared by every connection of the
    /// client's address (`--store-rate`); `None` without a limit.
    pub store_rate: Option<Arc<crate::limits::storerate::StoreRate>>,
    /// The client has been told `slow_down` for its address's store rate
    /// and has not since sent something within it.
    store_slowed: bool,
    /// Its identity token says it is a moderator (`"mod":true`).
    moderator: bool,
}

mod changes;
mod pacing;

impl Session {
    pub fn new(
        id: ClientId,
        endpoint: Endpoint,
        config: &Arc<Config>,
        hubs: Hubs,
        incoming: Arc<Share>,
        redis: Option<Arc<crate::history::redis::Status>>,
    ) -> Session {
        let kind = endpoint.kind();
        let query = match endpoint {
            Endpoint::Echo => RoomQuery::default(),
            Endpoint::Room(_, query) => query,
        };
        Session {
            id,
            kind,
            query,
            config: config.clone(),
            hubs,
            link: None,
            hub_lost: false,
            pending_file: None,
            join_asked: false,
            rate: TokenBucket::new(config.rate, config.burst),
            slowed: false,
            held: Duration::ZERO,
            peer_close: None,
            errors: None,
            lookups: None,
            incoming,
            redis,
            store_rate: None,
            store_slowed: false,
            moderator: false,
        }
    }

    /// The largest message tungstenite may buffer for the next read: a v1
    /// client may send a binary frame only after announcing its size.
    pub fn message_limit(&self) -> usize {
        match (self.kind, &self.pending_file) {
            (Kind::Room(Mode::V1), None) => self.config.max_message_size,
            (Kind::Room(Mode::V1), Some(f)) => self.config.max_message_size.max(f.size as usize),
            _ => self.config.max_frame_size(),
        }
    }

    /// Makes a chat-room client known to the hub of the room its URL
    /// names; `Stopped` when the server is shutting down.
    pub fn connect(
        &mut self,
        peer: std::net::SocketAddr,
        outlet: &Arc<Outlet>,
    ) -> Result<(), Stopped> {
        let Kind::Room(mode) = self.kind else {
            return Ok(());
        };
        let link = Link::new(
            &self.hubs,
            (self.id, peer, mode),
            outlet.clone(),
            self.query.room.as_deref(),
        );
        self.link.insert(link).enter()
    }

    /// Leaves the room, if it is in one, and the hub: its room hears of it
    /// now.
    pub fn disconnect(&mut self) {
        self.link = None;
    }

    pub fn tell(&mut self, event: Input) {
        self.tell_boxed(Box::new(event));
    }

    /// As `tell`, with the event already on the heap: the join, made out of
    /// line, comes this way, so that no frame on its way holds it.
    fn tell_boxed(&mut self, event: Box<Input>) {
        if let Some(what) = event.metric() {
            crate::metrics::get().received(what);
        }
        let Some(link) = &mut self.link else { return };
        self.hub_lost |= link.send(event).is_err();
    }

    /// Joins the room the client's URL names, as it connects: a raw client
    /// always does, a v1 client when its URL names it. The query stays here
    /// for a later `join`; the reader keeps no copy of it.
    pub fn join_from_url(&mut self) {
        let joins = match self.kind {
            Kind::Room(Mode::Raw) => true,
            Kind::Room(Mode::V1) => self.query.name.is_some(),
            Kind::Echo => false,
        };
        if joins {
            let event = self.url_join_event();
            self.tell_boxed(event);
        }
    }

    /// The join a client's URL asks for. Out of line, as the request it
    /// makes: a raw client joins before it idles, and nothing this makes
    /// may lie under the channel send (see "Limits" in
    /// docs/ARCHITECTURE.md).
    #[inline(never)]
    fn url_join_event(&mut self) -> Box<Input> {
        let owner = crate::ws::auth::owner_of_query(&self.query);
        self.moderator = crate::ws::auth::is_moderator(&self.config, &self.query, None);
        // Taken for the call and put back: no copy of it is made.
        let query = std::mem::take(&mut self.query);
        let event = self.join_request(&query, (None, None), (None, None), owner);
        self.query = query;
        event
    }

    /// Asks to join as `owner`; a token's holder goes by the token's name.
    fn join_as(
        &mut self,
        query: &RoomQuery,
        room: Option<String>,
        name: Option<String>,
        since_epoch: (Option<u64>, Option<String>),
        owner: crate::proto::names::Owner,
    ) {
        let event = self.join_request(query, (room, name), since_epoch, owner);
        self.tell_boxed(event);
    }

    /// The join event, on the heap, made out of line: what the client asks
    /// for, with what its URL's query asked for where the `join` is silent.
    #[inline(never)]
    fn join_request(
        &mut self,
        query: &RoomQuery,
        (room, name): (Option<String>, Option<String>),
        (since, epoch): (Option<u64>, Option<String>),
        owner: crate::proto::names::Owner,
    ) -> Box<Input> {
        self.join_asked = true;
        let subject = match &owner {
            crate::proto::names::Owner::Subject(subject) => Some(subject.clone()),
            _ => None,
        };
        Box::new(Input::Join(JoinRequest {
            id: self.id,
            room: room.or_else(|| query.room.clone()),
            name: subject.or(name).or_else(|| query.name.clone()),
            since: since.or(query.since),
            epoch,
            owner,
            moderator: self.moderator,
        }))
    }

    /// Handles one message. `ahead` is what the incoming share already
    /// holds for frames the client sent after it (a file's bytes may follow
    /// its announcement in the same read).
    pub fn on_message(&mut self, msg: Message, ahead: usize, own: &Arc<Outlet>) -> Flow {
        match self.handle_message(msg, ahead, own) {
            // Whatever it sent next would be lost.
            Flow::Continue if self.hub_lost => Flow::Close(Close::internal()),
            flow => flow,
        }
    }

    fn handle_message(&mut self, msg: Message, ahead: usize, own: &Arc<Outlet>) -> Flow {
        let counted = matches!(
            msg,
            Message::Text(_) | Message::Binary(_) | Message::Ping(_)
        );
        if self.kind != Kind::Echo
            && counted
            && let Flow::Gone = self.pace(own)
        {
            return Flow::Gone;
        }
        match (msg, self.kind) {
            (Message::Text(text), Kind::Echo) => reply(own, Encoded::text(text)),
            (Message::Binary(bytes), Kind::Echo) => reply(own, Encoded::binary(bytes)),
            (Message::Text(text), Kind::Room(Mode::Raw)) => self.raw_text(text),
            (Message::Binary(bytes), Kind::Room(Mode::Raw)) => self.raw_file(bytes),
            (Message::Text(text), Kind::Room(Mode::V1)) => self.v1_text(text, ahead, own),
            (Message::Binary(bytes), Kind::Room(Mode::V1)) => self.v1_file(bytes, own),
            (Message::Close(frame), _) => {
                self.peer_close = Some(Box::new(
                    frame.map_or((CloseCode::Status.into(), String::new()), |f| {
                        (f.code.into(), f.reason.as_str().to_owned())
                    }),
                ));
                Flow::Continue
            }
            _ => Flow::Continue,
        }
    }

    fn raw_text(&mut self, text: Utf8Bytes) -> Flow {
        if text.len() > self.config.max_message_size {
            return Flow::Close(Close::too_big("message too big"));
        }
        self.pay(
            crate::limits::storerate::record_cost(text.len() as u64),
            None,
        );
        self.wait_for_redis();
        self.tell(Input::Text {
            id: self.id,
            text,
            cid: None,
        });
        Flow::Continue
    }

    fn raw_file(&mut self, frame: Bytes) -> Flow {
        let (name, offset) = match protocol::parse_file_header(&frame) {
            Ok((name, offset)) => (name.to_owned(), offset),
            Err(_) => return Flow::Close(Close::invalid_data("bad file header")),
        };
        if frame.len() - offset > self.config.max_file_size {
            return Flow::Close(Close::too_big("message too big"));
        }
        let size = frame.len();
        let event = Input::File {
            id: self.id,
            mime: protocol::guess_mime(&name).to_owned(),
            // v1 clients get a name that meets their rules; raw ones, the
            // frame as it was sent.
            name: crate::proto::names::file_name(&name),
            data: frame.slice(offset..),
            raw_frame: Some(frame),
            cid: None,
        };
        self.pay(size as u64 + crate::limits::storerate::RECORD_COST, None);
        self.wait_for_redis();
        self.tell(event);
        Flow::Continue
    }

    fn v1_text(&mut self, text: Utf8Bytes, ahead: usize, own: &Arc<Outlet>) -> Flow {
        if self.pending_file.take().is_some() {
            let flow = self.refuse(
                own,
                FrameRefusal::new(
                    ErrorCode::UnexpectedFrame,
                    "expected the announced file's binary frame; the file is cancelled",
                ),
            );
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        let command = match protocol::parse_command(&text) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(own, refusal),
        };
        match command {
            Command::Join {
                room,
                name,
                since,
                epoch,
                token,
                key,
            } => {
                let query = self.query.clone();
                self.moderator =
                    crate::ws::auth::is_moderator(&self.config, &query, token.as_deref());
                let owner = crate::ws::auth::owner_for_join(
                    &self.config,
                    &query,
                    token.as_deref(),
                    key.as_deref(),
                    room.as_deref(),
                    name.as_deref(),
                );
                match owner {
                    Ok(owner) => self.join_as(&query, room, name, (since, epoch), owner),
                    Err(e) => {
                        crate::ws::auth::log_refused(query.client, "join", &e);
                        return self.refuse(own, e.refusal());
                    }
                }
            }
            Command::Message { text, cid } => {
                if text.is_empty() {
                    return self.refuse(
                        own,
                        FrameRefusal::new(ErrorCode::EmptyText, "a message needs some text"),
                    );
                }
                if text.len() > self.config.max_text {
                    let why = format!(
                        "text is {} bytes; the limit is {}",
                        text.len(),
                        self.config.max_text
                    );
                    return self.refuse(own, FrameRefusal::new(ErrorCode::TextTooLong, why));
                }
                let cost = crate::limits::storerate::record_cost(text.len() as u64);
                if let Flow::Gone = self.pay(cost, Some(own)) {
                    return Flow::Gone;
                }
                self.tell(Input::Text {
                    id: self.id,
                    text: text.into(),
                    cid,
                });
            }
            Command::File(_) if !self.join_asked => {
                let why = "join a room before sending messages, files or typing";
                return self.refuse(own, FrameRefusal::new(ErrorCode::NotJoined, why));
            }
            Command::File(meta) => {
                if meta.size > self.config.max_file_size as u64 {
                    let why = format!(
                        "file is {} bytes; the limit is {}",
                        meta.size, self.config.max_file_size
                    );
                    return self.refuse(own, FrameRefusal::new(ErrorCode::FileTooLarge, why));
                }
                if meta.size > (self.incoming.available() + ahead) as u64 {
                    log::warn!(
                        "event=budget_full share=incoming client={} bytes={} msg=\"file refused at its announcement\"",
                        self.id,
                        meta.size
                    );
                    let why = format!(
                        "the server is receiving too much at the moment to take {} bytes; try again shortly",
                        meta.size
                    );
                    return self.refuse(own, FrameRefusal::new(ErrorCode::ServerBusy, why));
                }
                // Paid at the announcement, so that a client held back
                // has not yet sent the bytes the server would hold.
                let cost = meta.size + crate::limits::storerate::RECORD_COST;
                if let Flow::Gone = self.pay(cost, Some(own)) {
                    return Flow::Gone;
                }
                self.pending_file = Some(Box::new(meta));
            }
            Command::Typing => self.tell(Input::Typing { id: self.id }),
            Command::FileUrl { id, name } => self.tell(Input::FileUrl {
                id: self.id,
                file: id,
                name,
            }),
            Command::Lookup(ask) => {
                if let Some(wait) = self
                    .lookups
                    .get_or_insert_with(|| {
                        Box::new(TokenBucket::new(LOOKUPS_PER_SEC, LOOKUP_BURST))
                    })
                    .take_or_wait()
                {
                    let wait_ms = wait.as_millis().max(1) as u64;
                    let why = format!(
                        "at most {LOOKUP_BURST} history or search requests at once, then \
                         {LOOKUPS_PER_SEC} a second; ask again in {wait_ms} ms"
                    );
                    let refusal = FrameRefusal::new(ErrorCode::RateLimited, why)
                        .until(protocol::now_ms() + wait_ms);
                    return self.refuse(own, refusal);
                }
                self.tell(Input::Lookup { id: self.id, ask });
            }
            Command::Change { id, change, cid } => return self.change(own, id, change, cid),
        }
        Flow::Continue
    }

    fn v1_file(&mut self, bytes: Bytes, own: &Arc<Outlet>) -> Flow {
        let Some(meta) = self.pending_file.take() else {
            return self.refuse(
                own,
                FrameRefusal::new(
                    ErrorCode::UnexpectedBinary,
                    "send a file announcement before its bytes",
                ),
            );
        };
        if bytes.len() as u64 != meta.size {
            let why = format!("announced {} bytes, received {}", meta.size, bytes.len());
            return self.refuse(own, FrameRefusal::new(ErrorCode::SizeMismatch, why));
        }
        self.tell(Input::File {
            id: self.id,
            name: meta.name,
            mime: meta.mime,
            data: bytes,
            raw_frame: None,
            cid: meta.cid,
        });
        Flow::Continue
    }

    /// Sends an `error` event; a client that keeps provoking them is closed.
    fn refuse(&mut self, own: &Arc<Outlet>, refusal: FrameRefusal) -> Flow {
        log::debug!(
            "event=error client={} code={} message={:?}",
            self.id,
            refusal.code.as_str(),
            refusal.message
        );
        let errors = self
            .errors
            .get_or_insert_with(|| Box::new(TokenBucket::new(ERRORS_PER_SEC, ERROR_BURST)));
        if !errors.take() {
            return Flow::Close(Close::abuse("too many errors"));
        }
        reply(own, Encoded::text(refusal.to_json()))
    }
}

fn reply(own: &Arc<Outlet>, frame: Encoded) -> Flow {
    match own.reply(&frame) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Gone,
    }
}

#[cfg(test)]
mod tests;
