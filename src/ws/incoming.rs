//! Watches what a client sends, frame header by frame header, before
//! tungstenite buffers it, and stops what must not be buffered:
//!
//! - a text message over `--max-message-size` (tungstenite has one size
//!   limit for every message; in the chat room a binary frame may be a file
//!   of up to `--max-file-size`), refused from its header;
//! - a frame that would pass the memory budget's share for incoming
//!   messages: each data frame's announced length is taken from the share
//!   when its header arrives and given back when its message has been read
//!   whole, so a frame that does not fit is refused before its bytes come;
//! - a message that arrives too slowly: once a message has begun, its bytes
//!   must keep coming at `--min-upload-rate` (after a grace period), counting
//!   only the time the reader spends waiting for them, so that a client
//!   cannot hold its share of memory by trickling.
//!
//! tungstenite reserves a frame's announced length when its header arrives,
//! but that reservation is address space: pages become memory only as the
//! bytes arrive. Malformed frames are left for tungstenite to reject.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::budget::Share;
use crate::proto::close::Close;

/// How long a message may take before the minimum upload rate applies.
pub(crate) const UPLOAD_GRACE: Duration = Duration::from_secs(10);

/// Why the client's stream is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A text message over the text limit, or any message over the
    /// largest the server takes, was announced.
    TooBig,
    /// The share for incoming messages cannot hold the frame announced.
    Busy,
    /// A message is arriving more slowly than the minimum upload rate.
    TooSlow,
}

impl Refused {
    /// The close the client is sent.
    pub(crate) fn close(self) -> Close {
        match self {
            Refused::TooBig => Close::too_big("message too big"),
            Refused::Busy => Close::busy(),
            Refused::TooSlow => Close::policy("upload too slow"),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.close().reason())
    }
}

impl std::error::Error for Refused {}

/// The limits an [`Incoming`] applies.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Longest text message, in bytes.
    pub text: u64,
    /// Longest message of any kind, in bytes.
    pub message: u64,
    /// Least bytes per second a message in progress must arrive at.
    pub min_rate: u64,
    /// The memory budget's share for messages being received.
    pub share: Arc<Share>,
}

/// Follows one client's frames through its byte stream.
#[derive(Debug)]
pub struct Incoming {
    limits: ReadLimits,
    /// Header bytes gathered so far (a client header is at most 14 bytes).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
    /// Whether the current frame's payload belongs to a data message.
    in_data_frame: bool,
    /// A data message has begun and its final frame has not been announced.
    in_message: bool,
    /// Whether the data message in progress is text.
    in_text: bool,
    /// Payload announced so far for the text message in progress.
    text_len: u64,
    /// Bytes taken from the share for each message announced and not yet
    /// read whole, oldest first; the last may still be growing.
    held: VecDeque<u64>,
    /// Time spent waiting for the message in progress, and its bytes that
    /// have arrived in that time.
    waited: Duration,
    arrived: u64,
}

impl Incoming {
    /// Watches a new connection's stream within `limits`.
    pub fn new(limits: ReadLimits) -> Incoming {
        Incoming {
            limits,
            header: [0; 14],
            have: 0,
            payload_left: 0,
            in_data_frame: false,
            in_message: false,
            in_text: false,
            text_len: 0,
            held: VecDeque::new(),
            waited: Duration::ZERO,
            arrived: 0,
        }
    }

    /// Whether the client is in the middle of sending a message, so that
    /// time spent waiting for its next bytes counts against its rate.
    pub(crate) fn in_progress(&self) -> bool {
        self.in_message || (self.in_data_frame && self.payload_left > 0) || self.have > 0
    }

    /// Takes in bytes just read from the client, after `waited` spent
    /// waiting for them while a message was in progress.
    pub fn observe(&mut self, mut bytes: &[u8], waited: Duration) -> Result<(), Refused> {
        if self.in_progress() {
            self.waited += waited;
        }
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= skip;
                if self.in_data_frame {
                    self.arrived += skip;
                }
                bytes = &bytes[skip as usize..];
                continue;
            }
            let take = (header_len(&self.header[..self.have]) - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            self.arrived += take as u64;
            bytes = &bytes[take..];
            if self.have == header_len(&self.header[..self.have]) {
                self.header_complete()?;
            }
        }
        if !self.in_progress() {
            self.waited = Duration::ZERO;
            self.arrived = 0;
        }
        self.check_rate()
    }

    /// A data message has been read whole and handed on: its bytes no
    /// longer count against the share.
    pub(crate) fn message_done(&mut self) {
        if let Some(bytes) = self.held.pop_front() {
            self.limits.share.give(bytes as usize);
        }
    }

    /// Bytes held now for frames whose headers have arrived: after
    /// `message_done`, those of messages still to come.
    pub(crate) fn held(&self) -> usize {
        self.held.iter().sum::<u64>() as usize
    }

    fn check_rate(&self) -> Result<(), Refused> {
        let Some(late) = self.waited.checked_sub(UPLOAD_GRACE) else {
            return Ok(());
        };
        let owed = late.as_secs_f64() * self.limits.min_rate as f64;
        if (self.arrived as f64) < owed {
            return Err(Refused::TooSlow);
        }
        Ok(())
    }

    fn header_complete(&mut self) -> Result<(), Refused> {
        let h = &self.header[..self.have];
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0F;
        let len = match h[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        self.have = 0;
        self.payload_left = len;
        self.in_data_frame = matches!(opcode, 0x0..=0x2);
        match opcode {
            0x1 => {
                self.in_text = true;
                self.text_len = len;
            }
            0x0 if self.in_text => self.text_len = self.text_len.saturating_add(len),
            0x2 => self.in_text = false,
            0x0 => {}
            // Control frames (at most 125 bytes) are not counted.
            _ => return Ok(()),
        }
        if self.in_text && self.text_len > self.limits.text || len > self.limits.message {
            return Err(Refused::TooBig);
        }
        self.hold(opcode, len)?;
        self.in_message = !fin;
        Ok(())
    }

    /// Takes a data frame's announced length from the share: a new entry
    /// for a message's first frame, added to its entry for a continuation.
    fn hold(&mut self, opcode: u8, len: u64) -> Result<(), Refused> {
        let continues = opcode == 0x0 && self.in_message;
        let bytes = usize::try_from(len).map_err(|_| Refused::Busy)?;
        if !self.limits.share.try_take(bytes) {
            return Err(Refused::Busy);
        }
        match self.held.back_mut() {
            Some(held) if continues => *held += len,
            _ => self.held.push_back(len),
        }
        Ok(())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let held: u64 = self.held.iter().sum();
        self.limits.share.give(held as usize);
    }
}

/// Length of the header that starts with `prefix`, as far as it tells:
/// 2 until the second byte is known.
fn header_len(prefix: &[u8]) -> usize {
    let Some(b1) = prefix.get(1) else {
        return 2;
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + mask
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_WAIT: Duration = Duration::ZERO;

    fn header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
        let mut h = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xFFFF => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn incoming(text: u64, share: usize) -> (Incoming, Arc<Share>) {
        let share = Share::new("incoming", share);
        let limits = ReadLimits {
            text,
            message: 1 << 30,
            min_rate: 1000,
            share: share.clone(),
        };
        (Incoming::new(limits), share)
    }

    #[test]
    fn big_text_is_refused_from_its_header() {
        let (mut g, _) = incoming(100, 1 << 40);
        assert_eq!(
            g.observe(&header(0x1, true, 1 << 30), NO_WAIT),
            Err(Refused::TooBig)
        );
    }

    #[test]
    fn a_frame_over_every_limit_is_too_big_not_busy() {
        let (mut g, share) = incoming(100, 1 << 20);
        assert_eq!(
            g.observe(&header(0x2, true, 1 << 40), NO_WAIT),
            Err(Refused::TooBig)
        );
        assert_eq!(share.used(), 0);
    }

    #[test]
    fn big_binary_passes_and_small_text_after_it_too() {
        let (mut g, _) = incoming(100, 1 << 20);
        let mut stream = header(0x2, true, 1000);
        stream.extend(vec![0; 1000]);
        stream.extend(header(0x1, true, 100));
        stream.extend(vec![b'a'; 100]);
        // Byte by byte, to cross every boundary.
        for b in &stream {
            assert_eq!(g.observe(&[*b], NO_WAIT), Ok(()));
        }
    }

    #[test]
    fn fragments_add_up_and_controls_do_not_count() {
        let (mut g, _) = incoming(100, 1 << 20);
        let mut stream = header(0x1, false, 60);
        stream.extend(vec![b'a'; 60]);
        stream.extend(header(0x9, true, 50));
        stream.extend(vec![0; 50]);
        assert_eq!(g.observe(&stream, NO_WAIT), Ok(()));
        assert_eq!(
            g.observe(&header(0x0, true, 41), NO_WAIT),
            Err(Refused::TooBig)
        );
    }

    #[test]
    fn the_share_holds_each_message_until_it_is_done() {
        let (mut g, share) = incoming(1 << 20, 3000);
        let mut stream = header(0x2, false, 1000);
        stream.extend(vec![0; 1000]);
        stream.extend(header(0x0, true, 1000));
        stream.extend(vec![0; 1000]);
        assert_eq!(g.observe(&stream, NO_WAIT), Ok(()));
        assert_eq!(share.used(), 2000, "one message of two frames");
        assert_eq!(
            g.observe(&header(0x2, true, 1001), NO_WAIT),
            Err(Refused::Busy),
            "refused from its header"
        );
        g.message_done();
        assert_eq!(share.used(), 0);
        assert_eq!(g.observe(&header(0x2, true, 3000), NO_WAIT), Ok(()));
        drop(g);
        assert_eq!(share.used(), 0, "given back when the connection ends");
    }

    #[test]
    fn a_trickle_is_refused_after_the_grace() {
        let (mut g, _) = incoming(100, 1 << 20);
        assert_eq!(g.observe(&header(0x2, true, 100_000), NO_WAIT), Ok(()));
        // Within the grace anything goes.
        assert_eq!(g.observe(&[0], UPLOAD_GRACE), Ok(()));
        // 1,000 bytes/s are owed from then on.
        assert_eq!(g.observe(&[0; 1000], Duration::from_secs(1)), Ok(()));
        assert_eq!(
            g.observe(&[0], Duration::from_secs(1)),
            Err(Refused::TooSlow)
        );
    }

    #[test]
    fn waiting_between_messages_is_not_counted() {
        let (mut g, _) = incoming(100, 1 << 20);
        let mut message = header(0x2, true, 10);
        message.extend([0; 10]);
        for _ in 0..3 {
            assert_eq!(g.observe(&message, Duration::from_secs(3600)), Ok(()));
            g.message_done();
        }
    }
}
