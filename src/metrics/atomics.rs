//! The lock-free handles the metrics are made of: counters and gauges each
//! on a cache line of its own, and a histogram kept in atomics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// A counter whose value has a cache line of its own: readers and backlog
/// writers add to theirs while the dispatcher adds to `deliveries`, and two
/// values sharing a line would make each wait for the other's core.
pub(crate) type Counter = prometheus_client::metrics::counter::Counter<u64, Padded>;

/// A gauge on a cache line of its own (see [`Counter`]).
pub(crate) type Gauge = prometheus_client::metrics::gauge::Gauge<i64, PaddedI64>;

/// An `AtomicU64` alone on its cache line (128 bytes covers the adjacent-line
/// prefetch of x86 as well).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded(pub(super) AtomicU64);

impl prometheus_client::metrics::counter::Atomic<u64> for Padded {
    fn inc(&self) -> u64 {
        self.inc_by(1)
    }

    fn inc_by(&self, v: u64) -> u64 {
        self.0.fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An `AtomicI64` alone on its cache line, for gauges.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct PaddedI64(AtomicI64);

impl prometheus_client::metrics::gauge::Atomic<i64> for PaddedI64 {
    fn inc(&self) -> i64 {
        self.inc_by(1)
    }

    fn inc_by(&self, v: i64) -> i64 {
        self.0.fetch_add(v, Ordering::Relaxed)
    }

    fn dec(&self) -> i64 {
        self.dec_by(1)
    }

    fn dec_by(&self, v: i64) -> i64 {
        self.0.fetch_sub(v, Ordering::Relaxed)
    }

    fn set(&self, v: i64) -> i64 {
        self.0.swap(v, Ordering::Relaxed)
    }

    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram of whole numbers (counts, or microseconds) kept in atomics,
/// so that observing takes no lock. Each observation adds to one bucket and
/// to the sum; the count is the sum of the buckets, so a scrape never sees
/// them disagree.
#[derive(Clone)]
pub(crate) struct AtomicHistogram(std::sync::Arc<HistogramInner>);

struct HistogramInner {
    /// Units in one exported unit (1e6 for microseconds exported as seconds).
    scale: f64,
    /// Upper bounds, inclusive, ascending; a last bucket catches the rest.
    bounds: Vec<u64>,
    counts: Vec<Padded>,
    sum: Padded,
}

impl AtomicHistogram {
    /// A histogram of `bounds`, reported divided by `scale` (so that
    /// microseconds can be reported as seconds).
    pub(crate) fn new(scale: f64, bounds: &[u64]) -> AtomicHistogram {
        AtomicHistogram(std::sync::Arc::new(HistogramInner {
            scale,
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| Padded::default()).collect(),
            sum: Padded::default(),
        }))
    }

    /// Counts one value.
    pub(crate) fn observe(&self, v: u64) {
        let h = &self.0;
        let i = h.bounds.partition_point(|&b| b < v);
        h.counts[i].0.fetch_add(1, Ordering::Relaxed);
        if v != 0 {
            h.sum.0.fetch_add(v, Ordering::Relaxed);
        }
    }

    /// Upper bounds with the count of each bucket (not cumulative), as the
    /// encoder expects, and the total count.
    pub(super) fn snapshot(&self) -> (Vec<(f64, u64)>, u64) {
        let h = &self.0;
        let mut total = 0;
        let buckets = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let n = c.0.load(Ordering::Relaxed);
                total += n;
                let bound = h
                    .bounds
                    .get(i)
                    .map_or(f64::INFINITY, |&b| b as f64 / h.scale);
                (bound, n)
            })
            .collect();
        (buckets, total)
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count) = self.snapshot();
        let sum = self.0.sum.0.load(Ordering::Relaxed) as f64 / self.0.scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicHistogram")
            .field("bounds", &self.0.bounds)
            .finish_non_exhaustive()
    }
}
