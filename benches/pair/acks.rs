//! The other honest pair: two v1 senders in room `quiet`, from 127.0.0.3
//! and 127.0.0.4, each speaking every `TICK` and timing its own
//! acknowledgement (its copy of the message, sent once the store has
//! committed it), while a storm runs beside them.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::{TICK, next_json};

/// How long the pair is timed, alone or during a storm.
pub const PHASE: Duration = Duration::from_secs(4);

/// A wschat.v1 WebSocket to `path` from the loopback address `from`.
pub fn v1_from(addr: &str, path: &str, from: &str) -> WebSocket<TcpStream> {
    let server: SocketAddr = addr.parse().unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&server.into()).unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "wschat.v1".parse().unwrap());
    tungstenite::client(request, tcp).expect("handshake").0
}

/// One of the pair: a message every `TICK`, each after the last one's
/// acknowledgement, until `stop`; returns the acknowledgements' latencies
/// in µs.
fn chat(addr: &str, name: &str, from: &str, stop: &AtomicBool) -> Vec<u64> {
    let mut ws = v1_from(addr, &format!("/ws?room=quiet&name={name}"), from);
    next_json(&mut ws);
    let mut lat = Vec::new();
    let mut next = Instant::now();
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cid = format!("{name}-{k}");
        let sent = Instant::now();
        ws.send(Message::text(
            json!({"type": "message", "text": k.to_string(), "cid": cid}).to_string(),
        ))
        .unwrap();
        while next_json(&mut ws)["cid"] != cid.as_str() {}
        lat.push(sent.elapsed().as_micros() as u64);
        k += 1;
        next += TICK;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    lat
}

/// Times the pair for `PHASE`, while `during` runs beside it until the
/// flag it is given is set; returns the latencies in µs, sorted.
pub fn time_pair(addr: &str, during: impl FnOnce(&AtomicBool) + Send) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let sides: Vec<_> = [("alice", "127.0.0.3"), ("bob", "127.0.0.4")]
        .into_iter()
        .map(|(name, from)| {
            let (addr, stop) = (addr.to_owned(), stop.clone());
            thread::spawn(move || chat(&addr, name, from, &stop))
        })
        .collect();
    let until = Instant::now() + PHASE;
    let storming = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| during(&storming));
        thread::sleep(until.saturating_duration_since(Instant::now()));
        storming.store(true, Ordering::Relaxed);
    });
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u64> = sides.into_iter().flat_map(|s| s.join().unwrap()).collect();
    lat.sort_unstable();
    lat
}
