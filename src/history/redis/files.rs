//! Stored files, read from Redis for `GET /files/…` by any instance.

use super::link::{Link, Target};
use super::{COMMAND_TIMEOUT, entry, keys};
use crate::history::sqlite;

/// Entries of a stream as `XRANGE` returns them: id, then field-value pairs.
type StreamEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// Reads stored files for `/files/…` from any thread, each download on a
/// connection of its own.
#[derive(Clone)]
pub struct Files {
    pub(super) target: Target,
}

impl Files {
    /// File `id` of `room`, without its bytes (`size` is their count);
    /// `None` if Redis no longer has it.
    pub fn meta(&self, room: &str, id: u64) -> redis::RedisResult<Option<sqlite::StoredFile>> {
        let mut conn = self.connect()?;
        let k = keys::Room::new(room);
        let stream_id = format!("0-{id}");
        let (rows, kept, size): (StreamEntries, bool, u64) = redis::pipe()
            .cmd("XRANGE")
            .arg(k.log())
            .arg(&stream_id)
            .arg(&stream_id)
            .cmd("HEXISTS")
            .arg(k.files())
            .arg(id)
            .cmd("HSTRLEN")
            .arg(k.files())
            .arg(id)
            .query(&mut conn)?;
        let (true, Some((_, fields))) = (kept, rows.into_iter().next()) else {
            return Ok(None);
        };
        let Some(arrival) = fields
            .into_iter()
            .next()
            .and_then(|(_, json)| entry::Wire::parse(&json)?.into_arrival(true))
        else {
            return Ok(None);
        };
        let sqlite::Body::File { name, mime, .. } = arrival.record.body else {
            return Ok(None);
        };
        Ok(Some(sqlite::StoredFile {
            name,
            mime,
            size,
            ts: arrival.record.ts,
            bytes: Vec::new(),
        }))
    }

    /// The bytes of file `id` of `room`, whole: Redis keeps them as one
    /// field of a hash, which `GETRANGE` cannot read in parts, so a download
    /// holds them (charged to the outbound share) while it is sent.
    pub fn bytes(&self, room: &str, id: u64) -> redis::RedisResult<Option<Vec<u8>>> {
        let mut conn = self.connect()?;
        redis::cmd("HGET")
            .arg(keys::Room::new(room).files())
            .arg(id)
            .query(&mut conn)
    }

    /// The key that signs file URLs without `--auth-secret`: `fresh`, if no
    /// instance has set one yet, else the one already set.
    pub fn url_key(&self, fresh: [u8; 32]) -> redis::RedisResult<Option<[u8; 32]>> {
        let mut conn = self.connect()?;
        let (key,): (Vec<u8>,) = redis::pipe()
            .cmd("SET")
            .arg(keys::FILE_URL_KEY)
            .arg(&fresh[..])
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(keys::FILE_URL_KEY)
            .query(&mut conn)?;
        Ok(key.try_into().ok())
    }

    fn connect(&self) -> redis::RedisResult<Link> {
        self.target.connect(COMMAND_TIMEOUT * 5)
    }
}
