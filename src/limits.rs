//! What bounds the server: the memory `budget`, the per-client
//! `ratelimit`, the per-address `storerate` and the admin `lockout`.

pub mod budget;
pub(crate) mod lockout;
pub(crate) mod ratelimit;
pub(crate) mod storerate;
