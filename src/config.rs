//! Command-line options: every limit and timing of the server, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A self-hosted WebSocket chat-room server: `/` serves the chat page, `/ws` is
/// the chat room, `/echo` echoes every frame.
#[derive(Parser, Debug, Clone)]
#[command(name = "wschat", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Serve the page from this directory instead of the copy built into the
    /// binary (for editing the page without rebuilding).
    #[arg(long, value_name = "DIR")]
    pub www: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace. RUST_LOG is used when
    /// this is not given.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<log::LevelFilter>,

    /// Messages and file announcements kept per room for joining clients.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub history: usize,

    /// Longest `message` text a wschat.v1 client may send, in bytes.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    pub max_text: usize,

    /// Largest text frame accepted; a larger one closes the sender with 1009.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    pub max_message_size: usize,

    /// Largest file (binary frame) accepted; a larger one is refused (error in
    /// wschat.v1, close 1009 in raw mode).
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub max_file_size: usize,

    /// Frames that may wait in one client's outbound queue; a client that
    /// falls further behind is closed with 1008 ("too slow").
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub queue_frames: usize,

    /// Bytes that may wait in one client's outbound queue (same rule).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub queue_bytes: usize,

    /// Sustained frames per second one connection may send.
    #[arg(long, default_value_t = 20.0, value_name = "MSGS_PER_S")]
    pub rate: f64,

    /// Frames one connection may send in a burst above the sustained rate.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub burst: u32,

    /// Seconds an IP address is refused new connections (HTTP 429) after
    /// one of its clients was closed for flooding or abuse.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = parse_secs)]
    pub flood_ban: Duration,

    /// Open connections in total (page loads included); more get HTTP 503.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,

    /// Open connections from one IP address; more get HTTP 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections_per_ip: usize,

    /// Origin allowed to open WebSockets besides the server's own (repeatable;
    /// `*` allows every origin). Clients that send no Origin are always allowed.
    #[arg(long = "allow-origin", value_name = "URL")]
    pub allow_origins: Vec<String>,

    /// Seconds between the server's pings; a peer silent for two intervals is
    /// dropped.
    #[arg(long, default_value = "20", value_name = "SECS", value_parser = parse_secs)]
    pub ping_interval: Duration,

    /// Seconds a blocked write may last before the peer is dropped.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = parse_secs)]
    pub write_timeout: Duration,

    /// Seconds a new connection has to send its complete request head.
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub handshake_timeout: Duration,

    /// Connections that may be sending their request head at once; more are
    /// refused with 503.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_handshakes: usize,

    /// Seconds given to outbound queues to drain on shutdown.
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub shutdown_grace: Duration,

    /// Empty rooms whose history is kept; beyond this the longest-idle is forgotten.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_idle_rooms: usize,
}

/// Parses a duration given in (possibly fractional) seconds, like `0.5`.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("not a number of seconds: {s}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

impl Config {
    /// The limit given to tungstenite for one incoming message: the larger of
    /// the text and file limits, plus room for a raw file header (2 + 65535).
    /// Finer, per-kind limits are applied by the reader before buffering.
    pub fn max_frame_size(&self) -> usize {
        self.max_message_size
            .max(self.max_file_size + 2 + u16::MAX as usize)
    }

    /// A peer that sends nothing for this long is considered gone.
    pub fn idle_timeout(&self) -> Duration {
        self.ping_interval * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_seconds() {
        assert_eq!(parse_secs("0.25").unwrap(), Duration::from_millis(250));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn defaults_parse() {
        let c = Config::parse_from(["wschat"]);
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.idle_timeout(), Duration::from_secs(40));
    }
}
