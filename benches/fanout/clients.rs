//! What every scenario of the bench shares: the server it starts, its raw
//! clients, the frames they exchange, and the wait until all are in.

use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::server::Server;

/// Text payload size in bytes for every measured frame (a typical chat line).
pub const PAYLOAD_BYTES: usize = 64;
/// How long the bench waits for any phase before declaring the server stalled.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(60);
/// Read timeout on every client socket: a watchdog, never a pacing device.
pub const READ_WATCHDOG: Duration = Duration::from_secs(90);

/// Starts the release binary on an ephemeral port with caps and rate limits
/// lifted, plus `extra` options.
pub fn start(extra: &[&str]) -> Server {
    start_rate_limited("1000000", "1000000", extra)
}

/// As `start`, but with the per-connection rate limit set to `rate` frames
/// per second and bursts of `burst`.
pub fn start_rate_limited(rate: &str, burst: &str, extra: &[&str]) -> Server {
    let lifted = [
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "100000",
        "--max-handshakes",
        "1024",
        "--rate",
        rate,
        "--burst",
        burst,
        "--connect-rate",
        "1000000",
        "--connect-burst",
        "1000000",
        // Every client is on 127.0.0.1: one address's store rate would
        // bind before anything measured here.
        "--store-rate",
        "0",
    ];
    Server::start(&[&lifted, extra].concat())
}

/// Fails loudly if the server died; used between phases.
pub fn check_alive(server: &mut Server) {
    if let Some(status) = server.exited() {
        panic!("wschat exited during the benchmark: {status}");
    }
}

/// Connects `n` raw clients to `url` and gives each a thread (small stack)
/// running `body`, which reports on its own clone of `tx`.
pub fn spawn_receivers<E: Send + 'static>(
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
pub fn connect_raw(url: &str, addr: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(READ_WATCHDOG)).unwrap();
    let (ws, _) = tungstenite::client::client(url, stream).expect("websocket handshake");
    ws
}

/// Frame payload: `<phase><last> <seq> <send-nanos> ` padded with `x`.
/// Phase `S` is the readiness probe, `B` the unpaced burst, `P` the paced
/// run, `H` the honest sender of a flood run and `E` the fence ending one.
pub fn payload(phase: u8, last: bool, seq: u64, nanos: u64) -> String {
    let mut s = format!("{}{} {seq} {nanos} ", phase as char, u8::from(last));
    while s.len() < PAYLOAD_BYTES {
        s.push('x');
    }
    s
}

/// Sleeps until frame `seq` of a schedule of one frame every `interval`
/// from `start` is due (at once if it is late): an open-loop sender.
pub fn wait_slot(start: Instant, interval: Duration, seq: u64) {
    let at = start + interval * seq as u32;
    let now = Instant::now();
    if at > now {
        thread::sleep(at - now);
    }
}

/// What a receiver's report says of its membership of the room.
pub enum Readiness {
    /// It has seen a probe: it is in the room.
    Ready,
    /// Its connection ended, for this reason.
    Lost(String),
    /// Something else.
    Other,
}

/// Sends probes (phase `S`) from `sender` until every receiver still
/// connected has seen one relayed, so that no measured frame can race a
/// join. `live` counts the receivers still connected; the reasons of those
/// lost go to `lost_reasons`.
pub fn wait_ready<E>(
    sender: &mut WebSocket<TcpStream>,
    events: &mpsc::Receiver<E>,
    readiness: impl Fn(E) -> Readiness,
    live: &mut usize,
    lost_reasons: &mut Vec<String>,
) {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut ready = 0;
    while ready < *live {
        assert!(Instant::now() < deadline, "receivers never joined the room");
        sender
            .send(Message::text(payload(b'S', false, 0, 0)))
            .unwrap();
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(ev) = events.recv_timeout(until.saturating_duration_since(Instant::now())) {
            match readiness(ev) {
                Readiness::Ready => ready += 1,
                Readiness::Lost(why) => {
                    *live -= 1;
                    lost_reasons.push(why);
                }
                Readiness::Other => {}
            }
        }
    }
}

/// The `p` quantile of sorted µs, in ms; NaN when there are none.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}
