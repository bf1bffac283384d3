//! Why the server closes a WebSocket: the close code, the reason text the
//! peer reads, and whether the client brought it on itself by abuse.
//!
//! Every close the server starts is one of the constructors below, so the
//! codes of docs/PROTOCOL.md ("Close codes") are written in one place, and
//! whether a close counts against the client is said where the close is
//! decided rather than guessed later from its code: 1008 is sent both to a
//! client that floods us with bad frames and to one that only reads slowly.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use tungstenite::protocol::frame::coding::CloseCode;

/// Longest close reason: a control frame's 125 bytes less the code's two.
const MAX_REASON: usize = 123;

/// Set once the operator has asked for a restart (SIGHUP): the clients
/// are then told the server is restarting, not going away. Process-wide,
/// since it is the process that restarts.
static RESTARTING: AtomicBool = AtomicBool::new(false);

/// The reason texts of the closes sent when the server stops or restarts.
const STOP_REASON: &str = "server shutting down";
const RESTART_REASON: &str = "server restarting";

/// Marks this process's shutdown as a restart (see [`Close::shutdown`]).
pub fn set_restarting() {
    RESTARTING.store(true, Ordering::SeqCst);
}

/// Whether the operator asked for a restart rather than a stop.
pub fn restarting() -> bool {
    RESTARTING.load(Ordering::SeqCst)
}

/// A close the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    code: CloseCode,
    reason: Cow<'static, str>,
    abuse: bool,
}

impl Close {
    fn new(code: CloseCode, reason: impl Into<Cow<'static, str>>, abuse: bool) -> Close {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.to_mut().truncate(end);
        }
        Close {
            code,
            reason,
            abuse,
        }
    }

    /// 1001: the server is going down, or the peer has gone silent.
    pub fn going_away(reason: &'static str) -> Close {
        Close::new(CloseCode::Away, reason, false)
    }

    /// What every client is sent when the server shuts down: 1012
    /// `server restarting` when the operator restarts it (SIGHUP), so that
    /// pages can say it will be back; 1001 `server shutting down` when it
    /// stops (SIGTERM, SIGINT), which promises nothing.
    pub fn shutdown() -> Close {
        if restarting() {
            Close::new(CloseCode::Restart, RESTART_REASON, false)
        } else {
            Close::going_away(STOP_REASON)
        }
    }

    /// Whether this is the close of a server shutting down or restarting,
    /// after which nobody waits for the peer's answer.
    pub fn is_shutdown(&self) -> bool {
        matches!(
            (self.code, &*self.reason),
            (CloseCode::Away, STOP_REASON) | (CloseCode::Restart, RESTART_REASON)
        )
    }

    /// 1002: the peer broke RFC 6455.
    pub fn protocol(reason: impl Into<Cow<'static, str>>) -> Close {
        Close::new(CloseCode::Protocol, reason, false)
    }

    /// 1007: text that is not UTF-8, or a raw file header that is not one.
    pub fn invalid_data(reason: &'static str) -> Close {
        Close::new(CloseCode::Invalid, reason, false)
    }

    /// 1008 for something the client may not help: it reads too slowly,
    /// its name is refused, a moderator removed it.
    pub fn policy(reason: &'static str) -> Close {
        Close::new(CloseCode::Policy, reason, false)
    }

    /// 1008 for a client that keeps sending what it has been told is wrong.
    pub fn abuse(reason: &'static str) -> Close {
        Close::new(CloseCode::Policy, reason, true)
    }

    /// 1009: a frame or message over its limit.
    pub fn too_big(reason: impl Into<Cow<'static, str>>) -> Close {
        Close::new(CloseCode::Size, reason, false)
    }

    /// 1011: a read error the server did not expect; a bug.
    pub fn internal() -> Close {
        Close::new(CloseCode::Error, "internal error", false)
    }

    /// 1012: with `--redis`, the room's shared history was lost (Redis
    /// restarted without persistence): come back and resume.
    pub fn history_reset() -> Close {
        Close::new(CloseCode::Restart, "history reset", false)
    }

    /// 1013: the memory budget cannot take what the client announced now.
    pub fn busy() -> Close {
        Close::new(CloseCode::Again, "server busy", false)
    }

    /// 1013: with `--redis`, Redis cannot be reached now.
    pub fn unavailable() -> Close {
        Close::new(CloseCode::Again, "try again later", false)
    }

    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason text, at most 123 bytes (cut at a character boundary).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the client was closed for abusing the server, rather than
    /// for something it may not help.
    pub fn is_abuse(&self) -> bool {
        self.abuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let code = |c: Close| u16::from(c.code());
        assert_eq!(code(Close::going_away("ping timeout")), 1001);
        assert_eq!(code(Close::protocol("x")), 1002);
        assert_eq!(code(Close::invalid_data("invalid UTF-8")), 1007);
        assert_eq!(code(Close::policy("too slow")), 1008);
        assert_eq!(code(Close::abuse("too many errors")), 1008);
        assert_eq!(code(Close::too_big("message too big")), 1009);
        assert_eq!(code(Close::internal()), 1011);
        assert_eq!(code(Close::history_reset()), 1012);
        assert_eq!(code(Close::busy()), 1013);
        assert_eq!(code(Close::unavailable()), 1013);
        assert_eq!(code(Close::shutdown()), 1001);
        assert!(Close::shutdown().is_shutdown());
        assert!(!Close::going_away("ping timeout").is_shutdown());
        assert!(!Close::history_reset().is_shutdown());
    }

    #[test]
    fn only_abuse_is_abuse() {
        assert!(Close::abuse("too many errors").is_abuse());
        assert!(!Close::policy("too slow").is_abuse());
    }

    #[test]
    fn long_reasons_are_cut_at_a_character() {
        let close = Close::protocol("é".repeat(100));
        assert_eq!(close.reason().len(), 122);
    }
}
