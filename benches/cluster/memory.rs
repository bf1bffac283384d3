//! Scenario: Redis's memory per message, and its figures.

use std::thread;
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, redis_connection};
use crate::loadgen::{Net, PAYLOAD_BYTES, STALL_TIMEOUT, message, parse_message, wait_ready};
use crate::{Plan, grouped};

/// Messages the memory phase may have in flight.
pub const MEMORY_WINDOW: u64 = 256;

pub struct MemoryRun {
    pub messages: u64,
    /// `used_memory` (everything, client buffers included) and
    /// `dataset.bytes` of `MEMORY STATS` (the keys and values alone).
    pub used_before: u64,
    pub used_after: u64,
    pub dataset_before: u64,
    pub dataset_after: u64,
    pub keys_added: i64,
    /// `MEMORY USAGE` of the room's stream, and its length (the readiness
    /// probes are entries too).
    pub stream_bytes: u64,
    pub stream_len: u64,
}

/// A number field of `INFO memory`.
pub fn info_memory(conn: &mut redis::Connection, field: &str) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(conn)
        .map_err(|e| format!("INFO memory: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no {field} in INFO memory"))
}

/// A number field of `MEMORY STATS` (a flat list of names and values).
pub fn memory_stats(conn: &mut redis::Connection, field: &str) -> Result<u64, String> {
    let stats: Vec<redis::Value> = redis::cmd("MEMORY")
        .arg("STATS")
        .query(conn)
        .map_err(|e| format!("MEMORY STATS: {e}"))?;
    stats
        .chunks(2)
        .find(|pair| redis::from_redis_value::<String>(pair[0].clone()).is_ok_and(|n| n == field))
        .and_then(|pair| redis::from_redis_value::<u64>(pair.get(1)?.clone()).ok())
        .ok_or_else(|| format!("no {field} in MEMORY STATS"))
}

pub fn dbsize(conn: &mut redis::Connection) -> Result<i64, String> {
    redis::cmd("DBSIZE")
        .query(conn)
        .map_err(|e| format!("DBSIZE: {e}"))
}

pub fn memory(fleet: &mut Fleet, plan: &Plan, base: Instant) -> Result<MemoryRun, String> {
    let room = "memory";
    let path = format!("/ws?room={room}");
    let addrs = fleet.shared_addrs();
    let mut net = Net::new(base);
    let receiver = net.connect(addrs[1], &path)?;
    let sender = net.connect(addrs[0], &path)?;
    wait_ready(&mut net, &[sender], &[receiver], |net| fleet.health(net))?;

    let mut conn = redis_connection(&fleet.redis);
    let n = plan.memory_messages;
    // Let the probes' pub/sub traffic drain from Redis's buffers.
    thread::sleep(Duration::from_millis(200));
    let used_before = info_memory(&mut conn, "used_memory")?;
    let dataset_before = memory_stats(&mut conn, "dataset.bytes")?;
    let keys_before = dbsize(&mut conn)?;
    let (mut sent, mut got) = (0u64, 0u64);
    let deadline = Instant::now() + STALL_TIMEOUT;
    while got < n {
        while sent < n && sent < got + MEMORY_WINDOW {
            let now = net.now_ns();
            net.send_text(sender, &message(0, sent, now));
            sent += 1;
        }
        net.poll(Duration::from_millis(5), |id, _, payload| {
            if id == receiver && parse_message(payload).is_some() {
                got += 1;
            }
        });
        fleet.health(&net)?;
        if Instant::now() > deadline {
            return Err(format!("{got} of {n} messages arrived"));
        }
    }
    thread::sleep(Duration::from_millis(200));
    let used_after = info_memory(&mut conn, "used_memory")?;
    let dataset_after = memory_stats(&mut conn, "dataset.bytes")?;
    let keys_added = dbsize(&mut conn)? - keys_before;
    // The room's stream, named as src/cluster/keys.rs names it.
    let log = format!("wschat:{{{room}}}:log");
    let stream_bytes: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&log)
        .arg("SAMPLES")
        .arg(0)
        .query(&mut conn)
        .map_err(|e| format!("MEMORY USAGE: {e}"))?;
    let stream_len: u64 = redis::cmd("XLEN")
        .arg(&log)
        .query(&mut conn)
        .map_err(|e| format!("XLEN: {e}"))?;
    Ok(MemoryRun {
        messages: n,
        used_before,
        used_after,
        dataset_before,
        dataset_after,
        keys_added,
        stream_bytes,
        stream_len,
    })
}

pub fn print_memory(run: &MemoryRun) {
    let n = run.messages as f64;
    let used = run.used_after as f64 - run.used_before as f64;
    let dataset = run.dataset_after as f64 - run.dataset_before as f64;
    let per_entry = run.stream_bytes as f64 / run.stream_len.max(1) as f64;
    println!();
    println!(
        "Redis memory: {} messages of {PAYLOAD_BYTES} bytes into a fresh room, sent on A, received on B",
        grouped(n, 0)
    );
    println!(
        "used_memory    {:>12} -> {:>12} bytes: {:>5.0} bytes per message",
        grouped(run.used_before as f64, 0),
        grouped(run.used_after as f64, 0),
        used / n
    );
    println!(
        "dataset.bytes  {:>12} -> {:>12} bytes: {:>5.0} bytes per message ({} keys added)",
        grouped(run.dataset_before as f64, 0),
        grouped(run.dataset_after as f64, 0),
        dataset / n,
        run.keys_added
    );
    println!(
        "of which the room's stream {:.0} bytes per entry ({} bytes, {} entries), \
         the rest {:.0} bytes per message (the 60 s dedup keys)",
        per_entry,
        grouped(run.stream_bytes as f64, 0),
        grouped(run.stream_len as f64, 0),
        (dataset - run.stream_bytes as f64) / n
    );
}
