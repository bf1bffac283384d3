//! Starts wschat: parses the options, sets up logging and signals, runs the
//! server until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use wschat::config::Config;
use wschat::listener::Server;

fn main() -> ExitCode {
    let config = Config::parse();
    let level = config.log_level.unwrap_or_else(|| {
        std::env::var("RUST_LOG")
            .ok()
            .and_then(|l| l.parse().ok())
            .unwrap_or(log::LevelFilter::Info)
    });
    if let Err(e) = simple_logger::SimpleLogger::new().with_level(level).init() {
        eprintln!("wschat: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    let server = match Server::bind(config.clone()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let (addr, shutdown) = match (server.local_addr(), server.shutdown_handle()) {
        (Ok(addr), Ok(handle)) => (addr, handle),
        (Err(e), _) | (_, Err(e)) => {
            log::error!("listening socket has no address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        let mut received = signals.forever();
        if let Some(sig) = received.next() {
            log::info!("signal {sig}: shutting down (send it again to exit at once)");
            shutdown.shutdown();
        }
        if received.next().is_some() {
            log::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    });
    let ready = || {
        // Tests and scripts read the chosen port from this line.
        println!("wschat listening on {addr}");
        log::info!("serving http://{addr}/ (chat page), ws://{addr}/ws, ws://{addr}/echo");
    };
    match server.run(ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
