//! Load figures for a real `wschat` process: raw-mode fan-out throughput and
//! latency with 100 and 1,000 clients in one room, the latency the rest of a
//! room sees while one client floods it, and the memory and thread cost of
//! idle connections held at 1,000 and 5,000.
//!
//! Run with `cargo bench --bench fanout`. `WSCHAT_BENCH_QUICK=1` shrinks every
//! size for a fast smoke run. The method is described in docs/BENCHMARKS.md.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

/// Text payload size in bytes for every measured frame (a typical chat line).
const PAYLOAD_BYTES: usize = 64;
/// How long the bench waits for any phase before declaring the server stalled.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);
/// Read timeout on every client socket: a watchdog, never a pacing device.
const READ_WATCHDOG: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// The server process

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts the release binary on an ephemeral port with caps and rate
    /// limits lifted, plus `extra` options, and reads its `listening on` line.
    fn start(extra: &[&str]) -> Server {
        Server::start_rate_limited("1000000", "1000000", extra)
    }

    /// As `start`, but with the per-connection rate limit set to `rate`
    /// frames per second and bursts of `burst`.
    fn start_rate_limited(rate: &str, burst: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .env("WSCHAT_DB", ":memory:")
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(["--max-connections", "100000"])
            .args(["--max-connections-per-ip", "100000"])
            .args(["--max-handshakes", "1024"])
            .args(["--rate", rate, "--burst", burst])
            .args(["--connect-rate", "1000000", "--connect-burst", "1000000"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wschat");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("wschat listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    fn status_field(&self, key: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("server process is gone");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in /proc status"))
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }

    fn rss_kib(&self) -> usize {
        self.status_field("VmRSS:")
    }

    fn threads(&self) -> usize {
        self.status_field("Threads:")
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }

    fn dispatcher_cpu_seconds(&self) -> f64 {
        dispatcher_cpu_seconds(self.child.id())
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Fails loudly if the server died; used between phases.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("wschat exited during the benchmark: {status}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// CPU time of the server's dispatcher thread (the one that fans out).
fn dispatcher_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains("(dispatcher)"))
        .map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of those, in USER_HZ ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
    (utime + stime) / 100.0
}

/// Connects `n` raw clients to `url` and gives each a thread (small stack)
/// running `body`, which reports on its own clone of `tx`.
fn spawn_receivers<E: Send + 'static>(
    n: usize,
    url: &str,
    addr: &str,
    base: Instant,
    tx: mpsc::Sender<E>,
    body: fn(WebSocket<TcpStream>, Instant, mpsc::Sender<E>),
) -> Vec<thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let ws = connect_raw(url, addr);
            let tx = tx.clone();
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || body(ws, base, tx))
                .expect("spawn receiver thread")
        })
        .collect()
}

/// Opens a raw-mode WebSocket over a plain TCP stream.
fn connect_raw(url: &str, addr: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(READ_WATCHDOG)).unwrap();
    let (ws, _) = tungstenite::client::client(url, stream).expect("websocket handshake");
    ws
}

// ---------------------------------------------------------------------------
// Fan-out

/// Frame payload: `<phase><last> <seq> <send-nanos> ` padded with `x`.
/// Phase `S` is the readiness probe, `B` the unpaced burst, `P` the paced run.
fn payload(phase: u8, last: bool, seq: u64, nanos: u64) -> String {
    let mut s = format!("{}{} {seq} {nanos} ", phase as char, u8::from(last));
    while s.len() < PAYLOAD_BYTES {
        s.push('x');
    }
    s
}

/// What a receiver thread reports back to the driver.
enum Event {
    /// First probe frame seen: this receiver is a member of the room.
    Ready,
    /// The last frame of a phase arrived (order is per sender, so everything
    /// before it has arrived too unless it was dropped).
    PhaseDone {
        phase: u8,
        frames: u64,
        latencies_us: Vec<u32>,
        last_nanos: u64,
    },
    /// The connection ended early (close frame or error).
    Lost(String),
}

fn receiver(mut ws: WebSocket<TcpStream>, base: Instant, events: mpsc::Sender<Event>) {
    let mut ready = false;
    let mut frames = 0u64;
    let mut latencies_us = Vec::new();
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(e) => {
                let _ = events.send(Event::Lost(e.to_string()));
                return;
            }
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(c) => {
                let _ = events.send(Event::Lost(format!("close frame {c:?}")));
                return;
            }
            _ => continue,
        };
        let now = base.elapsed().as_nanos() as u64;
        let bytes = text.as_bytes();
        let (phase, last) = (bytes[0], bytes[1] == b'1');
        if phase == b'S' {
            if !ready {
                ready = true;
                let _ = events.send(Event::Ready);
            }
            continue;
        }
        let mut fields = text.as_str().split(' ');
        let _tag = fields.next();
        let _seq = fields.next();
        let sent: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(now);
        frames += 1;
        latencies_us.push((now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32);
        if last {
            let done = Event::PhaseDone {
                phase,
                frames,
                latencies_us: std::mem::take(&mut latencies_us),
                last_nanos: now,
            };
            frames = 0;
            if events.send(done).is_err() {
                return;
            }
        }
    }
}

struct FanoutRow {
    clients: usize,
    run: String,
    sent: u64,
    expected: u64,
    delivered: u64,
    lost_clients: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU seconds the server and the bench process used during the run.
    server_cpu: f64,
    dispatcher_cpu: f64,
    client_cpu: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// Waits for one `PhaseDone` (or `Lost`) per live receiver and aggregates.
#[allow(clippy::too_many_arguments)]
fn collect_phase(
    events: &mpsc::Receiver<Event>,
    live: &mut usize,
    lost_reasons: &mut Vec<String>,
    phase: u8,
    clients: usize,
    run: String,
    sent: u64,
    first_send_nanos: u64,
) -> FanoutRow {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut pending = *live;
    let mut delivered = 0u64;
    let mut last_nanos = first_send_nanos;
    let mut all = Vec::new();
    let lost_before = lost_reasons.len();
    while pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::PhaseDone {
                phase: p,
                frames,
                latencies_us,
                last_nanos: at,
            }) if p == phase => {
                pending -= 1;
                delivered += frames;
                last_nanos = last_nanos.max(at);
                all.extend(latencies_us);
            }
            Ok(Event::Lost(why)) => {
                pending -= 1;
                *live -= 1;
                lost_reasons.push(why);
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "  !! {clients} clients, {run}: {pending} receivers never saw the last frame \
                     within {PHASE_TIMEOUT:?} (server stalled or dropped frames)"
                );
                break;
            }
        }
    }
    all.sort_unstable();
    FanoutRow {
        clients,
        run,
        sent,
        expected: sent * (clients as u64),
        delivered,
        lost_clients: lost_reasons.len() - lost_before,
        seconds: (last_nanos - first_send_nanos) as f64 / 1e9,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
        server_cpu: 0.0,
        dispatcher_cpu: 0.0,
        client_cpu: 0.0,
    }
}

struct FanoutPlan {
    clients: usize,
    burst_frames: u64,
    paced_rate: u64,
    paced_seconds: f64,
}

fn fanout(plan: &FanoutPlan, rows: &mut Vec<FanoutRow>) {
    // Per-client queues are made deep enough for the whole burst, so that it
    // measures throughput rather than the slow-consumer policy.
    let queue_frames = (plan.burst_frames as usize + 64).max(1024).to_string();
    let mut server = Server::start(&["--queue-frames", &queue_frames]);
    let url = server.url("/ws?room=bench");
    let base = Instant::now();
    let (tx, events) = mpsc::channel();

    let connect_start = Instant::now();
    let handles = spawn_receivers(plan.clients, &url, &server.addr, base, tx, receiver);
    let mut sender = connect_raw(&url, &server.addr);
    let connect_secs = connect_start.elapsed().as_secs_f64();

    // Readiness: probe until every receiver has seen one relayed frame, so no
    // measured frame can race a join.
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut ready = 0;
    let mut live = plan.clients;
    let mut lost_reasons = Vec::new();
    while ready < live {
        assert!(Instant::now() < deadline, "receivers never joined the room");
        sender
            .send(Message::text(payload(b'S', false, 0, 0)))
            .unwrap();
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(ev) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
            match ev {
                Event::Ready => ready += 1,
                Event::Lost(why) => {
                    live -= 1;
                    lost_reasons.push(why);
                }
                Event::PhaseDone { .. } => {}
            }
        }
    }
    eprintln!(
        "  {} clients connected and joined in {:.2} s",
        plan.clients, connect_secs
    );

    // Unpaced burst: send as fast as the socket takes frames.
    let cpu = (
        server.cpu_seconds(),
        cpu_seconds("self"),
        server.dispatcher_cpu_seconds(),
    );
    let first = base.elapsed().as_nanos() as u64;
    for seq in 0..plan.burst_frames {
        let now = base.elapsed().as_nanos() as u64;
        let last = seq + 1 == plan.burst_frames;
        sender
            .send(Message::text(payload(b'B', last, seq, now)))
            .unwrap();
    }
    let mut row = collect_phase(
        &events,
        &mut live,
        &mut lost_reasons,
        b'B',
        plan.clients,
        "burst".into(),
        plan.burst_frames,
        first,
    );
    row.server_cpu = server.cpu_seconds() - cpu.0;
    row.client_cpu = cpu_seconds("self") - cpu.1;
    row.dispatcher_cpu = server.dispatcher_cpu_seconds() - cpu.2;
    rows.push(row);
    server.check_alive();

    // Paced run: a fixed send schedule well under what the burst sustained.
    let frames = ((plan.paced_rate as f64) * plan.paced_seconds).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / plan.paced_rate as f64);
    let start = Instant::now();
    let cpu = (
        server.cpu_seconds(),
        cpu_seconds("self"),
        server.dispatcher_cpu_seconds(),
    );
    let first = base.elapsed().as_nanos() as u64;
    for seq in 0..frames {
        let at = start + interval * seq as u32;
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
        let nanos = base.elapsed().as_nanos() as u64;
        let last = seq + 1 == frames;
        sender
            .send(Message::text(payload(b'P', last, seq, nanos)))
            .unwrap();
    }
    let mut row = collect_phase(
        &events,
        &mut live,
        &mut lost_reasons,
        b'P',
        plan.clients,
        format!("paced {}/s", plan.paced_rate),
        frames,
        first,
    );
    row.server_cpu = server.cpu_seconds() - cpu.0;
    row.client_cpu = cpu_seconds("self") - cpu.1;
    row.dispatcher_cpu = server.dispatcher_cpu_seconds() - cpu.2;
    rows.push(row);
    server.check_alive();

    for why in lost_reasons.iter().take(5) {
        eprintln!("  !! receiver lost: {why}");
    }
    // Ending the server ends every receiver (EOF or reset).
    drop(sender);
    drop(server);
    for h in handles {
        let _ = h.join();
    }
}

// ---------------------------------------------------------------------------
// Flood: does one client flooding a room slow everyone else down?

/// The rate limit of the flood runs: the production defaults (20/s, bursts
/// of 60) raised so that the honest sender, at `FloodPlan::rate`, is never
/// limited.
const FLOOD_RATE: u64 = 200;
const FLOOD_BURST: u64 = 400;
/// The flooder's own address: a client apart from the honest ones, so that
/// the server's ban of the flooder's address touches nobody else.
const FLOODER_IP: &str = "127.0.0.2";

/// Pause between the flooder's attempts while its address is refused.
const FLOOD_RETRY: Duration = Duration::from_millis(10);

/// Opens a TCP connection to `addr` from the local address `from`.
fn connect_from(addr: &str, from: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let to: std::net::SocketAddr = addr.parse().expect("server address");
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&local.into()).expect("bind flooder address");
    socket.connect(&to.into()).expect("tcp connect");
    socket.into()
}

/// Frames per write of the flooder: one `write` system call each.
const FLOOD_BATCH: usize = 64;
/// The v1 flooder's frame.
const V1_FLOOD_FRAME: &str = r#"{"type":"message","text":"x"}"#;

struct FloodPlan {
    receivers: usize,
    /// Frames per second of the honest sender.
    rate: u64,
    seconds: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Flooder {
    Raw,
    V1,
}

/// What a receiver thread of the flood runs reports back.
enum RoundEvent {
    Ready,
    /// The round ended for this receiver: its fence arrived (every frame the
    /// server accepted before the fence has been delivered, or dropped), or
    /// its connection ended (`lost` says how).
    Done {
        tally: Tally,
        lost: Option<String>,
    },
}

/// What one receiver got in one round.
#[derive(Default)]
struct Tally {
    honest: u64,
    latencies_us: Vec<u32>,
    flood: u64,
}

/// Honest frames are `H0 …` (the `payload` format), probes `S0 …`, the fence
/// ending a round `E0 …`; anything else comes from the flooder.
fn round_receiver(mut ws: WebSocket<TcpStream>, base: Instant, events: mpsc::Sender<RoundEvent>) {
    let mut ready = false;
    let mut tally = Tally::default();
    loop {
        let lost = match ws.read() {
            Ok(Message::Text(t)) => Ok(t),
            Ok(Message::Close(Some(c))) => {
                Err(format!("closed {} {}", u16::from(c.code), c.reason))
            }
            Ok(Message::Close(None)) => Err("closed without a code".to_string()),
            Ok(_) => continue,
            Err(e) => Err(e.to_string()),
        };
        let text = match lost {
            Ok(text) => text,
            Err(why) => {
                let _ = events.send(RoundEvent::Done {
                    tally,
                    lost: Some(why),
                });
                return;
            }
        };
        let now = base.elapsed().as_nanos() as u64;
        match text.as_bytes().get(..3) {
            Some(b"S0 ") => {
                if !ready {
                    ready = true;
                    let _ = events.send(RoundEvent::Ready);
                }
            }
            Some(b"H0 ") => {
                let sent: u64 = text
                    .as_str()
                    .split(' ')
                    .nth(2)
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(now);
                tally.honest += 1;
                let us = (now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32;
                tally.latencies_us.push(us);
            }
            Some(b"E0 ") => {
                let done = RoundEvent::Done {
                    tally: std::mem::take(&mut tally),
                    lost: None,
                };
                if events.send(done).is_err() {
                    return;
                }
            }
            _ => tally.flood += 1,
        }
    }
}

/// A short client-to-server frame (FIN set), masked as RFC 6455 requires.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x5a, 0x13, 0xc7, 0x2e];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// Opens `path` with a hand-written upgrade request, so that nothing the
/// server sends after its 101 response is consumed here.
fn bot_handshake(stream: &mut TcpStream, host: &str, path: &str, v1: bool) -> io::Result<()> {
    let protocol = if v1 {
        "Sec-WebSocket-Protocol: wschat.v1\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 || stream.read(&mut byte)? == 0 {
            return Err(io::Error::other("no complete handshake response"));
        }
        head.push(byte[0]);
    }
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
    let mut head = [0u8; 2];
    input.read_exact(&mut head)?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            input.read_exact(&mut l)?;
            u64::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            input.read_exact(&mut l)?;
            u64::from_be_bytes(l)
        }
        n => u64::from(n),
    };
    let opcode = head[0] & 0x0f;
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
fn bot_reader(stream: TcpStream) -> Result<String, String> {
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
struct FloodStats {
    /// Whole frames the kernel accepted from the flooder.
    sent: u64,
    connections: u64,
    /// How each connection ended, with counts ("1008 flooding": 17, …).
    endings: BTreeMap<String, u64>,
    seconds: f64,
}

impl FloodStats {
    fn closed_flooding(&self) -> u64 {
        self.endings.get("1008 flooding").copied().unwrap_or(0)
    }
}

/// Floods `/ws?room=bench` until `stop`, writing frames as fast as the socket
/// takes them and reconnecting at once whenever the server ends the
/// connection, as a bot would. Reports on `started` after its first
/// handshake. Before it returns, its last connection has ended (the server
/// answered its close frame, or closed it), so nothing it sent can still
/// reach the room.
fn run_flooder(
    addr: &str,
    kind: Flooder,
    stop: &AtomicBool,
    started: mpsc::Sender<()>,
) -> FloodStats {
    let frame = match kind {
        Flooder::Raw => masked_frame(
            0x1,
            format!("flood {}", "x".repeat(PAYLOAD_BYTES - 6)).as_bytes(),
        ),
        Flooder::V1 => masked_frame(0x1, V1_FLOOD_FRAME.as_bytes()),
    };
    let batch = frame.repeat(FLOOD_BATCH);
    let mut stats = FloodStats::default();
    let start = Instant::now();
    let mut started = Some(started);
    while !stop.load(Ordering::Relaxed) {
        // A fresh name each time: the last one may not have left yet.
        let path = format!("/ws?room=bench&name=flood-{}", stats.connections);
        let mut stream = connect_from(addr, FLOODER_IP);
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_WATCHDOG)).unwrap();
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

struct FloodRow {
    run: String,
    sent: u64,
    expected: u64,
    delivered: u64,
    lost_clients: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu: f64,
    flood: Option<FloodStats>,
    /// The most flood frames any receiver got.
    reached: u64,
    /// How the honest sender's connection ended, if it did during the round.
    sender_closed: Option<String>,
}

/// Connects to `url`, sends the fence that ends a round and closes.
fn send_fence(url: &str, addr: &str) {
    let mut ws = connect_raw(url, addr);
    ws.send(Message::text(payload(b'E', false, 0, 0)))
        .expect("send fence");
    let _ = ws.close(None);
    while ws.read().is_ok() {}
}

/// The flood runs on a fresh server: `plan.receivers` raw receivers and an
/// honest paced sender in one room, first alone (baseline), then with a
/// flooder of `kind` in the same room.
fn flood_runs(plan: &FloodPlan, kind: Flooder, rows: &mut Vec<FloodRow>) {
    let mut server =
        Server::start_rate_limited(&FLOOD_RATE.to_string(), &FLOOD_BURST.to_string(), &[]);
    let url = server.url("/ws?room=bench");
    let base = Instant::now();
    let (tx, events) = mpsc::channel();
    let handles = spawn_receivers(plan.receivers, &url, &server.addr, base, tx, round_receiver);
    let mut sender = connect_raw(&url, &server.addr);
    // The honest sender is relayed the flood like everyone else: this thread
    // reads and discards it, and reports how the connection ended.
    let (sender_end_tx, sender_end) = mpsc::channel();
    let drain = {
        let s = sender.get_ref().try_clone().unwrap();
        thread::spawn(move || {
            let end = bot_reader(s).unwrap_or_else(|e| e);
            let _ = sender_end_tx.send(end);
        })
    };

    let deadline = Instant::now() + PHASE_TIMEOUT;
    let (mut ready, mut live) = (0, plan.receivers);
    let mut lost_reasons = Vec::new();
    while ready < live {
        assert!(Instant::now() < deadline, "receivers never joined the room");
        sender
            .send(Message::text(payload(b'S', false, 0, 0)))
            .unwrap();
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(ev) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
            match ev {
                RoundEvent::Ready => ready += 1,
                RoundEvent::Done {
                    lost: Some(why), ..
                } => {
                    live -= 1;
                    lost_reasons.push(why);
                }
                RoundEvent::Done { .. } => {}
            }
        }
    }

    let label = match kind {
        Flooder::Raw => "raw flood",
        Flooder::V1 => "v1 flood",
    };
    for flooder in [None, Some(kind)] {
        let frames = ((plan.rate as f64) * plan.seconds).round() as u64;
        let interval = Duration::from_secs_f64(1.0 / plan.rate as f64);
        let stop = AtomicBool::new(false);
        let live_before = live;
        let lost_before = lost_reasons.len();
        let cpu = server.cpu_seconds();
        let (flood_stats, sent) = thread::scope(|scope| {
            let flooding = flooder.map(|kind| {
                let (tx, started) = mpsc::channel();
                let (addr, stop) = (&server.addr, &stop);
                let h = scope.spawn(move || run_flooder(addr, kind, stop, tx));
                started
                    .recv_timeout(PHASE_TIMEOUT)
                    .expect("flooder never connected");
                h
            });
            let mut sent = 0;
            let start = Instant::now();
            for seq in 0..frames {
                let at = start + interval * seq as u32;
                let now = Instant::now();
                if at > now {
                    thread::sleep(at - now);
                }
                let nanos = base.elapsed().as_nanos() as u64;
                if let Err(e) = sender.send(Message::text(payload(b'H', false, seq, nanos))) {
                    eprintln!("  !! {label}: honest sender failed after {sent} frames: {e}");
                    break;
                }
                sent += 1;
            }
            stop.store(true, Ordering::Relaxed);
            (flooding.map(|h| h.join().unwrap()), sent)
        });
        // The fence comes from a fresh connection, after the flooder's last
        // connection has ended, so it follows every frame the server accepted
        // in this round, even if the honest sender has been closed.
        send_fence(&url, &server.addr);
        let deadline = Instant::now() + PHASE_TIMEOUT;
        let mut pending = live;
        let (mut delivered, mut reached) = (0u64, 0u64);
        let mut all = Vec::new();
        while pending > 0 {
            match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(RoundEvent::Done { tally, lost }) => {
                    pending -= 1;
                    delivered += tally.honest;
                    all.extend(tally.latencies_us);
                    reached = reached.max(tally.flood);
                    if let Some(why) = lost {
                        live -= 1;
                        lost_reasons.push(why);
                    }
                }
                Ok(RoundEvent::Ready) => {}
                Err(_) => {
                    eprintln!(
                        "  !! {label}: {pending} receivers never saw the fence within \
                         {PHASE_TIMEOUT:?} (server stalled or dropped frames)"
                    );
                    break;
                }
            }
        }
        all.sort_unstable();
        let sender_closed = sender_end.try_recv().ok();
        rows.push(FloodRow {
            run: flooder.map_or("baseline", |_| label).into(),
            sent,
            expected: sent * live_before as u64,
            delivered,
            lost_clients: lost_reasons.len() - lost_before,
            p50_ms: percentile(&all, 0.50),
            p99_ms: percentile(&all, 0.99),
            max_ms: all.last().map_or(f64::NAN, |&v| v as f64 / 1000.0),
            server_cpu: server.cpu_seconds() - cpu,
            flood: flood_stats,
            reached,
            sender_closed: sender_closed.clone(),
        });
        server.check_alive();
        if let Some(end) = sender_closed {
            eprintln!("  !! {label}: the honest sender's connection ended: {end}");
            break;
        }
    }

    let mut reasons = BTreeMap::<&str, usize>::new();
    for why in &lost_reasons {
        *reasons.entry(why).or_default() += 1;
    }
    for (why, n) in reasons {
        eprintln!("  !! {label}: {n} receivers lost: {why}");
    }
    drop(sender);
    drop(server);
    let _ = drain.join();
    for h in handles {
        let _ = h.join();
    }
}

fn print_flood_table(plan: &FloodPlan, rows: &[FloodRow]) {
    println!(
        "Flood, raw receivers in one room, {} of them, honest raw sender {}/s for {} s, \
         --rate {FLOOD_RATE} --burst {FLOOD_BURST}",
        plan.receivers, plan.rate, plan.seconds
    );
    println!(
        "{:<10} {:>5} {:>8} {:>7} {:>4} {:>7} {:>7} {:>7} {:>8} {:>10} {:>6} {:>6} {:>8} {:>10}",
        "run",
        "sent",
        "deliv'd",
        "missing",
        "lost",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv cpu",
        "flood sent",
        "conns",
        "1008",
        "reached",
        "rate*s+brst"
    );
    for r in rows {
        let flood = match &r.flood {
            Some(f) => format!(
                "{:>10} {:>6} {:>6} {:>8} {:>10}",
                f.sent,
                f.connections,
                f.closed_flooding(),
                r.reached,
                (FLOOD_RATE as f64 * f.seconds) as u64 + FLOOD_BURST
            ),
            None => format!("{:>10} {:>6} {:>6} {:>8} {:>10}", "-", "-", "-", "-", "-"),
        };
        println!(
            "{:<10} {:>5} {:>8} {:>7} {:>4} {:>7.2} {:>7.2} {:>7.1} {:>7.2}s {flood}",
            r.run,
            r.sent,
            r.delivered,
            r.expected - r.delivered,
            r.lost_clients,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.server_cpu,
        );
    }
    for r in rows {
        if let Some(f) = &r.flood {
            let endings: Vec<String> = f
                .endings
                .iter()
                .map(|(k, n)| format!("{n} x {k}"))
                .collect();
            println!(
                "{}: flooder connections ended: {}",
                r.run,
                endings.join(", ")
            );
        }
        if let Some(end) = &r.sender_closed {
            println!("{}: the honest sender's connection ended: {end}", r.run);
        }
    }
}

// ---------------------------------------------------------------------------
// Idle connections

struct IdleRow {
    connections: usize,
    rss_kib: usize,
    delta_kib: usize,
    per_conn_kib: f64,
    threads: usize,
    fds: usize,
    handshakes_per_s: f64,
}

/// Waits for the server to have `want` fds open, then for its thread count
/// and RSS to stop moving (no event reports either, so /proc is polled).
fn settle(server: &Server, want: usize) {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    while server.fds() < want {
        assert!(
            Instant::now() < deadline,
            "server holds {} fds, expected at least {want}",
            server.fds()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let mut prev = (server.threads(), server.rss_kib());
    loop {
        thread::sleep(Duration::from_millis(250));
        let now = (server.threads(), server.rss_kib());
        if now == prev || Instant::now() > deadline {
            return;
        }
        prev = now;
    }
}

fn idle(levels: &[usize]) -> (usize, usize, Vec<IdleRow>) {
    // Pings are pushed far out: idle clients here never read, so they would
    // never answer one, and that is not what is being measured.
    let mut server = Server::start(&["--ping-interval", "3600"]);
    let url = server.url("/ws?room=idle");
    let base_fds = server.fds();
    settle(&server, base_fds);
    let base_rss = server.rss_kib();
    let base_threads = server.threads();
    let mut held: Vec<WebSocket<TcpStream>> = Vec::with_capacity(*levels.last().unwrap());
    let mut rows = Vec::new();
    for &n in levels {
        let started = Instant::now();
        let added = n - held.len();
        while held.len() < n {
            held.push(connect_raw(&url, &server.addr));
        }
        let handshakes_per_s = added as f64 / started.elapsed().as_secs_f64();
        settle(&server, base_fds + n);
        server.check_alive();
        let rss = server.rss_kib();
        let delta = rss.saturating_sub(base_rss);
        rows.push(IdleRow {
            connections: n,
            rss_kib: rss,
            delta_kib: delta,
            per_conn_kib: delta as f64 / n as f64,
            threads: server.threads(),
            fds: server.fds(),
            handshakes_per_s,
        });
    }
    drop(server);
    drop(held);
    (base_rss, base_threads, rows)
}

// ---------------------------------------------------------------------------
// Pure parsing and encoding, in process

/// Runs `f` repeatedly for about `budget` and returns nanoseconds per call.
fn ns_per_op(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            f();
        }
        ops += 1000;
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn micro(budget: Duration) -> Vec<(&'static str, f64)> {
    use std::hint::black_box;
    use wschat::protocol::{Event, encode, file_frame, parse_command, parse_file_header};
    let frame = r#"{"type":"message","text":"hello everyone, the build is green again"}"#;
    let file = file_frame("holiday-photo.png", &[0u8; 1024]);
    vec![
        (
            "parse_command (v1 message frame)",
            ns_per_op(budget, || {
                black_box(parse_command(black_box(frame)).is_ok());
            }),
        ),
        (
            "encode (v1 message event)",
            ns_per_op(budget, || {
                black_box(encode(black_box(&Event::Message {
                    id: 58,
                    room: "lobby",
                    from: "alice",
                    text: "hello everyone, the build is green again",
                    ts: 1_764_028_800_000,
                    cid: None,
                    replay: false,
                })));
            }),
        ),
        (
            "parse_file_header (raw file frame)",
            ns_per_op(budget, || {
                black_box(parse_file_header(black_box(&file)).is_ok());
            }),
        ),
        (
            "metrics: one client's send (count, depth)",
            ns_per_op(budget, || {
                wschat::metrics::get().delivered(black_box(1));
                wschat::metrics::get().queue_depth(black_box(3));
            }),
        ),
        (
            "metrics: one fan-out timed",
            ns_per_op(budget, || {
                drop(black_box(wschat::metrics::get().fanout_timer()));
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`. Without it the binary is being run as a
    // test (`cargo test --all-targets`), where a load run has no place.
    if !std::env::args().any(|a| a == "--bench") {
        println!("fanout: nothing to do without --bench (run `cargo bench --bench fanout`)");
        return;
    }
    let quick = std::env::var("WSCHAT_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    let plans = if quick {
        vec![
            FanoutPlan {
                clients: 20,
                burst_frames: 500,
                paced_rate: 100,
                paced_seconds: 1.0,
            },
            FanoutPlan {
                clients: 200,
                burst_frames: 100,
                paced_rate: 20,
                paced_seconds: 1.0,
            },
        ]
    } else {
        vec![
            FanoutPlan {
                clients: 100,
                burst_frames: 10000,
                paced_rate: 100,
                paced_seconds: 5.0,
            },
            FanoutPlan {
                clients: 1000,
                burst_frames: 300,
                paced_rate: 10,
                paced_seconds: 5.0,
            },
        ]
    };
    let idle_levels: &[usize] = if quick { &[200, 1000] } else { &[1000, 5000] };
    let flood_plan = FloodPlan {
        receivers: if quick { 20 } else { 100 },
        rate: 100,
        seconds: if quick { 1.0 } else { 5.0 },
    };

    let total = Instant::now();
    println!(
        "wschat benchmark{} ({} cores)",
        if quick { " [quick]" } else { "" },
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    let micro_rows = micro(Duration::from_millis(if quick { 50 } else { 300 }));
    let mut rows = Vec::new();
    for plan in &plans {
        eprintln!("fan-out, {} receivers ...", plan.clients);
        fanout(plan, &mut rows);
    }
    let mut flood_rows = Vec::new();
    for kind in [Flooder::Raw, Flooder::V1] {
        eprintln!("flood, {} receivers ...", flood_plan.receivers);
        flood_runs(&flood_plan, kind, &mut flood_rows);
    }
    eprintln!("idle connections ...");
    let (base_rss, base_threads, idle_rows) = idle(idle_levels);

    println!();
    println!("Fan-out, raw mode, one room, 1 sender, {PAYLOAD_BYTES}-byte text frames");
    println!(
        "{:>7}  {:<12} {:>5} {:>8} {:>7} {:>4} {:>6} {:>12} {:>7} {:>7} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "clients",
        "run",
        "sent",
        "deliv'd",
        "missing",
        "lost",
        "secs",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv cpu",
        "disp cpu",
        "bench cpu",
        "srv us/d"
    );
    for r in &rows {
        println!(
            "{:>7}  {:<12} {:>5} {:>8} {:>7} {:>4} {:>6.2} {:>12.0} {:>7.2} {:>7.2} {:>7.1} {:>7.2}s {:>7.2}s {:>8.2}s {:>8.2}",
            r.clients,
            r.run,
            r.sent,
            r.delivered,
            r.expected - r.delivered,
            r.lost_clients,
            r.seconds,
            r.delivered as f64 / r.seconds,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.server_cpu,
            r.dispatcher_cpu,
            r.client_cpu,
            r.server_cpu * 1e6 / r.delivered.max(1) as f64
        );
    }
    println!();
    print_flood_table(&flood_plan, &flood_rows);
    println!();
    println!(
        "Idle raw connections (server baseline: RSS {:.1} MiB, {base_threads} threads)",
        base_rss as f64 / 1024.0
    );
    println!(
        "{:>11} {:>12} {:>14} {:>10} {:>8} {:>7} {:>13}",
        "connections", "RSS MiB", "RSS-base MiB", "KiB/conn", "threads", "fds", "handshakes/s"
    );
    for r in &idle_rows {
        println!(
            "{:>11} {:>12.1} {:>14.1} {:>10.1} {:>8} {:>7} {:>13.0}",
            r.connections,
            r.rss_kib as f64 / 1024.0,
            r.delta_kib as f64 / 1024.0,
            r.per_conn_kib,
            r.threads,
            r.fds,
            r.handshakes_per_s
        );
    }
    println!();
    println!("Parsing, encoding and metrics, in process, one thread");
    println!("{:<36} {:>10} {:>14}", "operation", "ns/op", "ops/s");
    for (name, ns) in &micro_rows {
        println!("{name:<36} {ns:>10.1} {:>14.0}", 1e9 / ns);
    }
    println!();
    println!("total bench time {:.1} s", total.elapsed().as_secs_f64());
}
