//! The label values the metrics use, as enums their callers convert to
//! (so that no metric label reaches up into the code that counts).

/// Why a connection was refused before it became a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalReason {
    /// A browser page from an origin that is not allowed (403).
    Origin,
    /// Over `--max-connections` or `--max-connections-per-ip` (503).
    Cap,
    /// Over `--max-handshakes`: too many request heads in progress (503).
    Busy,
    /// The address is banned for flooding (429).
    Rate,
    /// A malformed or oversized request head, or a bad upgrade (400, 426, 431).
    BadRequest,
    /// The request head did not arrive within `--handshake-timeout` (408).
    Timeout,
    /// No identity token, a bad one, or one that does not allow the room or
    /// name asked for (401, 403).
    Auth,
}

impl RefusalReason {
    pub(super) const ALL: [RefusalReason; 7] = [
        RefusalReason::Origin,
        RefusalReason::Cap,
        RefusalReason::Busy,
        RefusalReason::Rate,
        RefusalReason::BadRequest,
        RefusalReason::Timeout,
        RefusalReason::Auth,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            RefusalReason::Origin => "origin",
            RefusalReason::Cap => "cap",
            RefusalReason::Busy => "busy",
            RefusalReason::Rate => "rate",
            RefusalReason::BadRequest => "bad_request",
            RefusalReason::Timeout => "timeout",
            RefusalReason::Auth => "auth",
        }
    }
}

/// A client's mode, as the metrics and log lines label it (callers convert
/// what a connection is for: `Kind::metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientMode {
    /// A chat-room client without a subprotocol.
    Raw,
    /// A chat-room client speaking `wschat.v1`.
    V1,
    /// An `/echo` client.
    Echo,
}

pub(super) const MODES: [ClientMode; 3] = [ClientMode::Raw, ClientMode::V1, ClientMode::Echo];

pub(super) fn mode_index(mode: ClientMode) -> usize {
    match mode {
        ClientMode::Raw => 0,
        ClientMode::V1 => 1,
        ClientMode::Echo => 2,
    }
}

/// The label value of a client's mode (an echo client's is `echo`), also
/// used in log lines.
pub(crate) fn mode_label(mode: ClientMode) -> &'static str {
    match mode {
        ClientMode::Raw => "raw",
        ClientMode::V1 => "v1",
        ClientMode::Echo => "echo",
    }
}

/// What a client sent, as `wschat_received_total` labels it (callers
/// convert their event: `Input::metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// A text message.
    Text,
    /// A file.
    File,
    /// A typing notice.
    Typing,
    /// A join.
    Join,
}

pub(super) const KINDS: [&str; 4] = ["text", "file", "typing", "join"];
