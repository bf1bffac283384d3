//! nginx in front of several wschat instances, as docs/DEPLOY.md's
//! "Scaling out" shows: its `upstream wschat` block lists the instances,
//! and the `location /` block proxies to it. Two things differ, both so
//! that a test knows which instance each client reaches: the instances are
//! the test's, and the balancing method (`least_conn` in the docs) is a
//! hash of the cookie [`PIN_COOKIE`], so that a browser holding that cookie
//! always reaches the same instance. Each response names the instance that
//! answered it in `X-Upstream`.

use super::{Nginx, block, config};
use crate::support::{Server, http_request};

/// The cookie whose value decides which instance a client reaches.
pub const PIN_COOKIE: &str = "wschat_pin";

impl Nginx {
    /// Starts nginx on a free loopback port, balancing over `servers`.
    pub fn balancing(servers: &[&Server]) -> Nginx {
        let (name, upstream) = upstream_block(servers);
        let extra = format!("{upstream}\n\n    add_header X-Upstream $upstream_addr always;\n");
        Nginx::launch(|dir, port| config(dir, port, &name, &extra))
    }

    /// A value of [`PIN_COOKIE`] that takes a client to `server`, found by
    /// asking nginx (which hashes it) with one value after another.
    pub fn pin_for(&self, server: &Server) -> String {
        let mut seen = Vec::new();
        for n in 0..64 {
            let pin = format!("pin-{n}");
            let response = http_request(
                &self.addr,
                &format!(
                    "GET /healthz HTTP/1.1\r\nHost: {}\r\nCookie: {PIN_COOKIE}={pin}\r\nConnection: close\r\n\r\n",
                    self.addr
                ),
            );
            assert_eq!(response.status, 200, "/healthz through nginx");
            let upstream = response
                .header("X-Upstream")
                .expect("nginx names the instance that answered")
                .to_string();
            if upstream == server.addr {
                return pin;
            }
            seen.push(upstream);
        }
        panic!(
            "no pin of 64 reaches {}; they reached {seen:?}",
            server.addr
        );
    }
}

/// The name of docs/DEPLOY.md's `upstream` block and the block itself, with
/// `servers` in place of the docs' and the cookie's hash in place of
/// `least_conn`.
fn upstream_block(servers: &[&Server]) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DEPLOY.md");
    let docs = std::fs::read_to_string(&path).expect("read docs/DEPLOY.md");
    let conf = docs
        .split("```nginx\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("upstream "))
        .expect("docs/DEPLOY.md shows an nginx `upstream` block");
    let docs_block = block(conf, "upstream ");
    let name = docs_block
        .trim_start()
        .strip_prefix("upstream ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the upstream block has a name")
        .to_string();
    let proxy = format!("proxy_pass http://{name};");
    assert!(
        docs.contains(&format!("`{proxy}`")),
        "docs/DEPLOY.md tells the `location /` block to use `{proxy}`"
    );
    let mut out = Vec::new();
    let (mut listed, mut balanced) = (0, false);
    for line in docs_block.lines() {
        let code = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if code.starts_with("server ") {
            // The test's instances in place of the docs' (as many of them).
            if listed == 0 {
                out.extend(
                    servers
                        .iter()
                        .map(|s| format!("{indent}server {};", s.addr)),
                );
            }
            listed += 1;
        } else if code == "least_conn;" {
            balanced = true;
            out.push(format!("{indent}hash $cookie_{PIN_COOKIE};"));
        } else {
            out.push(line.to_string());
        }
    }
    assert!(
        listed >= 2 && balanced,
        "docs/DEPLOY.md's upstream block lists several servers and balances with least_conn:\n{docs_block}"
    );
    (name, out.join("\n"))
}
