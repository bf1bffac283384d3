//! Fan-out: raw receivers in one room, one sender; an unpaced burst for
//! throughput, then a paced run for latency.

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::clients::{
    PAYLOAD_BYTES, PHASE_TIMEOUT, Readiness, check_alive, connect_raw, payload, percentile,
    spawn_receivers, start, wait_ready, wait_slot,
};
use crate::cpu::{cpu_seconds, thread_cpu_seconds};
use crate::server::Server;

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

pub struct FanoutRow {
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

pub struct FanoutPlan {
    pub clients: usize,
    pub burst_frames: u64,
    pub paced_rate: u64,
    pub paced_seconds: f64,
}

pub fn fanout(plan: &FanoutPlan, rows: &mut Vec<FanoutRow>) {
    // Per-client queues are made deep enough for the whole burst, so that it
    // measures throughput rather than the slow-consumer policy.
    let queue_frames = (plan.burst_frames as usize + 64).max(1024).to_string();
    let mut server = start(&["--queue-frames", &queue_frames]);
    let url = server.url("/ws?room=bench");
    let base = Instant::now();
    let (tx, events) = mpsc::channel();

    let connect_start = Instant::now();
    let handles = spawn_receivers(plan.clients, &url, &server.addr, base, tx, receiver);
    let mut sender = connect_raw(&url, &server.addr);
    let connect_secs = connect_start.elapsed().as_secs_f64();

    let mut live = plan.clients;
    let mut lost_reasons = Vec::new();
    let readiness = |ev| match ev {
        Event::Ready => Readiness::Ready,
        Event::Lost(why) => Readiness::Lost(why),
        Event::PhaseDone { .. } => Readiness::Other,
    };
    wait_ready(
        &mut sender,
        &events,
        readiness,
        &mut live,
        &mut lost_reasons,
    );
    eprintln!(
        "  {} clients connected and joined in {:.2} s",
        plan.clients, connect_secs
    );

    // Unpaced burst: send as fast as the socket takes frames.
    let cpu = cpu_now(&server);
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
    [row.server_cpu, row.client_cpu, row.dispatcher_cpu] = cpu_since(&server, cpu);
    rows.push(row);
    check_alive(&mut server);

    // Paced run: a fixed send schedule well under what the burst sustained.
    let frames = ((plan.paced_rate as f64) * plan.paced_seconds).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / plan.paced_rate as f64);
    let start = Instant::now();
    let cpu = cpu_now(&server);
    let first = base.elapsed().as_nanos() as u64;
    for seq in 0..frames {
        wait_slot(start, interval, seq);
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
    [row.server_cpu, row.client_cpu, row.dispatcher_cpu] = cpu_since(&server, cpu);
    rows.push(row);
    check_alive(&mut server);

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

/// CPU seconds so far of the server, of this process, and of the server's
/// dispatcher thread.
fn cpu_now(server: &Server) -> [f64; 3] {
    [
        cpu_seconds(&server.pid().to_string()),
        cpu_seconds("self"),
        thread_cpu_seconds(server.pid(), "hub-"),
    ]
}

/// What `cpu_now` has grown by since `before`.
fn cpu_since(server: &Server, before: [f64; 3]) -> [f64; 3] {
    let now = cpu_now(server);
    [now[0] - before[0], now[1] - before[1], now[2] - before[2]]
}

/// Prints the rows of `fanout`.
pub fn print_table(rows: &[FanoutRow]) {
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
    for r in rows {
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
}
