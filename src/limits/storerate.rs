//! How fast one client address may make the server store: the bytes of its
//! messages and files together (`--store-rate`), with a burst of one
//! largest file. Without it, a few connections from one address could fill
//! the disk at hundreds of MiB a minute, however each connection's frame
//! rate was limited.
//!
//! Every connection of an address shares one [`StoreRate`], handed out by
//! the admission thread with the connection's place (behind a trusted
//! proxy, the address is the forwarded client's). It is a lock-free
//! generic cell rate algorithm (GCRA) over one atomic: a reservation moves
//! the address's "theoretical arrival time" on by the bytes' cost, and the
//! reader waits until that time is within the burst. Waiting holds the
//! client back by TCP flow control, as the per-connection rate limit does:
//! nothing is lost, nothing is refused, and only that address waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a message or file costs beyond its bytes: the store keeps its
/// room, sender, `cid`, name and type beside them (192 bytes at most, in
/// practice) and a row's bookkeeping (`history::sqlite::retention` counts 64).
pub const RECORD_COST: u64 = 256;

/// What a message of `text` bytes costs the store, as `history::sqlite::retention`
/// counts it: whole overflow pages once its row passes about 940 bytes,
/// and its words in the index (96 for a room key of up to 24 bytes, and
/// half the text). A file's bytes cost their length, and its announcement
/// [`RECORD_COST`].
pub fn record_cost(text: u64) -> u64 {
    let strings = text + RECORD_COST - 64;
    let row = if strings > 940 {
        (strings - 489).div_ceil(4092) * 4096 + 553
    } else {
        strings + 64
    };
    row + 96 + text / 2
}

/// One address's allowance, shared by its connections.
#[derive(Debug)]
pub struct StoreRate {
    /// Bytes per second, sustained.
    rate: f64,
    /// How far ahead of now the theoretical arrival time may run before a
    /// reservation waits: the burst's worth of time, in nanoseconds.
    burst_ns: u64,
    /// Nanoseconds after `base` at which the address's allowance is whole
    /// again (the GCRA's theoretical arrival time).
    tat: AtomicU64,
    base: Instant,
}

impl StoreRate {
    /// An allowance of `rate` bytes a second, and `burst` bytes at once; a
    /// new one is full.
    pub fn new(rate: u64, burst: u64) -> StoreRate {
        let rate = rate.max(1) as f64;
        StoreRate {
            rate,
            burst_ns: nanos(burst as f64 / rate),
            tat: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// Reserves `bytes`; returns how long the caller must wait before
    /// handing them on (zero within the burst). The reservation holds
    /// whether or not the caller waits, so connections of one address
    /// together never pass the rate.
    pub fn reserve(&self, bytes: u64) -> Duration {
        let cost = nanos(bytes as f64 / self.rate);
        let now = self.now();
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(cost);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let wait = next.saturating_sub(now).saturating_sub(self.burst_ns);
                    return Duration::from_nanos(wait);
                }
                Err(seen) => tat = seen,
            }
        }
    }

    /// Whether the allowance is whole again: the address has been quiet
    /// long enough for its state to be forgotten.
    pub fn is_full(&self) -> bool {
        self.tat.load(Ordering::Relaxed) <= self.now()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn nanos(secs: f64) -> u64 {
    (secs * 1e9).min(u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let r = StoreRate::new(1000, 5000);
        assert_eq!(r.reserve(5000), Duration::ZERO);
        // The next 1000 bytes are a second away, whoever asks.
        let wait = r.reserve(1000);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let wait = r.reserve(500);
        assert!(wait > Duration::from_millis(1400), "{wait:?}");
        assert!(!r.is_full());
    }

    #[test]
    fn connections_of_one_address_share_it() {
        let r = std::sync::Arc::new(StoreRate::new(1000, 1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || r.reserve(1000))
            })
            .collect();
        let mut waits: Vec<Duration> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        waits.sort();
        // One passes at once; the others wait about 1, 2 and 3 seconds.
        assert_eq!(waits[0], Duration::ZERO);
        for (i, wait) in waits.iter().enumerate().skip(1) {
            let secs = wait.as_secs_f64();
            assert!((secs - i as f64).abs() < 0.1, "{waits:?}");
        }
    }

    #[test]
    fn a_new_allowance_is_full() {
        assert!(StoreRate::new(10, 10).is_full());
    }
}
