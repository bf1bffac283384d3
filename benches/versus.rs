//! wschat against the relay a Rust user would write instead: the same
//! scenarios, run alternately against a `wschat` process and against
//! `benches/relay` (tokio, tokio-tungstenite, one `Mutex<HashMap>` of rooms),
//! a fresh server process for every run, and one table of figures with the
//! ratio wschat / relay.
//!
//! Scenarios, all raw mode (no subprotocol):
//!
//! - **fan-out**: 100 receivers and 10 senders in one room, each sender
//!   keeping at most 32 of its messages in flight (message k+32 waits until
//!   *every* receiver has message k), 100-byte text frames, 6 s measured
//!   after 1 s of warm-up: deliveries per second and the server's CPU time
//!   per million deliveries; every receiver must get every frame exactly
//!   once, in each sender's order.
//! - **latency**: 1,000 receivers, one sender at 100 messages/s for 10 s,
//!   open loop (message i leaves at t0 + i x 10 ms whatever happened to the
//!   ones before, and latency is counted from that scheduled time): p50, p99
//!   and max over all deliveries.
//! - **echo**: 50 connections to `/echo`, one message in flight each, 5 s:
//!   round trips per second and p99 round trip.
//! - **idle**: 19,000 connections that never send (`WSCHAT_BENCH_IDLE`
//!   overrides the number): the server's RSS and threads per connection,
//!   then how long one message takes to reach all of them.
//!
//! The client side does not take a thread per connection, so that it does
//! not measure itself: every connection of a run lives in one `mio` poll
//! loop on the main thread, with a minimal WebSocket client codec below
//! (upgrade handshake, masked frames out as the tests build them in
//! tests/support/wire.rs, server frames parsed incrementally, pings
//! answered). Every measured frame carries its sender, a sequence
//! number and a time in nanoseconds since one `Instant` of this process, so a
//! latency is a difference of two readings of the same clock.
//!
//! Each scenario runs twice per server (idle once) and the table gives the
//! median. Run with `cargo bench --bench versus` (it builds the relay
//! itself); `WSCHAT_BENCH_QUICK=1` shrinks every size for a smoke run, and
//! `WSCHAT_BENCH_ONLY=fanout,latency,echo,idle` picks scenarios. As root,
//! the idle scenario raises `vm.max_map_count` and `kernel.pid_max` if they
//! are lower than a thread-per-connection server needs, and says so. The
//! method is described in docs/BENCHMARKS.md.

mod cpu;
#[path = "../tests/support/wire.rs"]
#[allow(dead_code)] // the tests use more of it
mod wire;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use cpu::cpu_seconds;
use wire::{push_masked, upgrade_head};

/// Payload size of every measured text frame.
const PAYLOAD_BYTES: usize = 100;
/// Messages one fan-out sender may have in flight.
const WINDOW: usize = 32;
/// How long any wait for the server (readiness, drain, broadcast) may last
/// before the run is declared failed.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Client connections bound to one loopback source address before moving to
/// the next (127.0.0.2, 127.0.0.3, ...), so that ephemeral ports never run out.
const CONNECTIONS_PER_SOURCE: u32 = 2000;

// ---------------------------------------------------------------------------
// Sizes

struct Plan {
    fanout: FanoutPlan,
    latency: LatencyPlan,
    echo: EchoPlan,
    idle_connections: usize,
    /// Runs of each server for fan-out, latency and echo (idle runs once).
    runs: usize,
}

struct FanoutPlan {
    receivers: usize,
    senders: usize,
    warm_up: Duration,
    measure: Duration,
}

struct LatencyPlan {
    receivers: usize,
    rate: u64,
    seconds: u64,
}

struct EchoPlan {
    connections: usize,
    warm_up: Duration,
    measure: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let idle_default = if quick { 200 } else { 19_000 };
        let idle_connections = std::env::var("WSCHAT_BENCH_IDLE")
            .ok()
            .map(|v| v.parse().expect("WSCHAT_BENCH_IDLE must be a number"))
            .unwrap_or(idle_default);
        if quick {
            Plan {
                fanout: FanoutPlan {
                    receivers: 20,
                    senders: 4,
                    warm_up: Duration::from_millis(500),
                    measure: Duration::from_secs(2),
                },
                latency: LatencyPlan {
                    receivers: 20,
                    rate: 100,
                    seconds: 2,
                },
                echo: EchoPlan {
                    connections: 10,
                    warm_up: Duration::from_millis(200),
                    measure: Duration::from_secs(2),
                },
                idle_connections,
                runs: 1,
            }
        } else {
            Plan {
                fanout: FanoutPlan {
                    receivers: 100,
                    senders: 10,
                    warm_up: Duration::from_secs(1),
                    measure: Duration::from_secs(6),
                },
                latency: LatencyPlan {
                    receivers: 1000,
                    rate: 100,
                    seconds: 10,
                },
                echo: EchoPlan {
                    connections: 50,
                    warm_up: Duration::from_millis(500),
                    measure: Duration::from_secs(5),
                },
                idle_connections,
                runs: 2,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The servers

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Wschat,
    Relay,
}

impl Kind {
    const BOTH: [Kind; 2] = [Kind::Wschat, Kind::Relay];

    fn name(self) -> &'static str {
        match self {
            Kind::Wschat => "wschat",
            Kind::Relay => "relay",
        }
    }
}

/// A server process on an ephemeral localhost port, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `kind` and reads the address from its `... listening on ADDR`
    /// line. wschat gets its abuse limits lifted; `idle` also pushes its
    /// pings far out, since idle clients are not what a ping test is about.
    fn start(kind: Kind, relay: &Path, idle: bool) -> Server {
        let mut command = match kind {
            Kind::Wschat => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_wschat"));
                c.env("WSCHAT_DB", ":memory:");
                c.args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
                    .args(["--rate", "1000000", "--burst", "1000000"])
                    .args(["--max-connections", "100000"])
                    .args(["--max-connections-per-ip", "100000"])
                    // The bench opens one connection at a time, so the default
                    // --max-handshakes (128) never binds; a larger one would
                    // take descriptors from the idle run's 19,000.
                    .args(["--connect-rate", "1000000", "--connect-burst", "1000000"]);
                if idle {
                    c.args(["--ping-interval", "3600"]);
                }
                c
            }
            Kind::Relay => {
                let mut c = Command::new(relay);
                c.args(["--listen", "127.0.0.1:0"]);
                c
            }
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let prefix = format!("{} listening on ", kind.name());
        let addr = line
            .trim()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("unexpected first line from {}: {line:?}", kind.name()))
            .parse()
            .expect("listening address");
        // Keep draining stdout so that the server never blocks on it.
        thread::spawn(move || io::copy(&mut stdout, &mut io::sink()));
        Server { child, addr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the whole process has used so far.
    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }

    fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    fn threads(&self) -> u64 {
        status_field(self.pid(), "Threads:")
    }

    /// How the server ended, if it has.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the server exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for the server: {e}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds this process's main thread (the poll loop) has spent runnable but
/// waiting for a CPU, from `/proc/self/schedstat`: how much the machine, not
/// the server, held the bench up.
fn bench_queued_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    let waited: u64 = stat
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    waited as f64 / 1e9
}

/// A number from `/proc/PID/status` (`VmRSS:` is in KiB).
fn status_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Builds `benches/relay` in release mode and returns its binary.
fn build_relay() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/relay");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building the relay (cargo build --release --manifest-path benches/relay/Cargo.toml)"
    );
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the relay failed");
    dir.join("target/release/relay")
}

// ---------------------------------------------------------------------------
// Limits of this process and of the system

/// Raises this process's open-file soft limit to its hard limit (the servers
/// it starts inherit it).
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                eprintln!(
                    "cannot raise the open-file limit: {}",
                    io::Error::last_os_error()
                );
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// When running as root, raises a sysctl to `at_least` if it is lower, and
/// says so. Thread stacks take two memory mappings each and every thread an
/// id, so a server with a thread per connection needs both.
fn raise_sysctl(name: &str, at_least: u64) {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let Some(current) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if current >= at_least || unsafe { libc::geteuid() } != 0 {
        return;
    }
    match std::fs::write(&path, at_least.to_string()) {
        Ok(()) => println!("raised {name} from {current} to {at_least}"),
        Err(e) => println!("could not raise {name} from {current} to {at_least}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// The load generator: a minimal WebSocket client codec

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The head of one server frame.
struct FrameHead {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Parses the head of the frame at the start of `buf`: `Ok(None)` until the
/// whole frame is there.
fn parse_frame(buf: &[u8]) -> Result<Option<FrameHead>, String> {
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
fn describe_close(payload: &[u8]) -> String {
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
fn handshake(server: SocketAddr, path: &str) -> Result<(TcpStream, Vec<u8>), String> {
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
    let request = upgrade_head(&server.to_string(), path, &[]);
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
struct Conn {
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
    fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_ne_bytes()
    }

    /// Writes as much of `outbuf` as the socket takes now.
    fn flush(&mut self) {
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
    fn read<F: FnMut(usize, u64, &[u8])>(
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
    fn parse<F: FnMut(usize, u64, &[u8])>(&mut self, id: usize, now: u64, on_message: &mut F) {
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
                    push_masked(&mut self.outbuf, 0x80 | OP_PONG, &payload, key);
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
struct Net {
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
    fn new(base: Instant) -> Net {
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
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Opens one WebSocket to `path` and adds it to the poll loop.
    fn connect(&mut self, server: SocketAddr, path: &str) -> Result<usize, String> {
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
    fn send_text(&mut self, id: usize, payload: &[u8]) {
        let conn = &mut self.conns[id];
        if conn.outbuf.is_empty() {
            self.to_flush.push(id);
        }
        let key = conn.next_key();
        push_masked(&mut conn.outbuf, 0x80 | OP_TEXT, payload, key);
    }

    /// Writes what was queued, waits up to `timeout` for the sockets, reads
    /// what they have and calls `on_message(connection, received_ns,
    /// payload)` for every text or binary message.
    fn poll<F: FnMut(usize, u64, &[u8])>(&mut self, timeout: Duration, mut on_message: F) {
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
    fn endings(&self) -> Option<String> {
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

    fn open(&self) -> usize {
        self.conns.iter().filter(|c| c.ended.is_none()).count()
    }

    fn is_open(&self, id: usize) -> bool {
        self.conns[id].ended.is_none()
    }
}

// ---------------------------------------------------------------------------
// Frame payloads

/// A measured frame: `M<sender:4> <seq:10> <nanos:20> ` padded with `x` to
/// `PAYLOAD_BYTES`. `nanos` is a send time (or scheduled time) on the shared
/// clock.
fn message(sender: usize, seq: u64, nanos: u64) -> Vec<u8> {
    let mut m = format!("M{sender:04} {seq:010} {nanos:020} ").into_bytes();
    m.resize(PAYLOAD_BYTES, b'x');
    m
}

struct Stamp {
    sender: usize,
    seq: u64,
    nanos: u64,
}

fn parse_message(p: &[u8]) -> Option<Stamp> {
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
fn probe(sender: usize) -> Vec<u8> {
    format!("R{sender:04}").into_bytes()
}

fn parse_probe(p: &[u8]) -> Option<usize> {
    let digits = std::str::from_utf8(p.strip_prefix(b"R")?).ok()?;
    digits.parse().ok()
}

/// Until every receiver has heard a probe from every sender (which proves
/// that both are members of the room), each sender not yet heard by all
/// sends a probe every 20 ms. Receivers ignore probes afterwards. The
/// receivers' connection ids must be consecutive.
fn wait_ready(
    net: &mut Net,
    server: &mut Server,
    senders: &[usize],
    receivers: &[usize],
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
        check_health(net, server)?;
        if Instant::now() > deadline {
            let missing: usize = unheard.iter().sum();
            return Err(format!(
                "not ready after {STALL_TIMEOUT:?}: {missing} (receiver, sender) pairs never heard"
            ));
        }
    }
    Ok(())
}

/// Fails the run if the server died or any client connection ended.
fn check_health(net: &Net, server: &mut Server) -> Result<(), String> {
    if let Some(exit) = server.exited() {
        return Err(exit);
    }
    match net.endings() {
        Some(endings) => Err(endings),
        None => Ok(()),
    }
}

/// Connects `n` clients to `path`.
fn connect_all(net: &mut Net, server: &Server, n: usize, path: &str) -> Result<Vec<usize>, String> {
    (0..n)
        .map(|i| {
            net.connect(server.addr, path)
                .map_err(|e| format!("connection {} of {n}: {e}", i + 1))
        })
        .collect()
}

/// Sorted-slice percentile, nanoseconds in, milliseconds out.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

// ---------------------------------------------------------------------------
// Scenario: flat-out fan-out

struct FanoutRun {
    deliveries_per_s: f64,
    cpu_per_million: f64,
    bench_cpu_per_million: f64,
    /// Frames some receiver never got, got twice, or got out of order.
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
}

fn fanout(mut server: Server, plan: &FanoutPlan, base: Instant) -> Result<FanoutRun, String> {
    let mut net = Net::new(base);
    let path = "/ws?room=bench";
    // Connections 0..R are the receivers, R..R+S the senders.
    let receivers = connect_all(&mut net, &server, plan.receivers, path)?;
    let senders = connect_all(&mut net, &server, plan.senders, path)?;
    wait_ready(&mut net, &mut server, &senders, &receivers)?;
    let (r_count, s_count) = (receivers.len(), senders.len());

    // next[r * S + s]: the sequence number receiver r expects next from s.
    let mut next = vec![0u64; r_count * s_count];
    // heard[s][k % WINDOW]: receivers that have message k of sender s.
    let mut heard = vec![[0usize; WINDOW]; s_count];
    // acked[s]: messages of sender s that every receiver has (they complete
    // in order, since each receiver gets a sender's messages in order).
    let mut acked = vec![0u64; s_count];
    let mut sent = vec![0u64; s_count];
    let (mut skipped, mut duplicated, mut out_of_order) = (0u64, 0u64, 0u64);

    let start = net.now_ns();
    let measure_from = start + plan.warm_up.as_nanos() as u64;
    let measure_to = measure_from + plan.measure.as_nanos() as u64;
    let mut measured = 0u64;
    let mut cpu_at_start = None;
    let mut cpu_used = None;
    let mut drain_deadline = None;
    let mut health_check = Instant::now();
    loop {
        let now = net.now_ns();
        if cpu_at_start.is_none() && now >= measure_from {
            cpu_at_start = Some((server.cpu_seconds(), cpu_seconds("self")));
        }
        if let Some((server0, bench0)) = cpu_at_start
            && cpu_used.is_none()
            && now >= measure_to
        {
            cpu_used = Some((server.cpu_seconds() - server0, cpu_seconds("self") - bench0));
            drain_deadline = Some(Instant::now() + STALL_TIMEOUT);
        }
        match drain_deadline {
            // Measuring is over: wait for everything sent to arrive.
            Some(deadline) => {
                if acked == sent || Instant::now() > deadline {
                    break;
                }
            }
            None => {
                for (s, &conn) in senders.iter().enumerate() {
                    while sent[s] < acked[s] + WINDOW as u64 {
                        net.send_text(conn, &message(s, sent[s], now));
                        sent[s] += 1;
                    }
                }
            }
        }
        net.poll(Duration::from_millis(5), |id, at, payload| {
            // Senders read what the other senders send, and drop it.
            if id >= r_count {
                return;
            }
            let Some(m) = parse_message(payload) else {
                return;
            };
            let expected = &mut next[id * s_count + m.sender];
            if m.seq < *expected {
                duplicated += 1;
                return;
            }
            if m.seq > *expected {
                out_of_order += 1;
                skipped += m.seq - *expected;
            }
            *expected = m.seq + 1;
            if (measure_from..measure_to).contains(&at) {
                measured += 1;
            }
            let slot = &mut heard[m.sender][m.seq as usize % WINDOW];
            *slot += 1;
            if *slot == r_count {
                *slot = 0;
                acked[m.sender] = m.seq + 1;
            }
        });
        if health_check.elapsed() > Duration::from_millis(100) {
            check_health(&net, &mut server)?;
            health_check = Instant::now();
        }
    }
    let missing: u64 = (0..r_count)
        .flat_map(|r| (0..s_count).map(move |s| (r, s)))
        .map(|(r, s)| sent[s] - next[r * s_count + s])
        .sum();
    let (server_cpu, bench_cpu) = cpu_used.expect("measured");
    drop(server);
    Ok(FanoutRun {
        deliveries_per_s: measured as f64 / plan.measure.as_secs_f64(),
        cpu_per_million: server_cpu * 1e6 / measured.max(1) as f64,
        bench_cpu_per_million: bench_cpu * 1e6 / measured.max(1) as f64,
        lost: missing + skipped,
        duplicated,
        out_of_order,
    })
}

// ---------------------------------------------------------------------------
// Scenario: open-loop latency

struct LatencyRun {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lost: u64,
    /// The most a message left after its scheduled time (the bench's own
    /// lateness, included in every latency).
    worst_send_lateness_ms: f64,
    /// CPU the bench process used, in cores, while the messages went out.
    bench_cores: f64,
    /// Time the bench's poll loop waited for a CPU meanwhile.
    bench_queued_ms: f64,
}

fn latency(mut server: Server, plan: &LatencyPlan, base: Instant) -> Result<LatencyRun, String> {
    let mut net = Net::new(base);
    let path = "/ws?room=bench";
    let receivers = connect_all(&mut net, &server, plan.receivers, path)?;
    let sender = net.connect(server.addr, path)?;
    wait_ready(&mut net, &mut server, &[sender], &receivers)?;

    let r_count = receivers.len();
    let count = plan.rate * plan.seconds;
    let period = 1_000_000_000 / plan.rate;
    let t0 = net.now_ns() + 100_000_000;
    let last_due = t0 + (count - 1) * period;
    let (bench_cpu, bench_queued, bench_from) =
        (cpu_seconds("self"), bench_queued_seconds(), net.now_ns());
    let mut sent = 0u64;
    let mut next = vec![0u64; r_count];
    let mut latencies = Vec::with_capacity(r_count * count as usize);
    let (mut skipped, mut worst_lateness) = (0u64, 0u64);
    let mut health_check = Instant::now();
    loop {
        let now = net.now_ns();
        // Open loop: every message whose time has come leaves now, carrying
        // its scheduled time, however late the server is.
        while sent < count && t0 + sent * period <= now {
            let due = t0 + sent * period;
            net.send_text(sender, &message(0, sent, due));
            worst_lateness = worst_lateness.max(now - due);
            sent += 1;
        }
        let everything_in =
            sent == count && latencies.len() + skipped as usize == r_count * count as usize;
        if everything_in || now > last_due + STALL_TIMEOUT.as_nanos() as u64 {
            break;
        }
        // mio rounds a timeout up to whole milliseconds: sleep the whole
        // milliseconds to the next send, then spin for the rest.
        let timeout = if sent < count {
            let wait = Duration::from_nanos(t0 + sent * period - now);
            Duration::from_millis(wait.as_millis() as u64)
        } else {
            Duration::from_millis(10)
        };
        net.poll(timeout, |id, at, payload| {
            let Some(m) = parse_message(payload).filter(|_| id < r_count) else {
                return;
            };
            let expected = &mut next[id];
            if m.seq < *expected {
                return;
            }
            skipped += m.seq - *expected;
            *expected = m.seq + 1;
            latencies.push(at.saturating_sub(m.nanos));
        });
        if health_check.elapsed() > Duration::from_millis(100) {
            check_health(&net, &mut server)?;
            health_check = Instant::now();
        }
    }
    let bench_cores =
        (cpu_seconds("self") - bench_cpu) / ((net.now_ns() - bench_from) as f64 / 1e9);
    let bench_queued_ms = (bench_queued_seconds() - bench_queued) * 1e3;
    drop(server);
    let missing: u64 = next.iter().map(|&n| count - n).sum();
    latencies.sort_unstable();
    Ok(LatencyRun {
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        max_ms: percentile_ms(&latencies, 1.0),
        lost: missing + skipped,
        worst_send_lateness_ms: worst_lateness as f64 / 1e6,
        bench_cores,
        bench_queued_ms,
    })
}

// ---------------------------------------------------------------------------
// Scenario: echo

struct EchoRun {
    round_trips_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Echoes that did not match what was sent, and connections left
    /// waiting for theirs at the end.
    wrong: u64,
    /// CPU the bench process used, in cores, over the run.
    bench_cores: f64,
}

fn echo(mut server: Server, plan: &EchoPlan, base: Instant) -> Result<EchoRun, String> {
    let mut net = Net::new(base);
    let conns = connect_all(&mut net, &server, plan.connections, "/echo")?;
    let mut seq = vec![0u64; conns.len()];
    let mut ready: Vec<usize> = conns.clone();
    let start = net.now_ns();
    let measure_from = start + plan.warm_up.as_nanos() as u64;
    let measure_to = measure_from + plan.measure.as_nanos() as u64;
    let mut round_trips = Vec::new();
    let mut wrong = 0u64;
    let mut health_check = Instant::now();
    let bench_cpu = cpu_seconds("self");
    let mut drain_deadline = None;
    loop {
        let now = net.now_ns();
        if now >= measure_to && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + STALL_TIMEOUT);
        }
        match drain_deadline {
            // Measuring is over: wait for the echoes still on their way.
            Some(deadline) => {
                if ready.len() == conns.len() {
                    break;
                }
                if Instant::now() > deadline {
                    wrong += (conns.len() - ready.len()) as u64;
                    break;
                }
            }
            None => {
                for id in ready.drain(..) {
                    net.send_text(id, &message(id, seq[id], now));
                }
            }
        }
        net.poll(Duration::from_millis(5), |id, at, payload| {
            match parse_message(payload) {
                Some(m) if m.sender == id && m.seq == seq[id] => {
                    if (measure_from..measure_to).contains(&at) {
                        round_trips.push(at.saturating_sub(m.nanos));
                    }
                }
                _ => wrong += 1,
            }
            seq[id] += 1;
            ready.push(id);
        });
        if health_check.elapsed() > Duration::from_millis(100) {
            check_health(&net, &mut server)?;
            health_check = Instant::now();
        }
    }
    let bench_cores = (cpu_seconds("self") - bench_cpu) / ((net.now_ns() - start) as f64 / 1e9);
    drop(server);
    round_trips.sort_unstable();
    Ok(EchoRun {
        round_trips_per_s: round_trips.len() as f64 / plan.measure.as_secs_f64(),
        p50_ms: percentile_ms(&round_trips, 0.50),
        p99_ms: percentile_ms(&round_trips, 0.99),
        wrong,
        bench_cores,
    })
}

// ---------------------------------------------------------------------------
// Scenario: idle connections

struct IdleRun {
    wanted: usize,
    /// Connections open at the end.
    held: usize,
    /// Why connecting stopped short, or what the server did to them.
    failure: Option<String>,
    kib_per_conn: Option<f64>,
    threads_per_conn: Option<f64>,
    /// Time for one message to reach every held connection.
    broadcast_ms: Option<f64>,
}

/// Waits until the server's RSS and thread count stop moving (nothing
/// announces that, so /proc is sampled), then returns them.
fn settle(server: &Server) -> (u64, u64) {
    let deadline = Instant::now() + STALL_TIMEOUT;
    let mut last = (server.rss_kib(), server.threads());
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = (server.rss_kib(), server.threads());
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Adds `why` to what went wrong so far.
fn add_failure(failure: &mut Option<String>, why: String) {
    *failure = Some(match failure.take() {
        Some(before) => format!("{before}; {why}"),
        None => why,
    });
}

fn idle(mut server: Server, wanted: usize, base: Instant) -> IdleRun {
    let mut run = IdleRun {
        wanted,
        held: 0,
        failure: None,
        kib_per_conn: None,
        threads_per_conn: None,
        broadcast_ms: None,
    };
    let (rss_before, threads_before) = settle(&server);
    let mut net = Net::new(base);
    let path = "/ws?room=idle";
    // The client that speaks at the end connects first, so that it has its
    // place however many connections the server manages to hold.
    let speaker = match net.connect(server.addr, path) {
        Ok(id) => id,
        Err(e) => {
            run.failure = Some(format!("the first connection failed: {e}"));
            return run;
        }
    };
    for i in 0..wanted {
        if let Err(e) = net.connect(server.addr, path) {
            run.failure = Some(format!("connection {} of {wanted} failed: {e}", i + 1));
            break;
        }
        if (i + 1) % 1000 == 0 {
            // Notice connections the server accepted and then dropped.
            net.poll(Duration::ZERO, |_, _, _| {});
            if let Err(e) = check_health(&net, &mut server) {
                run.failure = Some(format!("after {} connections: {e}", i + 1));
                break;
            }
        }
    }
    let listeners_open = |net: &Net| net.open() - usize::from(net.is_open(speaker));
    run.held = listeners_open(&net);
    if let Some(exit) = server.exited() {
        add_failure(&mut run.failure, exit);
        return run;
    }
    let (rss_after, threads_after) = settle(&server);
    net.poll(Duration::ZERO, |_, _, _| {});
    run.held = listeners_open(&net);
    // Per connection the server holds, the speaker included.
    let connections = net.open().max(1) as f64;
    run.kib_per_conn = Some(rss_after.saturating_sub(rss_before) as f64 / connections);
    run.threads_per_conn = Some(threads_after.saturating_sub(threads_before) as f64 / connections);

    // The speaker says one thing to the whole room.
    let sent_at = net.now_ns();
    net.send_text(speaker, &message(0, 0, sent_at));
    let mut last_at = sent_at;
    let mut reached = 0usize;
    let deadline = Instant::now() + STALL_TIMEOUT;
    while reached < run.held && Instant::now() < deadline && server.exited().is_none() {
        net.poll(Duration::from_millis(10), |id, at, payload| {
            if id != speaker && parse_message(payload).is_some() {
                reached += 1;
                last_at = last_at.max(at);
            }
        });
    }
    if reached == run.held && run.held > 0 {
        run.broadcast_ms = Some((last_at - sent_at) as f64 / 1e6);
    } else {
        let why = format!("the message reached {reached} of {} connections", run.held);
        add_failure(&mut run.failure, why);
    }
    if let Some(endings) = net.endings() {
        add_failure(&mut run.failure, endings);
    }
    drop(server);
    run
}

// ---------------------------------------------------------------------------
// The table

/// One cell of the table.
enum Cell {
    Number(f64),
    Text(String),
    Failed,
}

struct Row {
    scenario: String,
    /// wschat, relay.
    cells: [Cell; 2],
    decimals: usize,
}

/// `1234567.8` with 0 decimals -> `1,234,568`.
fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = text.split_at(text.find('.').unwrap_or(text.len()));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out + frac
}

fn print_table(rows: &[Row]) {
    println!("| scenario | wschat | relay | wschat/relay |");
    println!("|----------|-------:|------:|-------------:|");
    for row in rows {
        let show = |cell: &Cell| match cell {
            Cell::Number(v) if v.is_finite() => grouped(*v, row.decimals),
            Cell::Number(_) => "n/a".into(),
            Cell::Text(t) => t.clone(),
            Cell::Failed => "failed".into(),
        };
        let ratio = match &row.cells {
            [Cell::Number(w), Cell::Number(r)] if *r > 0.0 && w.is_finite() => {
                format!("{:.2}", w / r)
            }
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {} | {ratio} |",
            row.scenario,
            show(&row.cells[0]),
            show(&row.cells[1])
        );
    }
}

/// The median of some runs' figures (the mean of the middle two for an
/// even count); `Failed` if no run produced one.
fn median(mut values: Vec<f64>) -> Cell {
    if values.is_empty() {
        return Cell::Failed;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Cell::Number(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Each server's successful runs of one scenario, in run order.
type Runs<T> = [Vec<T>; 2];

fn row<T>(runs: &Runs<T>, scenario: String, decimals: usize, figure: impl Fn(&T) -> f64) -> Row {
    Row {
        scenario,
        cells: [0, 1].map(|k| median(runs[k].iter().map(&figure).collect())),
        decimals,
    }
}

/// "0" when every run was exact, else the sum, loudly.
fn correctness<T>(runs: &Runs<T>, failures: &[usize; 2], faults: impl Fn(&T) -> u64) -> [Cell; 2] {
    [0, 1].map(|k| {
        let total: u64 = runs[k].iter().map(&faults).sum();
        match (total, failures[k]) {
            (0, 0) => Cell::Text("none".into()),
            (0, f) => Cell::Text(format!("{f} run(s) failed")),
            (n, 0) => Cell::Text(format!("**{n}**")),
            (n, f) => Cell::Text(format!("**{n}**, {f} run(s) failed")),
        }
    })
}

/// Runs `scenario` `runs` times against each server, alternating, a fresh
/// server every time; failures are printed and counted.
fn alternate<T>(
    label: &str,
    runs: usize,
    mut scenario: impl FnMut(Kind) -> Result<T, String>,
    describe: impl Fn(&T) -> String,
) -> (Runs<T>, [usize; 2]) {
    let mut results: Runs<T> = [Vec::new(), Vec::new()];
    let mut failures = [0; 2];
    for run in 1..=runs {
        for (k, kind) in Kind::BOTH.into_iter().enumerate() {
            match scenario(kind) {
                Ok(result) => {
                    eprintln!(
                        "  {label}, {} run {run}: {}",
                        kind.name(),
                        describe(&result)
                    );
                    results[k].push(result);
                }
                Err(e) => {
                    eprintln!("  !! {label}, {} run {run} FAILED: {e}", kind.name());
                    failures[k] += 1;
                }
            }
        }
    }
    (results, failures)
}

// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`. Without it the binary is being run as a
    // test (`cargo test --all-targets`), where a load run has no place.
    if !std::env::args().any(|a| a == "--bench") {
        println!("versus: nothing to do without --bench (run `cargo bench --bench versus`)");
        return;
    }
    let quick = std::env::var("WSCHAT_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    // WSCHAT_BENCH_ONLY=fanout,latency,echo,idle runs only those scenarios.
    let only = std::env::var("WSCHAT_BENCH_ONLY").ok();
    let selected = |name: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    let plan = Plan::new(quick);
    let total = Instant::now();
    let relay = build_relay();
    let fd_limit = raise_fd_limit();
    let base = Instant::now();
    println!(
        "wschat versus a tokio-tungstenite relay{} ({} cores, open-file limit {fd_limit})",
        if quick { " [quick]" } else { "" },
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if selected("fanout") {
        rows.extend(fanout_rows(&plan, &relay, base, &mut notes));
    }
    if selected("latency") {
        rows.extend(latency_rows(&plan, &relay, base, &mut notes));
    }
    if selected("echo") {
        rows.extend(echo_rows(&plan, &relay, base, &mut notes));
    }
    if selected("idle") {
        rows.extend(idle_rows(&plan, &relay, base, &mut notes));
    }

    println!();
    println!(
        "Figures are the median of {} run(s) of each server (idle: 1 run), \
         alternating, a fresh server per run.",
        plan.runs
    );
    println!();
    print_table(&rows);
    if !notes.is_empty() {
        println!();
    }
    for note in &notes {
        println!("{note}");
    }
    println!();
    println!("total bench time {:.0} s", total.elapsed().as_secs_f64());
}

/// Notes "2 run(s) FAILED" for each server with failed runs.
fn note_failures(label: &str, failures: &[usize; 2], notes: &mut Vec<String>) {
    for (kind, &failed) in Kind::BOTH.iter().zip(failures) {
        if failed > 0 {
            notes.push(format!(
                "{label}, {}: {failed} run(s) FAILED (the reasons are above, on stderr)",
                kind.name()
            ));
        }
    }
}

fn fanout_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let f = &plan.fanout;
    eprintln!(
        "fan-out: {} receivers, {} senders ...",
        f.receivers, f.senders
    );
    let (runs, failures) = alternate(
        "fan-out",
        plan.runs,
        |kind| fanout(Server::start(kind, relay, false), f, base),
        |r| {
            let faulty = r.lost + r.duplicated + r.out_of_order > 0;
            format!(
                "{}{:.0} deliveries/s, server {:.2} / bench {:.2} CPU s per million, \
                 lost {} duplicated {} out of order {}",
                if faulty {
                    "!! FRAMES LOST OR MISORDERED: "
                } else {
                    ""
                },
                r.deliveries_per_s,
                r.cpu_per_million,
                r.bench_cpu_per_million,
                r.lost,
                r.duplicated,
                r.out_of_order
            )
        },
    );
    note_failures("fan-out", &failures, notes);
    vec![
        row(
            &runs,
            format!("fan-out {}+{}, deliveries/s", f.receivers, f.senders),
            0,
            |r| r.deliveries_per_s,
        ),
        row(
            &runs,
            "fan-out, server CPU s per million deliveries".into(),
            2,
            |r| r.cpu_per_million,
        ),
        Row {
            scenario: "fan-out, frames lost, duplicated or out of order".into(),
            cells: correctness(&runs, &failures, |r| r.lost + r.duplicated + r.out_of_order),
            decimals: 0,
        },
    ]
}

fn latency_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let l = &plan.latency;
    eprintln!(
        "latency: {} receivers, {}/s for {} s ...",
        l.receivers, l.rate, l.seconds
    );
    let (runs, failures) = alternate(
        "latency",
        plan.runs,
        |kind| latency(Server::start(kind, relay, false), l, base),
        |r| {
            format!(
                "{}p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, lost {}, \
                 bench sent up to {:.2} ms late, used {:.2} cores and \
                 waited {:.0} ms for a CPU",
                if r.lost > 0 { "!! MESSAGES LOST: " } else { "" },
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.lost,
                r.worst_send_lateness_ms,
                r.bench_cores,
                r.bench_queued_ms
            )
        },
    );
    note_failures("latency", &failures, notes);
    vec![
        row(
            &runs,
            format!("latency {} receivers at {}/s, p50 ms", l.receivers, l.rate),
            2,
            |r| r.p50_ms,
        ),
        row(&runs, "latency, p99 ms".into(), 2, |r| r.p99_ms),
        row(&runs, "latency, max ms".into(), 2, |r| r.max_ms),
        row(
            &runs,
            "latency, the bench's own worst send lateness ms".into(),
            2,
            |r| r.worst_send_lateness_ms,
        ),
        Row {
            scenario: "latency, messages lost".into(),
            cells: correctness(&runs, &failures, |r| r.lost),
            decimals: 0,
        },
    ]
}

fn echo_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let e = &plan.echo;
    eprintln!("echo: {} connections ...", e.connections);
    let (runs, failures) = alternate(
        "echo",
        plan.runs,
        |kind| echo(Server::start(kind, relay, false), e, base),
        |r| {
            format!(
                "{}{:.0} round trips/s, p50 {:.3} ms, p99 {:.3} ms, wrong {}, \
                 bench used {:.2} cores",
                if r.wrong > 0 { "!! WRONG ECHOES: " } else { "" },
                r.round_trips_per_s,
                r.p50_ms,
                r.p99_ms,
                r.wrong,
                r.bench_cores
            )
        },
    );
    note_failures("echo", &failures, notes);
    vec![
        row(
            &runs,
            format!("echo {} connections, round trips/s", e.connections),
            0,
            |r| r.round_trips_per_s,
        ),
        row(&runs, "echo, p99 round trip ms".into(), 3, |r| r.p99_ms),
        Row {
            scenario: "echo, wrong or missing echoes".into(),
            cells: correctness(&runs, &failures, |r| r.wrong),
            decimals: 0,
        },
    ]
}

fn idle_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let n = plan.idle_connections;
    eprintln!("idle: {n} connections ...");
    raise_sysctl("vm.max_map_count", 262_144);
    raise_sysctl("kernel.pid_max", 4_194_304);
    let (runs, _) = alternate(
        "idle",
        1,
        |kind| Ok(idle(Server::start(kind, relay, true), n, base)),
        |r| {
            format!(
                "held {} of {}, {} KiB and {} threads per connection, \
                 one message to all in {} ms{}",
                r.held,
                r.wanted,
                r.kib_per_conn.map_or("-".into(), |v| format!("{v:.1}")),
                r.threads_per_conn.map_or("-".into(), |v| format!("{v:.3}")),
                r.broadcast_ms.map_or("-".into(), |v| format!("{v:.1}")),
                r.failure
                    .as_deref()
                    .map_or(String::new(), |f| format!(" -- FAILED: {f}"))
            )
        },
    );
    for (kind, run) in Kind::BOTH.iter().zip(&runs) {
        if let Some(failure) = run.first().and_then(|r| r.failure.as_deref()) {
            notes.push(format!("idle, {}: FAILED: {failure}", kind.name()));
        }
    }
    let cell = |k: usize, figure: fn(&IdleRun) -> Option<f64>| {
        runs[k]
            .first()
            .and_then(figure)
            .map_or(Cell::Failed, Cell::Number)
    };
    vec![
        Row {
            scenario: format!("idle {}, connections held", grouped(n as f64, 0)),
            cells: [0, 1].map(|k| match runs[k].first() {
                Some(r) if r.failure.is_none() => Cell::Text(grouped(r.held as f64, 0)),
                Some(r) => Cell::Text(format!("{} (failed)", grouped(r.held as f64, 0))),
                None => Cell::Failed,
            }),
            decimals: 0,
        },
        Row {
            scenario: "idle, server RSS KiB per connection".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.kib_per_conn)),
            decimals: 1,
        },
        Row {
            scenario: "idle, server threads per connection".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.threads_per_conn)),
            decimals: 3,
        },
        Row {
            scenario: "idle, one message to all, ms".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.broadcast_ms)),
            decimals: 1,
        },
    ]
}
