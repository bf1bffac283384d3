//! The listener and admission: `server` runs the accept loop and the
//! shutdown, `admission` applies the connection caps and rates, fitted to
//! the machine by `capacity`.

pub(crate) mod admission;
pub(crate) mod capacity;
pub mod server;
