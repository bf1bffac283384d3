//! One connection's thread, from the request head to the close: `router`
//! routes each request, `handshake` upgrades `/ws` and `/echo` (asking
//! `auth` who the client is), `reader` runs the reader side of the socket
//! with `session` deciding what each message means, `incoming` stops what
//! must not be buffered, and `echo` lists the echo clients for the shutdown.

pub mod auth;
pub(crate) mod echo;
pub mod handshake;
pub mod incoming;
pub(crate) mod reader;
pub(crate) mod router;
pub(crate) mod session;
