//! What the unit tests share: a loopback connection whose server end an
//! [`Outlet`] writes to, the frames its client end reads, and bytes that
//! differ from one offset to the next.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::hub::outlet::writer::Writers;
use crate::hub::outlet::{Bounds, Outlet};
use crate::limits::budget::Share;
use crate::proto::wire::Encoded;

/// How long a test waits for a frame before it fails (a bound on a bug,
/// not a way to wait for something).
const READ_LIMIT: Duration = Duration::from_secs(20);

/// A connected loopback pair: (server end, client end). The client end
/// fails a read that waits too long rather than hanging the test.
pub(crate) fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(READ_LIMIT)).unwrap();
    (server, client)
}

/// Bounds no test reaches unless it means to.
pub(crate) fn roomy() -> Bounds {
    Bounds {
        frames: 1 << 20,
        bytes: 1 << 30,
        write_timeout: Duration::from_secs(60),
        share: Share::new("outbound", 1 << 30),
    }
}

/// An outlet writing to `sock` within `bounds`.
pub(crate) fn outlet(id: u64, sock: TcpStream, bounds: Bounds) -> Arc<Outlet> {
    Outlet::new(id, sock, bounds, Writers::new(64))
}

/// A ping whose payload no server frame carries: sent behind what a test
/// has caused, it marks where that ends (see [`until_mark`]).
pub(crate) fn mark() -> Encoded {
    Encoded::from_wire(b"\x89\x04mark")
}

/// A server frame as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn is_mark(&self) -> bool {
        self.opcode == 0x9 && self.payload == b"mark"
    }

    /// A text frame's JSON.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.opcode, 0x1, "not a text frame: {self:?}");
        serde_json::from_slice(&self.payload).unwrap()
    }

    /// A close frame's code and reason.
    pub fn close(&self) -> Option<(u16, String)> {
        (self.opcode == 0x8).then(|| {
            let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
            (
                code,
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }
}

/// Reads one (unmasked, unfragmented) server frame.
pub(crate) fn read_frame(sock: &mut TcpStream) -> Frame {
    let mut head = [0u8; 2];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            sock.read_exact(&mut n).unwrap();
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            sock.read_exact(&mut n).unwrap();
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    sock.read_exact(&mut payload).unwrap();
    Frame {
        opcode: head[0] & 0x0f,
        payload,
    }
}

/// Every frame before the mark that `outlet` is sent now: what the client
/// has been sent so far. (Sent as the dispatcher sends, which never waits
/// for the client's backlog to shrink: the test reads it.)
pub(crate) fn until_mark(outlet: &Arc<Outlet>, sock: &mut TcpStream) -> Vec<Frame> {
    outlet.send(std::iter::once(&mark())).unwrap();
    let mut frames = Vec::new();
    loop {
        let frame = read_frame(sock);
        if frame.is_mark() {
            return frames;
        }
        frames.push(frame);
    }
}

/// Every frame up to and with a close frame: what a client that was closed
/// has been sent.
pub(crate) fn until_close(sock: &mut TcpStream) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        let frame = read_frame(sock);
        let close = frame.opcode == 0x8;
        frames.push(frame);
        if close {
            return frames;
        }
    }
}

/// `len` bytes that differ from one offset to the next (xorshift from
/// `seed`), so that a byte in the wrong place shows.
pub(crate) fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len).map(|_| xorshift(&mut x) as u8).collect()
}

/// The next number of a xorshift sequence.
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
