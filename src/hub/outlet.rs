//! The write side of one connection: every byte sent to a client goes
//! through its `Outlet`.
//!
//! Three parties write to a client: the dispatcher (frames fanned out to the
//! room, heartbeat pings, closes), the connection's reader (tungstenite's
//! pong and close replies, echoes, v1 errors) and, while the client is
//! behind, its backlog writer (`writer.rs`). They share the socket's one
//! `Outlet`, whose lock guards this socket only, is held for a non-blocking
//! send or some bookkeeping, and never across a blocking call.
//!
//! Most of the time the socket's send buffer has room, and a sender writes
//! its frames straight into it with one non-blocking vectored `sendmsg`: no
//! other thread wakes up. When the kernel takes only part, the rest becomes
//! the client's *backlog*, and a writer thread is started to drain it with
//! blocking writes; it ends when the backlog is empty. While a backlog
//! exists, every new frame joins its tail. So a client receives frames in the
//! order they were sent, and a reply never lands inside a half-written frame.

use crate::logs as log;

use std::collections::VecDeque;
use std::ffi::c_int;
use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::limits::budget::Share;
use crate::proto::close::Close;
use crate::proto::wire::Encoded;
use writer::Writers;

pub(crate) mod writer;

/// Identifies a connection for its whole life; never reused.
pub type ClientId = u64;

/// How long a peer has to answer our close frame before its socket is shut.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A reader that has a reply to send (an echo, a pong, an error) waits while
/// its client's backlog holds more than this: the pressure falls on the
/// client that does not read, and on no one else.
const REPLY_BACKLOG: usize = 256 * 1024;

/// Most buffers one `sendmsg` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// `send` flags for the backlog writer, which blocks (up to its deadline):
/// a closed peer gives `EPIPE`, not `SIGPIPE`.
pub(crate) const BLOCKING: c_int = libc::MSG_NOSIGNAL;
/// `send` flags for everyone else, who never waits.
const DONTWAIT: c_int = libc::MSG_DONTWAIT | BLOCKING;

/// What the memory budget charges a backlog entry beyond its frame's bytes.
const ENTRY: usize = std::mem::size_of::<Encoded>();

/// How much one client may have waiting in its backlog, and how long a
/// blocked write may last.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub frames: usize,
    pub bytes: usize,
    pub write_timeout: Duration,
    /// The budget's outbound share, which every backlog draws on.
    pub share: Arc<Share>,
}

/// The backlog has no room for a frame: the client is too slow.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// The connection is over; nothing more can be sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Gone;

/// One client's socket and what is waiting to be written to it: the only
/// way bytes reach that client.
///
/// It owns the socket (the reader only reads from it, through
/// [`Outlet::socket`]) and the backlog, and is shared as an `Arc` by these
/// and no one else: the dispatcher ([`Outlet::send`], closes, and the end
/// of a client that does not answer one), the client's reader
/// ([`Outlet::reply`], closes, [`Outlet::end`]), while the backlog is not
/// empty its backlog writer (`writer.rs`), and at shutdown the server,
/// which closes echo clients and ends whoever is left. Its lock
/// guards this client only, is held for a non-blocking send or some
/// bookkeeping, never across a blocking call, and never together with
/// another client's.
#[derive(Debug)]
pub struct Outlet {
    pub id: ClientId,
    sock: TcpStream,
    state: Mutex<State>,
    /// Signalled whenever the backlog shrinks or the connection ends.
    drained: Condvar,
    bounds: Bounds,
    writers: Arc<Writers>,
    /// Its hub has seated the client in a room. The reader reads it to send
    /// a second `join` to that hub, which refuses it, rather than move the
    /// client to another hub (see `hub::hubs::Link`).
    seated: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Frames not yet (completely) written, oldest first.
    backlog: VecDeque<Encoded>,
    /// Bytes of the backlog's first frame already written.
    offset: usize,
    /// Frames at the front of the backlog that the backlog writer has taken
    /// and is writing: they stay until it says they are written.
    in_flight: usize,
    /// Sum of the lengths of the frames in the backlog.
    backlog_bytes: usize,
    /// A backlog writer thread is running for this socket. Whenever the
    /// backlog is not empty, one is (or the connection is gone).
    writer: bool,
    /// A close frame has been queued: nothing may follow it (RFC 6455 §5.5.1).
    closing: bool,
    /// The connection is over: a write failed or timed out, or the reader
    /// finished. Everything sent from now on is dropped.
    gone: bool,
    /// Why writing failed, for the disconnect log line.
    failure: Option<String>,
}

impl Outlet {
    pub fn new(
        id: ClientId,
        sock: TcpStream,
        bounds: Bounds,
        writers: Arc<Writers>,
    ) -> Arc<Outlet> {
        Arc::new(Outlet {
            id,
            sock,
            state: Mutex::new(State::default()),
            drained: Condvar::new(),
            bounds,
            writers,
            seated: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Its hub seated the client in a room.
    pub fn mark_seated(&self) {
        self.seated
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether its hub has seated the client in a room.
    pub fn is_seated(&self) -> bool {
        self.seated.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The socket, for the reader (which only reads from it).
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Sends frames from the dispatcher: written at once as far as the
    /// socket takes them, the rest queued within the client's bounds. `Full`
    /// means the client is too slow: frames that did not fit were not
    /// queued, and the caller closes the client.
    pub fn send<'a, I>(self: &Arc<Self>, frames: I) -> Result<(), Full>
    where
        I: Iterator<Item = &'a Encoded> + Clone,
    {
        let mut state = self.lock();
        let result = self.offer(&mut state, frames, true);
        crate::metrics::get().queue_depth(state.backlog.len());
        result
    }

    /// Sends a frame from the connection's reader, which first waits while
    /// the client has a large backlog. Never refused for size: the wait is
    /// the bound.
    pub fn reply(self: &Arc<Self>, frame: &Encoded) -> Result<(), Gone> {
        let mut state = self.lock();
        while state.backlog_bytes > REPLY_BACKLOG && !state.gone {
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.gone {
            return Err(Gone);
        }
        let _ = self.offer(&mut state, std::iter::once(frame), false);
        Ok(())
    }

    /// Queues a close frame after everything already queued. Always fits.
    pub fn close(self: &Arc<Self>, close: &Close) {
        let frame = Encoded::close(close);
        let mut state = self.lock();
        let _ = self.offer(&mut state, std::iter::once(&frame), false);
    }

    /// Drops what is queued for a client being evicted for falling behind,
    /// so that its close goes out next and its memory is free at once. A
    /// frame already partly written, and the frames the backlog writer is
    /// writing, stay, to keep the stream whole.
    pub fn discard_backlog(&self) {
        let mut state = self.lock();
        // The frames the backlog writer is writing go out whole, like one
        // begun by the dispatcher; the close then follows them.
        let keep = state
            .in_flight
            .max(usize::from(state.offset > 0))
            .min(state.backlog.len());
        let dropped: usize = state.backlog.iter().skip(keep).map(Encoded::len).sum();
        self.release(state.backlog.iter().skip(keep));
        state.backlog.truncate(keep);
        state.backlog_bytes -= dropped;
    }

    /// Waits, up to `timeout`, until a queued close frame has been written
    /// by the backlog writer. Without this, a close reply queued behind a
    /// backlog would be dropped by `end` and the peer would see its close
    /// answered by a reset.
    pub fn wait_for_close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.closing && state.writer && !state.gone {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = match self.drained.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Ends the connection's output: drops the backlog and shuts the socket
    /// down in both directions, which wakes a reader blocked in `read` and
    /// a writer blocked in `send`.
    pub fn end(&self) {
        let mut state = self.lock();
        self.stop(&mut state);
    }

    /// Why writing to this client failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// Writes what the socket takes now and queues the rest. With `bounded`,
    /// whole frames beyond the client's bounds are refused with `Full`; a
    /// frame already partly written is always queued, so that the stream of
    /// frames stays whole.
    fn offer<'a, I>(
        self: &Arc<Self>,
        state: &mut State,
        frames: I,
        bounded: bool,
    ) -> Result<(), Full>
    where
        I: Iterator<Item = &'a Encoded> + Clone,
    {
        if state.gone || state.closing {
            // Nothing may follow a close; a gone client's reader is leaving.
            return Ok(());
        }
        let mut written = 0;
        if state.backlog.is_empty() && !state.writer {
            match send_now(&self.sock, frames.clone()) {
                Ok(n) => written = n,
                Err(e) => {
                    self.fail(state, format!("write failed: {e}"));
                    return Ok(());
                }
            }
        }
        let mut result = Ok(());
        let mut delivered = 0;
        for frame in frames {
            delivered += 1;
            state.closing |= frame.is_close();
            if written >= frame.len() {
                written -= frame.len();
                continue;
            }
            let partly_written = written > 0;
            if bounded && !partly_written {
                if !self.fits(state, frame) {
                    delivered -= 1;
                    result = Err(Full);
                    break;
                }
            } else {
                self.force(frame);
            }
            if state.backlog.is_empty() {
                state.offset = written;
            }
            written = 0;
            state.backlog_bytes += frame.len();
            state.backlog.push_back(frame.clone());
        }
        if !state.backlog.is_empty() && !state.writer {
            self.start_writer(state);
        }
        if bounded {
            // Deliveries are what rooms send; replies are the reader's own.
            crate::metrics::get().delivered(delivered);
        }
        result
    }

    /// Whether a frame may join the backlog: within the client's own
    /// bounds, and within the outbound share, which is charged if so.
    fn fits(&self, state: &State, frame: &Encoded) -> bool {
        if state.backlog.len() >= self.bounds.frames
            || state.backlog_bytes + frame.len() > self.bounds.bytes
        {
            return false;
        }
        if self.bounds.share.try_take(charge(frame, frame.queued())) {
            return true;
        }
        // Not queued after all; nobody else was charged for the frame.
        frame.unqueued();
        log::warn!(
            "event=budget_full share=outbound client={} bytes={} msg=\"no room to queue a frame; the client is behind\"",
            self.id,
            frame.len()
        );
        false
    }

    /// Charges the outbound share for a frame that must be queued whatever
    /// the limit: the rest of a frame already partly written (the stream
    /// must stay whole), a close frame, or a reader's reply (the reader
    /// waited for its client's backlog to shrink first).
    fn force(&self, frame: &Encoded) {
        self.bounds.share.take_anyway(charge(frame, frame.queued()));
    }

    /// Gives back what frames leaving the backlog were charged.
    fn release<'a>(&self, frames: impl Iterator<Item = &'a Encoded>) {
        let freed: usize = frames.map(|f| charge(f, f.unqueued())).sum();
        self.bounds.share.give(freed);
    }

    fn start_writer(self: &Arc<Self>, state: &mut State) {
        match writer::start(self.clone(), &self.writers) {
            Ok(()) => state.writer = true,
            Err(e) => {
                log::warn!("client {}: cannot start a backlog writer: {e}", self.id);
                self.fail(state, format!("no writer: {e}"));
            }
        }
    }

    fn fail(&self, state: &mut State, why: String) {
        state.failure.get_or_insert(why);
        self.stop(state);
    }

    /// The connection is over: everything waiting is dropped, waiters are
    /// woken, and the socket is shut down.
    fn stop(&self, state: &mut State) {
        state.gone = true;
        self.release(state.backlog.iter());
        state.backlog.clear();
        state.backlog_bytes = 0;
        self.drained.notify_all();
        // Fails only if the socket is already shut, which is the goal anyway.
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain bookkeeping behind;
        // the worst outcome is one client's broken stream, never a stuck server.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // The backlog writer's side (see `writer.rs`).

    /// The next frames for the backlog writer to write, with the bytes of
    /// the first one already written; `None` when the backlog is empty or the
    /// connection is gone, and the writer must end (it is then no longer
    /// counted as running).
    pub(crate) fn next_batch(&self, most: usize) -> Option<(Vec<Encoded>, usize)> {
        let mut state = self.lock();
        if state.gone || state.backlog.is_empty() {
            state.writer = false;
            drop(state);
            self.drained.notify_all();
            return None;
        }
        let batch: Vec<Encoded> = state.backlog.iter().take(most).cloned().collect();
        state.in_flight = batch.len();
        Some((batch, state.offset))
    }

    /// The backlog writer wrote the first `frames` frames of the backlog.
    pub(crate) fn written(&self, frames: usize) {
        let mut state = self.lock();
        if state.gone {
            return;
        }
        let freed: usize = state.backlog.iter().take(frames).map(Encoded::len).sum();
        state.backlog_bytes -= freed;
        self.release(state.backlog.iter().take(frames));
        state.backlog.drain(..frames);
        state.offset = 0;
        state.in_flight = 0;
        drop(state);
        self.drained.notify_all();
    }

    /// The backlog writer could not write: the connection is over.
    pub(crate) fn write_failed(&self, error: &io::Error) {
        let mut state = self.lock();
        state.writer = false;
        self.fail(&mut state, format!("write failed: {error}"));
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        self.bounds.write_timeout
    }
}

/// What the outbound share is charged for one backlog entry: the entry, and
/// the frame's bytes if this backlog is the first to hold them (`first`)
/// or the last to let go.
fn charge(frame: &Encoded, first: bool) -> usize {
    ENTRY + if first { frame.len() } else { 0 }
}

/// Writes as much of `frames` as the socket takes without waiting; returns
/// the number of bytes written.
fn send_now<'a>(sock: &TcpStream, frames: impl Iterator<Item = &'a Encoded>) -> io::Result<usize> {
    let mut slices: Vec<IoSlice<'a>> = Vec::new();
    let mut total = 0;
    let mut frames = frames.peekable();
    while frames.peek().is_some() {
        slices.clear();
        slices.extend(
            frames
                .by_ref()
                .take(IOV_MAX)
                .map(|f| IoSlice::new(f.as_bytes())),
        );
        let wanted: usize = slices.iter().map(|s| s.len()).sum();
        let n = match send_vectored(sock, &slices, DONTWAIT) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        total += n;
        crate::metrics::get().sent(n);
        if n < wanted {
            break;
        }
    }
    Ok(total)
}

/// One `sendmsg` with `flags`, retried when a signal interrupts it.
pub(crate) fn send_vectored(
    sock: &TcpStream,
    slices: &[IoSlice],
    flags: c_int,
) -> io::Result<usize> {
    loop {
        match SockRef::from(sock).send_vectored_with_flags(slices, flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests;
