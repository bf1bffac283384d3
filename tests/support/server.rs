//! A real `wschat` process on an ephemeral localhost port: starting it,
//! reading what /proc says of it, signalling it, and collecting its log.
//! Only the standard library: the benches start their servers with it too.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long any single blocking read in a test may take before the test fails.
/// It is a watchdog against hangs, not a synchronisation device.
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    /// What it writes to stderr, when that is collected rather than inherited.
    log: Option<ServerLog>,
}

impl Server {
    /// Starts `wschat --listen 127.0.0.1:0 ARGS…` and waits for its
    /// `event=listening` line on stdout, which carries the port the kernel chose.
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
        command.stderr(Stdio::inherit());
        Server::start_command(command, args)
    }

    /// Like `start`, but runs `command`, which must end up exec'ing `wschat`
    /// with the arguments it is given (see `start_with_nofile`). Its stderr
    /// is left as the command set it; if that is a pipe, its lines are
    /// collected from the start (see `ServerLog`).
    pub fn start_command(mut command: Command, args: &[&str]) -> Server {
        command
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts `command` (a `wschat` command line built by the test: its own
    /// options, environment and stderr) and waits for its `event=listening`
    /// line. Its stdout must be left alone.
    pub fn spawn(mut command: Command) -> Server {
        // Tests run side by side in one directory: each server keeps its
        // history in memory unless the test names a database (a flag wins
        // over this).
        if !command.get_envs().any(|(k, _)| k == "WSCHAT_DB") {
            command.env("WSCHAT_DB", ":memory:");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn wschat");
        let log = child.stderr.take().map(ServerLog::collect);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("event=listening addr=")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        // Keep draining stdout so the server can never block on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server { child, addr, log }
    }

    /// What it writes to stderr, for a server whose command piped it.
    pub fn log(&self) -> ServerLog {
        self.log.clone().expect("the server's stderr is collected")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Number of threads of the server process, from /proc.
    pub fn threads(&self) -> usize {
        self.status_field("Threads:")
    }

    /// Number of open file descriptors of the server process, from /proc.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Resident set size of the server process in KiB, from /proc.
    pub fn rss_kib(&self) -> usize {
        self.status_field("VmRSS:")
    }

    /// The number after `key` in the process's /proc status (`VmRSS:` is
    /// in KiB).
    fn status_field(&self, key: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server process is gone");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in /proc status"))
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until `f` holds, re-checking whenever the server may have changed
    /// state. Used for counts (threads, fds) that the server changes on its own
    /// schedule and that no event reports; fails the test after the watchdog.
    pub fn wait_until(&self, what: &str, f: impl FnMut(&Server) -> bool) {
        self.wait_until_within(what, WATCHDOG, f);
    }

    /// Like `wait_until`, failing after `within` rather than the watchdog.
    pub fn wait_until_within(
        &self,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&Server) -> bool,
    ) {
        let deadline = std::time::Instant::now() + within;
        while !f(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// Names of the server's threads, from /proc.
    pub fn thread_names(&self) -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|tasks| {
                tasks
                    .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|n| n.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the server process is still running (it has not exited or
    /// crashed).
    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("query server status")
    }

    /// Sends `signal` (a name like `TERM`) without waiting for anything.
    pub fn signal(&self, signal: &str) {
        unsafe_kill(self.child.id(), signal);
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for server")
    }
}

/// Sends `signal` to `pid` with kill(1).
fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- what it logs ----

/// The lines a server wrote to its stderr, collected as they come (and
/// passed on to the test's own stderr).
#[derive(Clone)]
pub struct ServerLog {
    lines: std::sync::Arc<(std::sync::Mutex<LogState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    ended: bool,
}

impl ServerLog {
    /// Collects the lines of `stderr` on a thread of its own until it ends.
    pub fn collect(stderr: impl Read + Send + 'static) -> ServerLog {
        let log = ServerLog {
            lines: Default::default(),
        };
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let (state, changed) = &*shared.lines;
                state.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            let (state, changed) = &*shared.lines;
            state.lock().unwrap().ended = true;
            changed.notify_all();
        });
        log
    }

    /// Waits for a line for which `f` holds and returns it; `None` if the
    /// server's stderr ended or `within` passed without one.
    pub fn wait_for(&self, within: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        let (state, changed) = &*self.lines;
        let mut state = state.lock().unwrap();
        loop {
            if let Some(line) = state.lines.iter().find(|l| f(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if state.ended || left.is_zero() {
                return None;
            }
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().lines.clone()
    }
}

impl Server {
    /// Starts `wschat ARGS…` (as `start` does) with its open-file limit
    /// (`RLIMIT_NOFILE`, soft and hard) set to `nofile`, and collects what it
    /// writes to stderr.
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> (Server, ServerLog) {
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                &format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
                env!("CARGO_BIN_EXE_wschat"),
            ])
            .stderr(Stdio::piped());
        let server = Server::start_command(command, args);
        let log = server.log.clone().expect("stderr is collected");
        (server, log)
    }

    /// Starts `wschat ARGS…` (as `start` does) logging at `info`, and
    /// collects what it writes to stderr.
    pub fn start_logged(args: &[&str]) -> (Server, ServerLog) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
        command
            .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .stderr(Stdio::piped());
        let server = Server::spawn(command);
        let log = server.log.clone().expect("stderr is collected");
        (server, log)
    }
}
