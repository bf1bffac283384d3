//! The writer thread: the only code that writes to a connection's socket.
//!
//! Frames reach it from two queues (see `queue`): the room queue, filled by
//! the dispatcher, and the own queue, filled by the connection's reader with
//! tungstenite's pong and close replies, echoes and errors. Because every
//! byte goes through this one thread, a reply can never be interleaved with
//! a frame that is half written. It also sends the heartbeat pings.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, after, never, select, tick};

use crate::queue::{Inbox, Own, RoomItem};
use crate::wire::Encoded;

/// How long the writer waits for the peer to answer a close frame it sent
/// before it drops the connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Frames taken from a queue before the buffered bytes are flushed.
const BATCH: usize = 64;

/// Small frames are gathered up to this many bytes before a write; larger
/// frames are written straight from their shared buffer.
const BUFFER: usize = 16 * 1024;

/// How a writer thread ended.
#[derive(Debug)]
pub enum WriterEnd {
    /// The reader finished (close handshake, EOF or error).
    ReaderDone,
    /// The peer did not answer our close frame in time.
    CloseTimeout,
    /// Writing failed or could not progress for the write timeout.
    Io(io::Error),
}

pub struct Writer {
    pub sock: Arc<TcpStream>,
    pub own: Receiver<Own>,
    pub room: Inbox,
    pub ping_interval: Duration,
    /// Longest time one flush to the socket may take, however many bytes
    /// trickle out meanwhile.
    pub write_timeout: Duration,
}

impl Writer {
    /// Runs until the connection ends, then shuts the socket down in both
    /// directions, which also wakes the reader if it is still blocked.
    pub fn run(self) -> WriterEnd {
        let sock = self.sock.clone();
        let end = self.pump();
        // Fails only if the socket is already gone, which is the goal anyway.
        let _ = sock.shutdown(Shutdown::Both);
        end
    }

    fn pump(self) -> WriterEnd {
        let mut out = Output {
            sock: &self.sock,
            buf: Vec::new(),
            closing: false,
            timeout: self.write_timeout,
        };
        let mut room = self.room.rx.clone();
        let ticker = tick(self.ping_interval);
        let mut close_deadline = never();
        let mut close_armed = false;
        let ping = Encoded::ping();

        loop {
            let step: io::Result<()> = select! {
                recv(self.own) -> msg => match msg {
                    Ok(Own::Frame(f)) => out.write(&f).and_then(|_| out.flush()),
                    Ok(Own::Close(code, reason)) => {
                        out.write(&Encoded::close(code, &reason)).and_then(|_| out.flush())
                    }
                    Err(_) => {
                        // The reader is done. Whatever is queued for a peer
                        // that has finished reading is of no use.
                        let _ = out.flush();
                        return WriterEnd::ReaderDone;
                    }
                },
                recv(room) -> item => match item {
                    Ok(item) => self.write_room_batch(&mut out, item),
                    // The dispatcher dropped us without a close: it has
                    // already handled our leave; wait for the reader.
                    Err(_) => { room = never(); Ok(()) }
                },
                recv(ticker) -> _ => if out.closing { Ok(()) } else {
                    out.write(&ping).and_then(|_| out.flush())
                },
                recv(close_deadline) -> _ => return WriterEnd::CloseTimeout,
            };
            if let Err(e) = step {
                return WriterEnd::Io(e);
            }
            if out.closing && !close_armed {
                close_deadline = after(CLOSE_TIMEOUT);
                close_armed = true;
            }
        }
    }

    /// Writes `first` and whatever else is already queued (up to a batch),
    /// then flushes once: fewer system calls when the room is busy.
    fn write_room_batch(&self, out: &mut Output, first: RoomItem) -> io::Result<()> {
        let inbox = &self.room;
        let mut item = Some(first);
        let mut taken = 0;
        while let Some(next) = item.take() {
            match next {
                RoomItem::Frame(f) => {
                    let result = out.write(&f);
                    inbox.sent(&f);
                    result?;
                }
                RoomItem::Close(code, reason) => out.write(&Encoded::close(code, reason))?,
            }
            taken += 1;
            if taken < BATCH {
                item = inbox.rx.try_recv().ok();
            }
        }
        out.flush()
    }
}

/// The socket's buffered output and whether a close frame has gone out.
struct Output<'a> {
    sock: &'a TcpStream,
    buf: Vec<u8>,
    /// After a close frame nothing more may be sent (RFC 6455 §5.5.1).
    closing: bool,
    timeout: Duration,
}

impl Output<'_> {
    fn write(&mut self, frame: &Encoded) -> io::Result<()> {
        if self.closing {
            return Ok(());
        }
        self.closing = frame.is_close();
        if self.buf.len() + frame.len() <= BUFFER {
            self.buf.extend_from_slice(frame.as_bytes());
            return Ok(());
        }
        self.flush()?;
        if frame.len() <= BUFFER {
            self.buf.extend_from_slice(frame.as_bytes());
            Ok(())
        } else {
            self.write_by_deadline(frame.as_bytes())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_by_deadline(&buf);
        self.buf = buf;
        self.buf.clear();
        result
    }

    /// Writes all of `bytes` within the write timeout. The socket's own
    /// send timeout restarts whenever a few bytes get through, so a peer
    /// that reads a trickle could hold a writer for ever; the deadline
    /// covers the whole write instead.
    fn write_by_deadline(&self, mut bytes: &[u8]) -> io::Result<()> {
        crate::metrics::get().sent(bytes.len());
        let deadline = Instant::now() + self.timeout;
        let mut shortened = false;
        while !bytes.is_empty() {
            match (&*self.sock).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
                }
                Err(e) => return Err(e),
            }
            if !bytes.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
                }
                self.sock.set_write_timeout(Some(left))?;
                shortened = true;
            }
        }
        if shortened {
            // Restore the full timeout for the next write.
            self.sock.set_write_timeout(Some(self.timeout))?;
        }
        Ok(())
    }
}
