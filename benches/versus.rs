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
//! loop on the main thread, with the minimal WebSocket client codec of
//! `benches/loadgen` (upgrade handshake, masked frames out, server frames
//! parsed incrementally, pings answered). Every measured frame carries its sender, a sequence
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

mod loadgen;

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::closed_loop::{self, Watched};
use loadgen::{
    Net, STALL_TIMEOUT, bench_queued_seconds, cpu_seconds, message, parse_message, percentile_ms,
    wait_ready,
};

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
    /// Starts `kind` and reads the address from its listening line
    /// line. wschat gets its abuse limits lifted; `idle` also pushes its
    /// pings far out, since idle clients are not what a ping test is about.
    fn start(kind: Kind, relay: &Path, idle: bool) -> Server {
        let mut command = match kind {
            Kind::Wschat => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_wschat"));
                c.env("WSCHAT_DB", ":memory:");
                c.env("WSCHAT_STORE_RATE", "0");
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
        // wschat says `event=listening addr=ADDR`, the relay `relay listening on ADDR`.
        let prefix = format!("{} listening on ", kind.name());
        let addr = line
            .trim()
            .strip_prefix(&prefix)
            .or_else(|| line.trim().strip_prefix("event=listening addr="))
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

/// The fan-out loop reads the server's CPU time and the bench's own.
impl Watched for Server {
    type Cpu = (f64, f64);

    fn cpu(&self) -> (f64, f64) {
        (self.cpu_seconds(), cpu_seconds("self"))
    }

    fn health(&mut self, net: &Net) -> Result<(), String> {
        check_health(net, self)
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
    wait_ready(&mut net, &senders, &receivers, |net| {
        check_health(net, &mut server)
    })?;
    let tally = closed_loop::run(
        &mut net,
        receivers.len(),
        &senders,
        plan.warm_up,
        plan.measure,
        &mut server,
    )?;
    let (server_cpu, bench_cpu) = (
        tally.cpu_to.0 - tally.cpu_from.0,
        tally.cpu_to.1 - tally.cpu_from.1,
    );
    let measured = tally.measured;
    drop(server);
    Ok(FanoutRun {
        deliveries_per_s: measured as f64 / plan.measure.as_secs_f64(),
        cpu_per_million: server_cpu * 1e6 / measured.max(1) as f64,
        bench_cpu_per_million: bench_cpu * 1e6 / measured.max(1) as f64,
        lost: tally.missing + tally.skipped,
        duplicated: tally.duplicated,
        out_of_order: tally.out_of_order,
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
    wait_ready(&mut net, &[sender], &receivers, |net| {
        check_health(net, &mut server)
    })?;

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
