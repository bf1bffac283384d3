//! Debian's `redis-server` for the tests of shared rooms (`--redis`): one
//! per test, on a free loopback port, keeping nothing on disk unless the
//! test asks (`--save '' --appendonly no`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};

use super::{TempDir, WATCHDOG};

/// Debian's Redis binary (package `redis-server`).
pub const REDIS: &str = "/usr/bin/redis-server";

/// Redis says this once it takes connections.
const READY: &str = "Ready to accept connections";

/// A running `redis-server`, killed when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
    dir: TempDir,
    extra: Vec<String>,
}

impl Redis {
    /// Starts Redis on a free loopback port, without persistence.
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// Starts Redis on `port` (from [`free_port`]), without persistence.
    pub fn start_on(port: u16) -> Redis {
        Redis::start_with(port, &[])
    }

    /// Starts Redis on `port` with further options (`--rename-command
    /// SPUBLISH ''`, say), without persistence.
    pub fn start_with(port: u16, extra: &[&str]) -> Redis {
        let dir = TempDir::new(&format!("redis-{port}"));
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(port, &dir, &extra);
        Redis {
            child,
            port,
            dir,
            extra,
        }
    }

    /// The process id, for reading its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `redis://127.0.0.1:PORT/`, for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Freezes Redis (SIGSTOP): its connections stay open and nothing is
    /// answered, as on a host that stopped responding.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    /// Lets a paused Redis go on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }

    /// Kills Redis and starts it again on the same port: without
    /// persistence, everything it held is gone.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.dir, &self.extra);
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn spawn(port: u16, dir: &TempDir, extra: &[String]) -> Child {
    ensure_installed();
    let mut child = Command::new(REDIS)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .args(["--dir", dir.path.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn redis-server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains(READY)
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(WATCHDOG)
        .expect("redis-server did not get ready");
    child
}

/// Installs `redis-server` if it is missing (as root), once per test run.
fn ensure_installed() {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    if !*checked {
        super::require_debian_package(REDIS, "redis-server");
        *checked = true;
    }
}

fn signal(pid: u32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A wschat instance sharing its rooms through `redis`.
pub fn instance(redis: &Redis) -> super::Server {
    super::Server::start(&["--redis", &redis.url()])
}
