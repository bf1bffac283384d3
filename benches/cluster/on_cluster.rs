//! Scenario: the latency scenario's room on three instances that share a
//! Redis Cluster of three masters (`--redis` naming the first), against
//! the single instance; and its figures.

use crate::latency::{LatencyRun, latency_line};
use crate::loadgen::percentile_ms;
use crate::{NAMES, Plan};

pub fn print_on_cluster(plan: &Plan, single: &LatencyRun, on_cluster: &LatencyRun) {
    println!();
    println!(
        "latency on a Redis Cluster (3 masters): {} receivers over 3 instances, one sender at {} \
         msg/s for {} s, open loop, send -> receive, {} round(s) pooled, a fresh room each round",
        plan.receivers, plan.rate, plan.seconds, plan.rounds
    );
    println!(
        "{:<26} {:>10} {:>6} {:>8} {:>8} {:>8}",
        "receivers on", "deliveries", "lost", "p50 ms", "p99 ms", "max ms"
    );
    latency_line("single (no Redis)", &single.all, Some(single.lost));
    for (name, lat) in NAMES.iter().zip(&on_cluster.by_instance) {
        latency_line(&format!("{name} on the cluster"), lat, None);
    }
    latency_line("A + B + C", &on_cluster.all, Some(on_cluster.lost));
    let added = |p| percentile_ms(&on_cluster.all, p) - percentile_ms(&single.all, p);
    println!(
        "added by the cluster: p50 {:+.2} ms, p99 {:+.2} ms (target: under 5 ms at p99), max {:+.2} ms",
        added(0.50),
        added(0.99),
        added(1.0)
    );
    let rounds = |run: &LatencyRun| {
        let p99: Vec<String> = run.round_p99.iter().map(|p| format!("{p:.2}")).collect();
        p99.join(" / ")
    };
    println!(
        "p99 ms of each round: single {}, on the cluster {}",
        rounds(single),
        rounds(on_cluster)
    );
    let cores = |cpu: f64, run: &LatencyRun| cpu / run.wall;
    println!(
        "cores used meanwhile: single instance {:.2} | A+B+C {:.2}, masters {:.2}, bench {:.2}",
        cores(single.cpu.single, single),
        cores(on_cluster.cpu.on_cluster, on_cluster),
        cores(on_cluster.cpu.masters, on_cluster),
        cores(on_cluster.cpu.bench, on_cluster),
    );
}
