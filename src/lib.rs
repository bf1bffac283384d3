//! wschat: a self-hosted WebSocket chat-room server on blocking threads.
//!
//! The folders follow the life of a connection:
//!
//! - `server`: the listener. It starts every thread, runs the accept loop
//!   and the shutdown.
//! - `net`: admission. `net::admission` applies the connection caps (fitted
//!   to the machine by `net::capacity`).
//! - `ws`: one connection's thread. `ws::router` routes each request on its
//!   own thread, `ws::handshake` upgrades `/ws` and `/echo` (`ws::auth`
//!   checks identity tokens), `ws::reader` runs the connection's reader
//!   thread (with `ws::session` deciding what each message means), and
//!   `ws::incoming` stops what must not be buffered, within the memory
//!   budget.
//! - `hub`: rooms are spread over hub threads (`hub::hubs` says which hub
//!   owns a room and asks them all for what spans rooms); each hub's
//!   `hub::dispatcher` owns its rooms and fans frames out (one room engine,
//!   whether its rooms are local or shared through Redis), and carries out
//!   the admin view's requests (`hub::moderation`). Every byte
//!   to a client goes through its `hub::outlet`, straight into the socket
//!   when it has room, otherwise through a `hub::outlet::writer` thread that lives
//!   while the client is behind.
//! - `history`: where messages outlive the process, `history::sqlite` (the
//!   store thread) or `history::redis` (rooms shared through Redis).
//! - `http`: plain HTTP. `http` reads the request head and serves the page,
//!   `http::files` the downloads, `http::proxy` finds the real client behind
//!   a trusted proxy, `http::admin` answers the admin view and
//!   `http::health` the operator's endpoints.
//! - `proto`: pure formats. `proto::protocol` (what v1 clients send and
//!   receive, and the raw file frame) and `proto::wire`,
//!   `proto::names` (the names people and rooms go by) and `proto::close`
//!   (why we close a WebSocket).
//! - `limits`: the memory `limits::budget`, `limits::ratelimit`,
//!   `limits::storerate`, and `limits::lockout`, which counts wrong admin
//!   tokens.
//!
//! At the top, `config` holds every option, `metrics` counts what happens,
//! and `logs` keeps every module's log target.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod history;
pub mod http;
pub(crate) mod hub;
pub mod limits;
pub(crate) mod logs;
pub mod metrics;
pub(crate) mod net;
pub mod proto;
pub mod server;
#[cfg(test)]
mod testing;
pub mod ws;
