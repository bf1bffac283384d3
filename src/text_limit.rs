//! Refuses an oversized text message from its frame headers, before its
//! payload is read.
//!
//! tungstenite has one size limit for every message. In the chat room a
//! binary frame may be a file of up to `--max-file-size`, while text is
//! limited to `--max-message-size`; this watches the bytes the reader takes
//! from the socket, follows the frame boundaries, and stops a text message
//! as soon as a header announces that it will be too long. Malformed frames
//! are left for tungstenite to reject.

/// A text message over the limit was announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextTooBig;

impl std::fmt::Display for TextTooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "text message over the size limit")
    }
}

impl std::error::Error for TextTooBig {}

/// Follows client frames through a byte stream.
#[derive(Debug, Clone)]
pub struct TextLimit {
    limit: u64,
    /// Header bytes gathered so far (a client header is at most 14 bytes).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u64,
    /// Whether the data message in progress is text.
    in_text: bool,
    /// Payload announced so far for the text message in progress.
    text_len: u64,
}

impl TextLimit {
    pub fn new(limit: usize) -> TextLimit {
        TextLimit {
            limit: limit as u64,
            header: [0; 14],
            have: 0,
            payload_left: 0,
            in_text: false,
            text_len: 0,
        }
    }

    /// Takes in bytes just read from the client.
    pub fn observe(&mut self, mut bytes: &[u8]) -> Result<(), TextTooBig> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= skip;
                bytes = &bytes[skip as usize..];
                continue;
            }
            let take = (header_len(&self.header[..self.have]) - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have == header_len(&self.header[..self.have]) {
                self.header_complete()?;
            }
        }
        Ok(())
    }

    fn header_complete(&mut self) -> Result<(), TextTooBig> {
        let h = &self.header[..self.have];
        let len = match h[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        self.have = 0;
        self.payload_left = len;
        match h[0] & 0x0F {
            0x1 => {
                self.in_text = true;
                self.text_len = len;
            }
            0x0 if self.in_text => self.text_len = self.text_len.saturating_add(len),
            0x2 => self.in_text = false,
            _ => return Ok(()),
        }
        if self.in_text && self.text_len > self.limit {
            return Err(TextTooBig);
        }
        Ok(())
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

    #[test]
    fn big_text_is_refused_from_its_header() {
        let mut g = TextLimit::new(100);
        assert_eq!(g.observe(&header(0x1, true, 1 << 30)), Err(TextTooBig));
    }

    #[test]
    fn big_binary_passes_and_small_text_after_it_too() {
        let mut g = TextLimit::new(100);
        let mut stream = header(0x2, true, 1000);
        stream.extend(vec![0; 1000]);
        stream.extend(header(0x1, true, 100));
        stream.extend(vec![b'a'; 100]);
        // Byte by byte, to cross every boundary.
        for b in &stream {
            assert_eq!(g.observe(&[*b]), Ok(()));
        }
    }

    #[test]
    fn fragments_add_up_and_controls_do_not_count() {
        let mut g = TextLimit::new(100);
        let mut stream = header(0x1, false, 60);
        stream.extend(vec![b'a'; 60]);
        stream.extend(header(0x9, true, 50));
        stream.extend(vec![0; 50]);
        assert_eq!(g.observe(&stream), Ok(()));
        assert_eq!(g.observe(&header(0x0, true, 41)), Err(TextTooBig));
    }
}
