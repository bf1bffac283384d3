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
//! - **idle**: what rooms an instance does not host cost it. Ten rooms on B,
//!   each with a raw receiver and a paced raw sender there, carry 5,000
//!   messages/s in all for 5 s; A has one client in a quiet room of its
//!   own. A's CPU over the window, with B's and Redis's beside it.
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
//! - **cluster**: the latency scenario again, with its receivers spread
//!   over three more instances whose `--redis` names a Redis Cluster of
//!   three masters, against the single instance (rounds alternate likewise).
//!
//! Run with `cargo bench --bench cluster`; `WSCHAT_BENCH_QUICK=1` shrinks
//! every size for a smoke run, `WSCHAT_BENCH_ONLY=latency,fanout,memory,idle,cluster`
//! picks scenarios, `WSCHAT_BENCH_IDLE_RATE` changes the idle scenario's
//! rate, and `WSCHAT_BENCH_RECEIVERS` and `WSCHAT_BENCH_RATE`
//! change the number of receivers and the latency sender's rate. The
//! method and the figures are in docs/BENCHMARKS.md.

#[path = "../loadgen/mod.rs"]
mod loadgen;
#[path = "../pair/mod.rs"]
mod pair;

mod fanout;
mod fleet;
mod idle;
mod latency;
mod memory;
mod on_cluster;

use std::thread;
use std::time::{Duration, Instant};

use fanout::{FanoutRun, fanout, print_fanout};
use fleet::{Fleet, addr};
use idle::{idle, print_idle};
use latency::{LatencyRun, latency, print_latency};
use memory::{memory, print_memory};
use on_cluster::print_on_cluster;

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
    /// Idle: messages per second through rooms the idle instance does not
    /// host.
    idle_rate: u64,
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
        if let Ok(n) = std::env::var("WSCHAT_BENCH_IDLE_RATE") {
            plan.idle_rate = n.parse().expect("WSCHAT_BENCH_IDLE_RATE must be a number");
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
                idle_rate: 500,
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
                idle_rate: 5_000,
                rounds: 2,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Output and the run

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
    let mut fleet = Fleet::start(selected("cluster"));
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
    if selected("cluster") {
        let clustered = fleet.cluster_addrs();
        let setups = [("single", &single[..]), ("cluster", &clustered[..])];
        let mut runs: [Option<LatencyRun>; 2] = [None, None];
        for round in 0..plan.rounds {
            for k in [round % 2, 1 - round % 2] {
                let (name, targets) = setups[k];
                eprintln!("round {}: latency on the cluster, {name}", round + 1);
                let room = format!("lat-on-{name}-{round}");
                let run = latency(&mut fleet, targets, &plan, base, &room)
                    .unwrap_or_else(|e| fail(&format!("latency on the cluster, {name}"), e));
                runs[k] = Some(match runs[k].take() {
                    Some(before) => before.merge(run),
                    None => run,
                });
            }
        }
        if let [Some(single), Some(clustered)] = &runs {
            print_on_cluster(&plan, single, clustered);
        }
    }
    if let [Some(single), Some(shared)] = &fan {
        print_fanout(&plan, single, shared);
    }
    if let Some(mem) = &mem {
        print_memory(mem);
    }
    if selected("idle") {
        let clusters: &[bool] = match selected("cluster") {
            true => &[false, true],
            false => &[false],
        };
        for &clustered in clusters {
            eprintln!("idle instance, on the cluster: {clustered}");
            let run = idle(&mut fleet, &plan, base, clustered)
                .unwrap_or_else(|e| fail("idle instance", e));
            print_idle(&run);
        }
    }

    println!();
    println!("total bench time {:.0} s", total.elapsed().as_secs_f64());
}
