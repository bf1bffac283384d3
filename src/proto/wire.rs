//! Encoding server frames into bytes once, so that one buffer can be written
//! to every receiver: server frames are never masked, so the bytes are the
//! same for all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tungstenite::Bytes;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::proto::close::Close;

/// A complete, encoded WebSocket frame, cheap to clone and share between
/// the clients of a room and their backlogs.
///
/// Clones share one buffer and one count of the backlogs that hold the
/// frame, so that the memory budget charges a frame queued to a whole room
/// once (see `outlet.rs`).
#[derive(Clone, Debug)]
pub struct Encoded(Bytes, Arc<AtomicUsize>);

impl Encoded {
    pub fn text(payload: impl Into<Bytes>) -> Encoded {
        encode(Frame::message(payload, OpCode::Data(Data::Text), true))
    }

    pub fn binary(payload: impl Into<Bytes>) -> Encoded {
        encode(Frame::message(payload, OpCode::Data(Data::Binary), true))
    }

    pub fn ping() -> Encoded {
        encode(Frame::ping(Bytes::new()))
    }

    pub fn close(close: &Close) -> Encoded {
        encode(Frame::close(Some(CloseFrame {
            code: close.code(),
            reason: close.reason().to_owned().into(),
        })))
    }

    /// Bytes already encoded elsewhere (by tungstenite's own replies).
    pub fn from_wire(bytes: &[u8]) -> Encoded {
        Encoded(Bytes::copy_from_slice(bytes), Arc::default())
    }

    /// A backlog now holds this frame; true if it is the first.
    pub fn queued(&self) -> bool {
        self.1.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// A backlog let go of this frame; true if it was the last.
    pub fn unqueued(&self) -> bool {
        self.1.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Whether this is a close frame, after which nothing may be sent.
    pub fn is_close(&self) -> bool {
        self.0.first().is_some_and(|b| b & 0x0F == 0x8)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

fn encode(frame: Frame) -> Encoded {
    let mut out = Vec::with_capacity(frame.len());
    frame
        .format(&mut out)
        .expect("formatting into a Vec cannot fail");
    Encoded(out.into(), Arc::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_text_frame_layout() {
        let f = Encoded::text("hi");
        assert_eq!(f.as_bytes(), &[0x81, 0x02, b'h', b'i']);
    }

    #[test]
    fn close_frame_carries_code_and_reason() {
        let f = Encoded::close(&Close::policy("too slow"));
        assert_eq!(&f.as_bytes()[..4], &[0x88, 10, 0x03, 0xF0]);
        assert_eq!(&f.as_bytes()[4..], b"too slow");
    }
}
