//! Scenario: open-loop latency.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::loadgen::{
    Net, STALL_TIMEOUT, bench_queued_seconds, cpu_seconds, message, parse_message, percentile_ms,
    wait_ready,
};
use crate::server::{Server, check_health, connect_all};
use crate::table::{Row, alternate, correctness, note_failures, row};
use crate::{LatencyPlan, Plan};

pub struct LatencyRun {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub lost: u64,
    /// The most a message left after its scheduled time (the bench's own
    /// lateness, included in every latency).
    pub worst_send_lateness_ms: f64,
    /// CPU the bench process used, in cores, while the messages went out.
    pub bench_cores: f64,
    /// Time the bench's poll loop waited for a CPU meanwhile.
    pub bench_queued_ms: f64,
}

pub fn latency(
    mut server: Server,
    plan: &LatencyPlan,
    base: Instant,
) -> Result<LatencyRun, String> {
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

pub fn latency_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
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
