//! Reads a client asks for while it is in a room: an older page of the
//! room's history (scrollback) and a search of its messages by words.
//!
//! The dispatcher checks the client's seat and hands the backend a
//! [`Lookup`], which carries its own answer: the backend reads, beside
//! the writes (the embedded store's reads thread, or with `--redis` a
//! lookups thread), and calls it with what it [`Found`]. The answer goes
//! straight to the client from there, never back through the dispatcher.

use std::fmt;

use super::Record;
pub(crate) use crate::proto::lookup::Ask;

/// Most bytes of records (texts, names) one answer carries: a page of 100
/// of the longest texts (4 KiB by default) fits; a page cut by it is
/// answered as not complete, and the client asks again from where it ends.
pub(crate) const ANSWER_BYTES: usize = 512 << 10;

/// With `--redis`, how many of the room's newest stream entries a search
/// reads through, at most: Redis has no index of words.
pub(crate) const REDIS_SEARCH_SCAN: usize = 5_000;

/// What the backend found.
#[derive(Debug)]
pub(crate) enum Found {
    /// A page of history, oldest first; `complete` when nothing older is
    /// kept.
    History {
        /// The page.
        records: Vec<Record>,
        /// Whether the page reaches the room's first kept record.
        complete: bool,
    },
    /// Messages found, newest first.
    Search(Vec<Record>),
    /// The store could not be read (logged there).
    Failed,
}

/// A client's read, carrying its answer.
pub(crate) struct Lookup {
    /// The room the client is in, as the dispatcher names it.
    pub(crate) room: String,
    /// What it asks.
    pub(crate) ask: Ask,
    /// Called once, on the backend's thread, with what was found.
    pub(crate) answer: Box<dyn FnOnce(Found) + Send>,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("room", &self.room)
            .field("ask", &self.ask)
            .finish_non_exhaustive()
    }
}

/// What a record weighs in an answer, roughly its bytes.
pub(crate) fn weight(record: &Record) -> usize {
    let body = match &record.body {
        super::Body::File { name, mime, .. } => name.len() + mime.len(),
        body => body.text().map_or(0, str::len),
    };
    record.from.len() + record.cid.as_ref().map_or(0, String::len) + body + 64
}

/// Keeps the newest records of a page (given newest first) within
/// [`ANSWER_BYTES`] (at least one); says whether any were cut.
pub(crate) fn within_bytes(newest_first: &mut Vec<Record>) -> bool {
    let mut total = 0;
    let keep = newest_first
        .iter()
        .position(|r| {
            total += weight(r);
            total > ANSWER_BYTES
        })
        .unwrap_or(newest_first.len())
        .max(1)
        .min(newest_first.len());
    let cut = keep < newest_first.len();
    newest_first.truncate(keep);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_its_newest_within_the_bytes() {
        let big = |id| Record {
            room: "r".into(),
            id,
            from: "a".into(),
            ts: 0,
            cid: None,
            body: super::super::Body::Text("x".repeat(200 << 10)),
        };
        let mut page = vec![big(9), big(8), big(7), big(6)];
        assert!(within_bytes(&mut page));
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [9, 8]);
        let mut one = vec![Record {
            body: super::super::Body::Text("x".repeat(600 << 10)),
            ..big(3)
        }];
        assert!(!within_bytes(&mut one));
        assert_eq!(one.len(), 1);
    }
}
