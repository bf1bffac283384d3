//! `text_limit::TextLimit` on arbitrary client byte streams, cut into
//! arbitrary reads: it must never panic, and where the reads fall must not
//! change its verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wschat::text_limit::TextLimit;

fuzz_target!(|input: &[u8]| {
    let Some((&cut, stream)) = input.split_first() else {
        return;
    };
    let limit = 64;
    let whole = TextLimit::new(limit).observe(stream);
    // The same bytes, delivered in reads of `cut % 7 + 1` bytes.
    let mut pieces = TextLimit::new(limit);
    let mut chunked = Ok(());
    for chunk in stream.chunks(usize::from(cut % 7) + 1) {
        chunked = pieces.observe(chunk);
        if chunked.is_err() {
            break;
        }
    }
    assert_eq!(whole, chunked);
});
