//! A real Redis Cluster for the tests of shared rooms: three masters (and,
//! when asked, a replica of the first) of Debian's `redis-server` on free
//! loopback ports, joined with `redis-cli --cluster create`, keeping
//! nothing on disk. Every node is killed when the cluster is dropped, a
//! failing test's included (each is a [`Redis`]).

use std::process::Command;
use std::time::{Duration, Instant};

use super::WATCHDOG;
use super::redis::{Redis, free_port};

/// Debian's Redis client (package `redis-server` too).
pub const REDIS_CLI: &str = "/usr/bin/redis-cli";

/// How long a master may be silent before the others count it failed: short,
/// so that a replica takes over within a couple of seconds.
const NODE_TIMEOUT_MS: &str = "1000";

pub struct RedisCluster {
    /// The masters, each owning a third of the slots, in slot order.
    pub masters: Vec<Redis>,
    /// A replica of `masters[0]`, when asked for.
    pub replica: Option<Redis>,
}

impl RedisCluster {
    /// Three masters, and a replica of the first when `replica`; returns
    /// once every node says `cluster_state:ok` (and the replica is in sync).
    pub fn start(replica: bool) -> RedisCluster {
        let masters: Vec<Redis> = (0..3).map(|_| node()).collect();
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(masters.iter().map(|m| format!("127.0.0.1:{}", m.port)));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        cli_ok(masters[0].port, &create);
        let mut cluster = RedisCluster {
            masters,
            replica: None,
        };
        cluster.wait_ok();
        if replica {
            let r = node();
            let master = cluster.masters[0].port;
            let id = cluster.node_id(master);
            cli_ok(
                master,
                &[
                    "--cluster".into(),
                    "add-node".into(),
                    format!("127.0.0.1:{}", r.port),
                    format!("127.0.0.1:{master}"),
                    "--cluster-slave".into(),
                    "--cluster-master-id".into(),
                    id,
                ],
            );
            let port = r.port;
            cluster.replica = Some(r);
            wait_for("the replica in sync", || {
                info(port, "replication").contains("master_link_status:up")
            });
            cluster.wait_ok();
        }
        cluster
    }

    /// `--redis` naming the first master: any node would do.
    pub fn url(&self) -> String {
        self.masters[0].url()
    }

    /// Waits until every live node says `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let ports: Vec<u16> = self
            .masters
            .iter()
            .chain(&self.replica)
            .map(|r| r.port)
            .collect();
        wait_for("cluster_state:ok", || {
            ports
                .iter()
                .all(|&p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
    }

    /// The node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        cli(port, &["CLUSTER", "MYID"]).trim().to_owned()
    }

    /// A room name (`{prefix}` and letters) whose keys live on `masters[i]`.
    pub fn room_on(&self, i: usize, prefix: &str) -> String {
        let port = self.masters[i].port;
        letters()
            .map(|s| format!("{prefix}{s}"))
            .find(|room| {
                let slot = cli(
                    port,
                    &["CLUSTER", "KEYSLOT", &format!("wschat:{{{room}}}:meta")],
                );
                let slot: u16 = slot.trim().parse().expect("a slot");
                self.owner_of(slot) == port
            })
            .expect("a room for every master")
    }

    /// The port of the master that owns `slot`.
    pub fn owner_of(&self, slot: u16) -> u16 {
        let live = self.masters[1].port;
        let out = cli(live, &["CLUSTER", "SHARDS"]);
        // Lines of `redis-cli`'s flat output: "slots", start, end, …,
        // "nodes", then "port", p, …, "role", "master".
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i] == "slots" {
                let mut owned = Vec::new();
                let mut j = i + 1;
                while j + 1 < lines.len() && lines[j] != "nodes" {
                    owned.push((
                        lines[j].parse::<u16>().ok(),
                        lines[j + 1].parse::<u16>().ok(),
                    ));
                    j += 2;
                }
                let mine = owned
                    .iter()
                    .any(|r| matches!(r, (Some(a), Some(b)) if (*a..=*b).contains(&slot)));
                if mine {
                    let port = lines[j..]
                        .windows(2)
                        .find(|w| w[0] == "port")
                        .and_then(|w| w[1].parse().ok());
                    return port.expect("the owner's port");
                }
                i = j;
            }
            i += 1;
        }
        panic!("nobody owns slot {slot}:\n{out}");
    }

    /// Whether the node on `port` holds `key`.
    pub fn holds(port: u16, key: &str) -> bool {
        cli(port, &["EXISTS", key]).trim() == "1"
    }
}

/// `a`, `b`, …, `z`, `aa`, `ab`, … (letters only: a room's key is its
/// name's confusable skeleton, which keeps plain lowercase letters but not
/// every digit).
fn letters() -> impl Iterator<Item = String> {
    (0u32..).map(|mut n| {
        let mut s = String::new();
        loop {
            s.insert(0, char::from(b'a' + (n % 26) as u8));
            if n < 26 {
                break s;
            }
            n = n / 26 - 1;
        }
    })
}

/// A cluster node on a free port, without persistence; its `nodes.conf`
/// stays in its own directory, so a restart keeps its place in the cluster.
fn node() -> Redis {
    Redis::start_with(
        free_port(),
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            NODE_TIMEOUT_MS,
        ],
    )
}

/// What `redis-cli -p PORT ARGS…` printed.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(REDIS_CLI)
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli_ok(port: u16, args: &[String]) {
    let out = Command::new(REDIS_CLI)
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `INFO section` of the node on `port`.
pub fn info(port: u16, section: &str) -> String {
    cli(port, &["INFO", section])
}

/// Polls a condition no event reports (the cluster's state) until it holds.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WATCHDOG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
