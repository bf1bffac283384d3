//! `incoming::Incoming` on arbitrary client byte streams, cut into
//! arbitrary reads: it must never panic, where the reads fall must not
//! change its verdict, and whatever it took from its share it gives back.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wschat::limits::budget::Share;
use wschat::ws::incoming::{Incoming, ReadLimits};

fn incoming(share: &std::sync::Arc<Share>) -> Incoming {
    Incoming::new(ReadLimits {
        text: 64,
        message: 1 << 20,
        min_rate: 1,
        share: share.clone(),
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, stream)) = input.split_first() else {
        return;
    };
    let share = Share::new("incoming", 4096);
    let whole = incoming(&share).observe(stream, Duration::ZERO);
    assert_eq!(share.used(), 0, "all given back on drop");
    // The same bytes, delivered in reads of `cut % 7 + 1` bytes.
    let mut pieces = incoming(&share);
    let mut chunked = Ok(());
    for chunk in stream.chunks(usize::from(cut % 7) + 1) {
        chunked = pieces.observe(chunk, Duration::ZERO);
        if chunked.is_err() {
            break;
        }
    }
    assert_eq!(whole, chunked);
    drop(pieces);
    assert_eq!(share.used(), 0, "all given back on drop");
});
