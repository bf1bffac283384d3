//! The client side of the load benches: a minimal WebSocket client codec
//! (upgrade handshake, masked frames out, server frames parsed
//! incrementally, pings answered) and every connection of a run in one
//! `mio` poll loop, so that the bench does not take a thread per connection
//! and measure itself. Every measured frame carries its sender, a sequence
//! number and a time in nanoseconds since one `Instant` of the bench
//! process, so a latency is a difference of two readings of the same clock.
#![allow(dead_code)] // each bench uses a different subset

pub mod closed_loop;
#[path = "../cpu/mod.rs"]
mod cpu;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

pub use cpu::cpu_seconds;

/// Payload size of every measured text frame.
pub const PAYLOAD_BYTES: usize = 100;
/// How long any wait for the server (readiness, drain, broadcast) may last
/// before the run is declared failed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Client connections bound to one loopback source address before moving to
/// the next (127.0.0.2, 127.0.0.3, ...), so that ephemeral ports never run out.
pub const CONNECTIONS_PER_SOURCE: u32 = 2000;

// ---------------------------------------------------------------------------
// What this process used

/// Seconds this process's main thread (the poll loop) has spent runnable but
/// waiting for a CPU, from `/proc/self/schedstat`: how much the machine, not
/// the server, held the bench up.
pub fn bench_queued_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    let waited: u64 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    waited as f64 / 1e9
}

// ---------------------------------------------------------------------------
// The load generator: a minimal WebSocket client codec

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Appends one client frame (FIN set, masked with `key`) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// The head of one server frame.
pub struct FrameHead {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Parses the head of the frame at the start of `buf`: `Ok(None)` until the
/// whole frame is there.
pub fn parse_frame(buf: &[u8]) -> Result<Option<FrameHead>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 != 0 {
        return Err("the server sent a masked frame".into());
    }
    let (payload_len, header_len) = match buf[1] & 0x7F {
        126 if buf.len() < 4 => return Ok(None),
        126 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() < 10 => return Ok(None),
        127 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    if buf.len() < header_len + payload_len {
        return Ok(None);
    }
    Ok(Some(FrameHead {
        fin: buf[0] & 0x80 != 0,
        opcode: buf[0] & 0x0F,
        header_len,
        payload_len,
    }))
}

/// "close 1008 too slow" from a close frame's payload.
pub fn describe_close(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => format!(
            "the server closed it: {} {}",
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason)
        ),
        _ => "the server closed it (no code)".into(),
    }
}

/// Opens a TCP connection from the next loopback source address and does the
/// WebSocket upgrade for `path`, blocking. Returns the stream, switched to
/// nonblocking, and any bytes the server sent after its response head.
pub fn handshake(server: SocketAddr, path: &str) -> Result<(TcpStream, Vec<u8>), String> {
    static OPENED: AtomicU32 = AtomicU32::new(0);
    let n = OPENED.fetch_add(1, Ordering::Relaxed);
    let source =
        Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + n / CONNECTIONS_PER_SOURCE);

    let fail = |what: &str, e: io::Error| format!("{what}: {e}");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| fail("socket", e))?;
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .map_err(|e| fail("bind", e))?;
    socket
        .connect_timeout(&server.into(), CONNECT_TIMEOUT)
        .map_err(|e| fail("connect", e))?;
    let mut stream = TcpStream::from(socket);
    stream
        .set_nonblocking(false)
        .map_err(|e| fail("blocking", e))?;
    stream.set_nodelay(true).map_err(|e| fail("nodelay", e))?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| fail("timeout", e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("request", e))?;

    let mut response = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("no response within {HANDSHAKE_TIMEOUT:?}")
            }
            _ => fail("response", e),
        })?;
        if n == 0 {
            return Err("the server closed the connection during the handshake".into());
        }
        response.extend_from_slice(&chunk[..n]);
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if response.len() > 16 * 1024 {
            return Err("response head longer than 16 KiB".into());
        }
    };
    let status = String::from_utf8_lossy(&response[..head_end]);
    let status = status.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {status}"));
    }
    stream
        .set_nonblocking(true)
        .map_err(|e| fail("nonblocking", e))?;
    Ok((stream, response.split_off(head_end)))
}

// ---------------------------------------------------------------------------
// The load generator: every connection in one poll loop

/// One client connection.
pub struct Conn {
    stream: mio::net::TcpStream,
    /// Bytes read but not yet parsed into whole frames.
    inbuf: Vec<u8>,
    /// A fragmented message being put back together.
    fragments: Option<Vec<u8>>,
    /// Encoded frames; the socket has accepted them up to `written`.
    outbuf: Vec<u8>,
    written: usize,
    /// xorshift state for masking keys.
    mask_state: u32,
    /// Why the connection ended, once it has.
    ended: Option<String>,
}

impl Conn {
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_ne_bytes()
    }

    /// Writes as much of `outbuf` as the socket takes now.
    pub fn flush(&mut self) {
        while self.written < self.outbuf.len() && self.ended.is_none() {
            match self.stream.write(&self.outbuf[self.written..]) {
                Ok(0) => self.ended = Some("the socket accepts no more bytes".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.ended = Some(format!("write failed: {e}")),
            }
        }
        self.outbuf.clear();
        self.written = 0;
    }

    /// Reads what the socket has, timestamping each read, and hands every
    /// whole text or binary message to `on_message`. Reading stops at a
    /// short read (the socket is empty; edge-triggered polling will report
    /// new data) unless `to_eof`, when the peer has closed its side.
    pub fn read<F: FnMut(usize, u64, &[u8])>(
        &mut self,
        id: usize,
        base: Instant,
        scratch: &mut [u8],
        to_eof: bool,
        on_message: &mut F,
    ) {
        while self.ended.is_none() {
            match self.stream.read(scratch) {
                Ok(0) => self.ended = Some("the server dropped the connection".into()),
                Ok(n) => {
                    let now = base.elapsed().as_nanos() as u64;
                    self.inbuf.extend_from_slice(&scratch[..n]);
                    self.parse(id, now, on_message);
                    if n < scratch.len() && !to_eof {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.ended = Some(format!("read failed: {e}")),
            }
        }
    }

    /// Handles every whole frame in `inbuf` (read at `now`).
    pub fn parse<F: FnMut(usize, u64, &[u8])>(&mut self, id: usize, now: u64, on_message: &mut F) {
        let mut at = 0;
        while self.ended.is_none() {
            let head = match parse_frame(&self.inbuf[at..]) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(why) => {
                    self.ended = Some(why);
                    break;
                }
            };
            let start = at + head.header_len;
            at = start + head.payload_len;
            let payload = &self.inbuf[start..at];
            match head.opcode {
                OP_TEXT | OP_BINARY if head.fin => on_message(id, now, payload),
                OP_TEXT | OP_BINARY => self.fragments = Some(payload.to_vec()),
                OP_CONTINUATION => {
                    let Some(message) = self.fragments.as_mut() else {
                        self.ended = Some("a continuation frame out of the blue".into());
                        break;
                    };
                    message.extend_from_slice(payload);
                    if head.fin {
                        let message = self.fragments.take().unwrap();
                        on_message(id, now, &message);
                    }
                }
                OP_PING => {
                    let payload = payload.to_vec();
                    let key = self.next_key();
                    encode_frame(&mut self.outbuf, OP_PONG, &payload, key);
                }
                OP_PONG => {}
                OP_CLOSE => self.ended = Some(describe_close(payload)),
                other => self.ended = Some(format!("unknown opcode {other}")),
            }
        }
        self.inbuf.drain(..at);
    }
}

/// All the client connections of one run, in one `mio` poll loop. A
/// connection is known by its index, in the order of `connect` calls.
pub struct Net {
    base: Instant,
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    /// Connections with frames queued since the last `poll`.
    to_flush: Vec<usize>,
    /// Connections whose handshake read frame bytes already.
    to_parse: Vec<usize>,
}

impl Net {
    pub fn new(base: Instant) -> Net {
        Net {
            base,
            poll: Poll::new().expect("create a poll instance"),
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            scratch: vec![0; 64 * 1024],
            to_flush: Vec::new(),
            to_parse: Vec::new(),
        }
    }

    /// Nanoseconds since the bench's shared `Instant`.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Opens one WebSocket to `path` and adds it to the poll loop.
    pub fn connect(&mut self, server: SocketAddr, path: &str) -> Result<usize, String> {
        let (stream, early) = handshake(server, path)?;
        let id = self.conns.len();
        let mut stream = mio::net::TcpStream::from_std(stream);
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
        if !early.is_empty() {
            self.to_parse.push(id);
        }
        self.conns.push(Conn {
            stream,
            inbuf: early,
            fragments: None,
            outbuf: Vec::new(),
            written: 0,
            mask_state: (0x9E37_79B9 ^ (id as u32).wrapping_mul(0x85EB_CA6B)) | 1,
            ended: None,
        });
        Ok(id)
    }

    /// Queues a text frame on connection `id`; it is written at the next
    /// `poll`, with everything else queued on that connection meanwhile.
    pub fn send_text(&mut self, id: usize, payload: &[u8]) {
        let conn = &mut self.conns[id];
        if conn.outbuf.is_empty() {
            self.to_flush.push(id);
        }
        let key = conn.next_key();
        encode_frame(&mut conn.outbuf, OP_TEXT, payload, key);
    }

    /// Writes what was queued, waits up to `timeout` for the sockets, reads
    /// what they have and calls `on_message(connection, received_ns,
    /// payload)` for every text or binary message.
    pub fn poll<F: FnMut(usize, u64, &[u8])>(&mut self, timeout: Duration, mut on_message: F) {
        for id in std::mem::take(&mut self.to_flush) {
            self.conns[id].flush();
        }
        let now = self.now_ns();
        for id in std::mem::take(&mut self.to_parse) {
            self.conns[id].parse(id, now, &mut on_message);
        }
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            assert_eq!(e.kind(), io::ErrorKind::Interrupted, "poll failed: {e}");
            return;
        }
        for event in self.events.iter() {
            let id = event.token().0;
            let conn = &mut self.conns[id];
            if conn.ended.is_some() {
                continue;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let to_eof = event.is_read_closed() || event.is_error();
                conn.read(id, self.base, &mut self.scratch, to_eof, &mut on_message);
            }
            // Writable, or pongs were queued by the read.
            conn.flush();
            if conn.ended.is_some() {
                let _ = self.poll.registry().deregister(&mut conn.stream);
            }
        }
    }

    /// How the connections that ended did, "3 x reason" for each reason.
    pub fn endings(&self) -> Option<String> {
        let mut reasons: Vec<(&str, usize)> = Vec::new();
        for why in self.conns.iter().filter_map(|c| c.ended.as_deref()) {
            match reasons.iter_mut().find(|(r, _)| *r == why) {
                Some((_, n)) => *n += 1,
                None => reasons.push((why, 1)),
            }
        }
        if reasons.is_empty() {
            return None;
        }
        let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} x {r}")).collect();
        Some(format!("connections ended: {}", list.join(", ")))
    }

    pub fn open(&self) -> usize {
        self.conns.iter().filter(|c| c.ended.is_none()).count()
    }

    pub fn is_open(&self, id: usize) -> bool {
        self.conns[id].ended.is_none()
    }
}

// ---------------------------------------------------------------------------
// Frame payloads

/// A measured frame: `M<sender:4> <seq:10> <nanos:20> ` padded with `x` to
/// `PAYLOAD_BYTES`. `nanos` is a send time (or scheduled time) on the shared
/// clock.
pub fn message(sender: usize, seq: u64, nanos: u64) -> Vec<u8> {
    let mut m = format!("M{sender:04} {seq:010} {nanos:020} ").into_bytes();
    m.resize(PAYLOAD_BYTES, b'x');
    m
}

pub struct Stamp {
    pub sender: usize,
    pub seq: u64,
    pub nanos: u64,
}

pub fn parse_message(p: &[u8]) -> Option<Stamp> {
    fn number(digits: &[u8]) -> Option<u64> {
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    }
    if p.len() < 38 || p[0] != b'M' {
        return None;
    }
    Some(Stamp {
        sender: number(&p[1..5])? as usize,
        seq: number(&p[6..16])?,
        nanos: number(&p[17..37])?,
    })
}

/// A readiness probe from sender `s`: `R<s:4>`.
pub fn probe(sender: usize) -> Vec<u8> {
    format!("R{sender:04}").into_bytes()
}

pub fn parse_probe(p: &[u8]) -> Option<usize> {
    let digits = std::str::from_utf8(p.strip_prefix(b"R")?).ok()?;
    digits.parse().ok()
}

/// Until every receiver has heard a probe from every sender (which proves
/// that both are members of the room), each sender not yet heard by all
/// sends a probe every 20 ms. Receivers ignore probes afterwards. The
/// receivers' connection ids must be consecutive. `check_health` is called
/// after every poll and ends the wait with its error.
pub fn wait_ready(
    net: &mut Net,
    senders: &[usize],
    receivers: &[usize],
    mut check_health: impl FnMut(&Net) -> Result<(), String>,
) -> Result<(), String> {
    let first_receiver = receivers[0];
    let mut heard = vec![false; senders.len() * receivers.len()];
    let mut unheard = vec![receivers.len(); senders.len()];
    let deadline = Instant::now() + STALL_TIMEOUT;
    let mut next_probe = Instant::now();
    while unheard.iter().any(|&n| n > 0) {
        if Instant::now() >= next_probe {
            for (s, &conn) in senders.iter().enumerate() {
                if unheard[s] > 0 {
                    net.send_text(conn, &probe(s));
                }
            }
            next_probe += Duration::from_millis(20);
        }
        net.poll(Duration::from_millis(5), |id, _, payload| {
            let Some(r) = id
                .checked_sub(first_receiver)
                .filter(|r| *r < receivers.len())
            else {
                return;
            };
            if let Some(s) = parse_probe(payload).filter(|s| *s < senders.len()) {
                let seen = &mut heard[r * senders.len() + s];
                if !*seen {
                    *seen = true;
                    unheard[s] -= 1;
                }
            }
        });
        check_health(net)?;
        if Instant::now() > deadline {
            let missing: usize = unheard.iter().sum();
            return Err(format!(
                "not ready after {STALL_TIMEOUT:?}: {missing} (receiver, sender) pairs never heard"
            ));
        }
    }
    Ok(())
}

/// Sorted-slice percentile, nanoseconds in, milliseconds out.
pub fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}
