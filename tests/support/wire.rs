//! The WebSocket wire by hand, for input that no client library would
//! produce and for clients that must not read more than they are told to:
//! client frames built byte by byte, server frame headers read, the
//! upgrade request and response head, and TCP connections from a chosen
//! loopback address. Nothing from the other support files: the benches
//! build and read their frames with it too.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The mask key of every hand-built client frame.
pub const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Applies (or removes) the WebSocket mask `key` to `data`.
pub fn apply_mask(data: &[u8], key: [u8; 4]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect()
}

/// Appends a frame header to `out`: `first` is the FIN/RSV/opcode byte;
/// `len` is the payload length announced, whatever follows. A masked
/// header ends with its key.
fn push_header(out: &mut Vec<u8>, first: u8, len: u64, mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(first);
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// A frame header (see `push_header`). A masked header ends with `MASK_KEY`.
pub fn frame_header(first: u8, len: u64, masked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    push_header(&mut out, first, len, masked.then_some(MASK_KEY));
    out
}

/// Appends a complete client frame to `out`, masked with `key`.
pub fn push_masked(out: &mut Vec<u8>, first: u8, payload: &[u8], key: [u8; 4]) {
    push_header(out, first, payload.len() as u64, Some(key));
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// A complete client frame, masked as RFC 6455 requires of clients.
pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + payload.len());
    push_masked(&mut out, first, payload, MASK_KEY);
    out
}

/// A complete frame without a mask, which a client must never send.
pub fn unmasked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(first, payload.len() as u64, false);
    out.extend_from_slice(payload);
    out
}

/// Reads the header of the next server frame from `input`: its
/// FIN/RSV/opcode byte and its payload length, which is left unread.
/// Panics if the server masked the frame.
pub fn read_frame_header(input: &mut impl Read) -> io::Result<(u8, u64)> {
    let mut head = [0u8; 2];
    input.read_exact(&mut head)?;
    assert_eq!(head[1] & 0x80, 0, "the server masked a frame");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            input.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            input.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    Ok((head[0], len))
}

/// The head of a WebSocket upgrade for `path` on `addr`, with extra header
/// lines (`Name: value`).
pub fn upgrade_head(addr: &str, path: &str, extra_headers: &[&str]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// Reads a response head up to and with its blank line, byte by byte, so
/// that no frame bytes after it are swallowed. Fails if the stream ends
/// first or the head grows past 4 KiB.
pub fn read_response_head(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 || input.read(&mut byte)? == 0 {
            return Err(io::Error::other("no complete handshake response"));
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// A TCP connection to `addr` from the local address `from` (any
/// 127.0.0.0/8 address is this machine, so each is a distinct client),
/// whose reads give up after `read_timeout`.
pub fn tcp_bound_to(from: &str, addr: &str, read_timeout: Duration) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = addr.parse().expect("server address");
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&local.into()).expect("bind the client address");
    socket.connect(&addr.into()).expect("tcp connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    stream
}
