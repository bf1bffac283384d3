//! Scenario: open-loop latency, and its figures.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::fleet::{Cpu, Fleet, connect_spread};
use crate::loadgen::{
    Net, OP_TEXT, PAYLOAD_BYTES, STALL_TIMEOUT, encode_frame, handshake, message, parse_message,
    parse_probe, percentile_ms, probe,
};
use crate::{NAMES, Plan, grouped};

pub struct LatencyRun {
    /// Sorted latencies in ns, by the instance the receiver is on.
    pub by_instance: Vec<Vec<u64>>,
    pub all: Vec<u64>,
    /// p99 of each round pooled here, in ms.
    pub round_p99: Vec<f64>,
    pub lost: u64,
    /// The most a message left after its scheduled time.
    pub worst_lateness_ms: f64,
    /// CPU used while the messages went out, and over how long.
    pub cpu: Cpu,
    pub wall: f64,
}

impl LatencyRun {
    /// Pools two runs of the same setup.
    pub fn merge(self, other: LatencyRun) -> LatencyRun {
        let pool = |mut a: Vec<u64>, b: Vec<u64>| {
            a.extend(b);
            a.sort_unstable();
            a
        };
        LatencyRun {
            by_instance: self
                .by_instance
                .into_iter()
                .zip(other.by_instance)
                .map(|(a, b)| pool(a, b))
                .collect(),
            all: pool(self.all, other.all),
            round_p99: [self.round_p99, other.round_p99].concat(),
            lost: self.lost + other.lost,
            worst_lateness_ms: self.worst_lateness_ms.max(other.worst_lateness_ms),
            cpu: self.cpu + other.cpu,
            wall: self.wall + other.wall,
        }
    }
}

/// The paced sender: its own thread and blocking socket. It sends probes
/// every 20 ms until `ready`, then `count` messages, message i at t0 + i x
/// `period` (t0 100 ms after `ready`), each carrying its scheduled time.
/// Returns the socket (kept open until the receivers are done) and the
/// worst lateness in ns.
pub fn paced_sender(
    target: SocketAddr,
    path: String,
    base: Instant,
    ready: Arc<AtomicBool>,
    count: u64,
    period: u64,
) -> JoinHandle<Result<(TcpStream, u64), String>> {
    thread::spawn(move || {
        let (mut stream, _) = handshake(target, &path)?;
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        let mut frame = Vec::with_capacity(PAYLOAD_BYTES + 16);
        let write = |stream: &mut TcpStream, payload: &[u8], frame: &mut Vec<u8>| {
            frame.clear();
            encode_frame(frame, OP_TEXT, payload, [0x5A, 0xC3, 0x11, 0x7E]);
            stream.write_all(frame).map_err(|e| format!("send: {e}"))
        };
        while !ready.load(Ordering::SeqCst) {
            write(&mut stream, &probe(0), &mut frame)?;
            thread::sleep(Duration::from_millis(20));
        }
        let now = || base.elapsed().as_nanos() as u64;
        let t0 = now() + 100_000_000;
        let mut worst = 0;
        for seq in 0..count {
            let due = t0 + seq * period;
            let at = now();
            if at < due {
                thread::sleep(Duration::from_nanos(due - at));
            }
            worst = u64::max(worst, now().saturating_sub(due));
            write(&mut stream, &message(0, seq, due), &mut frame)?;
        }
        Ok((stream, worst))
    })
}

pub fn latency(
    fleet: &mut Fleet,
    targets: &[SocketAddr],
    plan: &Plan,
    base: Instant,
    room: &str,
) -> Result<LatencyRun, String> {
    let mut net = Net::new(base);
    let path = format!("/ws?room={room}");
    let at = connect_spread(&mut net, targets, plan.receivers, &path)?;
    let r_count = at.len();
    let count = plan.rate * plan.seconds;
    let ready = Arc::new(AtomicBool::new(false));
    let sender = paced_sender(
        targets[0],
        path,
        base,
        ready.clone(),
        count,
        1_000_000_000 / plan.rate,
    );

    // Every receiver has heard the sender's probe: all are in the room.
    let mut heard = vec![false; r_count];
    let mut unheard = r_count;
    let deadline = Instant::now() + STALL_TIMEOUT;
    while unheard > 0 {
        net.poll(Duration::from_millis(5), |id, _, payload| {
            if id < r_count && parse_probe(payload) == Some(0) && !heard[id] {
                heard[id] = true;
                unheard -= 1;
            }
        });
        fleet.health(&net)?;
        if sender.is_finished() {
            return Err(format!("the sender failed: {:?}", sender.join()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not ready after {STALL_TIMEOUT:?}: {unheard} receivers never heard the sender"
            ));
        }
    }
    let cpu_before = fleet.cpu();
    let started = Instant::now();
    ready.store(true, Ordering::SeqCst);

    let mut next = vec![0u64; r_count];
    let mut by_instance = vec![Vec::with_capacity(r_count * count as usize); targets.len()];
    let expected = r_count as u64 * count;
    let (mut received, mut skipped) = (0u64, 0u64);
    let mut sent_at: Option<Instant> = None;
    let mut health_check = Instant::now();
    while received + skipped < expected {
        net.poll(Duration::from_millis(10), |id, at_ns, payload| {
            let Some(m) = parse_message(payload).filter(|_| id < r_count) else {
                return;
            };
            let expected = &mut next[id];
            if m.seq < *expected {
                return;
            }
            skipped += m.seq - *expected;
            *expected = m.seq + 1;
            received += 1;
            by_instance[at[id]].push(at_ns.saturating_sub(m.nanos));
        });
        if sent_at.is_none() && sender.is_finished() {
            sent_at = Some(Instant::now());
        }
        if sent_at.is_some_and(|t| t.elapsed() > STALL_TIMEOUT) {
            break;
        }
        if health_check.elapsed() > Duration::from_millis(100) {
            fleet.health(&net)?;
            health_check = Instant::now();
        }
    }
    let cpu = fleet.cpu() - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let (stream, worst) = sender
        .join()
        .map_err(|_| "the sender panicked".to_owned())??;
    drop(stream);
    let missing: u64 = next.iter().map(|&n| count - n).sum();
    let mut all = Vec::with_capacity(received as usize);
    for lat in &mut by_instance {
        lat.sort_unstable();
        all.extend_from_slice(lat);
    }
    all.sort_unstable();
    Ok(LatencyRun {
        by_instance,
        round_p99: vec![percentile_ms(&all, 0.99)],
        all,
        lost: missing + skipped,
        worst_lateness_ms: worst as f64 / 1e6,
        cpu,
        wall,
    })
}

pub fn latency_line(label: &str, sorted: &[u64], lost: Option<u64>) {
    println!(
        "{label:<26} {:>10} {:>6} {:>8.2} {:>8.2} {:>8.2}",
        grouped(sorted.len() as f64, 0),
        lost.map_or(String::new(), |l| l.to_string()),
        percentile_ms(sorted, 0.50),
        percentile_ms(sorted, 0.99),
        percentile_ms(sorted, 1.0),
    );
}

pub fn print_latency(plan: &Plan, single: &LatencyRun, shared: &LatencyRun) {
    println!();
    println!(
        "latency: {} receivers, one sender at {} msg/s for {} s, open loop, send -> receive, \
         {} round(s) pooled",
        plan.receivers, plan.rate, plan.seconds, plan.rounds
    );
    let labels = NAMES.map(|name| match name {
        "A" => "A (the sender's)".to_owned(),
        other => other.to_owned(),
    });
    print_comparison(single, shared, &labels, "Redis", "shared");
    println!(
        "sender lateness, worst: single {:.2} ms, shared {:.2} ms",
        single.worst_lateness_ms, shared.worst_lateness_ms
    );
    let cores = |cpu: f64, run: &LatencyRun| cpu / run.wall;
    println!(
        "cores used meanwhile: single instance {:.2}, bench {:.2} | A+B+C {:.2}, redis {:.2}, bench {:.2}",
        cores(single.cpu.single, single),
        cores(single.cpu.bench, single),
        cores(shared.cpu.shared, shared),
        cores(shared.cpu.redis, shared),
        cores(shared.cpu.bench, shared),
    );
}

/// The table of a latency comparison: the single instance, then `other`'s
/// receivers by instance (`labels`) and pooled; what `other` adds (it goes
/// through `through`), and each round's p99 (`other` called `name`).
pub fn print_comparison(
    single: &LatencyRun,
    other: &LatencyRun,
    labels: &[String],
    through: &str,
    name: &str,
) {
    println!(
        "{:<26} {:>10} {:>6} {:>8} {:>8} {:>8}",
        "receivers on", "deliveries", "lost", "p50 ms", "p99 ms", "max ms"
    );
    latency_line("single (no Redis)", &single.all, Some(single.lost));
    for (label, lat) in labels.iter().zip(&other.by_instance) {
        latency_line(label, lat, None);
    }
    latency_line("A + B + C", &other.all, Some(other.lost));
    let added = |p| percentile_ms(&other.all, p) - percentile_ms(&single.all, p);
    println!(
        "added by {through}: p50 {:+.2} ms, p99 {:+.2} ms (target: under 5 ms at p99), max {:+.2} ms",
        added(0.50),
        added(0.99),
        added(1.0)
    );
    let rounds = |run: &LatencyRun| {
        let p99: Vec<String> = run.round_p99.iter().map(|p| format!("{p:.2}")).collect();
        p99.join(" / ")
    };
    println!(
        "p99 ms of each round: single {}, {name} {}",
        rounds(single),
        rounds(other)
    );
}
