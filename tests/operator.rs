//! The operator's side, tried as an operator would: the database's files
//! are private under an ordinary umask; secrets on the command line and
//! secret files others may read are warned about; wrong admin tokens are
//! limited per address (429 with `Retry-After`); IPv6 clients share a /64's
//! connection cap behind a trusted proxy; a bad `Sec-WebSocket-Key` gets
//! 400; close codes a client chooses do not grow `/metrics` (checked with
//! `promtool`), whose store counts are counters; start-up says
//! `store_created` and fits the default connection cap without a warning;
//! sizes take suffixes and a bad environment variable is named.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::nginx::{tcp_from, ws_from};
use support::*;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

const ADMIN: &str = "an admin token of the operator tests";
const SECRET: &str = "a secret for the operator tests, thirty-two bytes or more";
const PROMTOOL: &str = "/usr/bin/promtool";

/// `wschat ARGS…` with its stderr collected, through `sh -c` so that the
/// shell's `setup` (a umask, say) applies to it; environment `env`.
fn start(setup: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            &format!("{setup} exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_wschat"),
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "info",
        ])
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped());
    Server::spawn(command)
}

/// Runs `wschat ARGS…` with `env` to its end (for options it refuses).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(args)
        .envs(env.iter().copied())
        .env("WSCHAT_DB", ":memory:")
        .output()
        .expect("run wschat")
}

/// Waits for the log line that says the server listens: every line logged
/// at start is in the log by then.
fn started(log: &ServerLog) {
    log.wait_for(WATCHDOG, |l| l.contains("event=listening"))
        .expect("the server logs event=listening");
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_and_its_wal_are_private_under_umask_022() {
    let dir = TempDir::new("private-db");
    let db = dir.path.join("wschat.db");
    let db_arg = db.to_str().unwrap().to_owned();
    let server = start("umask 022 &&", &["--db", &db_arg], &[]);
    let log = server.log();
    let line = log
        .wait_for(WATCHDOG, |l| l.contains("event=store_"))
        .expect("a store line at start");
    assert!(line.contains("event=store_created"), "{line}");
    // A message committed, so that the write-ahead log is in use.
    let (mut alice, _bob) = pair(&server);
    roundtrip(&mut alice, "kept");
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path.join(format!("wschat.db{suffix}"));
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
    assert_eq!(server.terminate().code(), Some(0));

    // Opened again, it is neither created nor migrated.
    let again = start("umask 022 &&", &["--db", &db_arg], &[]);
    started(&again.log());
    let lines = again.log().lines().join("\n");
    assert!(!lines.contains("event=store_created"), "{lines}");
    assert!(!lines.contains("event=store_migrated"), "{lines}");
}

#[test]
fn secrets_on_the_command_line_and_readable_secret_files_are_warned_about() {
    let dir = TempDir::new("secrets");
    let token = dir.write("admin-token", ADMIN.as_bytes());
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let token_arg = token.to_str().unwrap();
    let loud = start(
        "",
        &["--auth-secret", SECRET, "--admin-token-file", token_arg],
        &[],
    );
    let log = loud.log();
    let exposed = log
        .wait_for(WATCHDOG, |l| l.contains("event=secret_exposed"))
        .expect("a warning for the secret on the command line");
    assert!(exposed.contains("level=warn"), "{exposed}");
    assert!(exposed.contains("option=--auth-secret "), "{exposed}");
    assert!(exposed.contains("--auth-secret-file"), "{exposed}");
    assert!(
        !exposed.contains(SECRET),
        "the warning shows the secret: {exposed}"
    );
    let readable = log
        .wait_for(WATCHDOG, |l| l.contains("event=secret_file_readable"))
        .expect("a warning for the readable token file");
    assert!(readable.contains("level=warn"), "{readable}");
    assert!(
        readable.contains(&format!("file={token_arg:?}")),
        "{readable}"
    );
    assert!(readable.contains("mode=0644"), "{readable}");

    // A secret written in a --config file others may read: that file too.
    let config = dir.write(
        "wschat.toml",
        format!("admin-token = {ADMIN:?}\n").as_bytes(),
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let config_arg = config.to_str().unwrap();
    let in_file = start("", &["--config", config_arg], &[]);
    let line = in_file
        .log()
        .wait_for(WATCHDOG, |l| l.contains("event=secret_file_readable"))
        .expect("a warning for the readable config file");
    assert!(line.contains(&format!("file={config_arg:?}")), "{line}");
    assert!(line.contains("mode=0640"), "{line}");

    // From the environment and a private file: nothing to say.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let quiet = start(
        "",
        &["--admin-token-file", token_arg],
        &[("WSCHAT_AUTH_SECRET", SECRET)],
    );
    started(&quiet.log());
    let lines = quiet.log().lines().join("\n");
    assert!(!lines.contains("event=secret_"), "{lines}");
}

/// `GET /api/rooms` from the local address `from` with `token`.
fn rooms_from(server: &Server, from: &str, token: &str) -> HttpResponse {
    let mut s = tcp_from(&server.addr, from);
    let request = format!(
        "GET /api/rooms HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(request.as_bytes()).unwrap();
    read_http_response(&mut s)
}

#[test]
fn wrong_admin_tokens_are_limited_per_address() {
    let server = start("", &[], &[("WSCHAT_ADMIN_TOKEN", ADMIN)]);
    for n in 1..=10 {
        let r = rooms_from(
            &server,
            "127.0.0.2",
            &format!("wrong guess {n} of the token"),
        );
        assert_eq!(r.status, 401, "attempt {n}: {}", r.text());
    }
    // A short guess and the right token alike: the address waits.
    for token in ["x", ADMIN] {
        let r = rooms_from(&server, "127.0.0.2", token);
        assert_eq!(r.status, 429, "{}", r.text());
        let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    }
    let page = {
        let mut s = tcp_from(&server.addr, "127.0.0.2");
        let request = format!(
            "GET /admin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        );
        s.write_all(request.as_bytes()).unwrap();
        read_http_response(&mut s)
    };
    assert_eq!(page.status, 429);
    // Another address is not held back.
    assert_eq!(rooms_from(&server, "127.0.0.3", ADMIN).status, 200);
    let line = server
        .log()
        .wait_for(WATCHDOG, |l| l.contains("event=admin_lockout"))
        .expect("the lockout is logged");
    assert!(line.contains("level=warn"), "{line}");
    assert!(line.contains("peer=127.0.0.2:"), "{line}");
    assert!(line.contains("failures=10"), "{line}");
}

#[test]
fn ipv6_clients_share_their_64s_cap_behind_a_trusted_proxy() {
    let server = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--max-connections-per-ip",
        "2",
    ]);
    let from = |client: &str| {
        ws_from(
            &server.addr,
            "/ws?room=v6",
            "127.0.0.1",
            &[&format!("X-Forwarded-For: {client}")],
        )
    };
    let _one = from("2001:db8::1").expect("the first of a /64");
    let _two = from("2001:db8::2").expect("the second of a /64");
    match from("2001:db8::ffff:ffff:3") {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("a third address of the same /64 was not refused: {other:?}"),
    }
    let _other = from("2001:db8:0:1::1").expect("another /64 is another client");
    let _v4 = from("192.0.2.7").expect("an IPv4 client is its own");
}

#[test]
fn a_websocket_key_that_is_not_16_bytes_of_base64_gets_400() {
    let server = Server::start(&[]);
    let with_key = |key: &str| {
        http_request(
            &server.addr,
            &format!(
                "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                server.addr
            ),
        )
    };
    for bad in [
        "abc",
        "dGhlIHNhbXBsZSBub25jZQ",
        "AAAAAAAAAAAAAAAAAAAA",
        "dGhlIHNhbXBsZSBub25j*Q==",
        "dGhlIHNhbXBsZSBub25jZQAAAAA=",
    ] {
        let r = with_key(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.text().contains("Sec-WebSocket-Key"), "{}", r.text());
    }
    assert_eq!(with_key("dGhlIHNhbXBsZSBub25jZQ==").status, 101);
}

/// Debian's prometheus package provides `promtool`.
fn promtool(metrics: &[u8]) {
    require_debian_package(PROMTOOL, "prometheus");
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(metrics).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- input ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(metrics)
    );
}

#[test]
fn close_codes_clients_choose_are_one_series_and_store_counts_are_counters() {
    let server = Server::start(&[]);
    for code in [4000, 3999, 4321, 1000] {
        let mut ws = connect(&server.url("/ws?room=codes"));
        ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        }))
        .unwrap();
        wait_disconnected(&mut ws);
    }
    server.wait_metric("wschat_disconnects_total{code=\"other\"}", |v| v == 3.0);
    server.wait_metric("wschat_disconnects_total{code=\"1000\"}", |v| v == 1.0);
    let r = http_fetch(&server.addr, "/metrics");
    let text = r.text();
    for code in ["4000", "3999", "4321"] {
        assert!(!text.contains(&format!("code=\"{code}\"")), "{text}");
    }
    for counter in [
        "wschat_store_records_written_total",
        "wschat_store_write_errors_total",
        "wschat_store_read_errors_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {counter} counter\n{counter} ")),
            "{counter} is not a counter:\n{text}"
        );
    }
    promtool(&r.body);

    // Every metric is in the README's table.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = family.split_whitespace().next().unwrap();
        assert!(
            readme.contains(&format!("| `{name}`")) || readme.contains(&format!("| `{name}{{")),
            "{name} is not in the README's metrics table"
        );
    }
}

#[test]
fn help_readme_and_deploy_agree_on_the_size_defaults() {
    let help = run(&["--help"], &[]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let deploy = std::fs::read_to_string(format!("{root}/docs/DEPLOY.md")).unwrap();
    for option in [
        "max-text",
        "max-message-size",
        "max-file-size",
        "queue-bytes",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("--{option} ")))
            .unwrap_or_else(|| panic!("--{option} is not in --help"));
        let default = line
            .split("[default: ")
            .nth(1)
            .and_then(|d| d.split(']').next())
            .unwrap_or_else(|| panic!("no default for --{option}: {line}"));
        assert!(
            readme.contains(&format!("| `--{option} BYTES` | {default} |")),
            "README's options table does not give --{option} the default {default}"
        );
        assert!(
            deploy.contains(&format!("`--{option}` ({default})")),
            "docs/DEPLOY.md's limit table does not give --{option} the default {default}"
        );
    }
}

#[test]
fn the_default_connection_cap_is_fitted_without_a_warning() {
    let fitted = start("", &[], &[]);
    started(&fitted.log());
    let lines = fitted.log().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("level=info") && l.contains("event=capacity")),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("level=warn") && l.contains("event=capacity")),
        "{lines:?}"
    );
    // More than any machine holds, asked for: lowering it is worth a warning.
    let asked = start("", &["--max-connections", "4000000000"], &[]);
    let line = asked
        .log()
        .wait_for(WATCHDOG, |l| {
            l.contains("level=warn") && l.contains("event=capacity")
        })
        .expect("a warning that --max-connections was lowered");
    assert!(
        line.contains("--max-connections 4000000000 lowered"),
        "{line}"
    );
}

#[test]
fn sizes_take_suffixes_and_names_resolve() {
    let server = start(
        "",
        &[
            "--max-file-size",
            "8M",
            "--max-text",
            "2K",
            "--max-message-size",
            "128K",
        ],
        &[("WSCHAT_QUEUE_BYTES", "16M")],
    );
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        serde_json::json!({"type": "join", "room": "r", "name": "sizes"}),
    );
    let limits = expect_type(&mut ws, "welcome")["limits"].clone();
    assert_eq!(limits["file"], 8 << 20, "{limits}");
    assert_eq!(limits["text"], 2048, "{limits}");
    assert_eq!(limits["message"], 128 << 10, "{limits}");

    // `--listen localhost:0` is looked up: its IPv4 address.
    let mut named = Command::new(env!("CARGO_BIN_EXE_wschat"));
    named.args(["--listen", "localhost:0", "--log-level", "warn"]);
    let named = Server::spawn(named);
    assert!(named.addr.starts_with("127.0.0.1:"), "{}", named.addr);
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let out = run(&[], &[("WSCHAT_HISTORY", "abc")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("WSCHAT_HISTORY"), "{err}");
    assert!(err.contains("--history"), "{err}");

    let out = run(&[], &[("WSCHAT_MAX_FILE_SIZE", "16 megs")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("WSCHAT_MAX_FILE_SIZE"), "{err}");

    let out = run(&["--allow-origin", "notaurl"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"notaurl\" is not an origin"), "{err}");

    let out = run(&[], &[("WSCHAT_FSYNC", "maybe")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("WSCHAT_FSYNC"), "{err}");
}

#[test]
fn switches_take_yes_no_and_digits() {
    for value in ["true", "false", "1", "0", "yes", "no"] {
        let server = start("", &["--db", ":memory:"], &[("WSCHAT_FSYNC", value)]);
        started(&server.log());
        assert_eq!(http_fetch(&server.addr, "/healthz").status, 200, "{value}");
    }
}

#[test]
fn a_join_is_one_line_with_the_name_only_at_debug() {
    for (level, named) in [("info", false), ("debug", true)] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wschat"));
        command
            .args(["--listen", "127.0.0.1:0", "--log-level", level])
            .stderr(Stdio::piped());
        let server = Server::spawn(command);
        let log = server.log();
        let _alice = join_v1(&server, "lobby", "alice");
        // The dispatcher logs in order: once bob's join is in the log,
        // everything it logged for alice's is too.
        let _bob = join_v1(&server, "lobby", "bob");
        log.wait_for(WATCHDOG, |l| l.contains("event=join client=2 "))
            .expect("bob's join line");
        let alice: Vec<String> = log
            .lines()
            .into_iter()
            .filter(|l| l.contains("event=join client=1 "))
            .collect();
        assert_eq!(alice.len(), 1, "at {level}: {alice:?}");
        assert!(alice[0].contains("level=info"), "{alice:?}");
        assert_eq!(
            alice[0].contains("name=\"alice\""),
            named,
            "at {level}: {alice:?}"
        );
    }
}

#[test]
fn the_listening_line_is_said_once_where_stdout_is_stderr() {
    let dir = TempDir::new("one-stream");
    let out = dir.path.join("out");
    let mut child = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" --listen 127.0.0.1:0 --db :memory: >\"$1\" 2>&1",
            env!("CARGO_BIN_EXE_wschat"),
            out.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WATCHDOG;
    let text = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("event=listening") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no listening line:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let listening: Vec<&str> = text.lines().filter(|l| l.contains("listening")).collect();
    assert_eq!(listening.len(), 1, "{text}");
    assert!(
        listening[0].starts_with("ts="),
        "not a log line: {}",
        listening[0]
    );
    assert!(
        listening[0].contains(" event=listening addr=127.0.0.1:"),
        "{text}"
    );
}
