//! The hubs: threads that each own a part of the rooms (`hubs` says which),
//! with the clients seated in them, and fan frames out (`dispatcher`, one
//! per hub), carrying out the admin view's requests
//! (`moderation`; with shared rooms asked of every instance:
//! `everywhere`), and the write side of every socket: its `outlet`, with
//! the backlog writer thread (`outlet::writer`) that lives while a client is
//! behind.

pub(crate) mod dispatcher;
pub(crate) mod everywhere;
pub(crate) mod hubs;
pub(crate) mod moderation;
pub(crate) mod outlet;
