//! wschat: a self-hosted WebSocket chat-room server on blocking threads.
//!
//! The modules follow the life of a connection: `listener` accepts it and
//! applies the connection caps, `http` reads the request head and serves the
//! page, `handshake` upgrades `/ws` and `/echo`, `connection` runs its reader
//! thread (with `session` deciding what each message means) and `writer` its
//! writer thread, and `dispatcher` owns the rooms. `protocol`, `wire` and
//! `text_limit` are pure formats; `queue` and `ratelimit` are the plumbing;
//! `config` holds every option. `metrics` counts what happens and `health`
//! answers the operator's endpoints.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod dispatcher;
pub mod handshake;
pub mod health;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod protocol;
pub mod queue;
pub mod ratelimit;
pub mod session;
pub mod text_limit;
pub mod wire;
pub mod writer;
