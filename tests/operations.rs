//! Proves what an operator relies on: `/healthz` and `/readyz` (503 from the
//! moment shutdown begins, answered over the connection caps), options from
//! `WSCHAT_<NAME>` variables and a `--config` TOML file with a flag winning
//! over both, `RUST_LOG` target filters and `key=value` log lines, and the
//! systemd unit and sysctl file in `contrib/` (`systemd-analyze verify`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

fn wschat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wschat"))
}

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn healthz_and_readyz_answer_200_with_a_line() {
    let server = Server::start(&[]);
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
        let r = http_fetch(&server.addr, path);
        assert_eq!((r.status, r.text().as_str()), (200, body), "GET {path}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let head = http_raw(
            &server.addr,
            &format!("HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.ends_with("\r\n\r\n"),
            "HEAD {path} sent a body: {head:?}"
        );
    }
    let r = http_request(
        &server.addr,
        "POST /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
}

#[test]
fn operator_endpoints_answer_over_the_connection_cap() {
    let server = Server::start(&["--max-connections", "1"]);
    let _only = join_v1(&server, "r", "alice");
    assert_eq!(http_fetch(&server.addr, "/").status, 503);
    assert_eq!(http_fetch(&server.addr, "/healthz").status, 200);
    assert_eq!(http_fetch(&server.addr, "/readyz").status, 200);
    assert_eq!(http_fetch(&server.addr, "/metrics").status, 200);
}

/// GETs `path`; `None` if the connection ended without a response (a
/// connection accepted in the very instant shutdown began is dropped).
fn try_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

#[test]
fn readyz_says_503_from_the_moment_shutdown_begins() {
    let mut server = Server::start(&["--shutdown-grace", "10"]);
    // A client that never reads nor answers the close keeps the server in
    // its shutdown for a few seconds.
    let _silent = RawSocket::open(&server, "/ws?room=r&name=silent", &[]);
    server.wait_metric("wschat_connections{mode=\"raw\"}", |v| v == 1.0);
    assert_eq!(try_get(&server.addr, "/readyz").unwrap().0, 200);

    server.signal("TERM");
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        match try_get(&server.addr, "/readyz") {
            Some((503, text)) => {
                assert!(text.ends_with("\r\n\r\nshutting down\n"), "{text}");
                break;
            }
            Some((200, _)) | None => {}
            Some((status, text)) => panic!("/readyz answered {status}: {text}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz never said 503"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Still shutting down: the process is alive and says so.
    assert_eq!(try_get(&server.addr, "/healthz").unwrap().0, 200);
    assert_eq!(try_get(&server.addr, "/metrics").unwrap().0, 200);
    let (status, page) = try_get(&server.addr, "/").unwrap();
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("Retry-After: 5\r\n"), "{page}");
    let upgrade = upgrade_request(&server.addr, "/ws", &[]);
    assert_eq!(upgrade.status, 503);
    assert!(server.is_running());
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// Whether a v1 message of `len` bytes is accepted (it would be refused
/// with `text_too_long` over `--max-text`).
fn accepts_text(server: &Server, len: usize) -> bool {
    let mut ws = join_v1(server, &format!("probe{len}"), "probe");
    let text = "x".repeat(len);
    send_json(
        &mut ws,
        serde_json::json!({"type": "message", "text": text}),
    );
    let v = next_json(&mut ws);
    match v["type"].as_str() {
        Some("message") => true,
        Some("error") if v["code"] == "text_too_long" => false,
        _ => panic!("unexpected answer: {v}"),
    }
}

/// The `--max-text` a server applies, told apart from 10, 20, 30 and the
/// default (4096).
fn max_text(server: &Server) -> usize {
    [10, 20, 30, 4096]
        .into_iter()
        .find(|&n| !accepts_text(server, n + 1))
        .unwrap_or(usize::MAX)
}

fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut command = wschat();
    command
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(args)
        .envs(env.iter().copied());
    Server::spawn(command)
}

#[test]
fn environment_file_and_flags_in_that_order() {
    let dir = TempDir::new("config");
    let file = dir.write("wschat.toml", b"# max-text from the file\nmax-text = 10\n");
    let file = file.to_str().unwrap();

    assert_eq!(max_text(&start_with(&[], &[])), 4096);
    let from_env = start_with(&[], &[("WSCHAT_MAX_TEXT", "20")]);
    assert_eq!(max_text(&from_env), 20, "an environment variable sets it");
    let from_file = start_with(&["--config", file], &[]);
    assert_eq!(max_text(&from_file), 10, "the config file sets it");
    let file_by_env = start_with(&[], &[("WSCHAT_CONFIG", file)]);
    assert_eq!(max_text(&file_by_env), 10, "WSCHAT_CONFIG names the file");
    let env_over_file = start_with(&["--config", file], &[("WSCHAT_MAX_TEXT", "20")]);
    assert_eq!(
        max_text(&env_over_file),
        20,
        "the environment wins over the file"
    );
    let flag_over_both = start_with(
        &["--config", file, "--max-text", "30"],
        &[("WSCHAT_MAX_TEXT", "20")],
    );
    assert_eq!(max_text(&flag_over_both), 30, "a flag wins over both");
}

#[test]
fn wschat_listen_alone_chooses_the_address() {
    let mut command = wschat();
    command
        .args(["--log-level", "warn"])
        .env("WSCHAT_LISTEN", "127.0.0.1:0");
    let server = Server::spawn(command);
    assert_eq!(http_fetch(&server.addr, "/healthz").status, 200);
}

#[test]
fn a_bad_config_file_is_refused_with_its_name() {
    let dir = TempDir::new("bad-config");
    let file = dir.write("wschat.toml", b"max-txet = 10\n");
    let out = wschat()
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wschat.toml: unknown option \"max-txet\""),
        "{stderr}"
    );
}

#[test]
fn help_states_the_precedence_and_the_variables() {
    let out = wschat().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[env: WSCHAT_MAX_CONNECTIONS="), "{help}");
    assert!(help.contains("--config <FILE>"), "{help}");
    assert!(
        help.contains("A flag wins over the environment, the environment\nover the file, and the file over the default."),
        "{help}"
    );
}

#[test]
fn rust_log_filters_by_target_and_lines_are_key_value() {
    let dir = TempDir::new("log");
    let log = dir.path.join("stderr.log");
    let mut command = wschat();
    command
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn,wschat::router=info")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = Server::spawn(command);
    let mut alice = join_v1(&server, "lobby", "alice");
    alice
        .close(Some(tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .unwrap();
    wait_disconnected(&mut alice);
    server.wait_metric("wschat_connections{mode=\"v1\"}", |v| v == 0.0);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    // The router's info line is there; the dispatcher's (join) and the
    // reader's (disconnect) are filtered out at info.
    let connect = text
        .lines()
        .find(|l| l.contains("event=connect"))
        .unwrap_or_else(|| panic!("no connect line in:\n{text}"));
    assert!(!text.contains("event=join"), "{text}");
    assert!(!text.contains("event=disconnect"), "{text}");
    assert!(
        !text.contains("alice"),
        "a name was logged at info:\n{text}"
    );
    for field in [
        "level=info",
        "target=wschat::router",
        "client=1",
        "peer=127.0.0.1:",
        "mode=v1",
        "path=/ws",
        "room=\"lobby\"",
    ] {
        assert!(connect.contains(field), "{field} missing: {connect}");
    }
    for line in text.lines() {
        assert!(line.starts_with("ts="), "not key=value: {line}");
        assert!(!line.contains("RoomQuery"), "a Debug dump: {line}");
    }

    // With info for the reader's target (here through --log-level),
    // its disconnect line has the close code, the reason and the duration.
    let log2 = dir.path.join("stderr2.log");
    let mut command = wschat();
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(["--log-level", "warn,wschat::reader=info"])
        .stderr(std::fs::File::create(&log2).unwrap());
    let server = Server::spawn(command);
    let mut bob = join_v1(&server, "lobby", "bob");
    bob.close(Some(tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "bye".into(),
    }))
    .unwrap();
    wait_disconnected(&mut bob);
    server.wait_metric("wschat_connections{mode=\"v1\"}", |v| v == 0.0);
    drop(server);
    let text = std::fs::read_to_string(&log2).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("event=disconnect"))
        .unwrap_or_else(|| panic!("no disconnect line in:\n{text}"));
    for field in [
        "client=1",
        "mode=v1",
        "code=1000",
        "reason=\"bye\"",
        "duration=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    require_debian_package("/usr/bin/systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(repo("contrib/wschat.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/wschat\n"),
        "the unit runs /usr/local/bin/wschat"
    );
    for needed in [
        "DynamicUser=yes",
        "StateDirectory=wschat",
        "LimitNOFILE=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(needed), "{needed} missing from the unit");
    }
    // verify checks that ExecStart names an executable: the same unit,
    // pointed at the binary under test.
    let dir = TempDir::new("unit");
    let copy = dir.write(
        "wschat.service",
        unit.replace(
            "\nExecStart=/usr/local/bin/wschat\n",
            &format!("\nExecStart={}\n", env!("CARGO_BIN_EXE_wschat")),
        )
        .as_bytes(),
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 even when it ignores a misspelt key: any word from it
    // is a failure.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        out.status
    );
    let out = Command::new("systemd-analyze")
        // The threshold is in tenths of the 0-10 exposure it prints.
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&copy)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 2:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sysctl_file_sets_real_keys() {
    let text = std::fs::read_to_string(repo("contrib/99-wschat.conf")).unwrap();
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        let key = key.trim();
        let proc = Path::new("/proc/sys").join(key.replace('.', "/"));
        assert!(proc.exists(), "{key} is not a sysctl ({})", proc.display());
        value.trim().parse::<u64>().expect("a number");
        keys.push(key.to_string());
    }
    assert_eq!(keys, ["kernel.pid_max", "vm.max_map_count"]);
}
