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

use crate::config::Config;
use crate::dispatcher::{ClientId, Event, Mode};
use crate::handshake::Endpoint;
use crate::queue::{self, OWN_QUEUE, Own};
use crate::session::{Flow, Session};
use crate::text_limit::{TextLimit, TextTooBig};
use crate::wire::Encoded;
use crate::writer::{CLOSE_TIMEOUT, Writer, WriterEnd};

/// Stack size of connection threads: they hold no large buffers on the
/// stack, and thousands of them must fit in memory.
pub const THREAD_STACK: usize = 128 * 1024;

/// Close code for a peer that has gone silent or a server going down: no
/// point waiting for the peer's answer.
const CLOSE_GOING_AWAY: u16 = 1001;

/// Close code for a client closed for what it did (flooding, too many
/// errors, too slow to read, a refused name). Of these, the reader itself
/// closes only for flooding and too many errors: abuse.
const CLOSE_POLICY: u16 = 1008;

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

impl End {
    /// The close code and reason of the connection's end, for the log and
    /// the metrics: ours when we closed, the peer's when it did (1005 if it
    /// gave none), 1006 when the connection dropped without a close.
    fn close(self, peer: Option<(u16, String)>) -> (u16, String) {
        match self {
            End::Closed => peer.unwrap_or((1005, String::new())),
            End::ClosedByUs(code, reason) => (code, reason),
            End::Reset(why) => (1006, why),
        }
    }
}

impl Connection {
    /// Serves the connection on the current thread (the reader) until it
    /// ends, with a writer thread beside it; returns when both are done.
    /// `on_abuse` is called, as soon as it is known, if the client is closed
    /// for flooding or persistent bad input (so that the listener can refuse
    /// it reconnecting at once with a fresh allowance).
    pub fn serve(self, on_abuse: impl FnOnce()) {
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
        let open = crate::metrics::get().connection(session.mode);
        let connect = Event::Connect {
            id: self.id,
            peer: self.peer,
            mode: session.mode,
            outbox,
        };
        let end = if session.events.send(connect).is_err() {
            // The dispatcher has stopped: the server is shutting down.
            let reason = "server shutting down".to_owned();
            let _ = own_tx.send(Own::Close(CLOSE_GOING_AWAY, reason.clone()));
            End::ClosedByUs(CLOSE_GOING_AWAY, reason)
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
        if let End::ClosedByUs(CLOSE_POLICY, _) = &end {
            on_abuse();
        }
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
        let (code, reason) = end.close(session.peer_close.take());
        crate::metrics::get().disconnect(code);
        log::info!(
            "event=disconnect client={} peer={} mode={} code={code} reason={reason:?} duration={:.3}s rate_limited={}",
            self.id,
            self.peer,
            crate::metrics::mode_label(session.mode),
            open.elapsed().as_secs_f64(),
            session.dropped,
        );
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
        let (code, reason) = match ctx.read(&mut stream) {
            Ok(msg) => match session.on_message(msg, own) {
                Flow::Continue => {
                    let wanted = session.message_limit();
                    if wanted != limit {
                        ctx.set_config(|c| {
                            c.max_message_size = Some(wanted);
                            c.max_frame_size = Some(wanted);
                        });
                        limit = wanted;
                    }
                    continue;
                }
                Flow::Close(code, reason) => (code, reason),
                Flow::WriterGone => return End::Reset("writer stopped".into()),
            },
            Err(err) => match failure(err) {
                Failure::Ended(end) => return end,
                Failure::Close(code, reason) => (code, reason),
            },
        };
        let _ = own.send(Own::Close(code, reason.clone()));
        return End::ClosedByUs(code, reason);
    }
}

/// What a read error means: how the connection ended, or the close to send.
enum Failure {
    Ended(End),
    Close(u16, String),
}

/// Maps a read error to what the peer is told.
fn failure(err: WsError) -> Failure {
    match err {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Failure::Ended(End::Closed),
        WsError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Failure::Close(CLOSE_GOING_AWAY, "ping timeout".into())
        }
        WsError::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<TextTooBig>()) => {
            Failure::Close(1009, "message too big".into())
        }
        WsError::Io(e) => Failure::Ended(End::Reset(e.to_string())),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Failure::Ended(End::Reset("no close frame".into()))
        }
        WsError::Protocol(ProtocolError::InvalidCloseSequence) => {
            Failure::Close(1002, "invalid close sequence".into())
        }
        WsError::Protocol(p) => Failure::Close(1002, truncate(p.to_string())),
        WsError::Utf8(_) => Failure::Close(1007, "invalid UTF-8".into()),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Failure::Close(1009, "message too big".into())
        }
        WsError::Capacity(c) => Failure::Close(1009, truncate(c.to_string())),
        other => {
            log::error!("unexpected read error: {other}");
            Failure::Close(1011, "internal error".into())
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
        crate::metrics::get().bytes_received(n);
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
