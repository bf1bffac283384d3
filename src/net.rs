//! Admission, for the accept loop (`server`) and each connection's thread:
//! `admission` applies the connection caps and rates, fitted to the machine
//! by `capacity`.

pub(crate) mod admission;
pub(crate) mod capacity;
