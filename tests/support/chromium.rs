//! Headless Chromium, driven by the playwright-core scripts in
//! tests/browser/ (see tests/browser/lib.mjs): getting it and the node
//! modules ready, and running a script that asks the test, line by line on
//! its stdout, to act on the processes around the page.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use super::require_debian_package;

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser at a time: the machine has two cores and Chromium is heavy.
static BROWSER: Mutex<()> = Mutex::new(());

/// tests/browser/, where the scripts and their node modules are.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("browser")
}

/// Takes the browser lock and makes sure Chromium and the node modules are there.
pub fn prepare() -> MutexGuard<'static, ()> {
    let guard = BROWSER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    require_debian_package(CHROMIUM, "chromium");
    let dir = scripts_dir();
    let modules = dir.join("node_modules");
    if !["playwright-core", "axe-core"]
        .iter()
        .all(|m| modules.join(m).exists())
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("npm is needed for the browser tests (install Node.js and npm): {e}")
            });
        assert!(
            status.success(),
            "npm ci --prefix tests/browser failed: {status}"
        );
    }
    guard
}

/// Kills the script if the test panics while it runs.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `node SCRIPT ARGS…` and fails with its output unless it exits 0.
/// A line the script prints that `act` knows (it returns true after doing
/// what the line asks) is answered `done` on the script's stdin, as
/// `serverControl` in lib.mjs expects. Returns what the script printed.
pub fn run_script(script: &str, args: &[&str], mut act: impl FnMut(&str) -> bool) -> String {
    let mut node = Script(
        Command::new("node")
            .arg(scripts_dir().join(script))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not run node (install Node.js): {e}")),
    );
    let mut stderr = node.0.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let mut stdin = node.0.stdin.take().unwrap();
    let mut stdout = String::new();
    // The script always ends (its watchdogs), and with it its stdout.
    for line in BufReader::new(node.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if act(line.trim()) {
            // A script that has already failed no longer reads its stdin.
            let _ = stdin.write_all(b"done\n");
        }
    }
    let status = node.0.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    stdout
}
