//! `protocol::parse_file_header` on arbitrary binary frames from a raw
//! client (`u16` LE name length, name, file bytes), and its round trip with
//! `protocol::file_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wschat::proto::protocol::{self, FileHeaderError};

fuzz_target!(|frame: &[u8]| {
    match protocol::parse_file_header(frame) {
        Ok((name, offset)) => {
            assert_eq!(offset, 2 + name.len());
            assert!(offset <= frame.len(), "offset {offset} past the frame");
            assert_eq!(
                usize::from(u16::from_le_bytes([frame[0], frame[1]])),
                name.len()
            );
            assert_eq!(name.as_bytes(), &frame[2..offset]);
            // The reader slices the file's bytes off at `offset` and the
            // relay rebuilds the same frame for raw clients.
            let body = &frame[offset..];
            assert_eq!(protocol::file_frame(name, body), frame);
            let _ = protocol::guess_mime(name);
        }
        Err(FileHeaderError::Truncated) => {
            let announced = match frame {
                [lo, hi, ..] => 2 + usize::from(u16::from_le_bytes([*lo, *hi])),
                _ => 2,
            };
            assert!(
                frame.len() < announced,
                "complete header refused as truncated"
            );
        }
        Err(FileHeaderError::NameNotUtf8) => {
            let len = usize::from(u16::from_le_bytes([frame[0], frame[1]]));
            assert!(std::str::from_utf8(&frame[2..2 + len]).is_err());
        }
    }

    // The other direction: any name and bytes survive file_frame and the
    // parser unchanged.
    let split = frame
        .first()
        .map_or(0, |&b| usize::from(b))
        .min(frame.len());
    let name = String::from_utf8_lossy(&frame[..split]);
    let body = &frame[split..];
    let built = protocol::file_frame(&name, body);
    assert_eq!(built.len(), 2 + name.len() + body.len());
    assert_eq!(
        protocol::parse_file_header(&built),
        Ok((name.as_ref(), 2 + name.len()))
    );
    assert_eq!(&built[2 + name.len()..], body);
});
