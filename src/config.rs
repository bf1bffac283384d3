//! Options: every limit and timing of the server, in one place. Each is a
//! flag, an environment variable `WSCHAT_<NAME>`, or a key of the TOML file
//! given by `--config`; a flag wins over the environment, the environment
//! over the file, and the file over the default.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::config::secret::Secret;
use crate::proto::addr::Cidr;

mod file;
pub(crate) mod secret;
pub mod tool;
mod values;

use file::{config_file, default_of, name_the_source, with_file_defaults};
use values::{
    parse_budget, parse_bytes, parse_bytes_or_zero, parse_count, parse_listen, parse_log_filter,
    parse_origin, parse_positive_secs, parse_public_url, parse_rate, parse_secs,
};

/// Printed at the end of `--help`.
const PRECEDENCE: &str = "\
Every option can also be given as an environment variable, WSCHAT_ and its
name in capitals with underscores (WSCHAT_MAX_CONNECTIONS=500), or in the TOML
file named by --config (or WSCHAT_CONFIG), keyed by its name
(max-connections = 500). A flag wins over the environment, the environment
over the file, and the file over the default.

Sizes (BYTES) take K, M or G suffixes, powers of 1024: 64K, 16M, 1G.
Switches (--fsync) take true/false, 1/0, yes/no from the environment or the
file.

Secrets on the command line (--auth-secret, --admin-token) can be read by
every user of this machine in /proc/PID/cmdline: give them with
--auth-secret-file and --admin-token-file (a file only the server's user can
read), or in the environment.";

/// A self-hosted WebSocket chat-room server: `/` serves the chat page, `/ws` is
/// the chat room, `/echo` echoes every frame; `/metrics`, `/healthz` and
/// `/readyz` are for operators.
#[derive(Parser, Debug, Clone)]
#[command(name = "wschat", version, after_help = PRECEDENCE)]
pub struct Config {
    /// TOML file of options, keyed by their long names
    /// (`max-connections = 500`, `allow-origin = ["https://a.example"]`).
    #[arg(long, env = "WSCHAT_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Address to listen on: an IP address or a host name, and a port
    /// (`0.0.0.0:8080`, `localhost:8080`). A name is looked up once, at
    /// start, and its first IPv4 address (else its first address) is used.
    #[arg(
        long,
        env = "WSCHAT_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR",
        value_parser = parse_listen
    )]
    pub listen: SocketAddr,

    /// Serve the page from this directory instead of the copy built into the
    /// binary (for editing the page without rebuilding).
    #[arg(long, env = "WSCHAT_WWW", value_name = "DIR")]
    pub(crate) www: Option<PathBuf>,

    /// Log level (error, warn, info, debug, trace), or filters in RUST_LOG's
    /// syntax such as `info,wschat::dispatcher=debug`. RUST_LOG is used when
    /// this is not given; `info` when neither is.
    #[arg(long, env = "WSCHAT_LOG_LEVEL", value_name = "LEVEL", value_parser = parse_log_filter)]
    pub log_level: Option<String>,

    /// Messages and file announcements kept per room for joining clients.
    #[arg(long, env = "WSCHAT_HISTORY", default_value_t = 100, value_name = "N")]
    pub(crate) history: usize,

    /// Longest `message` text a wschat.v1 client may send, in bytes.
    /// Takes K, M or G suffixes.
    #[arg(long, env = "WSCHAT_MAX_TEXT", default_value = "4K", value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) max_text: usize,

    /// Largest text frame accepted; a larger one closes the sender with 1009.
    /// Takes K, M or G suffixes.
    #[arg(long, env = "WSCHAT_MAX_MESSAGE_SIZE", default_value = "64K", value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) max_message_size: usize,

    /// Largest file (binary frame) accepted; a larger one is refused (error in
    /// wschat.v1, close 1009 in raw mode). Takes K, M or G suffixes.
    #[arg(long, env = "WSCHAT_MAX_FILE_SIZE", default_value = "16M", value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) max_file_size: usize,

    /// Frames that may wait in one client's outbound queue; a client that
    /// falls further behind is closed with 1008 ("too slow").
    #[arg(
        long,
        env = "WSCHAT_QUEUE_FRAMES",
        default_value_t = 1024,
        value_name = "N",
        value_parser = parse_count::<usize>
    )]
    pub(crate) queue_frames: usize,

    /// Bytes that may wait in one client's outbound queue (same rule). A
    /// room's history is kept within half of this, so that a joiner's
    /// replay always fits. Takes K, M or G suffixes.
    #[arg(long, env = "WSCHAT_QUEUE_BYTES", default_value = "32M", value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) queue_bytes: usize,

    /// The history database (SQLite, created if missing): messages, file
    /// announcements and file bytes outlive restarts. `:memory:` keeps them
    /// only for the process's life.
    #[arg(
        long,
        env = "WSCHAT_DB",
        default_value = "wschat.db",
        value_name = "PATH"
    )]
    pub(crate) db: String,

    /// Share rooms, presence and history with every instance that names the
    /// same Redis (`redis://host:port/db`). History then lives in Redis, not
    /// in `--db`; `--retain-messages` bounds each room's stream and
    /// `--retain-bytes` each room's files.
    #[arg(long, env = "WSCHAT_REDIS", value_name = "URL")]
    pub redis: Option<String>,

    /// Messages and file announcements kept per room in the database; the
    /// oldest go first.
    #[arg(
        long,
        env = "WSCHAT_RETAIN_MESSAGES",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub(crate) retain_messages: usize,

    /// Everything kept in the database, all rooms together: messages, file
    /// announcements and files' bytes. Past it, the room holding the most
    /// gives up its oldest files' bytes (their announcements stay, marked
    /// gone), then its oldest messages. With `--redis`, each room's file
    /// bytes. Takes K, M or G suffixes.
    #[arg(long, env = "WSCHAT_RETAIN_BYTES", default_value = "1G", value_name = "BYTES", value_parser = parse_bytes)]
    pub(crate) retain_bytes: usize,

    /// Bytes a second one client address may have the server store, its
    /// messages' and files' together, with a burst of one largest file (and
    /// one largest message); its connections are read more slowly past it
    /// (v1 clients are told `slow_down`). Behind `--trusted-proxy`, the
    /// address is the forwarded client's. 0: no limit.
    #[arg(long, env = "WSCHAT_STORE_RATE", default_value = "256K", value_name = "BYTES_PER_S", value_parser = parse_bytes_or_zero)]
    pub(crate) store_rate: usize,

    /// Sync the database to disk on every commit, so that acknowledged
    /// messages survive a power loss too (by default they survive a crash
    /// of the process; a power loss may take the last few).
    #[arg(long, env = "WSCHAT_FSYNC", value_parser = BoolishValueParser::new())]
    pub(crate) fsync: bool,

    /// Bytes the server may hold on behalf of clients: a quarter for room
    /// history, three eighths for outbound queues, three eighths for
    /// messages and files being received. Takes K, M or G suffixes (powers
    /// of 1024).
    #[arg(long, env = "WSCHAT_MEMORY_BUDGET", default_value = "512M", value_name = "BYTES", value_parser = parse_budget)]
    pub(crate) memory_budget: usize,

    /// A message or file being received must arrive at least this fast
    /// (after a 10 s grace), or its sender is closed with 1008.
    #[arg(long, env = "WSCHAT_MIN_UPLOAD_RATE", default_value = "16K", value_name = "BYTES_PER_S", value_parser = parse_bytes)]
    pub(crate) min_upload_rate: usize,

    /// Sustained frames per second one connection may send.
    #[arg(
        long,
        env = "WSCHAT_RATE",
        default_value_t = 20.0,
        value_name = "MSGS_PER_S",
        value_parser = parse_rate
    )]
    pub(crate) rate: f64,

    /// Frames one connection may send in a burst above the sustained rate.
    #[arg(long, env = "WSCHAT_BURST", default_value_t = 60, value_name = "N", value_parser = parse_count::<u32>)]
    pub(crate) burst: u32,

    /// Sustained new connections per second one client address may open
    /// (page loads count); more get HTTP 429 with Retry-After.
    #[arg(long, env = "WSCHAT_CONNECT_RATE", default_value_t = 50.0, value_name = "PER_S", value_parser = parse_rate)]
    pub(crate) connect_rate: f64,

    /// New connections one client address may open in a burst above the
    /// connect rate.
    #[arg(long, env = "WSCHAT_CONNECT_BURST", default_value_t = 600, value_name = "N", value_parser = parse_count::<u32>)]
    pub(crate) connect_burst: u32,

    /// Open connections in total (page loads included); more get HTTP 503.
    #[arg(
        long,
        env = "WSCHAT_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_name = "N",
        value_parser = parse_count::<usize>
    )]
    pub(crate) max_connections: usize,

    /// Open connections from one IP address (an IPv6 client counts as its
    /// /64, here and for every per-address limit); more get HTTP 503.
    #[arg(
        long,
        env = "WSCHAT_MAX_CONNECTIONS_PER_IP",
        default_value_t = 256,
        value_name = "N",
        value_parser = parse_count::<usize>
    )]
    pub(crate) max_connections_per_ip: usize,

    /// Origin allowed to open WebSockets besides the server's own (repeatable,
    /// or comma-separated): `scheme://host[:port]`, `null` (a page opened
    /// from a file), or `*` for every origin. Clients that send no Origin
    /// are always allowed.
    #[arg(
        long = "allow-origin",
        env = "WSCHAT_ALLOW_ORIGIN",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub(crate) allow_origins: Vec<String>,

    /// Address or range (`10.0.0.0/8`) of a reverse proxy in front of this
    /// server (repeatable, or comma-separated). From it, the client's address
    /// is taken from X-Forwarded-For (or Forwarded), and the scheme and host
    /// it used from X-Forwarded-Proto and X-Forwarded-Host; from anyone
    /// else those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "WSCHAT_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub(crate) trusted_proxies: Vec<Cidr>,

    /// URL people use to reach this server, like `https://chat.example.com`
    /// (repeatable, or comma-separated). When set, a request for any other
    /// host gets 421. When not set, only IP addresses, `localhost` and this
    /// machine's name are accepted, so that no other site's name can be
    /// pointed at this server (DNS rebinding).
    #[arg(
        long = "public-url",
        env = "WSCHAT_PUBLIC_URL",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = parse_public_url
    )]
    pub(crate) public_urls: Vec<String>,

    /// Seconds between the server's pings; a peer silent for two intervals is
    /// dropped.
    #[arg(long, env = "WSCHAT_PING_INTERVAL", default_value = "20", value_name = "SECS", value_parser = parse_positive_secs)]
    pub(crate) ping_interval: Duration,

    /// Seconds a blocked write may last before the peer is dropped.
    #[arg(long, env = "WSCHAT_WRITE_TIMEOUT", default_value = "10", value_name = "SECS", value_parser = parse_positive_secs)]
    pub(crate) write_timeout: Duration,

    /// Seconds a new connection has to send its complete request head.
    #[arg(long, env = "WSCHAT_HANDSHAKE_TIMEOUT", default_value = "5", value_name = "SECS", value_parser = parse_positive_secs)]
    pub(crate) handshake_timeout: Duration,

    /// Connections that may be sending their request head at once; more are
    /// refused with 503.
    #[arg(
        long,
        env = "WSCHAT_MAX_HANDSHAKES",
        default_value_t = 128,
        value_name = "N",
        value_parser = parse_count::<usize>
    )]
    pub(crate) max_handshakes: usize,

    /// Request heads one address may be sending at once (a trusted proxy is
    /// exempt: it sends whole heads); more get 503.
    #[arg(
        long,
        env = "WSCHAT_MAX_HANDSHAKES_PER_IP",
        default_value_t = 8,
        value_name = "N",
        value_parser = parse_count::<usize>
    )]
    pub(crate) max_handshakes_per_ip: usize,

    /// Seconds given to outbound queues to drain on shutdown.
    #[arg(long, env = "WSCHAT_SHUTDOWN_GRACE", default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) shutdown_grace: Duration,

    /// Empty rooms whose history is kept; beyond this the longest-idle is forgotten.
    #[arg(
        long,
        env = "WSCHAT_MAX_IDLE_ROOMS",
        default_value_t = 1000,
        value_name = "N"
    )]
    pub(crate) max_idle_rooms: usize,

    /// Hub threads the rooms are spread over; each owns its rooms (members,
    /// history, fan-out) and sends their frames. Default: one per core
    /// available to the process.
    #[arg(long, env = "WSCHAT_HUBS", value_name = "N", value_parser = parse_count::<usize>)]
    pub(crate) hubs: Option<usize>,

    /// Secret that signs identity tokens (JWT, HS256; at least 32 bytes).
    /// When set, every client in a room must present a token (`?token=` or
    /// in its join frame) and goes by the token's name. On the command line
    /// it is visible to every local user: prefer --auth-secret-file or
    /// WSCHAT_AUTH_SECRET.
    #[arg(long, env = "WSCHAT_AUTH_SECRET", value_name = "SECRET", value_parser = crate::config::secret::parse_secret, hide_env_values = true, global = true)]
    pub(crate) auth_secret: Option<Secret>,

    /// File holding the --auth-secret (a line end after it is ignored).
    #[arg(long, env = "WSCHAT_AUTH_SECRET_FILE", value_name = "FILE", value_parser = crate::config::secret::read_secret_file, conflicts_with = "auth_secret", global = true)]
    pub(crate) auth_secret_file: Option<Secret>,

    /// Token (at least 16 bytes) that opens the admin view (`/admin`) and
    /// its API (`Authorization: Bearer TOKEN`); without it they answer 404.
    /// On the command line it is visible to every local user: prefer
    /// --admin-token-file or WSCHAT_ADMIN_TOKEN.
    #[arg(long, env = "WSCHAT_ADMIN_TOKEN", value_name = "TOKEN", value_parser = crate::config::secret::parse_admin_token, hide_env_values = true)]
    pub(crate) admin_token: Option<Secret>,

    /// File holding the --admin-token (a line end after it is ignored).
    #[arg(long, env = "WSCHAT_ADMIN_TOKEN_FILE", value_name = "FILE", value_parser = crate::config::secret::read_admin_token_file, conflicts_with = "admin_token")]
    pub(crate) admin_token_file: Option<Secret>,

    /// Where the secrets came from, for the warnings given at start (see
    /// [`Config::start_warnings`]); filled in by [`Config::try_load_from`].
    #[arg(skip)]
    pub(crate) secret_sources: SecretSources,

    /// Whether `--max-connections` is the operator's own (a flag, the
    /// environment or the file) rather than the default: lowering the
    /// operator's own number is worth a warning, lowering the default is not.
    #[arg(skip)]
    pub(crate) max_connections_chosen: bool,

    /// A tool to run instead of the server (minting a token, say).
    #[command(subcommand)]
    pub tool: Option<crate::config::tool::Tool>,
}

/// Where the secrets came from: what the warnings at start need to know
/// and the parsed values no longer say.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretSources {
    /// Secret options given on the command line (`--auth-secret`).
    on_command_line: Vec<&'static str>,
    /// Files secrets were read from.
    files: Vec<PathBuf>,
}

/// The secret options, each with its file option and variable.
const SECRET_OPTIONS: [(&str, &str, &str); 2] = [
    ("auth_secret", "--auth-secret", "auth_secret_file"),
    ("admin_token", "--admin-token", "admin_token_file"),
];

impl SecretSources {
    /// `config_file` is the `--config` file, whose values come to clap as
    /// defaults: a secret written in it makes it a secret file too.
    fn of(matches: &ArgMatches, config_file: Option<PathBuf>) -> SecretSources {
        let mut sources = SecretSources::default();
        let mut in_config_file = false;
        for (id, flag, file) in SECRET_OPTIONS {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => sources.on_command_line.push(flag),
                Some(ValueSource::DefaultValue) => in_config_file = true,
                _ => {}
            }
            if let Some(mut raw) = matches.get_raw(file)
                && let Some(path) = raw.next()
            {
                sources.files.push(PathBuf::from(path));
            }
        }
        if in_config_file && let Some(path) = config_file {
            sources.files.push(path);
        }
        sources
    }
}

impl Config {
    /// What the operator should hear at start about how secrets were given,
    /// as `key=value` log lines (logged at `warn` by the caller): a secret
    /// on the command line, which any local user can read in
    /// `/proc/PID/cmdline`, and a secret file that group or others may read.
    pub fn start_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for flag in &self.secret_sources.on_command_line {
            let var = format!(
                "WSCHAT_{}",
                flag[2..].replace('-', "_").to_ascii_uppercase()
            );
            warnings.push(format!(
                "event=secret_exposed option={flag} msg=\"given on the command line, which every \
                 local user can read in /proc/PID/cmdline; use {flag}-file or {var} instead\""
            ));
        }
        for path in &self.secret_sources.files {
            use std::os::unix::fs::PermissionsExt;
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "event=secret_file_readable file={:?} mode={mode:04o} msg=\"group or others \
                     may read this secret; chmod 600 it\"",
                    path.display().to_string()
                ));
            }
        }
        warnings
    }

    /// Reads the options from the command line, the environment and the
    /// `--config` file; prints the error or the help and exits like clap.
    pub fn load() -> Config {
        Config::try_load_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// As [`Config::load`], from the given arguments (the first is the
    /// program's name) and the process's environment.
    pub(crate) fn try_load_from<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut command = Config::command();
        if let Some(file) = config_file(&args) {
            command = with_file_defaults(command, &file)?;
        }
        let matches = match command.try_get_matches_from_mut(args.clone()) {
            Ok(matches) => matches,
            Err(e) => return Err(name_the_source(e, &mut command, &args)),
        };
        let mut config = Config::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        config.secret_sources = SecretSources::of(&matches, config_file(&args));
        config.max_connections_chosen = matches.value_source("max_connections")
            != Some(ValueSource::DefaultValue)
            || default_of(&command, "max_connections")
                != default_of(&Config::command(), "max_connections");
        config
            .check_budget()
            .map_err(|why| command.error(clap::error::ErrorKind::ValueValidation, why))?;
        Ok(config)
    }

    /// The memory budget must leave room, in the share for incoming
    /// messages, for the largest one a client may send.
    fn check_budget(&self) -> Result<(), String> {
        let incoming = crate::limits::budget::Budget::new(self.memory_budget)
            .incoming
            .limit();
        if incoming < self.max_frame_size() {
            return Err(format!(
                "--memory-budget {} leaves {incoming} bytes for incoming messages, less than \
                 one file of --max-file-size {} (raise the budget to at least {} or lower the file size)",
                self.memory_budget,
                self.max_file_size,
                self.max_frame_size() * 8 / 3 + 1
            ));
        }
        Ok(())
    }

    /// The limit given to tungstenite for one incoming message: the larger of
    /// the text and file limits, plus room for a raw file header (2 + 65535).
    /// Finer, per-kind limits are applied by the reader before buffering.
    pub(crate) fn max_frame_size(&self) -> usize {
        self.max_message_size
            .max(self.max_file_size + 2 + u16::MAX as usize)
    }

    /// How the history store is opened.
    pub fn store_options(&self) -> crate::history::sqlite::Options {
        crate::history::sqlite::Options {
            path: self.db.clone(),
            retain_messages: self.retain_messages,
            retain_bytes: self.retain_bytes as u64,
            fsync: self.fsync,
        }
    }

    /// How the rooms shared through Redis are kept, with `--redis`.
    pub fn cluster_options(&self) -> Option<crate::history::redis::Options> {
        Some(crate::history::redis::Options {
            url: self.redis.clone()?,
            retain_messages: self.retain_messages,
            retain_bytes: self.retain_bytes as u64,
        })
    }

    /// `--store-rate` and its burst (one largest file and one largest
    /// message), in bytes; `None` when it is 0.
    pub(crate) fn store_rate(&self) -> Option<(u64, u64)> {
        let burst = self.max_file_size as u64 + self.max_message_size as u64;
        (self.store_rate > 0).then_some((self.store_rate as u64, burst))
    }

    /// `--hubs`, or one hub per core available to the process.
    pub fn hubs(&self) -> usize {
        self.hubs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// A peer that sends nothing for this long is considered gone.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.ping_interval * 2
    }
}

#[cfg(test)]
mod tests;
