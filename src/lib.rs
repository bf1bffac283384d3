//! wschat: a self-hosted WebSocket chat-room server on blocking threads.
//!
//! The modules follow the life of a connection: `server` runs the accept
//! loop and the shutdown, `admission` applies the connection caps (fitted to
//! the machine by `capacity`), `router` routes each request on its own
//! thread, `http` reads the request head and serves the page, `handshake`
//! upgrades `/ws` and `/echo`, `reader` runs the connection's reader thread
//! (with `session` deciding what each message means), and `dispatcher` owns
//! the rooms and fans frames out. `close` says why we close a WebSocket. Every byte to a client goes through its `outlet`, straight into the
//! socket when it has room, otherwise through a `writer` thread that lives
//! while the client is behind. `incoming` stops what must not be buffered,
//! within the memory `budget`. `protocol` and `wire` are pure formats;
//! `ratelimit` is plumbing; `config` holds every option. `metrics`
//! counts what happens and `health` answers the operator's endpoints.
//! `auth` checks identity tokens and `names` the names people and rooms go
//! by; `admin` answers the admin view, whose requests the dispatcher
//! carries out (`moderation`), after `lockout` has counted wrong tokens.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub(crate) mod admin;
pub(crate) mod admission;
pub mod auth;
pub mod budget;
pub(crate) mod capacity;
pub(crate) mod close;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod dispatcher;
pub(crate) mod files;
pub mod handshake;
pub(crate) mod health;
pub mod http;
pub mod incoming;
pub(crate) mod lockout;
pub mod metrics;
pub(crate) mod moderation;
pub(crate) mod names;
pub(crate) mod outlet;
pub mod protocol;
pub mod proxy;
pub(crate) mod ratelimit;
pub(crate) mod reader;
pub(crate) mod router;
pub mod server;
pub(crate) mod session;
pub mod store;
pub(crate) mod storerate;
#[cfg(test)]
mod testing;
pub(crate) mod wire;
pub(crate) mod writer;
