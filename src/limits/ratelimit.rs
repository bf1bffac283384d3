//! Token buckets: the rate at which a client's frames are read, the budget
//! of refusals after which a client is considered abusive, and how fast one
//! address may open connections.

use std::time::{Duration, Instant};

/// A token bucket: holds up to `capacity` tokens, refilled at `rate` per
/// second; each event takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, capacity: u32) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        TokenBucket {
            capacity,
            // Options are validated positive; this only keeps a zero rate
            // from dividing by zero in `take_or_wait`.
            rate: rate.max(1e-6),
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    /// Takes a token if there is one; otherwise says how long until there
    /// is (and takes nothing).
    pub fn take_or_wait(&mut self) -> Option<Duration> {
        self.take_or_wait_at(Instant::now())
    }

    fn take_or_wait_at(&mut self, now: Instant) -> Option<Duration> {
        if self.take_at(now) {
            return None;
        }
        let missing = 1.0 - self.tokens;
        Some(Duration::from_secs_f64(missing / self.rate).max(Duration::from_millis(1)))
    }

    /// Whether the bucket has refilled completely (its owner has been
    /// quiet long enough to be forgotten).
    pub fn is_full(&mut self) -> bool {
        self.refill(Instant::now());
        self.tokens >= self.capacity
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
    }

    fn take_at(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3);
        b.last = t0;
        assert!(b.take_at(t0) && b.take_at(t0) && b.take_at(t0));
        assert!(!b.take_at(t0));
        assert!(!b.take_at(t0 + Duration::from_millis(50)));
        assert!(b.take_at(t0 + Duration::from_millis(110)));
        // Never more than the capacity, however long the pause.
        let later = t0 + Duration::from_secs(100);
        assert!(b.take_at(later) && b.take_at(later) && b.take_at(later));
        assert!(!b.take_at(later));
    }

    #[test]
    fn says_how_long_until_the_next_token() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 1);
        b.last = t0;
        assert_eq!(b.take_or_wait_at(t0), None);
        let wait = b.take_or_wait_at(t0).expect("empty");
        assert!((99..=101).contains(&wait.as_millis()), "{wait:?}");
        assert_eq!(b.take_or_wait_at(t0 + wait), None);
    }
}
