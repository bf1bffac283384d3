//! Shared helpers for the integration tests: start a real `wschat` process on
//! an ephemeral localhost port and talk to it through real WebSocket clients.
//! Each concern has a file of its own; everything is re-exported here, so a
//! test says `use support::*`.
// Each test binary uses a different subset of the helpers.
#![allow(dead_code, unused_imports)]

mod http;
pub mod nginx;
mod raw_socket;
pub mod redis;
mod server;
mod system;
mod v1;
mod watched;
mod wire;
mod ws;

pub use http::*;
pub use raw_socket::*;
pub use server::*;
pub use system::*;
pub use v1::*;
pub use watched::*;
pub use wire::*;
pub use ws::*;
