//! Flood: does one client flooding a room slow everyone else down? Raw
//! receivers and an honest paced sender in one room, first alone, then with
//! a flooder (see `flooder`) that reconnects whenever it is closed, as a
//! bot would.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::clients::{
    PHASE_TIMEOUT, Readiness, check_alive, connect_raw, payload, percentile, spawn_receivers,
    start_rate_limited, wait_ready, wait_slot,
};
use crate::cpu::cpu_seconds;
use crate::flooder::{FloodStats, Flooder, bot_reader, run_flooder};
use crate::server::Server;

/// The rate limit of the flood runs: the production defaults (20/s, bursts
/// of 60) raised so that the honest sender, at `FloodPlan::rate`, is never
/// limited.
const FLOOD_RATE: u64 = 200;
const FLOOD_BURST: u64 = 400;
pub struct FloodPlan {
    pub receivers: usize,
    /// Frames per second of the honest sender.
    pub rate: u64,
    pub seconds: f64,
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

pub struct FloodRow {
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
pub fn flood_runs(plan: &FloodPlan, kind: Flooder, rows: &mut Vec<FloodRow>) {
    let mut server = start_rate_limited(&FLOOD_RATE.to_string(), &FLOOD_BURST.to_string(), &[]);
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

    let mut live = plan.receivers;
    let mut lost_reasons = Vec::new();
    let readiness = |ev| match ev {
        RoundEvent::Ready => Readiness::Ready,
        RoundEvent::Done {
            lost: Some(why), ..
        } => Readiness::Lost(why),
        RoundEvent::Done { .. } => Readiness::Other,
    };
    wait_ready(
        &mut sender,
        &events,
        readiness,
        &mut live,
        &mut lost_reasons,
    );

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
        let cpu = server_cpu(&server);
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
                wait_slot(start, interval, seq);
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
            server_cpu: server_cpu(&server) - cpu,
            flood: flood_stats,
            reached,
            sender_closed: sender_closed.clone(),
        });
        check_alive(&mut server);
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

pub fn print_flood_table(plan: &FloodPlan, rows: &[FloodRow]) {
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

/// CPU seconds the server has used so far.
fn server_cpu(server: &Server) -> f64 {
    cpu_seconds(&server.pid().to_string())
}
