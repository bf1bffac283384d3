//! Failed admin-token attempts, counted per client address: after
//! [`MAX_FAILURES`] wrong tokens in a [`WINDOW`], that address gets 429
//! with `Retry-After` on every admin route until the window is over, so
//! that the token cannot be guessed at the speed of the network.
//!
//! The admin routes are rare and slow (each waits on the dispatcher), so
//! their one map sits behind a mutex; it is never touched by the chat's
//! own paths. Addresses are grouped as for the connection caps (an IPv6
//! /64 is one address), and the map is bounded: expired windows are swept
//! when it fills, and beyond [`MAX_TRACKED`] live ones the oldest goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::proto::addr::address_group;

/// Wrong tokens one address may send per window.
pub(crate) const MAX_FAILURES: u32 = 10;

/// How long failures are remembered, from the first of a series.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Addresses whose failures are remembered at once.
const MAX_TRACKED: usize = 4096;

/// One address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed attempts per address; see the module's text.
#[derive(Debug, Default)]
pub(crate) struct Lockout {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl Lockout {
    /// `Err(wait)` while `ip` has used up its failures: how long until it
    /// may try again.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match windows.get(&address_group(ip)) {
            Some(w) if w.failures >= MAX_FAILURES && now < w.started + WINDOW => {
                Err(w.started + WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong token from `ip`; returns the failures in its window,
    /// so that the caller can log the moment the limit is reached.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) -> u32 {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let key = address_group(ip);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, w| now < w.started + WINDOW);
            if windows.len() >= MAX_TRACKED {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= window.started + WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures += 1;
        window.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_lock_an_address_for_the_rest_of_the_minute() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for n in 1..=MAX_FAILURES {
            assert_eq!(lockout.check(a, t0), Ok(()));
            assert_eq!(lockout.failed(a, t0), n);
        }
        let later = t0 + Duration::from_secs(15);
        assert_eq!(lockout.check(a, later), Err(Duration::from_secs(45)));
        assert_eq!(lockout.check(b, later), Ok(()));
        assert_eq!(lockout.check(a, t0 + WINDOW), Ok(()));
        assert_eq!(lockout.failed(a, t0 + WINDOW), 1);
    }

    #[test]
    fn an_ipv6_64_is_one_address() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        for n in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8::{:x}", n + 1).parse().unwrap();
            lockout.failed(ip, t0);
        }
        assert!(
            lockout
                .check("2001:db8::ffff".parse().unwrap(), t0)
                .is_err()
        );
        assert!(
            lockout
                .check("2001:db8:0:1::1".parse().unwrap(), t0)
                .is_ok()
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let lockout = Lockout::default();
        let t0 = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 100) {
            lockout.failed(IpAddr::from(n.to_be_bytes()), t0);
        }
        assert!(lockout.windows.lock().unwrap().len() <= MAX_TRACKED);
    }
}
