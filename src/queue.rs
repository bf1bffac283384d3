//! The channels that feed a connection's writer thread.
//!
//! A writer has two inputs. The *room queue* is filled by the dispatcher with
//! frames fanned out to the room; it is bounded in frames and in bytes, and
//! the dispatcher never blocks on it. The *own queue* is filled by the
//! connection's reader with tungstenite's pong and close replies, echoes and
//! error frames; the reader may block on it, which only slows its own peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::wire::Encoded;

/// An item of a room queue.
#[derive(Debug)]
pub enum RoomItem {
    Frame(Encoded),
    /// Close the connection with this code and reason after the frames
    /// queued before it.
    Close(u16, &'static str),
}

/// The dispatcher's end of one client's room queue.
#[derive(Debug)]
pub struct Outbox {
    tx: Sender<RoomItem>,
    queued_bytes: Arc<AtomicUsize>,
    max_frames: usize,
    max_bytes: usize,
}

/// The writer's end of one client's room queue.
#[derive(Debug)]
pub struct Inbox {
    pub rx: Receiver<RoomItem>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The room queue has no room for a frame: the client is too slow.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// Creates a room queue holding at most `max_frames` frames and `max_bytes`
/// bytes of frames.
pub fn room_queue(max_frames: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let max_frames = max_frames.max(1);
    // The bound is enforced by `push`, not by the channel: a bounded channel
    // allocates every slot up front, which idle clients would pay for. It
    // also lets a Close always fit after an eviction.
    let (tx, rx) = crossbeam_channel::unbounded();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            queued_bytes: queued_bytes.clone(),
            max_frames,
            max_bytes,
        },
        Inbox { rx, queued_bytes },
    )
}

impl Outbox {
    /// Queues a frame without waiting (the channel is unbounded; this is
    /// the bound). Only the dispatcher sends on this queue, so the length it
    /// checks can only shrink before the send.
    pub fn push(&self, frame: &Encoded) -> Result<(), Full> {
        let queued = self.queued_bytes.load(Ordering::Acquire);
        let depth = self.tx.len();
        if depth >= self.max_frames || queued + frame.len() > self.max_bytes {
            return Err(Full);
        }
        self.queued_bytes.fetch_add(frame.len(), Ordering::AcqRel);
        crate::metrics::get().queued(depth);
        // Fails only when the writer has gone; the reader's leave event is
        // then on its way to the dispatcher.
        let _ = self.tx.send(RoomItem::Frame(frame.clone()));
        Ok(())
    }

    /// Queues a close after everything already queued. Always fits: the
    /// frame limit binds only frames.
    pub fn close(self, code: u16, reason: &'static str) {
        // A disconnected writer needs no close.
        let _ = self.tx.send(RoomItem::Close(code, reason));
    }
}

impl Inbox {
    /// Tells the queue that `frame` has left it, making its bytes available.
    pub fn sent(&self, frame: &Encoded) {
        self.queued_bytes.fetch_sub(frame.len(), Ordering::AcqRel);
    }
}

/// An item of a connection's own queue (reader to writer).
#[derive(Debug)]
pub enum Own {
    /// A frame to write as it is: a tungstenite reply, an echo, an error event.
    Frame(Encoded),
    /// Close the connection with this code and reason.
    Close(u16, String),
}

/// Capacity of the own queue. The reader blocks when it is full, which
/// pushes back on its own peer only.
pub const OWN_QUEUE: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_by_frames_then_close_still_fits() {
        let (out, inbox) = room_queue(2, 1000);
        let f = Encoded::text("x");
        assert_eq!(out.push(&f), Ok(()));
        assert_eq!(out.push(&f), Ok(()));
        assert_eq!(out.push(&f), Err(Full));
        out.close(1008, "too slow");
        assert_eq!(inbox.rx.len(), 3);
    }

    #[test]
    fn full_by_bytes_and_freed_by_writer() {
        let (out, inbox) = room_queue(100, 10);
        let f = Encoded::text("12345"); // 7 bytes on the wire
        assert_eq!(out.push(&f), Ok(()));
        assert_eq!(out.push(&f), Err(Full));
        let RoomItem::Frame(sent) = inbox.rx.recv().unwrap() else {
            panic!()
        };
        inbox.sent(&sent);
        assert_eq!(out.push(&f), Ok(()));
    }
}
