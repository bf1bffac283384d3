//! The two servers under test, started fresh for every run, and the limits
//! of this process and of the system they need.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;

use crate::loadgen::closed_loop::Watched;
use crate::loadgen::{Net, cpu_seconds};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Wschat,
    Relay,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Wschat, Kind::Relay];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Wschat => "wschat",
            Kind::Relay => "relay",
        }
    }
}

/// A server process on an ephemeral localhost port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub kind: Kind,
}

impl Server {
    /// Starts `kind` and reads the address from its listening line
    /// line. wschat gets its abuse limits lifted; `idle` also pushes its
    /// pings far out, since idle clients are not what a ping test is about.
    pub fn start(kind: Kind, relay: &Path, idle: bool) -> Server {
        Server::start_with(kind, relay, idle, &[])
    }

    /// `start`, with `extra` arguments for wschat (the relay takes none).
    pub fn start_with(kind: Kind, relay: &Path, idle: bool, extra: &[&str]) -> Server {
        let mut command = match kind {
            Kind::Wschat => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_wschat"));
                c.env("WSCHAT_DB", ":memory:");
                c.env("WSCHAT_STORE_RATE", "0");
                c.args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
                    .args(["--rate", "1000000", "--burst", "1000000"])
                    .args(["--max-connections", "100000"])
                    .args(["--max-connections-per-ip", "100000"])
                    // The bench opens one connection at a time, so the default
                    // --max-handshakes (128) never binds; a larger one would
                    // take descriptors from the idle run's 19,000.
                    .args(["--connect-rate", "1000000", "--connect-burst", "1000000"]);
                if idle {
                    c.args(["--ping-interval", "3600"]);
                }
                c.args(extra);
                c
            }
            Kind::Relay => {
                let mut c = Command::new(relay);
                c.args(["--listen", "127.0.0.1:0"]);
                c
            }
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.name()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        // wschat says `event=listening addr=ADDR`, the relay `relay listening on ADDR`.
        let prefix = format!("{} listening on ", kind.name());
        let addr = line
            .trim()
            .strip_prefix(&prefix)
            .or_else(|| line.trim().strip_prefix("event=listening addr="))
            .unwrap_or_else(|| panic!("unexpected first line from {}: {line:?}", kind.name()))
            .parse()
            .expect("listening address");
        // Keep draining stdout so that the server never blocks on it.
        thread::spawn(move || io::copy(&mut stdout, &mut io::sink()));
        Server { child, addr, kind }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the whole process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }

    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    pub fn threads(&self) -> u64 {
        status_field(self.pid(), "Threads:")
    }

    /// How the server ended, if it has.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the server exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for the server: {e}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number from `/proc/PID/status` (`VmRSS:` is in KiB).
pub fn status_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Builds `benches/relay` in release mode and returns its binary.
pub fn build_relay() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/relay");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "building the relay (cargo build --release --manifest-path benches/relay/Cargo.toml)"
    );
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the relay failed");
    dir.join("target/release/relay")
}

// ---------------------------------------------------------------------------
// Limits of this process and of the system

/// Raises this process's open-file soft limit to its hard limit (the servers
/// it starts inherit it).
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                eprintln!(
                    "cannot raise the open-file limit: {}",
                    io::Error::last_os_error()
                );
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// When running as root, raises a sysctl to `at_least` if it is lower, and
/// says so. Thread stacks take two memory mappings each and every thread an
/// id, so a server with a thread per connection needs both.
pub fn raise_sysctl(name: &str, at_least: u64) {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let Some(current) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if current >= at_least || unsafe { libc::geteuid() } != 0 {
        return;
    }
    match std::fs::write(&path, at_least.to_string()) {
        Ok(()) => println!("raised {name} from {current} to {at_least}"),
        Err(e) => println!("could not raise {name} from {current} to {at_least}: {e}"),
    }
}

/// Fails the run if the server died or any client connection ended.
pub fn check_health(net: &Net, server: &mut Server) -> Result<(), String> {
    if let Some(exit) = server.exited() {
        return Err(exit);
    }
    match net.endings() {
        Some(endings) => Err(endings),
        None => Ok(()),
    }
}

/// The fan-out loop reads the server's CPU time and the bench's own.
impl Watched for Server {
    type Cpu = (f64, f64);

    fn cpu(&self) -> (f64, f64) {
        (self.cpu_seconds(), cpu_seconds("self"))
    }

    fn health(&mut self, net: &Net) -> Result<(), String> {
        check_health(net, self)
    }
}

/// Connects `n` clients to `path`.
pub fn connect_all(
    net: &mut Net,
    server: &Server,
    n: usize,
    path: &str,
) -> Result<Vec<usize>, String> {
    (0..n)
        .map(|i| {
            net.connect(server.addr, path)
                .map_err(|e| format!("connection {} of {n}: {e}", i + 1))
        })
        .collect()
}
