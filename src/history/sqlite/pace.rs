//! How the reads thread paces resumes: a background activity that yields
//! to live traffic.
//!
//! Each record a resume reads from the store costs far more than its read:
//! its replay frame is encoded, the dispatcher hands it to the client, the
//! kernel carries it, and the client parses it. Read as fast as the store
//! could, storms of 100 resumes of 1,000 messages took most of a small
//! machine's two cores, and an honest pair's acknowledgements in another
//! room waited 20 times longer than on a quiet server. So the reads thread
//! reads a [`PAGE`] of records at a time, within a budget of
//! [`RECORDS_PER_SECOND`] (a [`Bucket`]; a record counts one more for each
//! [`BYTES_PER_RECORD`] it holds, so long texts are paced by what they
//! weigh), and the addresses whose fetches wait take turns, a page each
//! ([`Rounds`]): a storm from one address slows another address's resume
//! by one page a turn, never holds it behind the storm. A quiet server
//! still answers a lone resume at once: the budget holds [`BURST`] records.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Records resumes may read a second, all addresses together: 100 resumes
/// reaching 900 records into the store take about two seconds.
pub(super) const RECORDS_PER_SECOND: f64 = 50_000.0;

/// Records that may be read at once after a quiet while: one whole resume.
pub(super) const BURST: f64 = 1_000.0;

/// Records read by one statement, before the next address's turn: short
/// enough that a read never holds a memory database's lock for long.
pub(super) const PAGE: usize = 100;

/// A record counts one more for each of these bytes it holds.
pub(super) const BYTES_PER_RECORD: usize = 512;

/// What reading a record of `weight` bytes costs of the budget.
pub(super) fn cost(weight: usize) -> f64 {
    1.0 + (weight / BYTES_PER_RECORD) as f64
}

/// A budget that fills at `rate` a second, up to `burst`.
pub(super) struct Bucket {
    rate: f64,
    burst: f64,
    left: f64,
    at: Instant,
}

impl Bucket {
    /// Full at `now`.
    pub(super) fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            burst,
            left: burst,
            at: now,
        }
    }

    /// How long from `now` until `cost` may be spent (a cost beyond the
    /// burst waits for the burst only).
    pub(super) fn wait(&mut self, now: Instant, cost: f64) -> Duration {
        self.fill(now);
        let short = cost.min(self.burst) - self.left;
        if short <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / self.rate)
        }
    }

    /// Spends `cost`, which may leave the budget below nothing: a page that
    /// cost more than it was waited for is paid for by the next one's wait.
    pub(super) fn spend(&mut self, now: Instant, cost: f64) {
        self.fill(now);
        self.left -= cost;
    }

    fn fill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.left = (self.left + gained).min(self.burst);
        self.at = self.at.max(now);
    }
}

/// Jobs by key (the asker's address), served in turns: the key whose turn
/// it is has its oldest job worked on, then the next key's turn comes.
pub(super) struct Rounds<K, J> {
    jobs: HashMap<K, VecDeque<J>>,
    /// Keys with jobs, the one whose turn it is first.
    order: VecDeque<K>,
}

impl<K: Copy + Eq + Hash, J> Default for Rounds<K, J> {
    fn default() -> Rounds<K, J> {
        Rounds {
            jobs: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Copy + Eq + Hash, J> Rounds<K, J> {
    /// Queues `job` behind `key`'s others; a key new here waits for the
    /// turns of those already here.
    pub(super) fn push(&mut self, key: K, job: J) {
        let queue = self.jobs.entry(key).or_default();
        if queue.is_empty() {
            self.order.push_back(key);
        }
        queue.push_back(job);
    }

    /// The job whose turn it is.
    pub(super) fn current(&mut self) -> Option<&mut J> {
        let key = self.order.front()?;
        self.jobs.get_mut(key)?.front_mut()
    }

    /// The current job had its turn: the next key's turn comes. With
    /// `done`, the job is taken out and given back.
    pub(super) fn next(&mut self, done: bool) -> Option<J> {
        let key = self.order.pop_front()?;
        let queue = self.jobs.get_mut(&key)?;
        let job = if done { queue.pop_front() } else { None };
        if queue.is_empty() {
            self.jobs.remove(&key);
        } else {
            self.order.push_back(key);
        }
        job
    }

    /// Jobs waiting, all keys together.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.jobs.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_paces_to_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(1_000.0, 100.0, start);
        assert_eq!(bucket.wait(start, 100.0), Duration::ZERO);
        bucket.spend(start, 100.0);
        // Empty: 50 more come in 50 ms.
        assert_eq!(bucket.wait(start, 50.0), Duration::from_millis(50));
        let later = start + Duration::from_millis(50);
        assert_eq!(bucket.wait(later, 50.0), Duration::ZERO);
        // Spent beyond what was there: the next wait pays for it.
        bucket.spend(later, 80.0);
        assert_eq!(bucket.wait(later, 10.0), Duration::from_millis(40));
        // A cost beyond the burst waits for a full bucket only, and a
        // long quiet fills it no further than the burst.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(bucket.wait(much_later, 500.0), Duration::ZERO);
        bucket.spend(much_later, 500.0);
        assert_eq!(bucket.wait(much_later, 1.0), Duration::from_millis(401));
    }

    #[test]
    fn a_record_costs_one_and_one_more_per_512_bytes() {
        assert_eq!(cost(0), 1.0);
        assert_eq!(cost(511), 1.0);
        assert_eq!(cost(512), 2.0);
        assert_eq!(cost(4096 + 40), 9.0);
    }

    #[test]
    fn keys_take_turns_and_each_key_serves_its_oldest_first() {
        let mut rounds: Rounds<char, u32> = Rounds::default();
        // A storm from `a`, then one job from `b`.
        for job in [1, 2, 3] {
            rounds.push('a', job);
        }
        rounds.push('b', 10);
        let mut turns = Vec::new();
        let mut finished = Vec::new();
        // Each job takes two turns.
        let mut worked: HashMap<u32, u32> = HashMap::new();
        while let Some(&mut job) = rounds.current() {
            turns.push(job);
            let n = worked.entry(job).or_default();
            *n += 1;
            finished.extend(rounds.next(*n == 2));
        }
        assert_eq!(turns, [1, 10, 1, 10, 2, 2, 3, 3]);
        assert_eq!(finished, [1, 10, 2, 3]);
        assert_eq!(rounds.len(), 0);
        assert!(rounds.order.is_empty() && rounds.jobs.is_empty());
    }

    #[test]
    fn a_key_that_comes_back_waits_behind_those_already_waiting() {
        let mut rounds: Rounds<char, u32> = Rounds::default();
        rounds.push('a', 1);
        rounds.push('b', 2);
        assert_eq!(rounds.next(true), Some(1));
        rounds.push('a', 3);
        assert_eq!(rounds.current().copied(), Some(2));
        assert_eq!(rounds.next(false), None);
        assert_eq!(rounds.current().copied(), Some(3));
        assert_eq!(rounds.len(), 2);
    }
}
