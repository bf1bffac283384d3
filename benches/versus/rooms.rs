//! Scenario: many rooms at once. Each room has its receivers and one
//! sender; the senders go flat out (the closed loop of the fan-out
//! scenario, a window of messages in flight per sender) for a fixed time.
//! It runs against wschat with one hub thread, with two, and the relay,
//! and says besides deliveries per second and the server's CPU per
//! delivery how the hub threads shared the CPU they used between them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::loadgen::closed_loop::{self, Rooms, Watched};
use crate::loadgen::{Net, cpu_seconds, wait_ready};
use crate::server::{Kind, Server, check_health, connect_all};
use crate::table::{Cell, Row, Runs, correctness, median, row};
use crate::{Plan, RoomsPlan};

/// The servers compared: wschat with `--hubs 1`, with `--hubs 2`, and the
/// relay.
const SETUPS: [(Kind, &[&str]); 3] = [
    (Kind::Wschat, &["--hubs", "1"]),
    (Kind::Wschat, &["--hubs", "2"]),
    (Kind::Relay, &[]),
];

fn setup_name(k: usize) -> String {
    let (kind, args) = SETUPS[k];
    [kind.name()]
        .iter()
        .chain(args)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A thread that owns rooms: `hub-0`, `hub-1`, …, or the one `dispatcher`
/// of builds before the hub threads.
fn is_hub(comm: &str) -> bool {
    comm == "dispatcher"
        || comm
            .strip_prefix("hub-")
            .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// Each hub thread of process `pid` by thread id: its name and the CPU
/// seconds (user + system) it has used so far, from
/// `/proc/PID/task/TID/stat`. The relay has none.
fn hub_threads(pid: u32) -> BTreeMap<u32, (String, f64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(|task| {
            let tid: u32 = task.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            let comm = comm.trim_end().to_owned();
            let cpu = cpu_seconds(&format!("{pid}/task/{tid}"));
            is_hub(&comm).then_some((tid, (comm, cpu)))
        })
        .collect()
}

/// The server as the loop watches it, with its hub threads' CPU read when
/// the measured window opens and closes.
struct HubsWatched<'a>(&'a mut Server);

/// (server, bench) CPU seconds, and each hub thread's.
type Readings = ((f64, f64), BTreeMap<u32, (String, f64)>);

impl Watched for HubsWatched<'_> {
    type Cpu = Readings;

    fn cpu(&self) -> Readings {
        (Watched::cpu(&*self.0), hub_threads(self.0.pid()))
    }

    fn health(&mut self, net: &Net) -> Result<(), String> {
        check_health(net, self.0)
    }
}

pub struct RoomsRun {
    deliveries_per_s: f64,
    cpu_us_per_delivery: f64,
    bench_cpu_us_per_delivery: f64,
    /// Each hub thread's share of the CPU the hub threads used in the
    /// measured window, by name, in name order.
    hub_shares: Vec<(String, f64)>,
    /// The hub threads' CPU as a share of the whole process's.
    hubs_of_process: f64,
    /// Frames lost, duplicated, out of order or heard in another room.
    faults: u64,
}

fn rooms(mut server: Server, plan: &RoomsPlan, base: Instant) -> Result<RoomsRun, String> {
    let mut net = Net::new(base);
    let path = |room: usize| format!("/ws?room=room{room}");
    // Connections 0..R are the receivers, room by room, as the loop needs;
    // then one sender per room.
    let mut receivers = Vec::new();
    let mut of_receiver = Vec::new();
    for room in 0..plan.rooms {
        receivers.extend(connect_all(&mut net, &server, plan.receivers, &path(room))?);
        of_receiver.extend(std::iter::repeat_n(room, plan.receivers));
    }
    assert!(receivers.iter().enumerate().all(|(i, &id)| i == id));
    let mut senders = Vec::new();
    for room in 0..plan.rooms {
        senders.extend(connect_all(&mut net, &server, 1, &path(room))?);
    }
    for (room, members) in receivers.chunks(plan.receivers).enumerate() {
        wait_ready(&mut net, &senders[room..=room], members, |net| {
            check_health(net, &mut server)
        })?;
    }
    let of_sender: Vec<usize> = (0..plan.rooms).collect();
    let placed = Rooms {
        of_receiver: &of_receiver,
        of_sender: &of_sender,
    };
    let tally = closed_loop::run_rooms(
        &mut net,
        &placed,
        &senders,
        plan.warm_up,
        plan.measure,
        &mut HubsWatched(&mut server),
    )?;
    drop(server);
    let (((server_from, bench_from), hubs_from), ((server_to, bench_to), hubs_to)) =
        (tally.cpu_from, tally.cpu_to);
    let used: Vec<(String, f64)> = hubs_to
        .iter()
        .map(|(tid, (name, to))| {
            let from = hubs_from.get(tid).map_or(0.0, |(_, from)| *from);
            (name.clone(), to - from)
        })
        .collect();
    let hubs_cpu: f64 = used.iter().map(|(_, cpu)| cpu).sum();
    let mut hub_shares: Vec<(String, f64)> = used
        .into_iter()
        .map(|(name, cpu)| (name, cpu / hubs_cpu))
        .collect();
    hub_shares.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    let per_delivery = |cpu: f64| cpu * 1e6 / tally.measured.max(1) as f64;
    Ok(RoomsRun {
        deliveries_per_s: tally.measured as f64 / plan.measure.as_secs_f64(),
        cpu_us_per_delivery: per_delivery(server_to - server_from),
        bench_cpu_us_per_delivery: per_delivery(bench_to - bench_from),
        hub_shares,
        hubs_of_process: hubs_cpu / (server_to - server_from),
        faults: tally.missing
            + tally.skipped
            + tally.duplicated
            + tally.out_of_order
            + tally.strays,
    })
}

/// "hub-0 52%, hub-1 48% (61% of the process)": the median of each hub
/// thread's share over the runs; "-" for a server without hub threads.
fn hub_shares(runs: &[RoomsRun]) -> String {
    let mut by_name: Vec<(&str, Vec<f64>)> = Vec::new();
    for (name, share) in runs.iter().flat_map(|r| &r.hub_shares) {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, shares)) => shares.push(*share),
            None => by_name.push((name, vec![*share])),
        }
    }
    if by_name.is_empty() {
        return "-".into();
    }
    let percent = |values: Vec<f64>| match median(values) {
        Cell::Number(v) if v.is_finite() => format!("{:.0}%", v * 100.0),
        _ => "n/a".into(),
    };
    let shares: Vec<String> = by_name
        .into_iter()
        .map(|(name, shares)| format!("{name} {}", percent(shares)))
        .collect();
    let of_process = percent(runs.iter().map(|r| r.hubs_of_process).collect());
    format!("{} ({of_process} of the process)", shares.join(", "))
}

fn describe(r: &RoomsRun) -> String {
    format!(
        "{}{:.0} deliveries/s, server {:.2} / bench {:.2} CPU µs per delivery, \
         hub threads: {}, faults {}",
        if r.faults > 0 {
            "!! FRAMES LOST, MISORDERED OR IN ANOTHER ROOM: "
        } else {
            ""
        },
        r.deliveries_per_s,
        r.cpu_us_per_delivery,
        r.bench_cpu_us_per_delivery,
        hub_shares(std::slice::from_ref(r)),
        r.faults
    )
}

pub fn rooms_rows(plan: &Plan, relay: &Path, base: Instant, notes: &mut Vec<String>) -> Vec<Row> {
    let p = &plan.rooms;
    eprintln!(
        "rooms: {} rooms of {} receivers, one sender each ...",
        p.rooms, p.receivers
    );
    let mut runs: [Vec<RoomsRun>; 3] = Default::default();
    let mut failures = [0; 3];
    for run in 1..=plan.runs {
        for (k, (kind, args)) in SETUPS.into_iter().enumerate() {
            let name = setup_name(k);
            match rooms(Server::start_with(kind, relay, false, args), p, base) {
                Ok(r) => {
                    eprintln!("  rooms, {name} run {run}: {}", describe(&r));
                    runs[k].push(r);
                }
                Err(e) => {
                    eprintln!("  !! rooms, {name} run {run} FAILED: {e}");
                    failures[k] += 1;
                }
            }
        }
    }
    for (k, &failed) in failures.iter().enumerate() {
        if failed > 0 {
            notes.push(format!(
                "rooms, {}: {failed} run(s) FAILED (the reasons are above, on stderr)",
                setup_name(k)
            ));
        }
    }
    let only_dispatcher = runs[..2]
        .iter()
        .flatten()
        .flat_map(|r| &r.hub_shares)
        .all(|(name, _)| name == "dispatcher");
    if only_dispatcher {
        notes.push(
            "rooms: this wschat has one `dispatcher` thread whatever --hubs says; \
             both wschat rows ran with it."
                .into(),
        );
    }
    let [hubs1, hubs2, relay_runs] = &runs;
    let mut rows = Vec::new();
    for (k, wschat) in [hubs1, hubs2].into_iter().enumerate() {
        let pair: Runs<&RoomsRun> = [wschat.iter().collect(), relay_runs.iter().collect()];
        let failed = [failures[k], failures[2]];
        let name = setup_name(k);
        rows.extend([
            row(
                &pair,
                format!("rooms {}x{}+1, {name}, deliveries/s", p.rooms, p.receivers),
                0,
                |r| r.deliveries_per_s,
            ),
            row(
                &pair,
                format!("rooms, {name}, server CPU µs per delivery"),
                2,
                |r| r.cpu_us_per_delivery,
            ),
            Row {
                scenario: format!("rooms, {name}, each hub thread's share of the hubs' CPU"),
                cells: [
                    Cell::Text(hub_shares(wschat)),
                    Cell::Text(hub_shares(relay_runs)),
                ],
                decimals: 0,
            },
            Row {
                scenario: format!("rooms, {name}, frames lost, misordered or in another room"),
                cells: correctness(&pair, &failed, |r| r.faults),
                decimals: 0,
            },
        ]);
    }
    rows
}
