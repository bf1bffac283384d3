//! The pages work in a real browser: headless Chromium, driven by the
//! playwright-core scripts in tests/browser/, against a real wschat serving
//! its embedded chat page (or, for the tutorial-style raw page, a directory),
//! and once through nginx in front of it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Server;
use support::chromium::{prepare, scripts_dir};

/// Starts a server with the page built into the binary and runs one script
/// against it (`node SCRIPT ADDR EXTRA…`); the script exits 0 when its checks pass.
fn run_script(script: &str, extra: &[&str]) {
    run_script_with(script, &[], extra);
}

/// As `run_script`, with the server started as `wschat SERVER_ARGS…`.
/// What the script prints is shown with `cargo test -- --show-output`.
fn run_script_with(script: &str, server_args: &[&str], extra: &[&str]) {
    let _guard = prepare();
    let server = Server::start(server_args);
    run_node(script, &server.addr, extra);
    drop(server);
}

/// As `run_script_with`, with Debian's nginx in front of the server (set up
/// as docs/DEPLOY.md shows): the script is given nginx's address, so the
/// browser reaches the page and its WebSocket only through the proxy.
fn run_script_through_nginx(script: &str, server_args: &[&str], extra: &[&str]) {
    let _guard = prepare();
    let server = Server::start(server_args);
    let nginx = support::nginx::Nginx::in_front_of(&server);
    run_node(script, &nginx.addr, extra);
    drop(nginx);
    drop(server);
}

/// Runs `node SCRIPT ADDR EXTRA…` and fails with its output unless it exits 0.
fn run_node(script: &str, addr: &str, extra: &[&str]) {
    let output = Command::new("node")
        .arg(scripts_dir().join(script))
        .arg(addr)
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
    print!("{stdout}");
}

/// Where screenshots go: the target directory, or `docs/` when
/// `WSCHAT_UPDATE_SCREENSHOT` is set (to refresh the pictures the docs show).
fn screenshot_dir() -> PathBuf {
    if std::env::var_os("WSCHAT_UPDATE_SCREENSHOT").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf()
    }
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
fn messages_are_edited_deleted_and_reacted_to() {
    run_script("message_changes.mjs", &[]);
}

#[test]
fn reload_shows_history() {
    run_script("reload_history.mjs", &[]);
}

#[test]
fn markup_is_rendered_as_text() {
    run_script("html_as_text.mjs", &[]);
}

/// Bold, italic, code, fenced blocks, links and line breaks show as
/// elements the page builds; markup and non-http(s) links stay text.
#[test]
fn markdown_is_built_from_elements_not_html() {
    run_script("markdown.mjs", &[]);
}

/// @names are completed from the people list, highlighted, counted apart
/// while the tab is hidden and notified once the person has opted in.
#[test]
fn mentions_are_completed_counted_and_notified() {
    run_script("mentions.mjs", &[]);
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
    let out = screenshot_dir().join("screenshot.png");
    run_script("screenshot.mjs", &[out.to_str().unwrap()]);
    let png = std::fs::read(&out).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot is a PNG");
}

/// Copies the tutorial page fixture into `site`, changing nothing but the
/// port of its hard-coded `ws://localhost:8080/ws` (there must be exactly one).
fn install_tutorial_page(site: &support::TempDir, port: &str) {
    const URL: &str = "ws://localhost:8080/ws";
    let mut replaced = 0;
    for entry in std::fs::read_dir(scripts_dir().join("tutorial")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let n = text.matches(URL).count();
            if n > 0 {
                replaced += n;
                bytes = text
                    .replace(URL, &format!("ws://localhost:{port}/ws"))
                    .into_bytes();
            }
        }
        site.write(path.file_name().unwrap().to_str().unwrap(), &bytes);
    }
    assert_eq!(replaced, 1, "the tutorial page names {URL} exactly once");
}

/// What the v1 observer saw after both tutorial pages had joined.
#[derive(Debug)]
enum Seen {
    Event(serde_json::Value),
    Bytes(Vec<u8>),
}

/// Reads the joins of the two pages, tells the script (`ready` on its stdin)
/// and then records everything until both pages have left.
fn observe_tutorial_pages(
    observer: &mut support::Client,
    script_stdin: std::process::ChildStdin,
) -> (Vec<String>, Vec<Seen>) {
    use std::io::Write;
    let mut guests = Vec::new();
    while guests.len() < 2 {
        let v = support::next_json(observer);
        assert_eq!(v["type"], "join", "only joins before the pages talk: {v}");
        guests.push(v["name"].as_str().unwrap().to_string());
    }
    let mut stdin = script_stdin;
    stdin
        .write_all(b"ready\n")
        .expect("tell the script to go on");
    drop(stdin);
    let mut seen = Vec::new();
    let mut left = 0;
    while left < 2 {
        match support::next_data(observer) {
            tungstenite::Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                left += usize::from(v["type"] == "leave");
                seen.push(Seen::Event(v));
            }
            tungstenite::Message::Binary(b) => seen.push(Seen::Bytes(b.to_vec())),
            other => panic!("observer: unexpected {other:?}"),
        }
    }
    (guests, seen)
}

/// The tutorial's page, served from disk with nothing changed but its port,
/// works against raw mode: text goes to the other page exactly and is never
/// echoed, a file becomes a download link with identical bytes, Close closes
/// cleanly, and a v1 client in the room sees the text and the file from the
/// pages' guest names.
#[test]
fn tutorial_page_works_unchanged() {
    use std::process::Stdio;
    use tungstenite::stream::MaybeTlsStream;
    let _guard = prepare();
    let site = support::TempDir::new("tutorial-page");
    let server = Server::start(&["--www", site.path.to_str().unwrap()]);
    let port = server.addr.rsplit_once(':').unwrap().1.to_string();
    install_tutorial_page(&site, &port);
    let mut observer = support::join_v1(&server, "lobby", "observer");

    let text = " Hello from the tutorial page: ünïcødé ✓ <b>not bold</b> &amp;  two spaces ";
    let file_name = "all bytes é.bin";
    let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();

    let mut node = Command::new("node")
        .arg(scripts_dir().join("tutorial_page.mjs"))
        .arg(format!("localhost:{port}"))
        .args([text, file_name, &hex])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node (install Node.js): {e}"));
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.unwrap().read_to_string(&mut out);
            out
        })
    };
    let stdout = drain(node.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(node.stderr.take().map(|p| Box::new(p) as _));
    let stdin = node.stdin.take().unwrap();
    // The script always ends (its own watchdogs, or EOF on its stdin); when it
    // does, the observer stops waiting for events that can no longer come.
    // (Its reads alone would wait forever: the server's pings keep them busy.)
    let MaybeTlsStream::Plain(observer_sock) = observer.get_ref() else {
        unreachable!("plain TCP")
    };
    let observer_sock = observer_sock.try_clone().unwrap();
    let script = std::thread::spawn(move || {
        let status = node.wait().unwrap();
        let _ = observer_sock.shutdown(std::net::Shutdown::Both);
        status
    });
    let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        observe_tutorial_pages(&mut observer, stdin)
    }));
    let status = script.join().unwrap();
    let output = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout.join().unwrap(),
        stderr.join().unwrap()
    );
    let (guests, seen) = match observed {
        Ok(o) => o,
        Err(panic) => {
            eprintln!("tutorial_page.mjs ({status}):\n{output}");
            std::panic::resume_unwind(panic);
        }
    };
    assert!(
        status.success(),
        "tutorial_page.mjs failed ({status}):\n{output}"
    );

    // Raw clients join as guest-N; the observer saw A's message, then B's
    // file with its bytes, then both leave.
    for g in &guests {
        let n = g.strip_prefix("guest-").unwrap_or_else(|| panic!("{g}"));
        assert!(n.parse::<u32>().is_ok(), "raw page named {g:?}");
    }
    assert_ne!(guests[0], guests[1]);
    let [
        Seen::Event(message),
        Seen::Event(file),
        Seen::Bytes(file_bytes),
        Seen::Event(leave1),
        Seen::Event(leave2),
    ] = &seen[..]
    else {
        panic!("observer expected message, file, bytes, leave, leave; saw {seen:?}");
    };
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["text"], text, "{message}");
    assert_eq!(message["room"], "lobby", "{message}");
    let sender = message["from"].as_str().unwrap_or_default();
    assert!(guests.iter().any(|g| g == sender), "{message}");
    assert_eq!(file["type"], "file", "{file}");
    assert_eq!(file["name"], file_name, "{file}");
    assert_eq!(file["size"], bytes.len(), "{file}");
    let file_from = file["from"].as_str().unwrap_or_default();
    assert!(
        guests.iter().any(|g| g == file_from) && file_from != sender,
        "the file comes from the other page: {file}"
    );
    assert_eq!(file_bytes, &bytes, "observer got the file's bytes");
    let mut left = [leave1, leave2].map(|v| {
        assert_eq!(v["type"], "leave", "{v}");
        v["name"].as_str().unwrap().to_string()
    });
    left.sort();
    let mut joined = guests.clone();
    joined.sort();
    assert_eq!(left.to_vec(), joined, "both pages left");
    drop(server);
}

#[test]
fn dropped_file_is_sent_and_shown() {
    run_script("drag_and_drop.mjs", &[]);
}

#[test]
fn upload_shows_progress_until_confirmed() {
    run_script("upload_progress.mjs", &[]);
}

#[test]
fn typing_shows_for_the_other_user() {
    run_script("typing_indicator.mjs", &[]);
}

/// axe-core finds no serious or critical WCAG 2.1 AA violations on the join
/// screen, a busy chat (light and dark), the phone people panel, the offline
/// chat, refused limits and a taken name; reduced motion stops animations.
/// Screenshots of each state go where `screenshot_of_a_conversation` puts its own.
#[test]
fn accessibility_checked_by_axe() {
    let dir = screenshot_dir();
    run_script("a11y.mjs", &[dir.to_str().unwrap()]);
    for name in [
        "screenshot-join.png",
        "screenshot-dark.png",
        "screenshot-phone-people.png",
    ] {
        let png = std::fs::read(dir.join(name)).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    }
}

/// Scrolling back past the replay (`--history 10`): the page above comes
/// when the list is scrolled to its top or "Load older messages" is
/// pressed, the view keeping its place, down to the first message once
/// each; a search result leads to its message, loading pages until it is
/// shown.
#[test]
fn scrollback_and_search() {
    run_script_with(
        "scrollback.mjs",
        &["--history", "10", "--rate", "1000", "--burst", "1000"],
        &[],
    );
}

/// One person in two rooms at once: the room not shown counts its unread
/// messages and mentions on its button, showing it clears them, a reload
/// brings both back and leaving one keeps the other.
#[test]
fn rooms_side_by_side() {
    run_script("rooms.mjs", &[]);
}

#[test]
fn keyboard_alone_is_enough() {
    run_script("keyboard.mjs", &[]);
}

/// The server runs with a 1 MiB file limit; the page keeps to the limits it
/// was told (or the defaults) and never sends what would be refused.
#[test]
fn limits_are_kept_before_sending() {
    run_script_with("limits.mjs", &["--max-file-size", "1048576"], &[]);
}

/// Offline, what is sent waits (across a reload too) and goes once, in order.
#[test]
fn offline_is_said_and_what_is_sent_waits() {
    run_script("offline.mjs", &[]);
}

#[test]
fn view_follows_the_newest_message() {
    run_script("scrolling.mjs", &[]);
}

/// The chat page served through nginx works: two people join and each sees
/// the other's message, over a WebSocket that went through the proxy too.
#[test]
fn page_works_through_nginx() {
    run_script_through_nginx("through_proxy.mjs", &["--trusted-proxy", "127.0.0.1"], &[]);
}

/// The admin view (`--admin-token`) kicks and bans from Chromium, each
/// action leaving its log line.
#[test]
fn admin_view_kicks_and_bans() {
    const ADMIN: &str = "the admin token of the browser test";
    let _guard = prepare();
    let (server, log) = Server::start_logged(&["--admin-token", ADMIN]);
    run_node("admin.mjs", &server.addr, &[ADMIN]);
    for action in ["kick", "ban", "unban"] {
        let fields = [
            "event=admin".to_string(),
            format!("action={action} "),
            "by=\"browser-moderator\"".to_string(),
            "outcome=done".to_string(),
        ];
        assert!(
            log.lines()
                .iter()
                .any(|l| fields.iter().all(|f| l.contains(f.as_str()))),
            "no {action} line in the log:\n{}",
            log.lines().join("\n")
        );
    }
}

/// The admin view confirms kicks and bans in its own dialog (cancelling
/// does nothing: the log holds one kick and one ban), counts messages
/// only, says bans end with a restart, and lists no room for a refused
/// join.
#[test]
fn admin_view_confirms_and_counts_messages() {
    const ADMIN: &str = "the admin token of the browser test";
    let _guard = prepare();
    let (server, log) = Server::start_logged(&["--admin-token", ADMIN]);
    run_node("admin_confirm.mjs", &server.addr, &[ADMIN]);
    for action in ["kick", "ban"] {
        let field = format!("action={action} ");
        let lines: Vec<String> = log
            .lines()
            .into_iter()
            .filter(|l| l.contains("event=admin") && l.contains(&field))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one {action}, the confirmed one: {lines:#?}"
        );
        assert!(lines[0].contains("outcome=done"), "{}", lines[0]);
    }
}

/// With `--auth-secret`, a sign-in link names the person, and the same
/// browser's second tab is the same person.
#[test]
fn sign_in_links_name_the_person() {
    const SECRET: &str = "the secret of the browser test, long enough";
    let mint = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .args(["token", name, "--auth-secret", SECRET])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (alice, bob) = (mint("alice"), mint("bob"));
    run_script_with("signin.mjs", &["--auth-secret", SECRET], &[&alice, &bob]);
}

/// A moderator's sign-in link offers Delete on everyone's messages, and
/// the deletion reaches the sender.
#[test]
fn a_moderator_deletes_anyones_message() {
    const SECRET: &str = "the secret of the browser test, long enough";
    let mint = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .arg("token")
            .args(args)
            .args(["--auth-secret", SECRET])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (alice, mo) = (mint(&["alice"]), mint(&["mo", "--mod"]));
    run_script_with(
        "moderator_delete.mjs",
        &["--auth-secret", SECRET],
        &[&alice, &mo],
    );
}

/// With `--auth-secret`, the join form says a link is needed before Join
/// is pressed, says why a link's name is fixed, and signs out.
#[test]
fn join_form_says_what_signing_in_needs() {
    const SECRET: &str = "the secret of the browser test, long enough";
    let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["token", "alice", "--auth-secret", SECRET])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let alice = String::from_utf8(out.stdout).unwrap().trim().to_string();
    run_script_with("signin_wording.mjs", &["--auth-secret", SECRET], &[&alice]);
}

/// Starts `wschat --listen ADDR ARGS…` on a given address: the one a server
/// before it had, so that the pages open on it find the new one there.
fn start_on(addr: &str, args: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
    command
        .args(["--listen", addr, "--log-level", "warn"])
        .args(args)
        .stderr(std::process::Stdio::inherit());
    Server::spawn(command)
}

/// As `run_script_with`, with the server stopped and started again under the
/// pages when the script asks. The script prints `stop`, `start` or
/// `restart` on a line of its own; the server is stopped with SIGTERM (as
/// an operator would), or for `restart` with SIGHUP (the operator's
/// restart), and/or started again as `wschat SERVER_ARGS…` on the same
/// address, and the script is told `done` on its stdin.
fn run_script_restarting(script: &str, server_args: &[&str], extra: &[&str]) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    let _guard = prepare();
    let mut server = Some(Server::start(server_args));
    let addr = server.as_ref().unwrap().addr.clone();
    let mut node = Command::new("node")
        .arg(scripts_dir().join(script))
        .arg(&addr)
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node (install Node.js): {e}"));
    let mut stderr = node.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let mut stdin = node.stdin.take().unwrap();
    let mut stdout = String::new();
    // The script always ends (its watchdogs), and with it its stdout.
    for line in BufReader::new(node.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let command = line.trim();
        if command == "stop"
            && let Some(s) = server.take()
        {
            s.terminate();
        }
        if command == "restart"
            && let Some(mut s) = server.take()
        {
            // An operator's restart: clients are told 1012, and the
            // process exits for its supervisor (here, this loop) to start
            // it again.
            s.signal("HUP");
            let status = s.wait_exit();
            if status.code() != Some(75) {
                stdout.push_str(&format!("(the server exited with {status} on SIGHUP)\n"));
            }
        }
        if matches!(command, "start" | "restart") && server.is_none() {
            server = Some(start_on(&addr, server_args));
        }
        if matches!(command, "stop" | "start" | "restart") {
            // A script that has already failed no longer reads its stdin.
            let _ = stdin.write_all(b"done\n");
        }
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = node.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    print!("{stdout}");
    drop(server);
}

/// Two pages chatting while the server is restarted under them, on the same
/// database: both resume where they were, and every message after the
/// restart shows on both exactly once, with no reload.
#[test]
fn history_survives_a_server_restart() {
    let dir = support::TempDir::new("restart-db");
    let db = dir.path.join("chat.db");
    run_script_restarting("server_restart.mjs", &["--db", db.to_str().unwrap()], &[]);
}

/// Edits, deletions and reactions made before a restart on the same
/// database show on the pages that resume, after a reload and to someone
/// joining only after it.
#[test]
fn changes_survive_a_server_restart() {
    let dir = support::TempDir::new("changes-db");
    let db = dir.path.join("chat.db");
    run_script_restarting("changes_restart.mjs", &["--db", db.to_str().unwrap()], &[]);
}

/// The page tells a restart (SIGHUP, close 1012) from a stop (SIGTERM,
/// close 1001) in words, and people coming back with a restart are not
/// announced as joining again.
#[test]
fn restart_and_stop_are_told_apart() {
    let dir = support::TempDir::new("wording-db");
    let db = dir.path.join("chat.db");
    run_script_restarting("restart_wording.mjs", &["--db", db.to_str().unwrap()], &[]);
}

/// A message sent while the server is down waits on the page and is
/// delivered exactly once when the server is back.
#[test]
fn message_sent_while_the_server_is_down_arrives_once() {
    let dir = support::TempDir::new("down-db");
    let db = dir.path.join("chat.db");
    run_script_restarting("server_down.mjs", &["--db", db.to_str().unwrap()], &[]);
}

/// A server that keeps its history only in memory starts it again when it
/// restarts: the pages say the history was reset and start clean.
#[test]
fn history_reset_by_the_server_is_said() {
    run_script_restarting("history_reset.mjs", &["--db", ":memory:"], &[]);
}

/// A message whose confirmation was lost with its connection is sent again
/// with the same cid and still delivered exactly once.
#[test]
fn resent_message_is_delivered_once() {
    run_script("resend_once.mjs", &[]);
}

/// A reload shows earlier images inline from their /files/ URLs, and an
/// earlier SVG as a download of opaque bytes.
#[test]
fn reload_shows_earlier_files() {
    run_script("reload_files.mjs", &[]);
}

/// A history file's URL the server refuses (expired) is renewed with
/// `file_url`, for an inline image and for a download.
#[test]
fn refused_file_urls_are_renewed() {
    run_script("file_url_renewal.mjs", &[]);
}

/// A received SVG is offered as a download typed application/octet-stream,
/// never rendered.
#[test]
fn svg_is_a_download_never_rendered() {
    run_script("svg_download.mjs", &[]);
}

/// With little room for file bytes, files whose bytes are gone say "No
/// longer available": when their URL answers 404, and when the history
/// (read from the database after a restart) says so.
#[test]
fn files_no_longer_kept_say_so() {
    let dir = support::TempDir::new("gone-db");
    let db = dir.path.join("chat.db");
    run_script_restarting(
        "files_gone.mjs",
        &["--db", db.to_str().unwrap(), "--retain-bytes", "6K"],
        &[],
    );
}
