//! Scenario: what rooms an instance does not host cost it, on one Redis
//! and, when the cluster was started, on the Redis Cluster. Ten rooms on
//! instance B, each with one raw receiver on B and a paced raw sender on B,
//! carry `--rate`-many messages a second in all (5,000 by default) for the
//! plan's seconds; instance A has one client, in a room of its own, and
//! nobody in the busy rooms. A's CPU over the window is the figure; B's and
//! Redis's are given beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, addr};
use crate::latency::paced_sender;
use crate::loadgen::{Net, STALL_TIMEOUT, cpu_seconds, parse_message, parse_probe};
use crate::{Plan, grouped};

/// Busy rooms, each with its own sender.
const ROOMS: usize = 10;

pub struct IdleRun {
    /// Which Redis: `"one Redis"` or `"Redis Cluster"`.
    pub on: &'static str,
    pub rate: u64,
    pub wall: f64,
    pub sent: u64,
    pub received: u64,
    /// CPU seconds over the window: the idle instance A, the busy instance
    /// B, Redis (every master of a cluster).
    pub idle: f64,
    pub busy: f64,
    pub redis: f64,
}

fn cpu(fleet: &Fleet, clustered: bool) -> [f64; 3] {
    let (instances, redis) = match clustered {
        false => (&fleet.shared, fleet.cpu().redis),
        true => (&fleet.on_cluster, fleet.cpu().masters),
    };
    [
        cpu_seconds(&instances[0].pid().to_string()),
        cpu_seconds(&instances[1].pid().to_string()),
        redis,
    ]
}

/// Runs the scenario on the instances of one Redis, or of the cluster
/// when `clustered`.
pub fn idle(
    fleet: &mut Fleet,
    plan: &Plan,
    base: Instant,
    clustered: bool,
) -> Result<IdleRun, String> {
    let rate = plan.idle_rate;
    let per_room = rate * plan.seconds / ROOMS as u64;
    let period = 1_000_000_000 * ROOMS as u64 / rate;
    let instances = match clustered {
        false => &fleet.shared,
        true => &fleet.on_cluster,
    };
    let (a, b): (SocketAddr, SocketAddr) = (addr(&instances[0]), addr(&instances[1]));
    let mut net = Net::new(base);
    // A hosts a room of its own, quiet.
    net.connect(a, "/ws?room=idle-home")?;
    let receivers: Vec<usize> = (0..ROOMS)
        .map(|r| net.connect(b, &format!("/ws?room=idle-busy-{r}")))
        .collect::<Result<_, _>>()?;
    let ready = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..ROOMS)
        .map(|r| {
            // One handshake at a time: an address may have only so many
            // under way (`--max-handshakes-per-ip`).
            std::thread::sleep(Duration::from_millis(20));
            paced_sender(
                b,
                format!("/ws?room=idle-busy-{r}"),
                base,
                ready.clone(),
                per_room,
                period,
            )
        })
        .collect();
    // Every receiver has heard its room's sender: everyone is in.
    let mut heard = [false; ROOMS];
    let deadline = Instant::now() + STALL_TIMEOUT;
    while heard.iter().any(|h| !h) {
        net.poll(Duration::from_millis(5), |id, _, payload| {
            if let Some(r) = receivers.iter().position(|&x| x == id)
                && parse_probe(payload).is_some()
            {
                heard[r] = true;
            }
        });
        fleet.health(&net)?;
        if let Some(r) = senders.iter().position(|s| s.is_finished()) {
            let sender = senders.into_iter().nth(r).expect("found above");
            return Err(format!("sender {r} failed: {:?}", sender.join()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the busy rooms' receivers never heard their senders: {heard:?} {:?}",
                net.endings()
            ));
        }
    }
    let before = cpu(fleet, clustered);
    let started = Instant::now();
    ready.store(true, Ordering::SeqCst);
    let expected = per_room * ROOMS as u64;
    let mut received = 0u64;
    let deadline = started + Duration::from_secs(plan.seconds) + STALL_TIMEOUT;
    while received < expected && Instant::now() < deadline {
        net.poll(Duration::from_millis(5), |id, _, payload| {
            if receivers.contains(&id) && parse_message(payload).is_some() {
                received += 1;
            }
        });
        fleet.health(&net)?;
    }
    let wall = started.elapsed().as_secs_f64();
    let after = cpu(fleet, clustered);
    for sender in senders {
        sender
            .join()
            .map_err(|_| "a sender panicked".to_string())??;
    }
    Ok(IdleRun {
        on: if clustered {
            "Redis Cluster"
        } else {
            "one Redis"
        },
        rate,
        wall,
        sent: expected,
        received,
        idle: after[0] - before[0],
        busy: after[1] - before[1],
        redis: after[2] - before[2],
    })
}

pub fn print_idle(run: &IdleRun) {
    let pct = |s: f64| 100.0 * s / run.wall;
    println!();
    println!(
        "idle instance, {}: {} messages/s for {:.1} s through {ROOMS} rooms on B that A does not host",
        run.on,
        grouped(run.rate as f64, 0),
        run.wall
    );
    println!(
        "  received on B {} of {}",
        grouped(run.received as f64, 0),
        grouped(run.sent as f64, 0)
    );
    println!(
        "  CPU: A (idle) {:.1}%   B (busy) {:.1}%   Redis {:.1}%   (of one core)",
        pct(run.idle),
        pct(run.busy),
        pct(run.redis)
    );
}
