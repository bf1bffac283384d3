//! A WebSocket connection's thread: the reader, which is the thread that did
//! the handshake, and the only one that reads from the socket.
//!
//! Everything sent to the client goes through its `Outlet`, shared with the
//! dispatcher. tungstenite answers pings and closes from inside `read()`,
//! writing to the stream it reads from; the reader therefore gives it a
//! stream whose write half is the outlet, so those replies are written
//! between whole frames, never in the middle of one.

use crate::logs as log;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

use crate::config::Config;
use crate::hub::dispatcher::ClientId;
use crate::hub::hubs::Hubs;
use crate::hub::outlet::writer::Writers;
use crate::hub::outlet::{Bounds, CLOSE_TIMEOUT, Outlet};
use crate::limits::budget::Budget;
use crate::net::admission::Ticket;
use crate::proto::close::Close;
use crate::proto::wire::Encoded;
use crate::ws::echo::{EchoClients, EchoPlace};
use crate::ws::handshake::{Endpoint, Kind};
use crate::ws::incoming::{self, Incoming, Refused};
use crate::ws::session::{Flow, Session};

/// Stack size of connection threads: they hold no large buffers on the
/// stack, and thousands of them must fit in memory. Only the pages a
/// thread touches cost memory.
pub const THREAD_STACK: usize = 128 * 1024;

/// tungstenite's read buffer per connection, sized for chat lines rather
/// than its 128 KiB default: larger frames grow it while they are read
/// (in reads of at most this size). Every idle connection keeps it.
const READ_BUFFER: usize = 512;

/// Everything a connection needs once its handshake is done, as the
/// handshake hands it over: [`open`] makes what the reader keeps of it.
pub struct Connection {
    pub id: ClientId,
    pub peer: SocketAddr,
    pub sock: TcpStream,
    /// Bytes the client sent after its request head.
    pub early: Vec<u8>,
    /// Made by [`new_session`], beside this.
    pub session: Box<Session>,
    pub config: Arc<Config>,
    /// Where an echo client makes itself known, to be closed at shutdown.
    pub echoes: EchoClients,
    /// The count of backlog writers, shared by every connection.
    pub writers: Arc<Writers>,
    pub budget: Budget,
    /// Its place among the connections admitted, given back when what the
    /// reader keeps is dropped, last, as the connection ends.
    pub ticket: Ticket,
}

/// How a connection ended, for the disconnect log line.
#[derive(Debug)]
enum End {
    /// Close handshake completed or the peer closed.
    Closed,
    /// We closed it.
    ClosedByUs(Close),
    /// The TCP connection dropped without a close frame.
    Reset(String),
}

impl End {
    /// The close code and reason of the connection's end, for the log and
    /// the metrics: ours when we closed, the peer's when it did (1005 if it
    /// gave none), 1006 when the connection dropped without a close.
    fn close(self, peer: Option<(u16, String)>) -> (u16, String) {
        match self {
            End::Closed => peer.unwrap_or((CloseCode::Status.into(), String::new())),
            End::ClosedByUs(close) => (close.code().into(), close.reason().to_owned()),
            End::Reset(why) => (CloseCode::Abnormal.into(), why),
        }
    }
}

impl Served {
    /// Serves the connection on the current thread (the reader) until it
    /// ends.
    ///
    /// This frame lies under every call the reader makes while the
    /// connection lives, so it holds pointers only: what the connection
    /// keeps was made out of line (`open`, `context`) and lives on the heap,
    /// and the ending runs out of line too (`finish`). A connection's thread
    /// keeps every stack page it ever touched (see "Limits" in
    /// docs/ARCHITECTURE.md).
    #[inline(never)]
    pub fn serve(mut self: Box<Self>) {
        let end = run(&mut self);
        finish(self, end);
    }
}

/// The connection from its place with the hub to its end. Out of line, as
/// every step: the sends to the hub (the `Connect`, a raw or named client's
/// join) are the deepest calls an idle connection's thread has made, and
/// they are made from here, two small frames below the thread's closure.
#[inline(never)]
fn run(s: &mut Served) -> End {
    let Some(place) = take_place((s.id, s.peer), &mut s.session, &s.echoes, &s.outlet) else {
        return shut_down(&s.outlet);
    };
    s.session.join_from_url();
    let mut ctx = context(std::mem::take(&mut s.early), s.session.message_limit());
    let end = read_loop(&s.outlet, &mut ctx, &mut s.session);
    // The room hears of the leave before any lingering below.
    s.session.disconnect();
    drop(place);
    end
}

/// What a connection's reader keeps while the connection lives, on the
/// heap: made straight from the handshake's `Connection`, which is never
/// boxed itself, because a chunk a connection's thread frees stays in its
/// malloc cache while it idles (see "Limits" in docs/ARCHITECTURE.md).
pub struct Served {
    id: ClientId,
    peer: SocketAddr,
    outlet: Arc<Outlet>,
    session: Box<Session>,
    /// Bytes the client sent after its request head, until the reading
    /// starts.
    early: Vec<u8>,
    echoes: EchoClients,
    open: crate::metrics::OpenConnection,
    /// Dropped last (fields drop in order): the connection no longer
    /// counts once everything else of it is gone.
    _ticket: Ticket,
}

/// Sets the socket up and makes the client's outlet; `None` if the socket
/// cannot be set up. Out of line, as the outlet it makes, so that the
/// handshake's frames stay small.
#[inline(never)]
pub fn open(connection: Connection) -> Option<Box<Served>> {
    let c = &connection;
    let echo = c.session.kind == Kind::Echo;
    if let Err(e) = configure(&c.sock, &c.config, echo) {
        log::warn!(
            "event=socket_setup_failed client={} peer={} error={:?}",
            c.id,
            crate::proto::addr::show_peer(c.peer),
            e.to_string()
        );
        return None;
    }
    Some(served(connection))
}

/// Moves what the reader keeps out of the connection, beside its outlet.
#[inline(never)]
fn served(connection: Connection) -> Box<Served> {
    let Connection {
        id,
        peer,
        sock,
        early,
        session,
        config,
        echoes,
        writers,
        budget,
        ticket,
    } = connection;
    let bounds = Bounds {
        frames: config.queue_frames.max(1),
        bytes: config.queue_bytes,
        write_timeout: config.write_timeout,
        share: budget.outbound.clone(),
    };
    let outlet = Outlet::new(id, sock, bounds, writers);
    let open = crate::metrics::get().connection(session.kind.metric());
    Box::new(Served {
        id,
        peer,
        outlet,
        session,
        early,
        echoes,
        open,
        _ticket: ticket,
    })
}

/// The client's session, on the heap: it is the reader's largest value.
/// The endpoint's query moves into it (the reader keeps no copy). Made
/// out of line and beside [`open`], not under it: the handshake's frames
/// must stay small.
#[inline(never)]
#[allow(
    clippy::boxed_local,
    reason = "boxed by the handshake, so that its frames do not hold the endpoint"
)]
pub fn new_session(
    id: ClientId,
    endpoint: Box<Endpoint>,
    config: &Arc<Config>,
    hubs: Hubs,
    budget: &Budget,
    redis: Option<Arc<crate::history::redis::Status>>,
) -> Box<Session> {
    Box::new(Session::new(
        id,
        *endpoint,
        config,
        hubs,
        budget.incoming.clone(),
        redis,
    ))
}

/// tungstenite's state for the connection, on the heap.
#[inline(never)]
fn context(early: Vec<u8>, limit: usize) -> Box<WebSocketContext> {
    Box::new(WebSocketContext::from_partially_read(
        early,
        Role::Server,
        Some(ws_config(limit)),
    ))
}

/// Closes a connection that came as the server is shutting down.
#[inline(never)]
fn shut_down(outlet: &Arc<Outlet>) -> End {
    let close = Close::shutdown();
    outlet.close(&close);
    End::ClosedByUs(close)
}

/// Ends the connection: lets the peer read our close, waits for our answer
/// to its close to go out, and logs the end.
#[inline(never)]
fn finish(mut served: Box<Served>, end: End) {
    let outlet = &served.outlet;
    // No point waiting for the answer of a peer gone silent, nor
    // while the server goes down.
    if let End::ClosedByUs(close) = &end
        && close.code() != CloseCode::Away
        && !close.is_shutdown()
    {
        // Let the peer read our close frame and close its side first,
        // so the close is not lost to a TCP reset.
        linger(outlet.socket());
    }
    // Our answer to the peer's close may still wait behind a backlog.
    if let End::Closed = end {
        outlet.wait_for_close(CLOSE_TIMEOUT);
    }
    outlet.end();
    let end = match (end, outlet.failure()) {
        (End::Reset(_), Some(failure)) => End::Reset(failure),
        (end, _) => end,
    };
    let abuse = matches!(&end, End::ClosedByUs(close) if close.is_abuse());
    let close = end.close(served.session.peer_close.take().map(|close| *close));
    let duration = served.open.elapsed();
    log_end(
        served.id,
        served.peer,
        &served.session,
        close,
        abuse,
        duration,
    );
}

/// Makes the client known to whoever closes it at shutdown: its room's hub
/// for a chat-room client (the session keeps that place), the server for an
/// echo client. `None` when the server is already shutting down. Out of
/// line, like the other steps: the hub's channel send is among the deepest
/// calls a connection makes.
#[inline(never)]
fn take_place(
    (id, peer): (ClientId, SocketAddr),
    session: &mut Session,
    echoes: &EchoClients,
    outlet: &Arc<Outlet>,
) -> Option<Place> {
    Some(match session.kind {
        Kind::Room(_) => {
            session.connect(peer, outlet).ok()?;
            Place { _echo: None }
        }
        Kind::Echo => Place {
            _echo: Some(echoes.register(id, outlet)?),
        },
    })
}

/// An echo client's place with the server, which closes it at shutdown,
/// given up when dropped.
struct Place {
    _echo: Option<EchoPlace>,
}

fn configure(sock: &TcpStream, config: &Config, echo: bool) -> io::Result<()> {
    sock.set_nodelay(true)?;
    // A peer that sends nothing, not even a pong, for two ping intervals is
    // gone: this read timeout is the heartbeat's deadline, not a poll. An
    // echo client's reader pings it after one silent interval, itself.
    let timeout = match echo {
        true => config.ping_interval,
        false => config.idle_timeout(),
    };
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(config.write_timeout))
}

fn ws_config(limit: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// Counts and logs a connection's end.
// Out of line, like `read_loop`: a connection's thread keeps every stack page
// it ever touched, so what runs beside the reading must not widen its frame.
#[inline(never)]
fn log_end(
    id: ClientId,
    peer: SocketAddr,
    session: &Session,
    (code, reason): (u16, String),
    abuse: bool,
    duration: std::time::Duration,
) {
    crate::metrics::get().disconnect(code);
    let peer = crate::proto::addr::show_peer(peer);
    log::info!(
        "event=disconnect client={id} peer={peer} mode={} code={code} reason={reason:?} duration={:.3}s held={:.3}s{}",
        crate::metrics::mode_label(session.kind.metric()),
        duration.as_secs_f64(),
        session.held.as_secs_f64(),
        if abuse { " abuse=true" } else { "" },
    );
}

/// Reads messages until the connection ends; hands each to the session.
#[inline(never)]
fn read_loop(outlet: &Arc<Outlet>, ctx: &mut WebSocketContext, session: &mut Session) -> End {
    let text = match session.kind {
        Kind::Echo => session.config.max_frame_size(),
        Kind::Room(_) => session.config.max_message_size,
    };
    let incoming = Incoming::new(incoming::ReadLimits {
        text: text as u64,
        message: session.config.max_frame_size() as u64,
        min_rate: session.config.min_upload_rate as u64,
        share: session.incoming.clone(),
    });
    let mut stream = ReplyStream {
        outlet,
        incoming,
        heard: false,
    };
    let mut limit = session.message_limit();
    // Echo clients are in no room, so the dispatcher's heartbeat does not
    // reach them: their reader wakes every interval and pings them itself.
    let pings_itself = session.kind == Kind::Echo;
    let mut pinged = false;
    loop {
        let read = read_next(ctx, &mut stream);
        if stream.heard() {
            pinged = false;
        }
        let close = match read {
            // Answers to the heartbeat, the one frame an idle client sends:
            // the session has nothing to do with them, and its frame is the
            // reader's deepest (see "Limits" in docs/ARCHITECTURE.md).
            Ok(Message::Pong(_)) => continue,
            Ok(msg) => match deliver(msg, &mut stream, ctx, session, &mut limit) {
                Flow::Continue => continue,
                Flow::Close(close) => close,
                Flow::Gone => return End::Reset("connection ended".into()),
            },
            Err(WsError::Io(e)) if pings_itself && !pinged && is_timeout(&e) => {
                pinged = true;
                if outlet.send(std::iter::once(&Encoded::ping())).is_err() {
                    return End::Reset("connection ended".into());
                }
                continue;
            }
            Err(err) => match failure(err) {
                Failure::Ended(end) => return end,
                Failure::Close(close) => close,
            },
        };
        outlet.close(&close);
        return End::ClosedByUs(close);
    }
}

/// Reads the next message. Out of line, as `deliver`: this is the call an
/// idle connection's thread waits in, and the frame of the loop around it
/// lies under the whole of tungstenite's reading, so it must stay small
/// (see "Limits" in docs/ARCHITECTURE.md).
#[inline(never)]
fn read_next(ctx: &mut WebSocketContext, stream: &mut ReplyStream) -> Result<Message, WsError> {
    ctx.read(stream)
}

/// Hands a message to the session, and follows the limit on the next
/// message it sets (a v1 client's announced file may be larger).
#[inline(never)]
fn deliver(
    msg: Message,
    stream: &mut ReplyStream,
    ctx: &mut WebSocketContext,
    session: &mut Session,
    limit: &mut usize,
) -> Flow {
    let outlet = stream.outlet;
    let flow = session.on_message(stream.received(msg), stream.incoming.held(), outlet);
    if let Flow::Continue = flow {
        let wanted = session.message_limit();
        if wanted != *limit {
            ctx.set_config(|c| {
                c.max_message_size = Some(wanted);
                c.max_frame_size = Some(wanted);
            });
            *limit = wanted;
        }
    }
    flow
}

/// What a read error means: how the connection ended, or the close to send.
enum Failure {
    Ended(End),
    Close(Close),
}

/// Maps a read error to what the peer is told.
fn failure(err: WsError) -> Failure {
    match err {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Failure::Ended(End::Closed),
        WsError::Io(e) if is_timeout(&e) => Failure::Close(Close::going_away("ping timeout")),
        WsError::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<Refused>()) => {
            let refused = e
                .into_inner()
                .and_then(|inner| inner.downcast::<Refused>().ok())
                .map_or(Refused::Busy, |r| *r);
            Failure::Close(refused.close())
        }
        WsError::Io(e) => Failure::Ended(End::Reset(e.to_string())),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Failure::Ended(End::Reset("no close frame".into()))
        }
        WsError::Protocol(ProtocolError::InvalidCloseSequence) => {
            Failure::Close(Close::protocol("invalid close sequence"))
        }
        WsError::Protocol(p) => Failure::Close(Close::protocol(p.to_string())),
        WsError::Utf8(_) => Failure::Close(Close::invalid_data("invalid UTF-8")),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Failure::Close(Close::too_big("message too big"))
        }
        WsError::Capacity(c) => Failure::Close(Close::too_big(c.to_string())),
        other => {
            log::error!("unexpected read error: {other}");
            Failure::Close(Close::internal())
        }
    }
}

/// Whether a read ended because the socket's read timeout passed.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Discards what the peer still sends until it closes its side or the close
/// timeout passes, so our close frame is not lost to a TCP reset.
fn linger(sock: &TcpStream) {
    if sock.set_read_timeout(Some(CLOSE_TIMEOUT)).is_err() {
        return;
    }
    // On the heap: a stack array here would cost every connection a page
    // of stack for as long as it lives, lingering or not.
    let mut sink = vec![0u8; 4096];
    let mut sock = sock;
    while let Ok(n) = sock.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// The stream tungstenite reads from and writes its replies to: reads come
/// from the socket, writes go to the client's outlet as whole frames.
struct ReplyStream<'a> {
    outlet: &'a Arc<Outlet>,
    /// Stops, from its header, what must not be buffered (see `incoming`).
    incoming: Incoming,
    /// Bytes arrived since the reader last looked (see `heard`).
    heard: bool,
}

impl ReplyStream<'_> {
    /// A message tungstenite has read whole: a data message no longer
    /// counts as incoming.
    fn received(&mut self, msg: Message) -> Message {
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            self.incoming.message_done();
        }
        msg
    }

    /// Whether the peer sent anything since the last call.
    fn heard(&mut self) -> bool {
        std::mem::take(&mut self.heard)
    }
}

impl Read for ReplyStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Only waiting in the middle of a message counts against the
        // client's upload rate.
        let started = self.incoming.in_progress().then(Instant::now);
        let n = loop {
            match self.outlet.socket().read(buf) {
                // A signal (a profiler attaching, say) is no reason to drop a client.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        crate::metrics::get().bytes_received(n);
        self.heard |= n > 0;
        let waited = started.map_or(Duration::ZERO, |t| t.elapsed());
        self.incoming
            .observe(&buf[..n], waited)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}

impl Write for ReplyStream<'_> {
    /// tungstenite writes out its whole buffer of encoded replies in one call
    /// (it never holds more than one reply), so each call is whole frames.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outlet
            .reply(&Encoded::from_wire(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection has ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
