//! A WebSocket spoken by hand over a bare TCP socket, for input that no
//! client library would produce and for clients that never answer pings.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tungstenite::stream::MaybeTlsStream;

use super::{Server, WATCHDOG, connect_manual_over, read_frame_header, tcp_with_rcvbuf};

/// One frame as the server sent it.
#[derive(Debug)]
pub struct WireFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A WebSocket spoken by hand over plain TCP, for input that no client
/// library would produce and for clients that never answer pings.
pub struct RawSocket {
    pub tcp: TcpStream,
}

impl RawSocket {
    /// Upgrades `path` by hand (see `connect_manual`) and keeps the bare
    /// socket, positioned just after the 101 response head.
    pub fn open(server: &Server, path: &str, extra_headers: &[&str]) -> RawSocket {
        let tcp = TcpStream::connect(&server.addr).unwrap();
        RawSocket::upgrade(tcp, server, path, extra_headers)
    }

    /// Like `open`, over `tcp`, a socket already connected to `server`
    /// (from a chosen address, or with chosen buffer sizes).
    pub fn open_over(tcp: TcpStream, server: &Server, path: &str) -> RawSocket {
        RawSocket::upgrade(tcp, server, path, &[])
    }

    /// Like `open`, over a socket whose receive buffer is `bytes` (see
    /// `tcp_with_rcvbuf`).
    pub fn open_rcvbuf(
        server: &Server,
        path: &str,
        extra_headers: &[&str],
        bytes: usize,
    ) -> RawSocket {
        let tcp = tcp_with_rcvbuf(server, bytes);
        RawSocket::upgrade(tcp, server, path, extra_headers)
    }

    fn upgrade(tcp: TcpStream, server: &Server, path: &str, extra_headers: &[&str]) -> RawSocket {
        let (ws, _response) = connect_manual_over(tcp, server, path, extra_headers);
        let MaybeTlsStream::Plain(tcp) = ws.into_inner() else {
            unreachable!("tests use plain TCP")
        };
        tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        RawSocket { tcp }
    }

    /// Whether the server has sent something (or closed) within `timeout`.
    pub fn readable_within(&mut self, timeout: Duration) -> bool {
        self.tcp.set_read_timeout(Some(timeout)).unwrap();
        let readable = match self.tcp.peek(&mut [0u8; 1]) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.tcp.set_read_timeout(Some(WATCHDOG)).unwrap();
        readable
    }

    /// Like `open`, offering the `wschat.v1` subprotocol.
    pub fn open_v1(server: &Server, path: &str) -> RawSocket {
        RawSocket::open(server, path, &["Sec-WebSocket-Protocol: wschat.v1"])
    }

    /// Writes `bytes` as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("write to server");
        self.tcp.flush().unwrap();
    }

    /// Reads the next frame the server sends; `None` once the connection has
    /// ended (EOF or reset). Panics if nothing arrives within the socket's
    /// read timeout (the watchdog unless changed).
    pub fn read_frame(&mut self) -> Option<WireFrame> {
        let (first, len) = self.read_header()?;
        let payload = self.read_payload(usize::try_from(len).expect("frame length"))?;
        Some(WireFrame {
            fin: first & 0x80 != 0,
            opcode: first & 0x0f,
            payload,
        })
    }

    /// Reads only the header of the next frame: its FIN/RSV/opcode byte and
    /// its payload length. The payload is left to `read_payload`, which may
    /// take it in parts. `None` once the connection has ended.
    pub fn read_header(&mut self) -> Option<(u8, u64)> {
        ended(read_frame_header(&mut self.tcp))
    }

    /// Reads exactly `n` bytes of payload; `None` if the connection ended first.
    pub fn read_payload(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut payload = vec![0u8; n];
        ended(self.tcp.read_exact(&mut payload)).map(|()| payload)
    }

    /// Reads, skipping other frames, until the server's close frame and
    /// returns its code and reason; `None` if the connection ended without
    /// one.
    pub fn read_close(&mut self) -> Option<(u16, String)> {
        loop {
            let frame = self.read_frame()?;
            if frame.opcode == 8 {
                assert!(frame.payload.len() >= 2, "close frame without a code");
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                let reason =
                    String::from_utf8(frame.payload[2..].to_vec()).expect("close reason is UTF-8");
                return Some((code, reason));
            }
        }
    }

    /// Reads the next text frame, skipping control frames, as JSON.
    pub fn read_json(&mut self) -> serde_json::Value {
        loop {
            let frame = self.read_frame().expect("connection ended");
            match frame.opcode {
                1 => return serde_json::from_slice(&frame.payload).expect("server sent JSON"),
                8..=10 => continue,
                op => panic!("expected a text frame, got opcode {op}"),
            }
        }
    }
}

/// What a read gave: `None` if the connection ended (EOF or reset); panics
/// if nothing came within the socket's read timeout.
fn ended<T>(read: io::Result<T>) -> Option<T> {
    match read {
        Ok(v) => Some(v),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            panic!("no frame from the server within the read timeout")
        }
        Err(_) => None,
    }
}
