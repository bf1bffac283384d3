//! Pure formats: the client `protocol`, `addr`esses and ranges, a file's signed URL (`capability`), the `names` people and rooms go by,
//! the WebSocket `wire` framing, and why we `close` a WebSocket.

pub(crate) mod addr;
pub mod capability;
pub(crate) mod close;
pub mod lookup;
pub mod names;
pub mod protocol;
pub(crate) mod wire;
