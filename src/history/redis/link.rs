//! What `--redis` names, a single Redis or any node of a Redis Cluster,
//! and a command connection to it that the rest of the module uses alike.
//!
//! The kind is found on the first connection (`INFO cluster` says
//! `cluster_enabled:1`) and kept: a cluster is then reached through the
//! `redis` crate's cluster client, which sends each command to the master
//! owning its key's slot and follows `MOVED` when slots change hands. A
//! room's keys share one slot (see `keys`), so its scripts run whole on
//! one shard; nothing here sends a command whose keys span slots.

use crate::logs as log;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster::ClusterConnection;
use redis::{Cmd, Connection, ConnectionLike, RedisResult, Value};

use super::resp;

/// How often the cluster client tries a command again (after `MOVED`,
/// `TRYAGAIN` or a lost node) before the caller is told it failed.
const CLUSTER_RETRIES: u32 = 2;

/// A node's address, as the cluster spells it.
pub type Addr = (String, u16);

/// Where the shared rooms live; cheap to clone, and every clone learns what
/// any of them found.
#[derive(Clone)]
pub struct Target {
    client: redis::Client,
    /// Whether it is a cluster; unset until a connection has asked.
    cluster: Arc<OnceLock<bool>>,
    /// The cluster's nodes as last seen (`CLUSTER SLOTS`): connections are
    /// made through any of them, so losing the node `--redis` names loses
    /// nothing once the others are known.
    nodes: Arc<Mutex<Vec<Addr>>>,
}

impl Target {
    pub fn new(client: redis::Client) -> Target {
        Target {
            client,
            cluster: Arc::default(),
            nodes: Arc::default(),
        }
    }

    /// The node `--redis` names.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Whether it is a cluster; `None` until a connection has found out.
    pub fn is_cluster(&self) -> Option<bool> {
        self.cluster.get().copied()
    }

    /// Whether it is a cluster, as the scripts take it (`'1'`/`'0'`).
    pub fn clustered(&self) -> &'static str {
        match self.is_cluster() {
            Some(true) => "1",
            _ => "0",
        }
    }

    /// Keeps the cluster's nodes, as last seen.
    pub fn learn(&self, nodes: Vec<Addr>) {
        *self.nodes.lock().unwrap_or_else(|p| p.into_inner()) = nodes;
    }

    /// Where to connect to the cluster: `--redis`'s node first, then the
    /// others known, each with `--redis`'s credentials.
    pub fn nodes(&self) -> Vec<redis::ConnectionInfo> {
        let seed = self.client.get_connection_info().clone();
        let known = self.nodes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut nodes = vec![seed.clone()];
        for (host, port) in known {
            let addr = redis::ConnectionAddr::Tcp(host, port);
            if *seed.addr() != addr {
                nodes.push(seed.clone().set_addr(addr));
            }
        }
        nodes
    }

    /// A command connection whose reads and writes give up after `timeout`.
    pub fn connect(&self, timeout: Duration) -> RedisResult<Link> {
        match self.cluster.get() {
            Some(true) => return cluster(self.nodes(), timeout),
            Some(false) => return single(&self.client, timeout).map(Link::Single),
            None => {}
        }
        let mut conn = single(&self.client, timeout)?;
        let found = match redis::cmd("INFO").arg("cluster").query::<String>(&mut conn) {
            Ok(info) => info.lines().any(|l| l.trim() == "cluster_enabled:1"),
            Err(e) if e.is_io_error() || e.is_timeout() => return Err(e),
            // A Redis that refuses `INFO` (renamed, or denied by its ACL)
            // is taken for a single one, as before clusters were known.
            Err(_) => false,
        };
        if self.cluster.set(found).is_ok() && found {
            log::info!(
                "event=redis_cluster_found node={:?}",
                self.client.get_connection_info().addr().to_string()
            );
        }
        match found {
            true => cluster(self.nodes(), timeout),
            false => Ok(Link::Single(conn)),
        }
    }
}

fn cluster(nodes: Vec<redis::ConnectionInfo>, timeout: Duration) -> RedisResult<Link> {
    ClusterClient::builder(nodes)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(CLUSTER_RETRIES)
        .build()?
        .get_connection()
        .map(|c| Link::Cluster(Box::new(c)))
}

fn single(client: &redis::Client, timeout: Duration) -> RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// A command connection to one Redis or to a cluster.
pub enum Link {
    Single(Connection),
    /// Boxed: it is four times the size of a single connection.
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Link {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    /// A pipeline: to one Redis as it is; to a cluster, each command to the
    /// shard that owns its key (the crate's plain pipeline would send it
    /// all to its first command's shard), as one pipeline per shard when
    /// every command may go in the crate's cluster pipeline, else one by
    /// one, in order.
    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let cluster = match self {
            Link::Single(c) => return c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c,
        };
        let commands = split(cmd)?;
        let replies = if commands.iter().all(|c| per_shard(&c.name)) {
            let mut pipe = redis::cluster::cluster_pipe();
            for command in commands {
                pipe.add_command(command.cmd);
            }
            pipe.query(cluster)?
        } else {
            let mut replies = Vec::with_capacity(commands.len());
            for command in commands {
                replies.push(cluster.req_packed_command(command.packed)?);
            }
            replies
        };
        Ok(replies.into_iter().skip(offset).take(count).collect())
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Link::Single(c) => c.req_command(cmd),
            Link::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Link::Single(c) => c.check_connection(),
            Link::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Link::Single(c) => c.is_open(),
            Link::Cluster(c) => c.is_open(),
        }
    }
}

/// One command of a packed pipeline.
struct Packed<'a> {
    /// Its bytes.
    packed: &'a [u8],
    /// Its name, in capitals.
    name: Vec<u8>,
    cmd: Cmd,
}

/// The commands of a packed pipeline.
fn split(mut packed: &[u8]) -> RedisResult<Vec<Packed<'_>>> {
    let mut commands = Vec::new();
    while !packed.is_empty() {
        let Some((resp::Value::Array(Some(args)), used)) = resp::parse(packed)? else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "a pipeline ended inside a command",
            )));
        };
        let mut command = Cmd::new();
        for arg in &args {
            command.arg(arg.bytes().unwrap_or_default());
        }
        let name = args
            .first()
            .and_then(resp::Value::bytes)
            .unwrap_or_default();
        commands.push(Packed {
            packed: &packed[..used],
            name: name.to_ascii_uppercase(),
            cmd: command,
        });
        packed = &packed[used..];
    }
    Ok(commands)
}

/// Whether the cluster pipeline takes the command called `name`: those of one key that this
/// module sends in pipelines (not `PUBLISH`, which it refuses, nor `DEL`,
/// which it may split across shards).
fn per_shard(name: &[u8]) -> bool {
    matches!(
        name,
        b"EVALSHA" | b"HGET" | b"HEXISTS" | b"HSTRLEN" | b"XRANGE" | b"SET" | b"GET" | b"SPUBLISH"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_splits_into_its_commands_and_only_single_key_ones_go_per_shard() {
        let mut pipe = redis::pipe();
        pipe.cmd("EVALSHA").arg("abc").arg(1).arg("wschat:{a}:meta");
        pipe.cmd("hget").arg("wschat:{b}:files").arg(7).ignore();
        pipe.cmd("PUBLISH").arg("wschat:events").arg("{}");
        let packed = pipe.get_packed_pipeline();
        let commands = split(&packed).unwrap();
        let names: Vec<&[u8]> = commands.iter().map(|c| &c.name[..]).collect();
        assert_eq!(names, [&b"EVALSHA"[..], b"HGET", b"PUBLISH"]);
        let whole: Vec<u8> = commands.iter().flat_map(|c| c.packed.to_vec()).collect();
        assert_eq!(whole, packed);
        assert_eq!(commands[1].cmd.get_packed_command(), commands[1].packed);
        assert!(per_shard(&commands[0].name) && per_shard(&commands[1].name));
        assert!(
            !per_shard(&commands[2].name),
            "the cluster pipeline refuses PUBLISH"
        );
        assert!(split(&packed[..packed.len() - 1]).is_err());
    }
}
