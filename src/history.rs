//! Where rooms' messages and files outlive the process: `sqlite`, the
//! store thread over one SQLite database, or `redis`, rooms shared by
//! several servers through Redis.

pub(crate) mod redis;
pub mod sqlite;
