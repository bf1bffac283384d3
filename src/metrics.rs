//! The server's Prometheus metrics, served at `/metrics`.
//!
//! One process-wide [`Metrics`], built with `prometheus-client`, reached
//! through [`get`]. Every update is an atomic add or store on a handle made
//! when the process starts: no lock is taken on the fan-out path. (The
//! crate's own histogram holds a mutex, so the two histograms here are
//! [`AtomicHistogram`]s, encoded through the crate's encoder all the same.)
//! Only disconnects, labelled by their close code's class (see
//! [`close_class`]), look their counter up in a map, once per connection.
//!
//! The rest of the server calls the small named methods below, one line per
//! place where something happens; the README lists every metric.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::limits::budget::Budget;

mod atomics;
pub(crate) mod store;

use store::StoreStats as Stats;

pub(crate) use atomics::AtomicHistogram;
use atomics::{Counter, Gauge};

/// The `Content-Type` of [`Metrics::render_openmetrics`]'s output.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of [`Metrics::render`]'s output.
pub(crate) const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label set of one label with a fixed value.
type Label = [(&'static str, &'static str); 1];

mod labels;
pub(crate) use labels::{ClientMode, Received, RefusalReason, mode_label};
use labels::{KINDS, MODES, mode_index};

/// Every metric of the server, with a handle per label value.
pub struct Metrics {
    registry: Registry,
    connections: [Gauge; 3],
    rooms: Gauge,
    hubs: Gauge,
    received: [Counter; 4],
    rate_limited: Counter,
    store_rate_limited: Counter,
    deliveries: Counter,
    bytes_received: Counter,
    bytes_sent: Counter,
    refused: [Counter; 7],
    disconnects: Family<Label, Counter>,
    evictions: Counter,
    redis_events: Counter,
    queue_depth: AtomicHistogram,
    fanout: AtomicHistogram,
    memory_used: Family<Label, Gauge>,
    memory_limit: Family<Label, Gauge>,
    /// The server's memory budget, read at each scrape.
    budget: OnceLock<Budget>,
    store_written: Counter,
    store_write_errors: Counter,
    store_read_errors: Counter,
    store_queue: Gauge,
    store_file_bytes: Gauge,
    store_failing: Gauge,
    store_bytes: Gauge,
    /// The history store's counts, read at each scrape.
    store: OnceLock<Arc<Stats>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wschat");
        registry.register(
            "build",
            "The running version of wschat",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );

        let connections = Family::<Label, Gauge>::default();
        registry.register(
            "connections",
            "Open WebSocket connections by mode (raw, v1, echo)",
            connections.clone(),
        );
        let rooms = Gauge::default();
        registry.register(
            "rooms",
            "Rooms held in memory: occupied, or empty and remembered for their history",
            rooms.clone(),
        );
        let hubs = Gauge::default();
        registry.register(
            "hubs",
            "Hub threads the rooms are spread over (--hubs)",
            hubs.clone(),
        );
        let received = Family::<Label, Counter>::default();
        registry.register(
            "messages_received",
            "Messages clients sent into rooms, by kind (text, file, typing, join)",
            received.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Times a client was held back by the per-connection rate limit",
            rate_limited.clone(),
        );
        let store_rate_limited = Counter::default();
        registry.register(
            "store_rate_limited",
            "Times a client was held back by its address's --store-rate",
            store_rate_limited.clone(),
        );
        let deliveries = Counter::default();
        registry.register(
            "deliveries",
            "Frames sent or queued to a client by its room (messages, files, events, history)",
            deliveries.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "bytes_received",
            "Bytes read from WebSocket connections",
            bytes_received.clone(),
        );
        let bytes_sent = Counter::default();
        registry.register(
            "bytes_sent",
            "Bytes written to WebSocket connections",
            bytes_sent.clone(),
        );
        let refused = Family::<Label, Counter>::default();
        registry.register(
            "handshakes_refused",
            "Connections refused before the WebSocket upgrade, by reason \
             (origin, cap, busy, rate, bad_request, timeout)",
            refused.clone(),
        );
        let disconnects = Family::default();
        registry.register(
            "disconnects",
            "Ended WebSocket connections by close code (1006: dropped without a close frame; other: a code outside RFC 6455's registry, as a client may choose any)",
            disconnects.clone(),
        );
        let evictions = Counter::default();
        registry.register(
            "slow_consumer_evictions",
            "Clients closed with 1008 because their outbound queue was full",
            evictions.clone(),
        );
        let redis_events = Counter::default();
        registry.register(
            "redis_events",
            "Events this instance heard from Redis with --redis (messages, files, presence, typing, moderation): only the rooms it hosts, and moderation",
            redis_events.clone(),
        );
        let queue_depth =
            AtomicHistogram::new(1.0, &[0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]);
        registry.register(
            "outbound_queue_depth",
            "Frames already waiting in a client's outbound queue when another is queued",
            queue_depth.clone(),
        );
        // In microseconds: 10 µs to 1 s.
        let fanout = AtomicHistogram::new(
            1e6,
            &[
                10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
            ],
        );
        registry.register_with_unit(
            "fanout_duration",
            "Time the dispatcher takes to queue one event for every member of a room",
            Unit::Seconds,
            fanout.clone(),
        );

        let memory_used = Family::<Label, Gauge>::default();
        registry.register_with_unit(
            "memory_used",
            "Bytes held for clients, by share of --memory-budget (history, outbound, incoming)",
            Unit::Bytes,
            memory_used.clone(),
        );
        let memory_limit = Family::<Label, Gauge>::default();
        registry.register_with_unit(
            "memory_limit",
            "Each share's limit within --memory-budget",
            Unit::Bytes,
            memory_limit.clone(),
        );

        // Counts the store thread keeps, copied into counters at each scrape.
        let mut store_counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let store_written = store_counter(
            "store_records_written",
            "Messages and file announcements the history store has committed since start",
        );
        let store_write_errors = store_counter(
            "store_write_errors",
            "Records the history store could not write (a full disk, say); they were refused to their senders, never delivered",
        );
        let store_read_errors = store_counter(
            "store_read_errors",
            "Room loads the history store could not read",
        );
        let mut store_gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let store_queue = store_gauge(
            "store_queue",
            "Requests waiting for the history store thread",
        );
        let store_file_bytes =
            store_gauge("store_file_bytes", "File bytes kept in the history store");
        let store_bytes = store_gauge(
            "store_bytes",
            "Bytes of messages, file announcements and files kept in the history store, \
             as counted against --retain-bytes",
        );
        let store_failing = store_gauge(
            "store_failing",
            "1 while the history store cannot write (messages are refused and /readyz says 503), else 0",
        );

        let one = |family: &Family<Label, Counter>, key, value| -> Counter {
            family.get_or_create(&[(key, value)]).clone()
        };
        Metrics {
            connections: MODES.map(|m| {
                connections
                    .get_or_create(&[("mode", mode_label(m))])
                    .clone()
            }),
            rooms,
            hubs,
            received: KINDS.map(|k| one(&received, "kind", k)),
            rate_limited,
            store_rate_limited,
            deliveries,
            bytes_received,
            bytes_sent,
            refused: RefusalReason::ALL.map(|r| one(&refused, "reason", r.label())),
            disconnects,
            evictions,
            redis_events,
            queue_depth,
            fanout,
            memory_used,
            memory_limit,
            budget: OnceLock::new(),
            store_written,
            store_write_errors,
            store_read_errors,
            store_queue,
            store_file_bytes,
            store_failing,
            store_bytes,
            store: OnceLock::new(),
            registry,
        }
    }

    /// The metrics in the OpenMetrics text format, which Prometheus asks for.
    pub(crate) fn render_openmetrics(&self) -> String {
        if let Some(budget) = self.budget.get() {
            for share in budget.shares() {
                let label = [("share", share.name())];
                self.memory_used
                    .get_or_create(&label)
                    .set(share.used() as i64);
                self.memory_limit
                    .get_or_create(&label)
                    .set(share.limit() as i64);
            }
        }
        if let Some(stats) = self.store.get() {
            let read = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed) as i64;
            // The store's counts only grow; `fetch_max` keeps two scrapes
            // at once from ever moving a counter back.
            let copy = |counter: &Counter, n: &std::sync::atomic::AtomicU64| {
                counter
                    .inner()
                    .0
                    .fetch_max(n.load(Ordering::Relaxed), Ordering::Relaxed);
            };
            copy(&self.store_written, &stats.records_written);
            copy(&self.store_write_errors, &stats.write_errors);
            copy(&self.store_read_errors, &stats.read_errors);
            self.store_queue.set(read(&stats.queue_len));
            self.store_file_bytes.set(read(&stats.file_bytes));
            self.store_failing.set(i64::from(stats.is_failing()));
            self.store_bytes.set(read(&stats.stored_bytes));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The metrics in Prometheus's older text format (0.0.4), for every other
    /// reader (`curl`, `promtool check metrics`).
    pub(crate) fn render(&self) -> String {
        to_text_format(&self.render_openmetrics())
    }

    /// Reports `budget`'s shares from now on (the first budget given wins:
    /// a process runs one server).
    pub(crate) fn watch_budget(&self, budget: &Budget) {
        let _ = self.budget.set(budget.clone());
    }

    /// Reports the history store's counts from now on (the first wins).
    pub(crate) fn watch_store(&self, stats: Arc<Stats>) {
        let _ = self.store.set(stats);
    }

    /// A WebSocket connection in `mode` is open until the guard is dropped.
    pub(crate) fn connection(&'static self, mode: ClientMode) -> OpenConnection {
        let gauge = &self.connections[mode_index(mode)];
        gauge.inc();
        OpenConnection {
            gauge,
            since: Instant::now(),
        }
    }

    /// The number of rooms held now.
    /// A hub holds `delta` more rooms (or fewer) than it last said: the
    /// gauge is the sum over every hub.
    pub(crate) fn rooms(&self, delta: i64) {
        self.rooms.inc_by(delta);
    }

    /// The server runs `n` hub threads.
    pub(crate) fn hubs(&self, n: usize) {
        self.hubs.set(n as i64);
    }

    /// A client's event is on its way to its room.
    pub(crate) fn received(&self, what: Received) {
        let kind = match what {
            Received::Text => 0,
            Received::File => 1,
            Received::Typing => 2,
            Received::Join => 3,
        };
        self.received[kind].inc();
    }

    /// The rate limit held a client back.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// An address's store rate held a client back.
    pub(crate) fn store_rate_limited(&self) {
        self.store_rate_limited.inc();
    }

    /// The subscription brought an event from Redis.
    pub(crate) fn redis_event(&self) {
        self.redis_events.inc();
    }

    /// `n` frames were sent or queued to clients.
    pub fn delivered(&self, n: u64) {
        self.deliveries.inc_by(n);
    }

    /// After a send to a client, its backlog holds `frames` frames (0 when
    /// the socket took everything).
    pub fn queue_depth(&self, frames: usize) {
        self.queue_depth.observe(frames as u64);
    }

    /// `n` bytes were read from a WebSocket.
    pub(crate) fn bytes_received(&self, n: usize) {
        self.bytes_received.inc_by(n as u64);
    }

    /// `n` bytes were written to a WebSocket.
    pub(crate) fn sent(&self, n: usize) {
        self.bytes_sent.inc_by(n as u64);
    }

    /// A connection was refused before becoming a WebSocket.
    pub(crate) fn refused(&self, why: RefusalReason) {
        self.refused[why as usize].inc();
    }

    /// A WebSocket connection ended with this close code.
    pub(crate) fn disconnect(&self, code: u16) {
        self.disconnects
            .get_or_create(&[("code", close_class(code))])
            .inc();
    }

    /// A client was closed for being too slow to read.
    pub(crate) fn evicted(&self) {
        self.evictions.inc();
    }

    /// One fan-out took `d`.
    pub(crate) fn fanout_duration(&self, d: Duration) {
        self.fanout
            .observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Measures a fan-out until the guard is dropped.
    pub fn fanout_timer(&'static self) -> FanoutTimer {
        FanoutTimer(self, Instant::now())
    }
}

/// The `code` label of a disconnect: the code itself when RFC 6455's
/// registry defines it (every code the server sends is one), `other` for
/// anything else. A client picks its close code freely (3000-4999, say), so
/// counting each as itself would let one client grow `/metrics` by a series
/// per code it tries.
pub(crate) fn close_class(code: u16) -> &'static str {
    const KNOWN: [(u16, &str); 15] = [
        (1000, "1000"),
        (1001, "1001"),
        (1002, "1002"),
        (1003, "1003"),
        (1005, "1005"),
        (1006, "1006"),
        (1007, "1007"),
        (1008, "1008"),
        (1009, "1009"),
        (1010, "1010"),
        (1011, "1011"),
        (1012, "1012"),
        (1013, "1013"),
        (1014, "1014"),
        (1015, "1015"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| *known == code)
        .map_or("other", |(_, label)| label)
}

/// Rewrites OpenMetrics text into the 0.0.4 text format. The samples are
/// the same; only the metadata differs: a counter's family is named with its
/// `_total` suffix, an info metric becomes a gauge named `…_info`, and there
/// are no `# UNIT` or `# EOF` lines.
fn to_text_format(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len());
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("# UNIT ") || *line == "# EOF" {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("HELP", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("TYPE", rest)));
        let Some((kind, rest)) = meta else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        // A family's HELP comes just before its TYPE.
        let family_type = if kind == "TYPE" {
            text
        } else {
            lines
                .get(i + 1)
                .and_then(|l| l.strip_prefix("# TYPE "))
                .and_then(|l| l.split_once(' '))
                .map_or("", |(_, t)| t)
        };
        let (suffix, text) = match (family_type, kind) {
            ("counter", _) => ("_total", text),
            ("info", "TYPE") => ("_info", "gauge"),
            ("info", _) => ("_info", text),
            _ => ("", text),
        };
        out.push_str(&format!("# {kind} {name}{suffix} {text}\n"));
    }
    out
}

/// Counts an open connection; see [`Metrics::connection`].
pub(crate) struct OpenConnection {
    gauge: &'static Gauge,
    since: Instant,
}

impl OpenConnection {
    /// How long the connection has been open.
    pub(crate) fn elapsed(&self) -> Duration {
        self.since.elapsed()
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Times a fan-out; see [`Metrics::fanout_timer`].
pub struct FanoutTimer(&'static Metrics, Instant);

impl Drop for FanoutTimer {
    fn drop(&mut self) {
        self.0.fanout_duration(self.1.elapsed());
    }
}

#[cfg(test)]
mod tests;
