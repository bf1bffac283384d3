//! A WebSocket connection's threads: this file owns the reader, which is
//! the thread that did the handshake; it starts the writer (see `writer`).
//!
//! Only the reader reads from the socket and only the writer writes to it.
//! tungstenite answers pings and closes from inside `read()`, writing to the
//! stream it reads from; the reader therefore gives it a stream whose write
//! half is the writer's own queue, so those replies are written by the
//! writer between whole frames, never in the middle of one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::Sender;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Message, Utf8Bytes};

use crate::config::Config;
use crate::dispatcher::{ClientId, Event, Mode};
use crate::handshake::{Endpoint, RoomQuery};
use crate::protocol::{self, Command, FileMeta, Refusal};
use crate::queue::{self, OWN_QUEUE, Own};
use crate::ratelimit::TokenBucket;
use crate::text_limit::{TextLimit, TextTooBig};
use crate::wire::Encoded;
use crate::writer::{CLOSE_TIMEOUT, Writer, WriterEnd};

/// Stack size of connection threads: they hold no large buffers on the
/// stack, and thousands of them must fit in memory.
pub const THREAD_STACK: usize = 128 * 1024;

/// Error frames a v1 client may provoke in a burst before it is closed as
/// abusive, and how many per second it earns back.
const ERROR_BURST: u32 = 20;
const ERRORS_PER_SEC: f64 = 1.0;

/// Close code for a peer that has gone silent or a server going down: no
/// point waiting for the peer's answer.
const CLOSE_GOING_AWAY: u16 = 1001;

/// Everything a connection needs once its handshake is done.
pub struct Connection {
    pub id: ClientId,
    pub peer: SocketAddr,
    pub sock: TcpStream,
    /// Bytes the client sent after its request head.
    pub early: Vec<u8>,
    pub endpoint: Endpoint,
    pub config: Arc<Config>,
    pub events: Sender<Event>,
}

/// How a connection ended, for the disconnect log line.
#[derive(Debug)]
enum End {
    /// Close handshake completed or the peer closed.
    Closed,
    /// We closed it with this code and reason.
    ClosedByUs(u16, String),
    /// The TCP connection dropped without a close frame.
    Reset(String),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed => write!(f, "closed"),
            End::ClosedByUs(code, reason) => write!(f, "closed by server ({code} {reason})"),
            End::Reset(why) => write!(f, "dropped ({why})"),
        }
    }
}

impl Connection {
    /// Serves the connection on the current thread (the reader) until it
    /// ends, with a writer thread beside it; returns when both are done.
    pub fn serve(self) {
        let sock = Arc::new(self.sock);
        if let Err(e) = configure(&sock, &self.config) {
            log::warn!(
                "client {} ({}): socket setup failed: {e}",
                self.id,
                self.peer
            );
            return;
        }
        let (own_tx, own_rx) = crossbeam_channel::bounded(OWN_QUEUE);
        let (outbox, inbox) = queue::room_queue(self.config.queue_frames, self.config.queue_bytes);
        let writer = Writer {
            sock: sock.clone(),
            own: own_rx,
            room: inbox,
            ping_interval: self.config.ping_interval,
            write_timeout: self.config.write_timeout,
        };
        let writer = match thread::Builder::new()
            .name(format!("writer-{}", self.id))
            .stack_size(THREAD_STACK)
            .spawn(move || writer.run())
        {
            Ok(handle) => handle,
            Err(e) => {
                log::error!(
                    "client {} ({}): cannot start writer: {e}",
                    self.id,
                    self.peer
                );
                return;
            }
        };

        let mut session = Session::new(self.id, &self.endpoint, &self.config, self.events.clone());
        let connect = Event::Connect {
            id: self.id,
            peer: self.peer,
            mode: session.mode,
            outbox,
        };
        let end = if session.events.send(connect).is_err() {
            // The dispatcher has stopped: the server is shutting down.
            let reason = "server shutting down".to_owned();
            let _ = own_tx.send(Own::Close(1001, reason.clone()));
            End::ClosedByUs(1001, reason)
        } else {
            if let Endpoint::Room(mode, query) = &self.endpoint
                && (*mode == Mode::Raw || query.name.is_some())
            {
                session.join(query, None, None, None);
            }
            let mut ctx = WebSocketContext::from_partially_read(
                self.early,
                Role::Server,
                Some(ws_config(session.message_limit())),
            );
            let end = read_loop(&sock, &mut ctx, &mut session, &own_tx);
            // The room hears of the leave before any lingering below.
            session.tell(Event::Leave { id: self.id });
            end
        };
        if let End::ClosedByUs(code, _) = &end
            && *code != CLOSE_GOING_AWAY
        {
            // Let the peer read our close frame and close its side first,
            // so the close is not lost to a TCP reset.
            linger(&sock);
        }
        drop(own_tx);
        let writer_end = writer.join();
        let end = match (end, writer_end) {
            (End::Reset(_), Ok(WriterEnd::Io(e))) => End::Reset(format!("write failed: {e}")),
            (end, _) => end,
        };
        log::info!("client {} ({}) disconnected: {end}", self.id, self.peer);
    }
}

fn configure(sock: &TcpStream, config: &Config) -> io::Result<()> {
    sock.set_nodelay(true)?;
    // A peer that sends nothing, not even a pong, for two ping intervals is
    // gone: this read timeout is the heartbeat's deadline, not a poll.
    sock.set_read_timeout(Some(config.idle_timeout()))?;
    sock.set_write_timeout(Some(config.write_timeout))
}

fn ws_config(limit: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// Reads messages until the connection ends; hands each to the session.
fn read_loop(
    sock: &TcpStream,
    ctx: &mut WebSocketContext,
    session: &mut Session,
    own: &Sender<Own>,
) -> End {
    let text_limit =
        (session.mode != Mode::Echo).then(|| TextLimit::new(session.config.max_message_size));
    let mut stream = ReplyStream {
        sock,
        own,
        text_limit,
    };
    let mut limit = session.message_limit();
    loop {
        let result = ctx.read(&mut stream);
        let flow = match result {
            Ok(msg) => session.on_message(msg, own),
            Err(err) => failure(err),
        };
        match flow {
            Flow::Continue => {}
            Flow::End(end) => return end,
            Flow::Close(code, reason) => {
                let _ = own.send(Own::Close(code, reason.clone()));
                return End::ClosedByUs(code, reason);
            }
        }
        let wanted = session.message_limit();
        if wanted != limit {
            ctx.set_config(|c| {
                c.max_message_size = Some(wanted);
                c.max_frame_size = Some(wanted);
            });
            limit = wanted;
        }
    }
}

/// What the reader does next.
enum Flow {
    Continue,
    /// Send a close frame with this code and reason, then stop reading.
    Close(u16, String),
    /// Stop reading; nothing more to send.
    End(End),
}

/// Maps a read error to what the peer is told.
fn failure(err: WsError) -> Flow {
    match err {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Flow::End(End::Closed),
        WsError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Flow::Close(CLOSE_GOING_AWAY, "ping timeout".into())
        }
        WsError::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<TextTooBig>()) => {
            Flow::Close(1009, "message too big".into())
        }
        WsError::Io(e) => Flow::End(End::Reset(e.to_string())),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Flow::End(End::Reset("no close frame".into()))
        }
        WsError::Protocol(ProtocolError::InvalidCloseSequence) => {
            Flow::Close(1002, "invalid close sequence".into())
        }
        WsError::Protocol(p) => Flow::Close(1002, truncate(p.to_string())),
        WsError::Utf8(_) => Flow::Close(1007, "invalid UTF-8".into()),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Flow::Close(1009, "message too big".into())
        }
        WsError::Capacity(c) => Flow::Close(1009, truncate(c.to_string())),
        other => {
            log::error!("unexpected read error: {other}");
            Flow::Close(1011, "internal error".into())
        }
    }
}

/// Close reasons are limited to 123 bytes (a control frame's 125 minus the code).
fn truncate(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// Discards what the peer still sends until it closes its side or the close
/// timeout passes, so our close frame is not lost to a TCP reset.
fn linger(sock: &TcpStream) {
    if sock.set_read_timeout(Some(CLOSE_TIMEOUT)).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    while let Ok(n) = (&*sock).read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// The stream tungstenite reads from and writes its replies to: reads come
/// from the socket, writes go to the writer thread as whole frames.
struct ReplyStream<'a> {
    sock: &'a TcpStream,
    own: &'a Sender<Own>,
    /// In the chat room, stops text over `--max-message-size` from its header.
    text_limit: Option<TextLimit>,
}

impl Read for ReplyStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.sock).read(buf)?;
        if let Some(limit) = &mut self.text_limit {
            limit
                .observe(&buf[..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        Ok(n)
    }
}

impl Write for ReplyStream<'_> {
    /// tungstenite writes out its whole buffer of encoded replies in one call
    /// (it never holds more than one reply), so each call is whole frames.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.own
            .send(Own::Frame(Encoded::from_wire(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "writer has stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the reader knows about its client: the endpoint's rules, the rate
/// limits and, in v1, a file announced but not yet received.
struct Session {
    id: ClientId,
    mode: Mode,
    query: RoomQuery,
    config: Arc<Config>,
    events: Sender<Event>,
    pending_file: Option<FileMeta>,
    /// Whether a join has been asked for. The dispatcher decides whether it
    /// succeeded; this only lets a file announced before any join be refused
    /// at once rather than after its bytes.
    join_asked: bool,
    rate: TokenBucket,
    /// Frames dropped by the rate limit draw on this; empty means flooding.
    strikes: TokenBucket,
    /// Error frames sent draw on this; empty means abuse.
    errors: TokenBucket,
}

impl Session {
    fn new(
        id: ClientId,
        endpoint: &Endpoint,
        config: &Arc<Config>,
        events: Sender<Event>,
    ) -> Session {
        let (mode, query) = match endpoint {
            Endpoint::Echo => (Mode::Echo, RoomQuery::default()),
            Endpoint::Room(mode, query) => (*mode, query.clone()),
        };
        Session {
            id,
            mode,
            query,
            config: config.clone(),
            events,
            pending_file: None,
            join_asked: false,
            rate: TokenBucket::new(config.rate, config.burst),
            strikes: TokenBucket::new(config.rate, config.burst),
            errors: TokenBucket::new(ERRORS_PER_SEC, ERROR_BURST),
        }
    }

    /// The largest message tungstenite may buffer for the next read: a v1
    /// client may send a binary frame only after announcing its size.
    fn message_limit(&self) -> usize {
        match (self.mode, &self.pending_file) {
            (Mode::V1, None) => self.config.max_message_size,
            (Mode::V1, Some(f)) => self.config.max_message_size.max(f.size as usize),
            _ => self.config.max_frame_size(),
        }
    }

    fn tell(&mut self, event: Event) {
        // Fails only when the dispatcher has stopped (shutdown); the writer
        // has then been told to close.
        let _ = self.events.send(event);
    }

    fn join(
        &mut self,
        query: &RoomQuery,
        room: Option<String>,
        name: Option<String>,
        since: Option<u64>,
    ) {
        self.join_asked = true;
        let event = Event::Join {
            id: self.id,
            room: room.or_else(|| query.room.clone()),
            name: name.or_else(|| query.name.clone()),
            since: since.or(query.since),
        };
        self.tell(event);
    }

    fn on_message(&mut self, msg: Message, own: &Sender<Own>) -> Flow {
        match (msg, self.mode) {
            (Message::Text(text), Mode::Echo) => send_own(own, Own::Frame(Encoded::text(text))),
            (Message::Binary(bytes), Mode::Echo) => {
                send_own(own, Own::Frame(Encoded::binary(bytes)))
            }
            (Message::Text(text), Mode::Raw) => self.raw_text(text),
            (Message::Binary(bytes), Mode::Raw) => self.raw_file(bytes),
            (Message::Text(text), Mode::V1) => self.v1_text(text, own),
            (Message::Binary(bytes), Mode::V1) => self.v1_file(bytes, own),
            _ => Flow::Continue,
        }
    }

    /// Applies the rate limit. `Err` carries what to do with a dropped frame.
    fn admit(&mut self) -> Result<(), Flow> {
        if self.rate.take() {
            return Ok(());
        }
        if self.strikes.take() {
            Err(Flow::Continue)
        } else {
            Err(Flow::Close(1008, "flooding".into()))
        }
    }

    fn raw_text(&mut self, text: Utf8Bytes) -> Flow {
        if text.len() > self.config.max_message_size {
            return Flow::Close(1009, "message too big".into());
        }
        if let Err(flow) = self.admit() {
            return flow;
        }
        self.tell(Event::Text { id: self.id, text });
        Flow::Continue
    }

    fn raw_file(&mut self, frame: tungstenite::Bytes) -> Flow {
        let (name, offset) = match protocol::parse_file_header(&frame) {
            Ok((name, offset)) => (name.to_owned(), offset),
            Err(_) => return Flow::Close(1007, "bad file header".into()),
        };
        if frame.len() - offset > self.config.max_file_size {
            return Flow::Close(1009, "message too big".into());
        }
        if let Err(flow) = self.admit() {
            return flow;
        }
        let event = Event::File {
            id: self.id,
            mime: protocol::guess_mime(&name).to_owned(),
            name,
            data: frame.slice(offset..),
            raw_frame: Some(frame),
        };
        self.tell(event);
        Flow::Continue
    }

    fn v1_text(&mut self, text: Utf8Bytes, own: &Sender<Own>) -> Flow {
        if self.pending_file.take().is_some() {
            let flow = self.refuse(
                own,
                Refusal::new(
                    "unexpected_frame",
                    "expected the announced file's binary frame; the file is cancelled",
                ),
            );
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        if let Err(flow) = self.admit() {
            if let Flow::Close(..) = flow {
                return flow;
            }
            // Not counted as abuse: the flood budget already decides that.
            let refusal = Refusal::new("rate_limited", "too many frames; this one was dropped");
            return send_own(own, Own::Frame(Encoded::text(refusal.to_json())));
        }
        let command = match protocol::parse_command(&text) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(own, refusal),
        };
        match command {
            Command::Join { room, name, since } => {
                let query = self.query.clone();
                self.join(&query, room, name, since);
            }
            Command::Message { text } => {
                if text.is_empty() {
                    return self
                        .refuse(own, Refusal::new("empty_text", "a message needs some text"));
                }
                if text.len() > self.config.max_text {
                    let why = format!(
                        "text is {} bytes; the limit is {}",
                        text.len(),
                        self.config.max_text
                    );
                    return self.refuse(own, Refusal::new("text_too_long", why));
                }
                self.tell(Event::Text {
                    id: self.id,
                    text: text.into(),
                });
            }
            Command::File(_) if !self.join_asked => {
                let why = "join a room before sending messages, files or typing";
                return self.refuse(own, Refusal::new("not_joined", why));
            }
            Command::File(meta) => {
                if meta.size > self.config.max_file_size as u64 {
                    let why = format!(
                        "file is {} bytes; the limit is {}",
                        meta.size, self.config.max_file_size
                    );
                    return self.refuse(own, Refusal::new("file_too_large", why));
                }
                self.pending_file = Some(meta);
            }
            Command::Typing => self.tell(Event::Typing { id: self.id }),
        }
        Flow::Continue
    }

    fn v1_file(&mut self, bytes: tungstenite::Bytes, own: &Sender<Own>) -> Flow {
        let Some(meta) = self.pending_file.take() else {
            return self.refuse(
                own,
                Refusal::new(
                    "unexpected_binary",
                    "send a file announcement before its bytes",
                ),
            );
        };
        if bytes.len() as u64 != meta.size {
            let why = format!("announced {} bytes, received {}", meta.size, bytes.len());
            return self.refuse(own, Refusal::new("size_mismatch", why));
        }
        self.tell(Event::File {
            id: self.id,
            name: meta.name,
            mime: meta.mime,
            data: bytes,
            raw_frame: None,
        });
        Flow::Continue
    }

    /// Sends an `error` event; a client that keeps provoking them is closed.
    fn refuse(&mut self, own: &Sender<Own>, refusal: Refusal) -> Flow {
        log::debug!(
            "client {}: refused: {} {}",
            self.id,
            refusal.code,
            refusal.message
        );
        if !self.errors.take() {
            return Flow::Close(1008, "too many errors".into());
        }
        send_own(own, Own::Frame(Encoded::text(refusal.to_json())))
    }
}

fn send_own(own: &Sender<Own>, item: Own) -> Flow {
    match own.send(item) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::End(End::Reset("writer stopped".into())),
    }
}
