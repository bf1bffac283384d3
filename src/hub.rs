//! The hub: the dispatcher thread that owns the clients and the rooms and
//! fans frames out (`dispatcher`), carrying out the admin view's requests
//! (`moderation`), and the write side of every socket: its `outlet`, with
//! the backlog writer thread (`outlet::writer`) that lives while a client is
//! behind.

pub(crate) mod dispatcher;
pub(crate) mod moderation;
pub(crate) mod outlet;
