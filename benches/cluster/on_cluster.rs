//! Scenario: the latency scenario's room on three instances that share a
//! Redis Cluster of three masters (`--redis` naming the first), against
//! the single instance; and its figures.

use crate::latency::{LatencyRun, print_comparison};
use crate::{NAMES, Plan};

pub fn print_on_cluster(plan: &Plan, single: &LatencyRun, on_cluster: &LatencyRun) {
    println!();
    println!(
        "latency on a Redis Cluster (3 masters): {} receivers over 3 instances, one sender at {} \
         msg/s for {} s, open loop, send -> receive, {} round(s) pooled, a fresh room each round",
        plan.receivers, plan.rate, plan.seconds, plan.rounds
    );
    let labels = NAMES.map(|name| format!("{name} on the cluster"));
    print_comparison(single, on_cluster, &labels, "the cluster", "on the cluster");
    let cores = |cpu: f64, run: &LatencyRun| cpu / run.wall;
    println!(
        "cores used meanwhile: single instance {:.2} | A+B+C {:.2}, masters {:.2}, bench {:.2}",
        cores(single.cpu.single, single),
        cores(on_cluster.cpu.on_cluster, on_cluster),
        cores(on_cluster.cpu.masters, on_cluster),
        cores(on_cluster.cpu.bench, on_cluster),
    );
}
