//! The writer thread: the only code that writes to a connection's socket.
//!
//! Frames reach it from two queues (see `queue`): the room queue, filled by
//! the dispatcher, and the own queue, filled by the connection's reader with
//! tungstenite's pong and close replies, echoes and errors. Because every
//! byte goes through this one thread, a reply can never be interleaved with
//! a frame that is half written. It also sends the heartbeat pings.

use std::io::{self, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, after, never, select, tick};

use crate::queue::{Inbox, Own, RoomItem};
use crate::wire::Encoded;

/// How long the writer waits for the peer to answer a close frame it sent
/// before it drops the connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Frames taken from a queue before the buffered bytes are flushed.
const BATCH: usize = 64;

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
            buf: BufWriter::with_capacity(16 * 1024, &*self.sock),
            closing: false,
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
    buf: BufWriter<&'a TcpStream>,
    /// After a close frame nothing more may be sent (RFC 6455 §5.5.1).
    closing: bool,
}

impl Output<'_> {
    fn write(&mut self, frame: &Encoded) -> io::Result<()> {
        if self.closing {
            return Ok(());
        }
        self.buf.write_all(frame.as_bytes())?;
        self.closing = frame.is_close();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.buf.flush()
    }
}
