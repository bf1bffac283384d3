//! Scenario: closed-loop fan-out, and its figures.

use std::net::SocketAddr;
use std::time::Instant;

use crate::fleet::{Cpu, Fleet, connect_spread};
use crate::loadgen::closed_loop::{self, WINDOW};
use crate::loadgen::{Net, wait_ready};
use crate::{Plan, grouped};

pub struct FanoutRun {
    /// Deliveries in the measured windows, and their total length.
    pub measured: u64,
    pub seconds: f64,
    /// CPU over the measured windows.
    pub cpu: Cpu,
    /// Frames some receiver never got, got twice, or got out of order.
    pub faults: u64,
}

impl FanoutRun {
    pub fn deliveries_per_s(&self) -> f64 {
        self.measured as f64 / self.seconds
    }

    /// Pools two runs of the same setup.
    pub fn merge(self, other: FanoutRun) -> FanoutRun {
        FanoutRun {
            measured: self.measured + other.measured,
            seconds: self.seconds + other.seconds,
            cpu: self.cpu + other.cpu,
            faults: self.faults + other.faults,
        }
    }
}

pub fn fanout(
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

pub fn print_fanout(plan: &Plan, single: &FanoutRun, shared: &FanoutRun) {
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
