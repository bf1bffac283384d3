//! The chat page works in a real browser: headless Chromium, driven by the
//! playwright-core scripts in tests/browser/, against a real wschat serving
//! its embedded page.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use support::Server;

const CHROMIUM: &str = "/usr/bin/chromium";

/// One browser at a time: the machine has two cores and Chromium is heavy.
static BROWSER: Mutex<()> = Mutex::new(());

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("browser")
}

/// Takes the browser lock and makes sure Chromium and the node modules are there.
fn prepare() -> MutexGuard<'static, ()> {
    let guard = BROWSER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !Path::new(CHROMIUM).exists() && running_as_root() {
        // Debian's package; the same command CI runs.
        let installed = Command::new("sh")
            .args(["-c", "apt-get update && apt-get install -y chromium"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "apt-get install -y chromium failed");
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium not found: install it with: apt-get update && apt-get install -y chromium"
    );
    let dir = scripts_dir();
    if !dir.join("node_modules").join("playwright-core").exists() {
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

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Starts a server with the page built into the binary and runs one script
/// against it (`node SCRIPT ADDR EXTRA…`); the script exits 0 when its checks pass.
fn run_script(script: &str, extra: &[&str]) {
    let _guard = prepare();
    let server = Server::start(&[]);
    let output = Command::new("node")
        .arg(scripts_dir().join(script))
        .arg(&server.addr)
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("could not run node (install Node.js): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    drop(server);
}

#[test]
fn two_users_see_each_others_messages_with_names() {
    run_script("two_users_chat.mjs", &[]);
}

#[test]
fn presence_list_updates_when_someone_leaves() {
    run_script("presence_leave.mjs", &[]);
}

#[test]
fn image_shows_inline_with_identical_bytes() {
    run_script("image_inline.mjs", &[]);
}

#[test]
fn other_files_are_download_links() {
    run_script("file_link.mjs", &[]);
}

#[test]
fn reload_shows_history() {
    run_script("reload_history.mjs", &[]);
}

#[test]
fn markup_is_rendered_as_text() {
    run_script("html_as_text.mjs", &[]);
}

#[test]
fn name_taken_is_shown_on_the_join_form() {
    run_script("name_taken.mjs", &[]);
}

#[test]
fn dropped_connection_reconnects_with_since() {
    run_script("reconnect.mjs", &[]);
}

#[test]
fn page_fits_a_phone_screen() {
    run_script("phone_width.mjs", &[]);
}

/// Takes a screenshot of a two-person conversation. It goes to the target
/// directory; `WSCHAT_UPDATE_SCREENSHOT=1 cargo test --test browser screenshot`
/// refreshes docs/screenshot.png instead.
#[test]
fn screenshot_of_a_conversation() {
    let out = if std::env::var_os("WSCHAT_UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join("screenshot.png")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshot.png")
    };
    run_script("screenshot.mjs", &[out.to_str().unwrap()]);
    let png = std::fs::read(&out).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is a PNG");
}
