//! Scenario: echo.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::loadgen::{Net, STALL_TIMEOUT, cpu_seconds, message, parse_message, percentile_ms};
use crate::server::{Server, check_health, connect_all};
use crate::table::{Row, alternate, correctness, note_failures, row};
use crate::{EchoPlan, Plan};

pub struct EchoRun {
    pub round_trips_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Echoes that did not match what was sent, and connections left
    /// waiting for theirs at the end.
    pub wrong: u64,
    /// CPU the bench process used, in cores, over the run.
    pub bench_cores: f64,
}

pub fn echo(mut server: Server, plan: &EchoPlan, base: Instant) -> Result<EchoRun, String> {
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

pub fn echo_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
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
