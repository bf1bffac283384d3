//! Load figures for a real `wschat` process: raw-mode fan-out throughput and
//! latency with 100 and 1,000 clients in one room, the latency the rest of a
//! room sees while one client floods it, and the memory and thread cost of
//! idle connections held at 1,000 and 5,000.
//!
//! Run with `cargo bench --bench fanout`. `WSCHAT_BENCH_QUICK=1` shrinks every
//! size for a fast smoke run. The method is described in docs/BENCHMARKS.md.

#[path = "../cpu/mod.rs"]
mod cpu;
#[path = "../../tests/support/server.rs"]
#[allow(dead_code)] // the tests use more of it
mod server;
#[path = "../../tests/support/wire.rs"]
#[allow(dead_code)] // the tests use more of it
mod wire;

mod broadcast;
mod clients;
mod flood;
mod flooder;
mod idle;
mod micro;

use std::thread;
use std::time::{Duration, Instant};

use broadcast::{FanoutPlan, fanout};
use flood::{FloodPlan, flood_runs};
use flooder::Flooder;
use idle::idle;
use micro::micro;

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
    broadcast::print_table(&rows);
    println!();
    flood::print_flood_table(&flood_plan, &flood_rows);
    println!();
    idle::print_table(base_rss, base_threads, &idle_rows);
    println!();
    micro::print_table(&micro_rows);
    println!();
    println!("total bench time {:.1} s", total.elapsed().as_secs_f64());
}
