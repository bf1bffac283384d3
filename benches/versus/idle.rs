//! Scenario: idle connections.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::Plan;
use crate::loadgen::{Net, STALL_TIMEOUT, message, parse_message};
use crate::server::{Kind, Server, check_health, raise_sysctl};
use crate::table::{Cell, Row, alternate, grouped};

pub struct IdleRun {
    pub wanted: usize,
    /// Connections open at the end.
    pub held: usize,
    /// Why connecting stopped short, or what the server did to them.
    pub failure: Option<String>,
    pub kib_per_conn: Option<f64>,
    pub threads_per_conn: Option<f64>,
    /// Time for one message to reach every held connection.
    pub broadcast_ms: Option<f64>,
    /// wschat's connection threads whose stack has more than two pages
    /// resident, of those found.
    pub deep_stacks: Option<(usize, usize)>,
}

/// The stack a wschat connection thread is given (`THREAD_STACK` in
/// src/ws/reader.rs); glibc maps it as one read-write mapping of this size.
const CONNECTION_STACK_KIB: u64 = 128;

/// The stack pages an idle connection's thread may touch: everything it
/// runs before it idles is kept within two (see "Limits" in
/// docs/ARCHITECTURE.md); a third costs every connection 4 KiB.
const STACK_PAGES_KIB: u64 = 8;

/// Counts the mappings of a connection thread's stack size in `pid` and
/// those with more than two pages resident: `(deeper, found)`.
fn deep_stacks(pid: u32) -> Option<(usize, usize)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut deeper, mut found) = (0, 0);
    let mut stack_sized = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if let Some((from, to)) = first.split_once('-')
            && let (Ok(from), Ok(to)) = (u64::from_str_radix(from, 16), u64::from_str_radix(to, 16))
        {
            let perms = words.next().unwrap_or("");
            // Anonymous: offset, device, inode, and no path.
            let anonymous = words.nth(2) == Some("0") && words.next().is_none();
            stack_sized = perms == "rw-p" && anonymous && to - from == CONNECTION_STACK_KIB * 1024;
        } else if stack_sized && first == "Rss:" {
            found += 1;
            let rss: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            deeper += usize::from(rss > STACK_PAGES_KIB);
        }
    }
    Some((deeper, found))
}

/// Waits until the server's RSS and thread count stop moving (nothing
/// announces that, so /proc is sampled), then returns them.
pub fn settle(server: &Server) -> (u64, u64) {
    let deadline = Instant::now() + STALL_TIMEOUT;
    let mut last = (server.rss_kib(), server.threads());
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = (server.rss_kib(), server.threads());
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Adds `why` to what went wrong so far.
pub fn add_failure(failure: &mut Option<String>, why: String) {
    *failure = Some(match failure.take() {
        Some(before) => format!("{before}; {why}"),
        None => why,
    });
}

pub fn idle(mut server: Server, wanted: usize, base: Instant) -> IdleRun {
    let mut run = IdleRun {
        wanted,
        held: 0,
        failure: None,
        kib_per_conn: None,
        threads_per_conn: None,
        broadcast_ms: None,
        deep_stacks: None,
    };
    let (rss_before, threads_before) = settle(&server);
    let mut net = Net::new(base);
    let path = "/ws?room=idle";
    // The client that speaks at the end connects first, so that it has its
    // place however many connections the server manages to hold.
    let speaker = match net.connect(server.addr, path) {
        Ok(id) => id,
        Err(e) => {
            run.failure = Some(format!("the first connection failed: {e}"));
            return run;
        }
    };
    for i in 0..wanted {
        if let Err(e) = net.connect(server.addr, path) {
            run.failure = Some(format!("connection {} of {wanted} failed: {e}", i + 1));
            break;
        }
        if (i + 1) % 1000 == 0 {
            // Notice connections the server accepted and then dropped.
            net.poll(Duration::ZERO, |_, _, _| {});
            if let Err(e) = check_health(&net, &mut server) {
                run.failure = Some(format!("after {} connections: {e}", i + 1));
                break;
            }
        }
    }
    let listeners_open = |net: &Net| net.open() - usize::from(net.is_open(speaker));
    run.held = listeners_open(&net);
    if let Some(exit) = server.exited() {
        add_failure(&mut run.failure, exit);
        return run;
    }
    let (rss_after, threads_after) = settle(&server);
    net.poll(Duration::ZERO, |_, _, _| {});
    run.held = listeners_open(&net);
    // Per connection the server holds, the speaker included.
    let connections = net.open().max(1) as f64;
    run.kib_per_conn = Some(rss_after.saturating_sub(rss_before) as f64 / connections);
    run.threads_per_conn = Some(threads_after.saturating_sub(threads_before) as f64 / connections);
    if server.kind == Kind::Wschat {
        run.deep_stacks = deep_stacks(server.pid());
        // A few other mappings may have the same size; a third stack page
        // shows in (nearly) every connection.
        match run.deep_stacks {
            Some((deeper, found)) if found >= run.held && deeper <= run.held / 10 => {}
            Some((deeper, found)) => add_failure(
                &mut run.failure,
                format!(
                    "{deeper} of {found} connection stacks have more than \
                     {STACK_PAGES_KIB} KiB resident (a third stack page)"
                ),
            ),
            None => add_failure(&mut run.failure, "cannot read the server's smaps".into()),
        }
    }

    // The speaker says one thing to the whole room.
    let sent_at = net.now_ns();
    net.send_text(speaker, &message(0, 0, sent_at));
    let mut last_at = sent_at;
    let mut reached = 0usize;
    let deadline = Instant::now() + STALL_TIMEOUT;
    while reached < run.held && Instant::now() < deadline && server.exited().is_none() {
        net.poll(Duration::from_millis(10), |id, at, payload| {
            if id != speaker && parse_message(payload).is_some() {
                reached += 1;
                last_at = last_at.max(at);
            }
        });
    }
    if reached == run.held && run.held > 0 {
        run.broadcast_ms = Some((last_at - sent_at) as f64 / 1e6);
    } else {
        let why = format!("the message reached {reached} of {} connections", run.held);
        add_failure(&mut run.failure, why);
    }
    if let Some(endings) = net.endings() {
        add_failure(&mut run.failure, endings);
    }
    drop(server);
    run
}

pub fn idle_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let n = plan.idle_connections;
    eprintln!("idle: {n} connections ...");
    raise_sysctl("vm.max_map_count", 262_144);
    raise_sysctl("kernel.pid_max", 4_194_304);
    let (runs, _) = alternate(
        "idle",
        1,
        |kind| Ok(idle(Server::start(kind, relay, true), n, base)),
        |r| {
            format!(
                "held {} of {}, {} KiB and {} threads per connection{}, \
                 one message to all in {} ms{}",
                r.held,
                r.wanted,
                r.kib_per_conn.map_or("-".into(), |v| format!("{v:.1}")),
                r.threads_per_conn.map_or("-".into(), |v| format!("{v:.3}")),
                r.deep_stacks
                    .map_or(String::new(), |(deeper, found)| format!(
                        " ({deeper} of {found} stacks past {STACK_PAGES_KIB} KiB)"
                    )),
                r.broadcast_ms.map_or("-".into(), |v| format!("{v:.1}")),
                r.failure
                    .as_deref()
                    .map_or(String::new(), |f| format!(" -- FAILED: {f}"))
            )
        },
    );
    for (kind, run) in Kind::BOTH.iter().zip(&runs) {
        if let Some(failure) = run.first().and_then(|r| r.failure.as_deref()) {
            notes.push(format!("idle, {}: FAILED: {failure}", kind.name()));
        }
    }
    let cell = |k: usize, figure: fn(&IdleRun) -> Option<f64>| {
        runs[k]
            .first()
            .and_then(figure)
            .map_or(Cell::Failed, Cell::Number)
    };
    vec![
        Row {
            scenario: format!("idle {}, connections held", grouped(n as f64, 0)),
            cells: [0, 1].map(|k| match runs[k].first() {
                Some(r) if r.failure.is_none() => Cell::Text(grouped(r.held as f64, 0)),
                Some(r) => Cell::Text(format!("{} (failed)", grouped(r.held as f64, 0))),
                None => Cell::Failed,
            }),
            decimals: 0,
        },
        Row {
            scenario: "idle, server RSS KiB per connection".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.kib_per_conn)),
            decimals: 1,
        },
        Row {
            scenario: "idle, server threads per connection".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.threads_per_conn)),
            decimals: 3,
        },
        Row {
            scenario: "idle, one message to all, ms".into(),
            cells: [0, 1].map(|k| cell(k, |r| r.broadcast_ms)),
            decimals: 1,
        },
    ]
}
