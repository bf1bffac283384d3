//! wschat: a self-hosted WebSocket chat-room server on blocking threads.
//!
//! The modules follow the life of a connection: `listener` accepts it and
//! applies the connection caps, `http` reads the request head and serves the
//! page, `handshake` upgrades `/ws` and `/echo`, `connection` runs its reader
//! thread and `writer` its writer thread, and `dispatcher` owns the rooms.
//! `protocol` and `wire` are the pure formats; `config` holds every option.
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod dispatcher;
pub mod handshake;
pub mod http;
pub mod listener;
pub mod protocol;
pub mod queue;
pub mod ratelimit;
pub mod text_limit;
pub mod wire;
pub mod writer;
