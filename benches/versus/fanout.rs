//! Scenario: flat-out fan-out.

use std::path::Path;
use std::time::Instant;

use crate::loadgen::{Net, closed_loop, wait_ready};
use crate::server::{Server, check_health, connect_all};
use crate::table::{Row, alternate, correctness, note_failures, row};
use crate::{FanoutPlan, Plan};

pub struct FanoutRun {
    pub deliveries_per_s: f64,
    pub cpu_per_million: f64,
    pub bench_cpu_per_million: f64,
    /// Frames some receiver never got, got twice, or got out of order.
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

pub fn fanout(mut server: Server, plan: &FanoutPlan, base: Instant) -> Result<FanoutRun, String> {
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

pub fn fanout_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
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
