//! Shared rooms (`--redis`) under load: three wschat instances naming one
//! Redis, against one instance without Redis, in one run.
//!
//! One `redis-server` (Debian's, on a free loopback port, nothing kept on
//! disk) and four release `wschat` processes are started once: A, B and C
//! with `--redis`, and a single instance without it. Then:
//!
//! - **latency**: one room, 300 raw receivers spread evenly over A, B and C
//!   (100 each), one raw sender on A paced open loop at 1,000 messages/s for
//!   5 s (message i leaves at t0 + i ms, whatever happened to the ones
//!   before, and its latency counts from that scheduled time): p50, p99 and
//!   max of send → receive per receiving instance and overall, against the
//!   same room with all 300 receivers and the sender on the single
//!   instance. The sender is one thread of its own, sleeping to each
//!   message's time, so that its timing does not depend on how busy the
//!   receivers are.
//! - **fan-out**: one room, 300 receivers spread likewise, 3 senders (one
//!   per instance; all three on the single instance for the comparison),
//!   closed loop: each sender keeps at most 32 messages in flight (message
//!   k+32 waits until every receiver has message k), 1 s of warm-up, then
//!   deliveries/s over 5 s, and the CPU the servers and Redis used per
//!   million deliveries.
//! - **Redis memory** (first, while Redis holds nothing else): 10,000
//!   messages into a fresh room, sent on A and received on B: `used_memory`
//!   of `INFO memory` and `dataset.bytes` of `MEMORY STATS` before and
//!   after, per message, and what the room's stream alone takes (`MEMORY
//!   USAGE`).
//!
//! Latency and fan-out run twice per setup, in the order single, shared,
//! shared, single, each time in a fresh room, and the figures pool both
//! runs, so that a drift of the machine's load weighs on both setups alike.
//!
//! The receivers are raw clients (no subprotocol), so they get each text
//! frame as it was sent; every measured frame carries a time on the bench's
//! clock, and latency is read on the client side. All receivers live in one
//! `mio` poll loop (`benches/loadgen`), not a thread each. Every instance
//! and Redis share the machine's cores with the bench.
//!
//! Run with `cargo bench --bench cluster`; `WSCHAT_BENCH_QUICK=1` shrinks
//! every size for a smoke run, `WSCHAT_BENCH_ONLY=latency,fanout,memory`
//! picks scenarios, and `WSCHAT_BENCH_RECEIVERS` and `WSCHAT_BENCH_RATE`
//! change the number of receivers and the latency sender's rate. The
//! method and the figures are in docs/BENCHMARKS.md.

mod loadgen;
mod pair;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use loadgen::closed_loop::{self, WINDOW, Watched};
use loadgen::{
    Net, OP_TEXT, PAYLOAD_BYTES, STALL_TIMEOUT, cpu_seconds, encode_frame, handshake, message,
    parse_message, parse_probe, percentile_ms, probe, wait_ready,
};
use pair::Server;
use pair::redis::Redis;

/// Messages the memory phase may have in flight.
const MEMORY_WINDOW: u64 = 256;
/// The clustered instances, in the order receivers are dealt to them.
const NAMES: [&str; 3] = ["A", "B", "C"];

// ---------------------------------------------------------------------------
// Sizes

struct Plan {
    /// Receivers of one room, spread evenly over the instances.
    receivers: usize,
    /// Latency: messages per second, and for how long.
    rate: u64,
    seconds: u64,
    /// Fan-out: senders, warm-up and measured window.
    senders: usize,
    warm_up: Duration,
    measure: Duration,
    /// Messages sent to measure Redis's memory.
    memory_messages: u64,
    /// Rounds of each scenario per setup, alternating (single, shared,
    /// shared, single, ...), pooled.
    rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let mut plan = Plan::sized(quick);
        if let Ok(n) = std::env::var("WSCHAT_BENCH_RECEIVERS") {
            plan.receivers = n.parse().expect("WSCHAT_BENCH_RECEIVERS must be a number");
        }
        if let Ok(n) = std::env::var("WSCHAT_BENCH_RATE") {
            plan.rate = n.parse().expect("WSCHAT_BENCH_RATE must be a number");
        }
        plan
    }

    fn sized(quick: bool) -> Plan {
        if quick {
            Plan {
                receivers: 30,
                rate: 200,
                seconds: 1,
                senders: 3,
                warm_up: Duration::from_millis(300),
                measure: Duration::from_secs(1),
                memory_messages: 1_000,
                rounds: 1,
            }
        } else {
            Plan {
                receivers: 300,
                rate: 1_000,
                seconds: 5,
                senders: 3,
                warm_up: Duration::from_secs(1),
                measure: Duration::from_secs(5),
                memory_messages: 10_000,
                rounds: 2,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Redis and the wschat instances

/// A connection to the fleet's Redis, for its `INFO`.
fn redis_connection(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("connect to Redis")
}

/// Redis, the three instances that share it and the one that does not.
/// Fields drop in order: the instances go before Redis.
struct Fleet {
    shared: Vec<Server>,
    single: Server,
    redis: Redis,
}

impl Fleet {
    fn start() -> Fleet {
        let redis = Redis::start();
        let url = redis.url();
        let shared: Vec<Server> = NAMES
            .iter()
            .map(|_| start_instance(&["--redis", &url]))
            .collect();
        let single = start_instance(&[]);
        for server in shared.iter().chain([&single]) {
            wait_ready_endpoint(server);
        }
        // For `perf record -p`: which process is which.
        let pids: Vec<String> = shared.iter().map(|s| s.pid().to_string()).collect();
        eprintln!(
            "pids: A,B,C {} single {} redis {}",
            pids.join(","),
            single.pid(),
            redis.pid()
        );
        Fleet {
            shared,
            single,
            redis,
        }
    }

    fn shared_addrs(&self) -> Vec<SocketAddr> {
        self.shared.iter().map(addr).collect()
    }

    /// Fails the run if a process died or a client connection ended.
    fn health(&mut self, net: &Net) -> Result<(), String> {
        let names = NAMES.iter().copied().chain(["single"]);
        let servers = self.shared.iter_mut().chain([&mut self.single]);
        for (name, server) in names.zip(servers) {
            if let Some(status) = server.exited() {
                return Err(format!("instance {name} exited ({status})"));
            }
        }
        if let Some(status) = self.redis.exited() {
            return Err(format!("redis-server exited ({status})"));
        }
        match net.endings() {
            Some(endings) => Err(endings),
            None => Ok(()),
        }
    }

    /// CPU seconds used so far: each clustered instance, Redis, the single
    /// instance and the bench.
    fn cpu(&self) -> Cpu {
        Cpu {
            shared: self
                .shared
                .iter()
                .map(|s| cpu_seconds(&s.pid().to_string()))
                .sum(),
            redis: cpu_seconds(&self.redis.pid().to_string()),
            single: cpu_seconds(&self.single.pid().to_string()),
            bench: cpu_seconds("self"),
        }
    }
}

/// The fan-out loop reads the fleet's CPU and checks its processes.
impl Watched for Fleet {
    type Cpu = Cpu;

    fn cpu(&self) -> Cpu {
        Fleet::cpu(self)
    }

    fn health(&mut self, net: &Net) -> Result<(), String> {
        Fleet::health(self, net)
    }
}

/// CPU seconds, by process group.
#[derive(Clone, Copy, Default)]
struct Cpu {
    shared: f64,
    redis: f64,
    single: f64,
    bench: f64,
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, o: Cpu) -> Cpu {
        Cpu {
            shared: self.shared + o.shared,
            redis: self.redis + o.redis,
            single: self.single + o.single,
            bench: self.bench + o.bench,
        }
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            shared: self.shared - o.shared,
            redis: self.redis - o.redis,
            single: self.single - o.single,
            bench: self.bench - o.bench,
        }
    }
}

/// A release wschat with the connection caps lifted (the per-message rate
/// limit is lifted by `pair`), plus `extra`.
fn start_instance(extra: &[&str]) -> Server {
    let mut args = vec![
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "100000",
        "--connect-rate",
        "1000000",
        "--connect-burst",
        "1000000",
    ];
    args.extend_from_slice(extra);
    pair::start(env!("CARGO_BIN_EXE_wschat"), &args)
}

fn addr(server: &Server) -> SocketAddr {
    server.addr.parse().expect("a listening address")
}

/// Waits until `/readyz` says 200: with `--redis`, once both of the
/// instance's Redis connections are up.
fn wait_ready_endpoint(server: &Server) {
    let deadline = Instant::now() + STALL_TIMEOUT;
    loop {
        let answer = TcpStream::connect(&server.addr).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            write!(
                s,
                "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            Ok(response)
        });
        if answer.is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready after {STALL_TIMEOUT:?}",
            server.addr
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Connects receiver i of `n` to `targets[i % targets.len()]`; returns each
/// one's target index (their connection ids are 0..n).
fn connect_spread(
    net: &mut Net,
    targets: &[SocketAddr],
    n: usize,
    path: &str,
) -> Result<Vec<usize>, String> {
    (0..n)
        .map(|i| {
            let at = i % targets.len();
            net.connect(targets[at], path)
                .map(|_| at)
                .map_err(|e| format!("receiver {} of {n}: {e}", i + 1))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Scenario: open-loop latency

struct LatencyRun {
    /// Sorted latencies in ns, by the instance the receiver is on.
    by_instance: Vec<Vec<u64>>,
    all: Vec<u64>,
    /// p99 of each round pooled here, in ms.
    round_p99: Vec<f64>,
    lost: u64,
    /// The most a message left after its scheduled time.
    worst_lateness_ms: f64,
    /// CPU used while the messages went out, and over how long.
    cpu: Cpu,
    wall: f64,
}

impl LatencyRun {
    /// Pools two runs of the same setup.
    fn merge(self, other: LatencyRun) -> LatencyRun {
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
fn paced_sender(
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

fn latency(
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

// ---------------------------------------------------------------------------
// Scenario: closed-loop fan-out

struct FanoutRun {
    /// Deliveries in the measured windows, and their total length.
    measured: u64,
    seconds: f64,
    /// CPU over the measured windows.
    cpu: Cpu,
    /// Frames some receiver never got, got twice, or got out of order.
    faults: u64,
}

impl FanoutRun {
    fn deliveries_per_s(&self) -> f64 {
        self.measured as f64 / self.seconds
    }

    /// Pools two runs of the same setup.
    fn merge(self, other: FanoutRun) -> FanoutRun {
        FanoutRun {
            measured: self.measured + other.measured,
            seconds: self.seconds + other.seconds,
            cpu: self.cpu + other.cpu,
            faults: self.faults + other.faults,
        }
    }
}

fn fanout(
    fleet: &mut Fleet,
    targets: &[SocketAddr],
    plan: &Plan,
    base: Instant,
    room: &str,
) -> Result<FanoutRun, String> {
    let mut net = Net::new(base);
    let path = format!("/ws?room={room}");
    // Connections 0..R are the receivers, R..R+S the senders.
    let receivers: Vec<usize> = (0..plan.receivers).collect();
    connect_spread(&mut net, targets, plan.receivers, &path)?;
    let senders = (0..plan.senders)
        .map(|s| net.connect(targets[s % targets.len()], &path))
        .collect::<Result<Vec<usize>, String>>()?;
    wait_ready(&mut net, &senders, &receivers, |net| fleet.health(net))?;
    let tally = closed_loop::run(
        &mut net,
        receivers.len(),
        &senders,
        plan.warm_up,
        plan.measure,
        fleet,
    )?;
    Ok(FanoutRun {
        measured: tally.measured,
        seconds: plan.measure.as_secs_f64(),
        cpu: tally.cpu_to - tally.cpu_from,
        // Every frame out of sequence, and every one never delivered.
        faults: tally.duplicated + tally.out_of_order + tally.missing,
    })
}

// ---------------------------------------------------------------------------
// Scenario: Redis's memory per message

struct MemoryRun {
    messages: u64,
    /// `used_memory` (everything, client buffers included) and
    /// `dataset.bytes` of `MEMORY STATS` (the keys and values alone).
    used_before: u64,
    used_after: u64,
    dataset_before: u64,
    dataset_after: u64,
    keys_added: i64,
    /// `MEMORY USAGE` of the room's stream, and its length (the readiness
    /// probes are entries too).
    stream_bytes: u64,
    stream_len: u64,
}

/// A number field of `INFO memory`.
fn info_memory(conn: &mut redis::Connection, field: &str) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(conn)
        .map_err(|e| format!("INFO memory: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no {field} in INFO memory"))
}

/// A number field of `MEMORY STATS` (a flat list of names and values).
fn memory_stats(conn: &mut redis::Connection, field: &str) -> Result<u64, String> {
    let stats: Vec<redis::Value> = redis::cmd("MEMORY")
        .arg("STATS")
        .query(conn)
        .map_err(|e| format!("MEMORY STATS: {e}"))?;
    stats
        .chunks(2)
        .find(|pair| redis::from_redis_value::<String>(pair[0].clone()).is_ok_and(|n| n == field))
        .and_then(|pair| redis::from_redis_value::<u64>(pair.get(1)?.clone()).ok())
        .ok_or_else(|| format!("no {field} in MEMORY STATS"))
}

fn dbsize(conn: &mut redis::Connection) -> Result<i64, String> {
    redis::cmd("DBSIZE")
        .query(conn)
        .map_err(|e| format!("DBSIZE: {e}"))
}

fn memory(fleet: &mut Fleet, plan: &Plan, base: Instant) -> Result<MemoryRun, String> {
    let room = "memory";
    let path = format!("/ws?room={room}");
    let addrs = fleet.shared_addrs();
    let mut net = Net::new(base);
    let receiver = net.connect(addrs[1], &path)?;
    let sender = net.connect(addrs[0], &path)?;
    wait_ready(&mut net, &[sender], &[receiver], |net| fleet.health(net))?;

    let mut conn = redis_connection(&fleet.redis);
    let n = plan.memory_messages;
    // Let the probes' pub/sub traffic drain from Redis's buffers.
    thread::sleep(Duration::from_millis(200));
    let used_before = info_memory(&mut conn, "used_memory")?;
    let dataset_before = memory_stats(&mut conn, "dataset.bytes")?;
    let keys_before = dbsize(&mut conn)?;
    let (mut sent, mut got) = (0u64, 0u64);
    let deadline = Instant::now() + STALL_TIMEOUT;
    while got < n {
        while sent < n && sent < got + MEMORY_WINDOW {
            let now = net.now_ns();
            net.send_text(sender, &message(0, sent, now));
            sent += 1;
        }
        net.poll(Duration::from_millis(5), |id, _, payload| {
            if id == receiver && parse_message(payload).is_some() {
                got += 1;
            }
        });
        fleet.health(&net)?;
        if Instant::now() > deadline {
            return Err(format!("{got} of {n} messages arrived"));
        }
    }
    thread::sleep(Duration::from_millis(200));
    let used_after = info_memory(&mut conn, "used_memory")?;
    let dataset_after = memory_stats(&mut conn, "dataset.bytes")?;
    let keys_added = dbsize(&mut conn)? - keys_before;
    // The room's stream, named as src/cluster/keys.rs names it.
    let log = format!("wschat:{{{room}}}:log");
    let stream_bytes: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&log)
        .arg("SAMPLES")
        .arg(0)
        .query(&mut conn)
        .map_err(|e| format!("MEMORY USAGE: {e}"))?;
    let stream_len: u64 = redis::cmd("XLEN")
        .arg(&log)
        .query(&mut conn)
        .map_err(|e| format!("XLEN: {e}"))?;
    Ok(MemoryRun {
        messages: n,
        used_before,
        used_after,
        dataset_before,
        dataset_after,
        keys_added,
        stream_bytes,
        stream_len,
    })
}

// ---------------------------------------------------------------------------
// Output

/// `1234567.8` with 0 decimals -> `1,234,568`.
fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        "" => format!("{sign}{out}"),
        f => format!("{sign}{out}.{f}"),
    }
}

fn latency_line(label: &str, sorted: &[u64], lost: Option<u64>) {
    println!(
        "{label:<26} {:>10} {:>6} {:>8.2} {:>8.2} {:>8.2}",
        grouped(sorted.len() as f64, 0),
        lost.map_or(String::new(), |l| l.to_string()),
        percentile_ms(sorted, 0.50),
        percentile_ms(sorted, 0.99),
        percentile_ms(sorted, 1.0),
    );
}

fn print_latency(plan: &Plan, single: &LatencyRun, shared: &LatencyRun) {
    println!();
    println!(
        "latency: {} receivers, one sender at {} msg/s for {} s, open loop, send -> receive, \
         {} round(s) pooled",
        plan.receivers, plan.rate, plan.seconds, plan.rounds
    );
    println!(
        "{:<26} {:>10} {:>6} {:>8} {:>8} {:>8}",
        "receivers on", "deliveries", "lost", "p50 ms", "p99 ms", "max ms"
    );
    latency_line("single (no Redis)", &single.all, Some(single.lost));
    for (name, lat) in NAMES.iter().zip(&shared.by_instance) {
        let label = match *name {
            "A" => "A (the sender's)".to_owned(),
            other => other.to_owned(),
        };
        latency_line(&label, lat, None);
    }
    latency_line("A + B + C", &shared.all, Some(shared.lost));
    let added = |p| percentile_ms(&shared.all, p) - percentile_ms(&single.all, p);
    println!(
        "added by Redis: p50 {:+.2} ms, p99 {:+.2} ms (target: under 5 ms at p99), max {:+.2} ms",
        added(0.50),
        added(0.99),
        added(1.0)
    );
    let rounds = |run: &LatencyRun| {
        let p99: Vec<String> = run.round_p99.iter().map(|p| format!("{p:.2}")).collect();
        p99.join(" / ")
    };
    println!(
        "p99 ms of each round: single {}, shared {}",
        rounds(single),
        rounds(shared)
    );
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

fn print_fanout(plan: &Plan, single: &FanoutRun, shared: &FanoutRun) {
    println!();
    println!(
        "fan-out: {} receivers, {} senders, {} in flight each, {:?} measured after {:?}, \
         {} round(s) pooled",
        plan.receivers, plan.senders, WINDOW, plan.measure, plan.warm_up, plan.rounds
    );
    println!(
        "{:<18} {:>14} {:>14} {:>14} {:>14} {:>7}",
        "setup", "deliveries/s", "wschat cpu s/M", "redis cpu s/M", "bench cpu s/M", "faults"
    );
    let per_m = |cpu: f64, run: &FanoutRun| cpu * 1e6 / run.measured.max(1) as f64;
    println!(
        "{:<18} {:>14} {:>14.3} {:>14} {:>14.3} {:>7}",
        "single (no Redis)",
        grouped(single.deliveries_per_s(), 0),
        per_m(single.cpu.single, single),
        "-",
        per_m(single.cpu.bench, single),
        single.faults
    );
    println!(
        "{:<18} {:>14} {:>14.3} {:>14.3} {:>14.3} {:>7}",
        "A + B + C",
        grouped(shared.deliveries_per_s(), 0),
        per_m(shared.cpu.shared, shared),
        per_m(shared.cpu.redis, shared),
        per_m(shared.cpu.bench, shared),
        shared.faults
    );
    println!(
        "ratio shared / single: {:.2}",
        shared.deliveries_per_s() / single.deliveries_per_s()
    );
}

fn print_memory(run: &MemoryRun) {
    let n = run.messages as f64;
    let used = run.used_after as f64 - run.used_before as f64;
    let dataset = run.dataset_after as f64 - run.dataset_before as f64;
    let per_entry = run.stream_bytes as f64 / run.stream_len.max(1) as f64;
    println!();
    println!(
        "Redis memory: {} messages of {PAYLOAD_BYTES} bytes into a fresh room, sent on A, received on B",
        grouped(n, 0)
    );
    println!(
        "used_memory    {:>12} -> {:>12} bytes: {:>5.0} bytes per message",
        grouped(run.used_before as f64, 0),
        grouped(run.used_after as f64, 0),
        used / n
    );
    println!(
        "dataset.bytes  {:>12} -> {:>12} bytes: {:>5.0} bytes per message ({} keys added)",
        grouped(run.dataset_before as f64, 0),
        grouped(run.dataset_after as f64, 0),
        dataset / n,
        run.keys_added
    );
    println!(
        "of which the room's stream {:.0} bytes per entry ({} bytes, {} entries), \
         the rest {:.0} bytes per message (the 60 s dedup keys)",
        per_entry,
        grouped(run.stream_bytes as f64, 0),
        grouped(run.stream_len as f64, 0),
        (dataset - run.stream_bytes as f64) / n
    );
}

fn main() {
    // `cargo bench` passes `--bench`. Without it the binary is being run as a
    // test (`cargo test --all-targets`), where a load run has no place.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cluster: nothing to do without --bench (run `cargo bench --bench cluster`)");
        return;
    }
    let quick = std::env::var("WSCHAT_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    // WSCHAT_BENCH_ONLY=latency,fanout,memory runs only those scenarios.
    let only = std::env::var("WSCHAT_BENCH_ONLY").ok();
    let selected = |name: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    let plan = Plan::new(quick);
    let total = Instant::now();
    let mut fleet = Fleet::start();
    let base = Instant::now();
    println!(
        "wschat: three instances sharing one Redis against one instance alone{} ({} cores)",
        if quick { " [quick]" } else { "" },
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    let shared = fleet.shared_addrs();
    let single = [addr(&fleet.single)];

    let fail = |what: &str, e: String| -> ! {
        eprintln!("{what} failed: {e}");
        std::process::exit(1);
    };
    let mem = selected("memory").then(|| {
        eprintln!("Redis memory");
        memory(&mut fleet, &plan, base).unwrap_or_else(|e| fail("Redis memory", e))
    });

    // Each round runs both setups, in alternating order, so that a drift
    // of the machine's load weighs on both alike.
    let mut lat: [Option<LatencyRun>; 2] = [None, None];
    let mut fan: [Option<FanoutRun>; 2] = [None, None];
    let setups = [("single", &single[..]), ("shared", &shared[..])];
    for round in 0..plan.rounds {
        for k in [round % 2, 1 - round % 2] {
            if !selected("latency") {
                break;
            }
            let (name, targets) = setups[k];
            eprintln!("round {}: latency, {name}", round + 1);
            let run = latency(
                &mut fleet,
                targets,
                &plan,
                base,
                &format!("lat-{name}-{round}"),
            )
            .unwrap_or_else(|e| fail(&format!("latency, {name}"), e));
            lat[k] = Some(match lat[k].take() {
                Some(before) => before.merge(run),
                None => run,
            });
        }
        for k in [round % 2, 1 - round % 2] {
            if !selected("fanout") {
                break;
            }
            let (name, targets) = setups[k];
            eprintln!("round {}: fan-out, {name}", round + 1);
            let run = fanout(
                &mut fleet,
                targets,
                &plan,
                base,
                &format!("fan-{name}-{round}"),
            )
            .unwrap_or_else(|e| fail(&format!("fan-out, {name}"), e));
            fan[k] = Some(match fan[k].take() {
                Some(before) => before.merge(run),
                None => run,
            });
        }
    }
    if let [Some(single), Some(shared)] = &lat {
        print_latency(&plan, single, shared);
    }
    if let [Some(single), Some(shared)] = &fan {
        print_fanout(&plan, single, shared);
    }
    if let Some(mem) = &mem {
        print_memory(mem);
    }

    println!();
    println!("total bench time {:.0} s", total.elapsed().as_secs_f64());
}
