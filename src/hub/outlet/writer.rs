//! The backlog writer: a thread that exists only while one client has frames
//! its socket could not take at once (see `outlet.rs`).
//!
//! It writes the backlog oldest first with blocking writes, each batch
//! within `--write-timeout` in total, and ends as soon as the backlog is
//! empty. A client that cannot take a batch in that time is dropped: the
//! writer shuts its socket down, which wakes its reader, which leaves the
//! room. Idle clients and clients that keep up never have a writer.

use crate::logs as log;

use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::hub::outlet::{self, Outlet};
use crate::proto::wire::Encoded;

/// Stack size of a backlog writer: it only copies slices to the kernel.
const WRITER_STACK: usize = 64 * 1024;

/// Frames written per blocking `sendmsg` batch.
const BATCH: usize = 64;

/// How many backlog writers may run at once: the threads the machine has
/// left beyond one per connection (see `capacity.rs`). Shared by every
/// connection as a plain atomic count, never a lock.
///
/// A writer owns nothing of its own: it borrows its client's [`Outlet`],
/// takes batches from the backlog under the outlet's lock and writes them
/// without it, so that only its own client waits on its blocking writes.
/// [`start`] is its only way in, called by the outlet when a backlog
/// begins; it ends when the backlog is empty or a write fails.
#[derive(Debug)]
pub struct Writers {
    running: AtomicUsize,
    max: usize,
}

impl Writers {
    /// A count that lets `max` writers run at once.
    pub fn new(max: usize) -> Arc<Writers> {
        Arc::new(Writers {
            running: AtomicUsize::new(0),
            max,
        })
    }

    fn acquire(self: &Arc<Self>) -> Option<Slot> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// A running writer's place in the count, given back on drop.
struct Slot(Arc<Writers>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts a backlog writer for `outlet`. Fails when the machine has no
/// thread to spare; the caller then drops the client.
pub(crate) fn start(outlet: Arc<Outlet>, writers: &Arc<Writers>) -> io::Result<()> {
    let Some(slot) = writers.acquire() else {
        return Err(io::Error::other("too many backlog writers"));
    };
    thread::Builder::new()
        .name(format!("writer-{}", outlet.id))
        .stack_size(WRITER_STACK)
        .spawn(move || {
            let _slot = slot;
            drain(&outlet);
        })
        .map(drop)
}

fn drain(outlet: &Outlet) {
    while let Some((frames, offset)) = outlet.next_batch(BATCH) {
        match by_deadline(outlet.socket(), &frames, offset, outlet.write_timeout()) {
            Ok(()) => outlet.written(frames.len()),
            Err(e) => {
                log::debug!("client {}: backlog write failed: {e}", outlet.id);
                outlet.write_failed(&e);
                return;
            }
        }
    }
}

/// Writes `frames`, the first from byte `offset`, within `timeout` in total.
/// The socket's own send timeout restarts whenever a few bytes get through,
/// so a peer that reads a trickle could hold a writer for ever; the deadline
/// covers the whole batch instead.
fn by_deadline(
    sock: &TcpStream,
    frames: &[Encoded],
    mut offset: usize,
    timeout: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut first = 0;
    let mut slices = Vec::with_capacity(frames.len());
    loop {
        while first < frames.len() && offset >= frames[first].len() {
            offset -= frames[first].len();
            first += 1;
        }
        if first == frames.len() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        sock.set_write_timeout(Some(left))?;
        slices.clear();
        slices.push(IoSlice::new(&frames[first].as_bytes()[offset..]));
        slices.extend(
            frames[first + 1..]
                .iter()
                .map(|f| IoSlice::new(f.as_bytes())),
        );
        match outlet::send_vectored(sock, &slices, outlet::BLOCKING) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                crate::metrics::get().sent(n);
                offset += n
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(timed_out()),
            Err(e) => return Err(e),
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "write timed out")
}
