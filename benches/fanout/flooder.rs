//! The flooder: a bot that writes frames as fast as the socket takes them
//! and reconnects whenever the server ends its connection, from an address
//! of its own.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{PAYLOAD_BYTES, READ_WATCHDOG};
use crate::wire::{
    masked_frame, read_frame_header, read_response_head, tcp_bound_to, upgrade_head,
};

/// The flooder's own address: a client apart from the honest ones, so that
/// the server's ban of the flooder's address touches nobody else.
const FLOODER_IP: &str = "127.0.0.2";

/// Pause between the flooder's attempts while its address is refused.
const FLOOD_RETRY: Duration = Duration::from_millis(10);

/// Frames per write of the flooder: one `write` system call each.
const FLOOD_BATCH: usize = 64;
/// The v1 flooder's frame.
const V1_FLOOD_FRAME: &str = r#"{"type":"message","text":"x"}"#;

#[derive(Clone, Copy, PartialEq)]
pub enum Flooder {
    Raw,
    V1,
}

/// Opens `path` with a hand-written upgrade request, so that nothing the
/// server sends after its 101 response is consumed here.
fn bot_handshake(stream: &mut TcpStream, host: &str, path: &str, v1: bool) -> io::Result<()> {
    let protocol: &[&str] = if v1 {
        &["Sec-WebSocket-Protocol: wschat.v1"]
    } else {
        &[]
    };
    stream.write_all(upgrade_head(host, path, protocol).as_bytes())?;
    let head = read_response_head(stream)?;
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head);
        let line = line.lines().next().unwrap_or("").to_string();
        return Err(io::Error::other(line));
    }
    Ok(())
}

/// Reads one server frame: its opcode, and its payload if it is a close
/// frame (other payloads are skipped).
fn read_server_frame(input: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let (first, len) = read_frame_header(input)?;
    let opcode = first & 0x0f;
    let mut payload = Vec::new();
    if opcode == 0x8 {
        payload.resize(len as usize, 0);
        input.read_exact(&mut payload)?;
    } else if io::copy(&mut input.take(len), &mut io::sink())? < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok((opcode, payload))
}

/// Reads server frames until a close frame (returned as "CODE reason") or
/// the end of the stream (returned as `Err`), then shuts the socket down so
/// that a `write` blocked on it returns.
pub fn bot_reader(stream: TcpStream) -> Result<String, String> {
    let outcome = match stream.try_clone() {
        Ok(s) => {
            let mut input = io::BufReader::new(s);
            loop {
                match read_server_frame(&mut input) {
                    Ok((0x8, body)) => {
                        let code = body
                            .get(..2)
                            .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                        let reason = String::from_utf8_lossy(body.get(2..).unwrap_or(&[]));
                        break Ok(format!("{code} {reason}").trim_end().to_string());
                    }
                    Ok(_) => {}
                    Err(e) => break Err(format!("ended without close frame ({})", e.kind())),
                }
            }
        }
        Err(e) => Err(e.to_string()),
    };
    let _ = stream.shutdown(Shutdown::Both);
    outcome
}

#[derive(Default)]
pub struct FloodStats {
    /// Whole frames the kernel accepted from the flooder.
    pub sent: u64,
    pub connections: u64,
    /// How each connection ended, with counts ("1008 flooding": 17, …).
    pub endings: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl FloodStats {
    /// Connections the server closed with 1008 for flooding.
    pub fn closed_flooding(&self) -> u64 {
        self.endings.get("1008 flooding").copied().unwrap_or(0)
    }
}

/// Floods `/ws?room=bench` until `stop`, writing frames as fast as the socket
/// takes them and reconnecting at once whenever the server ends the
/// connection, as a bot would. Reports on `started` after its first
/// handshake. Before it returns, its last connection has ended (the server
/// answered its close frame, or closed it), so nothing it sent can still
/// reach the room.
pub fn run_flooder(
    addr: &str,
    kind: Flooder,
    stop: &AtomicBool,
    started: mpsc::Sender<()>,
) -> FloodStats {
    let frame = match kind {
        Flooder::Raw => masked_frame(
            0x81,
            format!("flood {}", "x".repeat(PAYLOAD_BYTES - 6)).as_bytes(),
        ),
        Flooder::V1 => masked_frame(0x81, V1_FLOOD_FRAME.as_bytes()),
    };
    let batch = frame.repeat(FLOOD_BATCH);
    let mut stats = FloodStats::default();
    let start = Instant::now();
    let mut started = Some(started);
    while !stop.load(Ordering::Relaxed) {
        // A fresh name each time: the last one may not have left yet.
        let path = format!("/ws?room=bench&name=flood-{}", stats.connections);
        let mut stream = tcp_bound_to(FLOODER_IP, addr, READ_WATCHDOG);
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(READ_WATCHDOG)).unwrap();
        if let Err(e) = bot_handshake(&mut stream, addr, &path, kind == Flooder::V1) {
            *stats
                .endings
                .entry(format!("handshake failed: {e}"))
                .or_default() += 1;
            // Refused (banned): try again soon, as a bot would, but not so
            // fast that loopback runs out of ephemeral ports.
            thread::sleep(FLOOD_RETRY);
            continue;
        }
        stats.connections += 1;
        if let Some(tx) = started.take() {
            let _ = tx.send(());
        }
        let reader = {
            let s = stream.try_clone().unwrap();
            thread::spawn(move || bot_reader(s))
        };
        let mut written = 0usize;
        let mut broken = false;
        while !stop.load(Ordering::Relaxed) {
            let mut at = 0;
            while at < batch.len() {
                match stream.write(&batch[at..]) {
                    Ok(0) | Err(_) => {
                        broken = true;
                        break;
                    }
                    Ok(n) => at += n,
                }
            }
            written += at;
            if broken {
                break;
            }
        }
        if !broken {
            // The server reads a flooder only at its rate, so a close frame
            // would wait behind everything in the socket's buffers (minutes
            // of frames). A bot that is stopped simply drops the connection:
            // with SO_LINGER 0 that is a reset, which ends it at once.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            let _ = stream.shutdown(Shutdown::Both);
        }
        stats.sent += (written / frame.len()) as u64;
        let ending = reader
            .join()
            .unwrap()
            .unwrap_or_else(|e| format!("no close: {e}"));
        *stats.endings.entry(ending).or_default() += 1;
    }
    stats.seconds = start.elapsed().as_secs_f64();
    stats
}
