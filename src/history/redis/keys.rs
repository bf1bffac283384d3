//! Redis key names. Every key of a room carries the room's key (its
//! name's confusable skeleton) in a hash tag (`{room}`), so all of them live in one slot of a Redis Cluster and one
//! script may touch them together.

/// Where moderators' actions are published: they concern every room, and
/// every instance listens. Rooms' events have channels of their own
/// ([`Room::channel`]).
pub const CHANNEL: &str = "wschat:events";

/// Sorted set of the live instances' ids, each scored with the Redis
/// time (ms) its registration ends: refreshed by each instance, pruned by
/// score (`instances.rs`).
pub const INSTANCES: &str = "wschat:instances";

/// List where every instance pushes its answer to the moderator's question
/// `id` (`instances.rs`); short-lived.
pub fn reply(id: &str) -> String {
    format!("wschat:reply:{id}")
}

/// Hash: name skeleton → `until \t name` of the bans in force, for every
/// room (a ban is the whole service's, not a room's).
pub const BANS: &str = "wschat:bans";

/// The random key that signs file URLs when there is no `--auth-secret`,
/// shared by every instance (a string of 32 bytes, set once).
pub const FILE_URL_KEY: &str = "wschat:file-url-key";

/// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag (what
/// lies between the first `{` and the next `}`, when not empty), else of
/// the whole key, modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = match crc & 0x8000 {
                0 => crc << 1,
                _ => (crc << 1) ^ 0x1021,
            };
        }
    }
    crc
}

/// The keys of one room.
pub struct Room {
    prefix: String,
}

impl Room {
    pub fn new(room: &str) -> Room {
        // A room is keyed by its name's skeleton, as in the embedded store,
        // so that look-alike spellings reach one history on every
        // instance. A brace in it would end the hash tag early; no room
        // name may hold one unescaped, so they are replaced.
        let tag: String = crate::proto::names::skeleton(room)
            .chars()
            .map(|c| match c {
                '{' => '\u{2983}',
                '}' => '\u{2984}',
                c => c,
            })
            .collect();
        Room {
            prefix: format!("wschat:{{{tag}}}:"),
        }
    }

    /// The channel of the room's messages, files, presence and typing,
    /// which instances hosting the room subscribe to. In the room's hash
    /// slot, so that sharded pub/sub keeps it with the room's keys.
    pub fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Hash: `epoch`, `seq` (the last id given), `file_bytes` and `node`
    /// (the cluster master that last wrote it; empty for a single Redis).
    pub fn meta(&self) -> String {
        format!("{}meta", self.prefix)
    }

    /// Stream of the room's messages and file announcements, entry ids
    /// `0-<id>`, trimmed to `--retain-messages`.
    pub fn log(&self) -> String {
        format!("{}log", self.prefix)
    }

    /// Hash: file id → bytes.
    pub fn files(&self) -> String {
        format!("{}files", self.prefix)
    }

    /// List of `id:size` of stored files, oldest first, for eviction.
    pub fn file_queue(&self) -> String {
        format!("{}fileq", self.prefix)
    }

    /// Hash: name skeleton → `owner \t name \t instance…`.
    pub fn names(&self) -> String {
        format!("{}names", self.prefix)
    }

    /// Prefix of the per-instance liveness keys (`…alive:<instance>`).
    pub fn alive_prefix(&self) -> String {
        format!("{}alive:", self.prefix)
    }

    /// A sent message's dedup key: its sender and `cid`, or this
    /// instance's own id for it when it has none.
    pub fn sent(&self, key: &str) -> String {
        format!("{}sent:{key}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // Values from Redis's own cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        let room = Room::new("lobby");
        assert_eq!(
            slot(room.channel().as_bytes()),
            slot(room.meta().as_bytes())
        );
    }
}
