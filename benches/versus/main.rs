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
//! - **rooms**: 20 rooms of 50 receivers and one sender each, the senders
//!   flat out in the closed loop of fan-out (a message waits for the
//!   receivers of its own room), 6 s measured after 1 s of warm-up, against
//!   wschat with `--hubs 1`, with `--hubs 2` and the relay: deliveries per
//!   second, the server's CPU per delivery, and each hub thread's share of
//!   the CPU the hub threads used (from `/proc/PID/task/*/stat`); no frame
//!   may be lost, repeated, misordered or heard in another room.
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
//! `WSCHAT_BENCH_ONLY=fanout,latency,rooms,echo,idle` picks scenarios. As root,
//! the idle scenario raises `vm.max_map_count` and `kernel.pid_max` if they
//! are lower than a thread-per-connection server needs, and says so. The
//! method is described in docs/BENCHMARKS.md.

#[path = "../loadgen/mod.rs"]
mod loadgen;

mod echo;
mod fanout;
mod idle;
mod latency;
mod rooms;
mod server;
mod table;

use std::thread;
use std::time::{Duration, Instant};

use echo::echo_rows;
use fanout::fanout_rows;
use idle::idle_rows;
use latency::latency_rows;
use rooms::rooms_rows;
use server::{build_relay, raise_fd_limit};
use table::print_table;

// ---------------------------------------------------------------------------
// Sizes

struct Plan {
    fanout: FanoutPlan,
    latency: LatencyPlan,
    rooms: RoomsPlan,
    echo: EchoPlan,
    idle_connections: usize,
    /// Runs of each server for fan-out, latency, rooms and echo (idle runs
    /// once).
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

struct RoomsPlan {
    rooms: usize,
    /// Receivers per room (each room has one sender besides).
    receivers: usize,
    warm_up: Duration,
    measure: Duration,
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
                rooms: RoomsPlan {
                    rooms: 4,
                    receivers: 5,
                    warm_up: Duration::from_millis(500),
                    measure: Duration::from_secs(2),
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
                rooms: RoomsPlan {
                    rooms: 20,
                    receivers: 50,
                    warm_up: Duration::from_secs(1),
                    measure: Duration::from_secs(6),
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
// The run

fn main() {
    // `cargo bench` passes `--bench`. Without it the binary is being run as a
    // test (`cargo test --all-targets`), where a load run has no place.
    if !std::env::args().any(|a| a == "--bench") {
        println!("versus: nothing to do without --bench (run `cargo bench --bench versus`)");
        return;
    }
    let quick = std::env::var("WSCHAT_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
    // WSCHAT_BENCH_ONLY=fanout,latency,rooms,echo,idle runs only those scenarios.
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
    if selected("rooms") {
        rows.extend(rooms_rows(&plan, &relay, base, &mut notes));
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
