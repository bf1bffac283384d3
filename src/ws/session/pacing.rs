//! How a session's reader waits instead of dropping: the frame rate, the
//! address's store rate and, with `--redis`, an unreachable Redis each hold
//! the reader back (TCP flow control then holds the client), so nothing a
//! client sent is lost and only its own thread waits.

use crate::logs as log;

use std::sync::Arc;

use super::{Flow, Kind, REDIS_RECHECK, Session, reply};
use crate::hub::outlet::Outlet;
use crate::proto::protocol::{self, Mode};
use crate::proto::wire::Encoded;

impl Session {
    /// The rate limit, applied by waiting: a client over its rate is not
    /// read from until its allowance refills, so TCP flow control holds it
    /// back and nothing it sent is lost. Only its own thread waits; everyone
    /// else carries on. A v1 client is told `slow_down` when it is first
    /// held back, so that a page can say so. Pings count too: a ping flood
    /// gets pongs at the rate, not at the flood's pace.
    pub(super) fn pace(&mut self, own: &Arc<Outlet>) -> Flow {
        let Some(mut wait) = self.rate.take_or_wait() else {
            self.slowed = false;
            return Flow::Continue;
        };
        crate::metrics::get().rate_limited();
        if self.kind == Kind::Room(Mode::V1) && !self.slowed {
            self.slowed = true;
            let notice = protocol::encode(&protocol::Event::SlowDown {
                wait_ms: wait.as_millis().max(1) as u64,
            });
            if let Flow::Gone = reply(own, Encoded::text(notice)) {
                return Flow::Gone;
            }
        }
        loop {
            self.held += wait;
            std::thread::sleep(wait);
            match self.rate.take_or_wait() {
                None => return Flow::Continue,
                Some(more) => wait = more,
            }
        }
    }

    /// The address's store rate, applied as `pace` applies the frame rate:
    /// `bytes` about to be handed on for storing are reserved from the
    /// allowance its connections share, and the reader waits until they
    /// are within it, so the client is held back by TCP flow control and
    /// nothing is lost. A v1 client (`own` given) is told `slow_down`.
    pub(super) fn pay(&mut self, bytes: u64, own: Option<&Arc<Outlet>>) -> Flow {
        let Some(rate) = &self.store_rate else {
            return Flow::Continue;
        };
        let wait = rate.reserve(bytes);
        if wait.is_zero() {
            self.store_slowed = false;
            return Flow::Continue;
        }
        crate::metrics::get().store_rate_limited();
        log::debug!(
            "event=store_rate_wait client={} bytes={bytes} wait_ms={}",
            self.id,
            wait.as_millis()
        );
        if let Some(own) = own
            && !self.store_slowed
        {
            self.store_slowed = true;
            let notice = protocol::encode(&protocol::Event::SlowDown {
                wait_ms: wait.as_millis().max(1) as u64,
            });
            if let Flow::Gone = reply(own, Encoded::text(notice)) {
                return Flow::Gone;
            }
        }
        self.held += wait;
        std::thread::sleep(wait);
        Flow::Continue
    }

    /// With `--redis`, a raw client's message waits while Redis cannot be
    /// reached: the tutorial protocol has no error to refuse it with, and
    /// not reading from the client meanwhile (as the rate limit does)
    /// bounds what the server holds for it. A v1 client is refused with
    /// `unavailable` instead, by the dispatcher.
    pub(super) fn wait_for_redis(&mut self) {
        let Some(status) = &self.redis else {
            return;
        };
        while !status.up() {
            self.held += REDIS_RECHECK;
            std::thread::sleep(REDIS_RECHECK);
        }
    }
}
