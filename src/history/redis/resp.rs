//! The subscriber's own connection to Redis, speaking RESP2 over a plain
//! socket.
//!
//! The `redis` crate's blocking `PubSub` cannot subscribe while it reads
//! (it has no sharded `SSUBSCRIBE`, skips RESP2's `smessage`, and a read
//! timeout on a raw `Connection` makes it drop the next reply). Here a read
//! that times out keeps what it had read, so the subscriber can read with a
//! short timeout and (un)subscribe between reads, on the one connection.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A value as Redis sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A simple string or a bulk string (`None`: the nil bulk string).
    Bytes(Option<Vec<u8>>),
    Int(i64),
    /// An array (`None`: the nil array).
    Array(Option<Vec<Value>>),
    /// An error reply.
    Error(String),
}

impl Value {
    /// The bytes of a string value.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(Some(b)) => Some(b),
            _ => None,
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub struct Conn {
    stream: Stream,
    /// What was read; `buf[start..]` is not parsed yet.
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    /// Connects where `client` points and authenticates as it says.
    pub fn open(client: &redis::Client, timeout: Duration) -> io::Result<Conn> {
        let info = client.get_connection_info();
        let stream = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut found = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or(last)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            redis::ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "TLS is not supported by this build",
                ));
            }
        };
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            start: 0,
        };
        conn.set_timeouts(Some(timeout))?;
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = settings.username() {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            if let Value::Error(e) = conn.call(&args)? {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, e));
            }
        }
        Ok(conn)
    }

    /// A second handle on the same socket, for a thread of its own: one
    /// handle only sends, the other only reads.
    pub fn try_clone(&self) -> io::Result<Conn> {
        let stream = match &self.stream {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
            start: 0,
        })
    }

    /// Ends the connection both ways: a read blocked on another handle
    /// returns.
    pub fn shutdown(&self) {
        let _ = match &self.stream {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }

    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        match &self.stream {
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            Stream::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// How long [`Conn::read`] waits for something to arrive.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(&out),
            Stream::Unix(s) => s.write_all(&out),
        }
    }

    /// Sends a command and reads its reply (before subscribing: nothing
    /// else comes then).
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.send(args)?;
        self.read()?
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    }

    /// The next value; `None` when the read timeout passed first (what was
    /// read of a value so far is kept for the next call).
    pub fn read(&mut self) -> io::Result<Option<Value>> {
        loop {
            if let Some((value, used)) = parse(&self.buf[self.start..])? {
                self.start += used;
                return Ok(Some(value));
            }
            // Everything before `start` was parsed: it makes room.
            self.buf.drain(..self.start);
            self.start = 0;
            let mut chunk = [0u8; 16 * 1024];
            let n = match &mut self.stream {
                Stream::Tcp(s) => s.read(&mut chunk),
                Stream::Unix(s) => s.read(&mut chunk),
            };
            match n {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad reply from Redis: {what}"),
    )
}

/// One line without its CRLF, and where the next starts.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn number(text: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("a length"))
}

/// The first value in `buf` and the bytes it took; `None` while it is
/// incomplete.
pub fn parse(buf: &[u8]) -> io::Result<Option<(Value, usize)>> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some((text, mut used)) = line(&buf[1..]) else {
        return Ok(None);
    };
    used += 1;
    let value = match kind {
        b'+' => Value::Bytes(Some(text.to_vec())),
        b'-' => Value::Error(String::from_utf8_lossy(text).into_owned()),
        b':' => Value::Int(number(text)?),
        b'$' => {
            let len = number(text)?;
            if len < 0 {
                Value::Bytes(None)
            } else {
                let len = len as usize;
                if buf.len() < used + len + 2 {
                    return Ok(None);
                }
                let data = buf[used..used + len].to_vec();
                used += len + 2;
                Value::Bytes(Some(data))
            }
        }
        b'*' => {
            let len = number(text)?;
            if len < 0 {
                Value::Array(None)
            } else {
                let mut items = Vec::with_capacity(len.min(64) as usize);
                for _ in 0..len {
                    let Some((item, n)) = parse(&buf[used..])? else {
                        return Ok(None);
                    };
                    used += n;
                    items.push(item);
                }
                Value::Array(Some(items))
            }
        }
        _ => return Err(bad("an unknown type")),
    };
    Ok(Some((value, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_parsed_only_once_whole() {
        let whole = b"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:1\r\n";
        for cut in 0..whole.len() - 4 {
            assert_eq!(parse(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (value, used) = parse(whole).unwrap().unwrap();
        assert_eq!(used, whole.len() - 4);
        let Value::Array(Some(items)) = value else {
            panic!("{value:?}")
        };
        assert_eq!(items[0].bytes(), Some(&b"smessage"[..]));
        assert_eq!(items[2].bytes(), Some(&b"hello"[..]));
        assert_eq!(parse(&whole[used..]).unwrap(), Some((Value::Int(1), 4)));
    }

    #[test]
    fn nils_errors_and_nonsense() {
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Value::Bytes(None), 5)));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((Value::Array(None), 5)));
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            Some((Value::Error("ERR no".into()), 9))
        );
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$x\r\n").is_err());
    }
}
