//! A download's body, sent after its head: read from the store a chunk at a
//! time, or (from Redis) held whole, and in either case counted in the
//! memory budget's outbound share until it is sent, so that downloads to
//! clients that do not read cannot hold memory the budget does not see.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use super::{Target, complain};
use crate::history::sqlite::{Reader, StoredFile};
use crate::limits::budget::Share;

/// Bytes read from the store, and written to the client, at a time: what
/// one download holds (and charges the outbound share) while its client
/// reads, however large the file.
pub const CHUNK: u64 = 64 * 1024;

/// A download's bytes, still to be sent.
pub struct Body {
    from: Bytes,
    /// What sending holds, counted in the outbound share until it is sent.
    _charge: Charge,
}

pub(super) enum Bytes {
    /// Read from the store a chunk at a time: `len` bytes from `start` of
    /// the file `meta` describes (checked again with every chunk).
    Store {
        reader: Reader,
        target: Target,
        meta: StoredFile,
        start: u64,
        len: u64,
    },
    /// Held whole (Redis keeps a file as one value, which cannot be read in
    /// parts): `data[start..start + len]`.
    Held {
        data: Vec<u8>,
        start: usize,
        len: usize,
    },
}

impl Body {
    pub(super) fn new(from: Bytes, charge: Charge) -> Body {
        Body {
            from,
            _charge: charge,
        }
    }

    /// Writes the bytes to `sock`. Fails when the client does not take them
    /// within the socket's write timeout, or the file changed under its
    /// address (the client sees the connection end short of its length).
    pub fn send(self, sock: &TcpStream) -> io::Result<()> {
        let mut out = sock;
        match self.from {
            Bytes::Held { data, start, len } => out.write_all(&data[start..start + len]),
            Bytes::Store {
                reader,
                target,
                meta,
                start,
                len,
            } => {
                let mut sent = 0;
                while sent < len {
                    let n = (len - sent).min(CHUNK);
                    let chunk = match reader.read_range(&target.room, target.id, start + sent, n) {
                        Ok(chunk) => chunk,
                        Err(e) => {
                            complain(&target, &e);
                            return Err(io::Error::other("the store could not be read"));
                        }
                    };
                    match chunk {
                        Some(chunk)
                            if same_file(&chunk, &meta) && chunk.bytes.len() as u64 == n =>
                        {
                            out.write_all(&chunk.bytes)?;
                        }
                        _ => return Err(io::Error::other("the file changed while it was sent")),
                    }
                    sent += n;
                }
                Ok(())
            }
        }
    }
}

/// Bytes taken from a share of the budget, given back when dropped.
pub(super) struct Charge {
    share: Arc<Share>,
    bytes: usize,
}

impl Charge {
    pub(super) fn take(share: &Arc<Share>, bytes: usize) -> Option<Charge> {
        share.try_take(bytes).then(|| Charge {
            share: share.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.share.give(self.bytes);
    }
}

/// Whether two reads found the same file: not another one put under the
/// same address (a database put in this one's place) between them.
fn same_file(a: &StoredFile, b: &StoredFile) -> bool {
    a.name == b.name && a.mime == b.mime && a.size == b.size && a.ts == b.ts
}
