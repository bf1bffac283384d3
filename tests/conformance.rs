//! Proves RFC 6455 conformance of `/echo` with the Autobahn TestSuite cases
//! (run by the `kosoku` tool from PyPI), all but the compression groups 12
//! and 13, which wschat does not negotiate.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const INSTALL_PYTHON: &str = "apt-get install -y python3-venv python3-pip";

/// Cargo's target directory (the parent of this test's scratch directory).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// `name` if an executable file by that name is on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd`, failing the test with `what` and its output if it fails.
fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?} ({e}); install with: {INSTALL_PYTHON}")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}); if python3's venv or pip is missing, install with: {INSTALL_PYTHON}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `kosoku` on PATH, else one installed into a venv under target/.
fn kosoku() -> PathBuf {
    if let Some(k) = on_path("kosoku") {
        return k;
    }
    let venv = target_dir().join("kosoku-venv");
    let bin = venv.join("bin");
    let installed = bin.join("kosoku");
    if installed.is_file() {
        return installed;
    }
    if !bin.join("pip").is_file() {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        run(cmd, "creating a venv for kosoku");
    }
    let mut cmd = Command::new(bin.join("pip"));
    cmd.args(["install", "--quiet", "kosoku"]);
    run(cmd, "pip install kosoku");
    assert!(installed.is_file(), "pip installed no kosoku script");
    installed
}

#[test]
fn autobahn_testsuite_passes_against_echo() {
    let kosoku = kosoku();
    let server = Server::start(&[]);
    let reports = target_dir().join("autobahn");
    let out = Command::new(&kosoku)
        .arg(format!("{}/echo", server.addr))
        .args(["-x", "12.*", "-x", "13.*", "-p", "2", "-o"])
        .arg(&reports)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kosoku.display()));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "kosoku reported failures ({}); reports in {}",
        out.status,
        reports.display()
    );
}
