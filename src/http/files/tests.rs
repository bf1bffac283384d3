//! Tests of serving downloads: paths, signatures, ranges, and the
//! outbound share. This file holds what they share (a store with files in
//! it, requests answered over a real socket); each subject has a file of
//! its own below.

mod answers;
mod paths;
mod ranges;
mod refusals;

use std::io::Read;
use std::net::TcpListener;

use tungstenite::Bytes;

use super::*;
use crate::history::sqlite::tests::{Running, TempDb, WAIT};
use crate::history::sqlite::{self, Body, Options, Record};
use crate::proto::capability::url;

/// When the test files were sent.
const TS: u64 = 1_700_000_000_000;

/// A store on a temporary file, its thread running.
struct Fixture {
    downloads: Downloads,
    store: Option<Running>,
    _db: TempDb,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        Fixture::with_bytes(tag, 1 << 30)
    }

    fn with_bytes(tag: &str, retain_bytes: u64) -> Fixture {
        let db = TempDb::new(&format!("files-{tag}"));
        let store = sqlite::open(&Options {
            path: db.path(),
            retain_messages: 1000,
            retain_bytes,
            fsync: false,
        })
        .unwrap();
        Fixture {
            downloads: downloads(store.reader().into()),
            store: Some(Running::start(store)),
            _db: db,
        }
    }

    fn append(&self, record: Record, data: Option<Bytes>) -> bool {
        self.store.as_ref().expect("running").append(record, data)
    }

    /// Stores a file sent at `ts`.
    fn put_at(&self, room: &str, id: u64, name: &str, mime: &str, data: &[u8], ts: u64) {
        let record = Record {
            room: room.to_owned(),
            id,
            from: "ada".to_owned(),
            ts,
            cid: None,
            body: Body::File {
                name: name.to_owned(),
                size: data.len() as u64,
                mime: mime.to_owned(),
                available: true,
            },
        };
        assert!(self.append(record, Some(Bytes::copy_from_slice(data))));
    }

    fn put(&self, room: &str, id: u64, name: &str, mime: &str, data: &[u8]) {
        self.put_at(room, id, name, mime, data, TS + id);
    }

    /// Answers `method path` with these extra header lines, over a real
    /// socket.
    fn request(&self, method: &str, path: &str, extra: &[&str]) -> Answer {
        let mut text = format!("{method} {path} HTTP/1.1\r\nHost: chat.test\r\n");
        for line in extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        let (head, _) = http::parse_head(text.as_bytes()).unwrap().unwrap();
        answer_over_socket(&self.downloads, &head)
    }

    /// `request`, with the URL signed first, as the server gives it out.
    fn signed(&self, method: &str, path: &str, extra: &[&str]) -> Answer {
        self.request(method, &sign(&self.downloads.signer, path), extra)
    }

    /// A GET of `path`, signed.
    fn get(&self, path: &str, extra: &[&str]) -> Answer {
        self.signed("GET", path, extra)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.stop();
        }
    }
}

/// A response as the client read it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{name} twice: {self:?}");
        first
    }

    fn content_length(&self) -> u64 {
        self.header("Content-Length")
            .expect("a Content-Length")
            .parse()
            .unwrap()
    }
}

/// Writes the answer to `head` through [`serve`] into a socket and reads
/// it from the other end, up to the close.
fn answer_over_socket(reader: &Downloads, head: &Head) -> Answer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (server, _) = listener.accept().unwrap();
    let mut raw = Vec::new();
    std::thread::scope(|s| {
        s.spawn(move || {
            serve(&server, head, reader).unwrap();
        });
        client.read_to_end(&mut raw).unwrap();
    });
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let text = std::str::from_utf8(&raw[..end]).expect("an ASCII head");
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    Answer {
        status: status.parse().unwrap(),
        headers: lines
            .map(|l| l.split_once(": ").expect("a header line"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        body: raw[end + 4..].to_vec(),
    }
}

/// What serving needs, around `source`: a signer with a fixed key, and
/// an outbound share that is never full.
fn downloads(source: Source) -> Downloads {
    Downloads {
        source,
        signer: Signer::with_key([9; 32]),
        outbound: Share::new("outbound", 1 << 30),
    }
}

/// `path` with its signature added to its query, if it is a file's.
fn sign(signer: &Signer, path: &str) -> String {
    let (bare, query) = path.split_once('?').unwrap_or((path, ""));
    let Some(target) = parse(bare) else {
        return path.to_owned();
    };
    let sig = signer.query(&target.room, target.id).unwrap();
    if query.is_empty() {
        format!("{bare}?{sig}")
    } else {
        format!("{bare}?{query}&{sig}")
    }
}
