//! Redis and the wschat instances: three that share it and one alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::NAMES;
use crate::loadgen::closed_loop::Watched;
use crate::loadgen::{Net, STALL_TIMEOUT, cpu_seconds};
use crate::pair::redis::Redis;
use crate::pair::redis_cluster::RedisCluster;
use crate::pair::{self, Server};

/// A connection to the fleet's Redis, for its `INFO`.
pub fn redis_connection(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("connect to Redis")
}

/// Redis, the three instances that share it and the one that does not;
/// and, when asked, three more instances on a Redis Cluster of three
/// masters. Fields drop in order: the instances go before Redis.
pub struct Fleet {
    pub shared: Vec<Server>,
    pub single: Server,
    pub on_cluster: Vec<Server>,
    pub redis: Redis,
    pub cluster: Option<RedisCluster>,
}

impl Fleet {
    pub fn start(with_cluster: bool) -> Fleet {
        let redis = Redis::start();
        let url = redis.url();
        let shared: Vec<Server> = NAMES
            .iter()
            .map(|_| start_instance(&["--redis", &url]))
            .collect();
        let single = start_instance(&[]);
        let cluster = with_cluster.then(|| RedisCluster::start(false));
        let on_cluster: Vec<Server> = match &cluster {
            Some(cluster) => NAMES
                .iter()
                .map(|_| start_instance(&["--redis", &cluster.url()]))
                .collect(),
            None => Vec::new(),
        };
        for server in shared.iter().chain([&single]).chain(&on_cluster) {
            wait_ready_endpoint(server);
        }
        // For `perf record -p`: which process is which.
        let pids: Vec<String> = shared.iter().map(|s| s.pid().to_string()).collect();
        eprintln!(
            "pids: A,B,C {} single {} redis {}",
            pids.join(","),
            single.pid(),
            redis.pid()
        );
        Fleet {
            shared,
            single,
            on_cluster,
            redis,
            cluster,
        }
    }

    pub fn shared_addrs(&self) -> Vec<SocketAddr> {
        self.shared.iter().map(addr).collect()
    }

    /// The instances on the Redis Cluster, if it was started.
    pub fn cluster_addrs(&self) -> Vec<SocketAddr> {
        self.on_cluster.iter().map(addr).collect()
    }

    /// Fails the run if a process died or a client connection ended.
    pub fn health(&mut self, net: &Net) -> Result<(), String> {
        let names =
            NAMES
                .iter()
                .copied()
                .chain(["single"])
                .chain(["cluster A", "cluster B", "cluster C"]);
        let servers = self
            .shared
            .iter_mut()
            .chain([&mut self.single])
            .chain(&mut self.on_cluster);
        for (name, server) in names.zip(servers) {
            if let Some(status) = server.exited() {
                return Err(format!("instance {name} exited ({status})"));
            }
        }
        if let Some(status) = self.redis.exited() {
            return Err(format!("redis-server exited ({status})"));
        }
        for master in self.cluster.iter_mut().flat_map(|c| &mut c.masters) {
            if let Some(status) = master.exited() {
                return Err(format!("a cluster master exited ({status})"));
            }
        }
        match net.endings() {
            Some(endings) => Err(endings),
            None => Ok(()),
        }
    }

    /// CPU seconds used so far: each clustered instance, Redis, the single
    /// instance and the bench.
    pub fn cpu(&self) -> Cpu {
        Cpu {
            shared: self
                .shared
                .iter()
                .map(|s| cpu_seconds(&s.pid().to_string()))
                .sum(),
            redis: cpu_seconds(&self.redis.pid().to_string()),
            single: cpu_seconds(&self.single.pid().to_string()),
            bench: cpu_seconds("self"),
            on_cluster: self
                .on_cluster
                .iter()
                .map(|s| cpu_seconds(&s.pid().to_string()))
                .sum(),
            masters: self
                .cluster
                .iter()
                .flat_map(|c| &c.masters)
                .map(|m| cpu_seconds(&m.pid().to_string()))
                .sum(),
        }
    }
}

/// The fan-out loop reads the fleet's CPU and checks its processes.
impl Watched for Fleet {
    type Cpu = Cpu;

    fn cpu(&self) -> Cpu {
        Fleet::cpu(self)
    }

    fn health(&mut self, net: &Net) -> Result<(), String> {
        Fleet::health(self, net)
    }
}

/// CPU seconds, by process group.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub shared: f64,
    pub redis: f64,
    pub single: f64,
    pub bench: f64,
    /// The instances on the cluster, and its masters.
    pub on_cluster: f64,
    pub masters: f64,
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, o: Cpu) -> Cpu {
        Cpu {
            shared: self.shared + o.shared,
            redis: self.redis + o.redis,
            single: self.single + o.single,
            bench: self.bench + o.bench,
            on_cluster: self.on_cluster + o.on_cluster,
            masters: self.masters + o.masters,
        }
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            shared: self.shared - o.shared,
            redis: self.redis - o.redis,
            single: self.single - o.single,
            bench: self.bench - o.bench,
            on_cluster: self.on_cluster - o.on_cluster,
            masters: self.masters - o.masters,
        }
    }
}

/// A release wschat with the connection caps lifted (the per-message rate
/// limit is lifted by `pair`), plus `extra`.
pub fn start_instance(extra: &[&str]) -> Server {
    let mut args = vec![
        "--max-connections",
        "100000",
        "--max-connections-per-ip",
        "100000",
        "--connect-rate",
        "1000000",
        "--connect-burst",
        "1000000",
    ];
    args.extend_from_slice(extra);
    pair::start(env!("CARGO_BIN_EXE_wschat"), &args)
}

pub fn addr(server: &Server) -> SocketAddr {
    server.addr.parse().expect("a listening address")
}

/// Waits until `/readyz` says 200: with `--redis`, once both of the
/// instance's Redis connections are up.
pub fn wait_ready_endpoint(server: &Server) {
    let deadline = Instant::now() + STALL_TIMEOUT;
    loop {
        let answer = TcpStream::connect(&server.addr).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            write!(
                s,
                "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            Ok(response)
        });
        if answer.is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready after {STALL_TIMEOUT:?}",
            server.addr
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Connects receiver i of `n` to `targets[i % targets.len()]`; returns each
/// one's target index (their connection ids are 0..n).
pub fn connect_spread(
    net: &mut Net,
    targets: &[SocketAddr],
    n: usize,
    path: &str,
) -> Result<Vec<usize>, String> {
    (0..n)
        .map(|i| {
            let at = i % targets.len();
            net.connect(targets[at], path)
                .map(|_| at)
                .map_err(|e| format!("receiver {} of {n}: {e}", i + 1))
        })
        .collect()
}
