//! Debian's nginx in front of a wschat, configured the way docs/DEPLOY.md
//! tells a deployment to: its `map` and `location` blocks are taken from
//! that file as they are, so the configuration the docs show is the one the
//! tests run. nginx listens on a free loopback port and proxies to the
//! server; clients bound to other loopback addresses (127.0.0.2, 127.0.0.3,
//! …) reach it as distinct clients, which nginx names in `X-Forwarded-For`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::stream::MaybeTlsStream;

use super::{Client, HttpResponse, Server, TempDir, WATCHDOG, read_http_response, tcp_bound_to};

pub mod balanced;

/// Debian's nginx binary (package `nginx`).
pub const NGINX: &str = "/usr/sbin/nginx";

/// nginx writes this notice once its listening socket is open (after
/// reading its configuration, before serving): it is the sign to go on.
const READY: &str = "getrlimit(RLIMIT_NOFILE)";

/// A running nginx, killed (and its directory removed) when dropped.
pub struct Nginx {
    child: Child,
    /// `127.0.0.1:PORT`, where it listens.
    pub addr: String,
    /// Its prefix: configuration, pid file and temporary files.
    _dir: TempDir,
}

impl Nginx {
    /// Starts nginx on a free loopback port in front of `server`.
    pub fn in_front_of(server: &Server) -> Nginx {
        Nginx::start(&server.addr)
    }

    /// Starts nginx on a free loopback port, proxying everything to
    /// `upstream` (`host:port`), and returns once it is listening. A port
    /// taken by someone else between choosing and binding it is retried
    /// with another.
    pub fn start(upstream: &str) -> Nginx {
        Nginx::launch(|dir, port| config(dir, port, upstream, ""))
    }

    /// Starts nginx on a free loopback port with the configuration
    /// `conf(DIR, PORT)` gives, and returns once it is listening.
    fn launch(conf: impl Fn(&Path, u16) -> String) -> Nginx {
        ensure_installed();
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        for _attempt in 0..5 {
            let n = STARTED.fetch_add(1, Ordering::Relaxed);
            let dir = TempDir::new(&format!("nginx-{n}"));
            let port = free_port();
            let conf = conf(&dir.path, port);
            let conf_path = dir.write("nginx.conf", conf.as_bytes());
            let mut child = Command::new(NGINX)
                .arg("-p")
                .arg(&dir.path)
                .arg("-c")
                .arg(&conf_path)
                // The log nginx writes before it has read its configuration.
                .args(["-e", "stderr"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("could not run {NGINX}: {e}"));
            match wait_ready(&mut child) {
                Ok(()) => {
                    return Nginx {
                        child,
                        addr: format!("127.0.0.1:{port}"),
                        _dir: dir,
                    };
                }
                Err(log) if log.contains("Address already in use") => {
                    let _ = child.kill();
                    let _ = child.wait();
                    continue;
                }
                Err(log) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("nginx did not start ({status:?}):\n{log}\n--- nginx.conf ---\n{conf}");
                }
            }
        }
        panic!("nginx found no free port in five attempts");
    }

    /// `ws://ADDR/PATH` through nginx.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// The port nginx listens on.
    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process (master_process off): killing it ends nginx entirely.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads nginx's stderr until it says it is up (`Ok`) or ends (`Err` with
/// everything it wrote). Its lines are passed on to the test's stderr, now
/// and for as long as it runs.
fn wait_ready(child: &mut Child) -> Result<(), String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut early = String::new();
        let mut ready = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("nginx: {line}");
            if !ready {
                early.push_str(&line);
                early.push('\n');
                if line.contains(READY) {
                    ready = true;
                    let _ = tx.send(Ok(()));
                }
            }
        }
        if !ready {
            let _ = tx.send(Err(early));
        }
    });
    // nginx retries a busy port for 2.5 s before giving up; the watchdog
    // covers that with room to spare.
    match rx.recv_timeout(WATCHDOG) {
        Ok(result) => result,
        Err(_) => Err("nginx neither started nor exited within the watchdog".into()),
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Installs nginx when it is missing and this runs as root (the same
/// command CI runs); otherwise fails with that command. Once per process.
fn ensure_installed() {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    if *checked {
        return;
    }
    super::require_debian_package(NGINX, "nginx");
    *checked = true;
}

/// The whole nginx.conf: one process in the foreground, everything it
/// writes under `dir`, and the deployment's blocks from docs/DEPLOY.md with
/// `proxy_pass` pointed at `upstream` (an address, or the name of an
/// `upstream` block that `extra` adds to the `http` block).
fn config(dir: &Path, port: u16, upstream: &str, extra: &str) -> String {
    let (map, location) = deploy_blocks();
    const DOCS_UPSTREAM: &str = "proxy_pass http://127.0.0.1:8080;";
    assert_eq!(
        location.matches(DOCS_UPSTREAM).count(),
        1,
        "docs/DEPLOY.md's `location /` block must contain `{DOCS_UPSTREAM}` once:\n{location}"
    );
    let location = location.replace(DOCS_UPSTREAM, &format!("proxy_pass http://{upstream};"));
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr notice;

events {{
    worker_connections 1024;
}}

http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

{map}
{extra}
    server {{
        listen 127.0.0.1:{port};

{location}
    }}
}}
"
    )
}

/// The `map $http_upgrade …` block and every `location` block (the
/// operator's paths kept inside, and `location /`) of the first nginx
/// configuration shown in docs/DEPLOY.md, each as it is written there.
fn deploy_blocks() -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DEPLOY.md");
    let docs = std::fs::read_to_string(&path).expect("read docs/DEPLOY.md");
    let start = docs
        .find("```nginx\n")
        .expect("docs/DEPLOY.md shows an nginx configuration (```nginx)")
        + "```nginx\n".len();
    let len = docs[start..]
        .find("```")
        .expect("the nginx block of docs/DEPLOY.md ends");
    let conf = &docs[start..start + len];
    let locations: Vec<String> = conf
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("location "))
        .map(|opener| block(conf, opener))
        .collect();
    assert!(
        locations
            .iter()
            .any(|l| l.trim_start().starts_with("location / {")),
        "docs/DEPLOY.md's nginx configuration has a `location /` block"
    );
    (
        block(conf, "map $http_upgrade $connection_upgrade {"),
        locations.join("\n\n"),
    )
}

/// The lines of `conf` from the one that starts with `opener` to the line
/// that closes its brace.
fn block(conf: &str, opener: &str) -> String {
    let mut out = Vec::new();
    let mut depth = 0i32;
    for line in conf
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(opener))
    {
        let code = line.split('#').next().unwrap();
        depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
        out.push(line);
        if depth == 0 {
            return out.join("\n");
        }
    }
    panic!("docs/DEPLOY.md's nginx configuration has no complete `{opener}` block");
}

// ---- clients from chosen loopback addresses ----

/// A TCP connection to `addr` from the local address `from` (any
/// 127.0.0.0/8 address is this machine, so each is a distinct client).
pub fn tcp_from(addr: &str, from: &str) -> TcpStream {
    tcp_bound_to(from, addr, WATCHDOG)
}

/// Opens a WebSocket to `path` on `addr` (wschat, or nginx in front of it)
/// from the local address `from`, adding `headers` (each `Name: value`) to
/// the upgrade request. A refusal comes back as `Err(Error::Http(…))` with
/// the status and headers the client received.
pub fn ws_from(
    addr: &str,
    path: &str,
    from: &str,
    headers: &[&str],
) -> Result<Client, tungstenite::Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for h in headers {
        let (name, value) = h.split_once(':').expect("header as `Name: value`");
        request.headers_mut().append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    match tungstenite::client(request, MaybeTlsStream::Plain(tcp_from(addr, from))) {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => unreachable!("blocking socket"),
    }
}

/// Like `ws_from`, but the client must be refused: returns the response.
#[track_caller]
pub fn refused_from(addr: &str, path: &str, from: &str, headers: &[&str]) -> HttpResponse {
    let req = super::upgrade_head(addr, path, headers);
    let mut s = tcp_from(addr, from);
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let response = read_http_response(&mut s);
    assert_ne!(
        response.status, 101,
        "expected {path} from {from} with {headers:?} to be refused, but the upgrade was accepted"
    );
    response
}
