//! Idle connections: what holding raw clients that never send costs the
//! server in memory, threads and descriptors, and how fast they are taken.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::WebSocket;

use crate::clients::{PHASE_TIMEOUT, check_alive, connect_raw, start};
use crate::server::Server;

pub struct IdleRow {
    connections: usize,
    rss_kib: usize,
    delta_kib: usize,
    per_conn_kib: f64,
    threads: usize,
    fds: usize,
    handshakes_per_s: f64,
}

/// Waits for the server to have `want` fds open, then for its thread count
/// and RSS to stop moving (no event reports either, so /proc is polled).
fn settle(server: &Server, want: usize) {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    server.wait_until_within(
        &format!("the server to hold {want} fds"),
        PHASE_TIMEOUT,
        |s| s.fds() >= want,
    );
    let mut prev = (server.threads(), server.rss_kib());
    loop {
        thread::sleep(Duration::from_millis(250));
        let now = (server.threads(), server.rss_kib());
        if now == prev || Instant::now() > deadline {
            return;
        }
        prev = now;
    }
}

/// Holds raw connections at each of `levels` in turn; returns the server's
/// RSS (KiB) and threads before any, and a row a level.
pub fn idle(levels: &[usize]) -> (usize, usize, Vec<IdleRow>) {
    // Pings are pushed far out: idle clients here never read, so they would
    // never answer one, and that is not what is being measured.
    let mut server = start(&["--ping-interval", "3600"]);
    let url = server.url("/ws?room=idle");
    let base_fds = server.fds();
    settle(&server, base_fds);
    let base_rss = server.rss_kib();
    let base_threads = server.threads();
    let mut held: Vec<WebSocket<TcpStream>> = Vec::with_capacity(*levels.last().unwrap());
    let mut rows = Vec::new();
    for &n in levels {
        let started = Instant::now();
        let added = n - held.len();
        while held.len() < n {
            held.push(connect_raw(&url, &server.addr));
        }
        let handshakes_per_s = added as f64 / started.elapsed().as_secs_f64();
        settle(&server, base_fds + n);
        check_alive(&mut server);
        let rss = server.rss_kib();
        let delta = rss.saturating_sub(base_rss);
        rows.push(IdleRow {
            connections: n,
            rss_kib: rss,
            delta_kib: delta,
            per_conn_kib: delta as f64 / n as f64,
            threads: server.threads(),
            fds: server.fds(),
            handshakes_per_s,
        });
    }
    drop(server);
    drop(held);
    (base_rss, base_threads, rows)
}

/// Prints the rows of `idle`, after the server's own baseline.
pub fn print_table(base_rss: usize, base_threads: usize, rows: &[IdleRow]) {
    println!(
        "Idle raw connections (server baseline: RSS {:.1} MiB, {base_threads} threads)",
        base_rss as f64 / 1024.0
    );
    println!(
        "{:>11} {:>12} {:>14} {:>10} {:>8} {:>7} {:>13}",
        "connections", "RSS MiB", "RSS-base MiB", "KiB/conn", "threads", "fds", "handshakes/s"
    );
    for r in rows {
        println!(
            "{:>11} {:>12.1} {:>14.1} {:>10.1} {:>8} {:>7} {:>13.0}",
            r.connections,
            r.rss_kib as f64 / 1024.0,
            r.delta_kib as f64 / 1024.0,
            r.per_conn_kib,
            r.threads,
            r.fds,
            r.handshakes_per_s
        );
    }
}
