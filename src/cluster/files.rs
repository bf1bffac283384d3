//! Stored files, read from Redis for `GET /files/…` by any instance.

use super::{COMMAND_TIMEOUT, entry, keys};
use crate::store;

/// Entries of a stream as `XRANGE` returns them: id, then field-value pairs.
type StreamEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// Reads stored files for `/files/…` from any thread, each download on a
/// connection of its own.
#[derive(Clone)]
pub struct Files {
    pub(super) client: redis::Client,
}

impl Files {
    /// File `id` of `room`, with `len` bytes from `start` (see
    /// `store::Reader::read_range`); `None` if Redis no longer has it.
    pub fn read_range(
        &self,
        room: &str,
        id: u64,
        start: u64,
        len: u64,
    ) -> redis::RedisResult<Option<store::StoredFile>> {
        let mut conn = self.client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
        conn.set_read_timeout(Some(COMMAND_TIMEOUT * 5))?;
        let k = keys::Room::new(room);
        let stream_id = format!("0-{id}");
        let (rows, data): (StreamEntries, Option<Vec<u8>>) = redis::pipe()
            .cmd("XRANGE")
            .arg(k.log())
            .arg(&stream_id)
            .arg(&stream_id)
            .cmd("HGET")
            .arg(k.files())
            .arg(id)
            .query(&mut conn)?;
        let (Some(data), Some((_, fields))) = (data, rows.into_iter().next()) else {
            return Ok(None);
        };
        let Some(arrival) = fields
            .into_iter()
            .next()
            .and_then(|(_, json)| entry::Wire::parse(&json)?.into_arrival(true))
        else {
            return Ok(None);
        };
        let store::Body::File { name, mime, .. } = arrival.record.body else {
            return Ok(None);
        };
        let size = data.len() as u64;
        let from = start.min(size) as usize;
        let to = from + len.min(size - from as u64) as usize;
        Ok(Some(store::StoredFile {
            name,
            mime,
            size,
            ts: arrival.record.ts,
            bytes: data[from..to].to_vec(),
        }))
    }
}
