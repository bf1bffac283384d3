//! Starts wschat: reads the options, sets up logging and signals, runs the
//! server until SIGINT or SIGTERM (a stop) or SIGHUP (a restart: the
//! clients are told so, and the process exits with `RESTART_STATUS` for its
//! supervisor to start it again).

use std::io::Write;
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use wschat::config::Config;
use wschat::server::{History, Server};

/// The exit status after a restart asked for with SIGHUP (`EX_TEMPFAIL`):
/// the systemd unit restarts the service on it (`RestartForceExitStatus`).
const RESTART_STATUS: u8 = 75;

fn main() -> ExitCode {
    let config = Config::load();
    if let Some(tool) = &config.tool {
        return wschat::ws::auth::run_tool(tool, &config);
    }
    if let Err(e) = init_logging(&config) {
        eprintln!("wschat: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    for warning in config.start_warnings() {
        log::warn!("{warning}");
    }
    // A history database that cannot be used stops the start, naming the
    // file and why; so does a Redis URL that is not one.
    let history = match History::open(&config) {
        Ok(history) => history,
        Err(e) => {
            log::error!("event=history_error msg={:?}", e.to_string());
            eprintln!("wschat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::bind(config.clone(), history) {
        Ok(s) => s,
        Err(e) => {
            log::error!(
                "event=listen_failed addr={} error={:?}",
                config.listen,
                e.to_string()
            );
            return ExitCode::FAILURE;
        }
    };
    let (addr, shutdown) = match (server.local_addr(), server.shutdown_handle()) {
        (Ok(addr), Ok(handle)) => (addr, handle),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("event=listen_failed error={:?}", e.to_string());
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            log::error!("event=signal_setup_failed error={:?}", e.to_string());
            return ExitCode::FAILURE;
        }
    };
    let restart = shutdown.clone();
    std::thread::spawn(move || {
        let mut received = signals.forever();
        if let Some(sig) = received.next() {
            if sig == SIGHUP {
                log::info!(
                    "event=signal signal={sig} msg=\"restarting; send a signal again to exit at once\""
                );
                shutdown.restart();
            } else {
                log::info!(
                    "event=signal signal={sig} msg=\"shutting down; send it again to exit at once\""
                );
                shutdown.shutdown();
            }
        }
        if received.next().is_some() {
            log::warn!("event=signal msg=\"second signal: exiting now\"");
            std::process::exit(130);
        }
    });
    let ready = || {
        // Scripts and tests read the chosen port from stdout. Where stdout
        // and stderr are one (a terminal, the journal) the log line below
        // says the same, and once is enough.
        if !stdout_is_stderr() {
            println!("event=listening addr={addr}");
        }
        log::info!(
            "event=listening addr={addr} version={} page=http://{addr}/ room=ws://{addr}/ws",
            env!("CARGO_PKG_VERSION")
        );
    };
    match server.run(ready) {
        Ok(()) if restart.restarting() => ExitCode::from(RESTART_STATUS),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event=server_failed error={:?}", e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// Whether stdout and stderr are the same open file (as under systemd, or
/// in a terminal), by device and inode. `/proc/self/fd/N` leads to the open
/// file itself, pipes and sockets included.
fn stdout_is_stderr() -> bool {
    use std::os::unix::fs::MetadataExt;
    let identity = |fd: u8| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    matches!((identity(1), identity(2)), (Some(out), Some(err)) if out == err)
}

/// Logs to stderr, one `key=value` line per event. The filter is
/// `--log-level` (or `WSCHAT_LOG_LEVEL`, or the config file), else
/// `RUST_LOG`, else `info`; both take env_logger's `target=level` syntax.
fn init_logging(config: &Config) -> Result<(), log::SetLoggerError> {
    let filter = config
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    env_logger::Builder::new()
        .parse_filters(&filter)
        .target(env_logger::Target::Stderr)
        .format(|buf, record| {
            write!(
                buf,
                "ts={} level={} target={} ",
                buf.timestamp_millis(),
                record.level().as_str().to_ascii_lowercase(),
                record.target()
            )?;
            let message = record.args().to_string();
            if starts_with_field(&message) {
                writeln!(buf, "{message}")
            } else {
                // Free text (from a library, or an error's own words) is
                // quoted as one field.
                writeln!(buf, "msg={message:?}")
            }
        })
        .try_init()
}

/// Whether a log message already begins with a `key=` field.
fn starts_with_field(message: &str) -> bool {
    message.split_once('=').is_some_and(|(key, _)| {
        !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}
