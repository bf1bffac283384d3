//! Shared helpers for the integration tests: start a real `wschat` process on
//! an ephemeral localhost port and talk to it through real WebSocket clients.
//! Each concern has a file of its own; everything is re-exported here, so a
//! test says `use support::*`.
// Each test binary uses a different subset of the helpers.
#![allow(dead_code, unused_imports)]

/// Chromium driving the page, shared by the browser tests.
pub mod chromium;
/// Plain HTTP: raw requests, parsed responses, `/metrics`.
mod http;
/// nginx in front of a server, and clients from chosen loopback addresses.
pub mod nginx;
/// `RawSocket`: a WebSocket spoken by hand over bare TCP.
mod raw_socket;
/// Debian's redis-server, for the tests of shared rooms.
pub mod redis;
/// A real Redis Cluster of three masters (and a replica), for `--redis`.
pub mod redis_cluster;
/// `Server`: the `wschat` process, what /proc says of it, its log.
mod server;
/// Temporary directories and Debian packages.
mod system;
/// The `wschat.v1` protocol: joining, expected events, synced rooms.
mod v1;
/// Resource baselines and a watched room for hardening tests.
mod watched;
/// Hand-built frames, frame headers, upgrade heads, bound TCP sockets.
mod wire;
/// tungstenite clients: connecting, reading and writing frames.
mod ws;

pub use http::*;
pub use raw_socket::*;
pub use server::*;
pub use system::*;
pub use v1::*;
pub use watched::*;
pub use wire::*;
pub use ws::*;
