//! `protocol::validate_name` on arbitrary strings, against the rule in
//! docs/PROTOCOL.md: after trimming white space, 1-32 Unicode scalar values
//! and no control characters; the trimmed form is the one used.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wschat::proto::protocol::{self, MAX_NAME_CHARS};

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    let valid = (1..=MAX_NAME_CHARS).contains(&chars) && !trimmed.chars().any(char::is_control);
    match protocol::validate_name(&raw) {
        Some(name) => {
            assert!(valid, "accepted {raw:?}");
            assert_eq!(name, trimmed);
            let count = name.chars().count();
            assert!(
                (1..=MAX_NAME_CHARS).contains(&count),
                "{count} chars: {name:?}"
            );
            assert!(
                !name.chars().any(char::is_control),
                "control char in {name:?}"
            );
            assert_eq!(name.trim(), name, "not trimmed: {name:?}");
            // Valid names are fixed points: the dispatcher may check twice.
            assert_eq!(
                protocol::validate_name(&name).as_deref(),
                Some(name.as_str())
            );
        }
        None => assert!(!valid, "refused {raw:?}"),
    }
});
