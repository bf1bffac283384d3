//! `names::name`, the rule the server applies to every person's and room's
//! name, on arbitrary strings, against docs/PROTOCOL.md: the name used is
//! the NFC form, trimmed, of 1-32 characters, with no control, format or
//! direction characters; checking it again gives it back unchanged, with the
//! same skeleton (the form look-alikes share).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unicode_normalization::UnicodeNormalization;
use wschat::proto::names::{self, is_format};
use wschat::proto::protocol::MAX_NAME_CHARS;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(name) = names::name(&raw) else {
        return;
    };
    let text = name.text.as_str();
    let count = text.chars().count();
    assert!(
        (1..=MAX_NAME_CHARS).contains(&count),
        "{count} chars: {text:?}"
    );
    assert_eq!(text.trim(), text, "not trimmed: {text:?}");
    assert_eq!(text.nfc().collect::<String>(), text, "not NFC: {text:?}");
    assert!(
        !text.chars().any(|c| c.is_control() || is_format(c)),
        "control or format character in {text:?}"
    );
    assert_eq!(name.skeleton, names::skeleton(text));
    // Names are fixed points: the dispatcher may check one twice.
    let again = names::name(text).expect("a name it gave is a name");
    assert_eq!(
        (again.text.as_str(), again.skeleton.as_str()),
        (text, name.skeleton.as_str())
    );
});
