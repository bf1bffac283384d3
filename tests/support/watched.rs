//! Hardening checks: the server's resource counts before and after, and a
//! room under watch whose offender must leave it as it was.

use super::{
    Client, RawSocket, Server, assert_relayed, connect_raw_synced, join_v1, next_json, pct,
    wait_join,
};

/// The server's thread and file descriptor counts at one moment, to check
/// that everything a test opened has been given back.
pub struct Baseline {
    pub threads: usize,
    pub fds: usize,
}

impl Baseline {
    /// Counts the server's threads and fds now. A thread names itself once
    /// it runs, so this first waits for every hub thread (by default one
    /// per core this process may use, which the server may use too). Every connection open at this point must be fully
    /// up (a frame received from it), or its writer thread may be missed.
    pub fn take(server: &Server) -> Baseline {
        let hubs = std::thread::available_parallelism().map_or(1, |n| n.get());
        server.wait_until("the hub threads to start", |s| {
            s.thread_names()
                .iter()
                .filter(|n| n.starts_with("hub-"))
                .count()
                == hubs
        });
        Baseline {
            threads: server.threads(),
            fds: server.fds(),
        }
    }

    /// Waits until the server's threads and fds are back at (or below) this.
    pub fn wait_back(&self, server: &Server) {
        server.wait_until("threads back at baseline", |s| s.threads() <= self.threads);
        server.wait_until("fds back at baseline", |s| s.fds() <= self.fds);
    }
}

/// A server with room `r` holding two v1 clients, `alice` who listens and
/// `bob` who speaks, and the server's resource counts once both are in.
pub struct Watched {
    pub server: Server,
    pub alice: Client,
    pub bob: Client,
    pub base: Baseline,
}

impl Watched {
    pub fn start(options: &[&str]) -> Watched {
        let server = Server::start(options);
        let mut alice = join_v1(&server, "r", "alice");
        let bob = join_v1(&server, "r", "bob");
        assert_eq!(wait_join(&mut alice), "bob");
        let base = Baseline::take(&server);
        Watched {
            server,
            alice,
            bob,
            base,
        }
    }

    /// Opens a bare socket to room `r` as `name` (v1 when `v1`) and waits
    /// until alice has seen it join.
    pub fn socket(&mut self, name: &str, v1: bool) -> RawSocket {
        let path = format!("/ws?room=r&name={}", pct(name));
        let s = if v1 {
            RawSocket::open_v1(&self.server, &path)
        } else {
            RawSocket::open(&self.server, &path, &[])
        };
        assert_eq!(wait_join(&mut self.alice), name);
        s
    }

    /// Connects a raw client to room `r` as `name`, once it is in the room.
    pub fn raw(&mut self, name: &str) -> Client {
        let path = format!("/ws?room=r&name={}", pct(name));
        let (ws, joined) = connect_raw_synced(&self.server, &mut self.alice, &path);
        assert_eq!(joined, name);
        ws
    }

    /// Connects a v1 client to room `r` as `name`, once it is in the room.
    pub fn v1(&mut self, name: &str) -> Client {
        let ws = join_v1(&self.server, "r", name);
        assert_eq!(wait_join(&mut self.alice), name);
        ws
    }

    /// After the offender `name` was closed and dropped: alice sees it leave
    /// without having received anything it sent, bob's next message still
    /// reaches alice, and the server is back at its resource baseline.
    pub fn check_recovered(mut self, name: &str) {
        loop {
            let v = next_json(&mut self.alice);
            assert!(
                v["type"] != "file" && v["type"] != "message",
                "the offender's frame was relayed: {v}"
            );
            if v["type"] == "leave" {
                assert_eq!(v["name"], name, "{v}");
                break;
            }
        }
        assert_relayed(&mut self.bob, &mut self.alice, "still here");
        self.base.wait_back(&self.server);
        assert!(self.server.is_running(), "the server process has exited");
    }
}
