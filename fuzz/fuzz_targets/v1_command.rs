//! `protocol::parse_command` on arbitrary text frames from a `wschat.v1`
//! client. Besides not panicking, every accepted frame must obey
//! docs/PROTOCOL.md, and every refusal must carry one of the documented codes
//! and encode as a valid `error` event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wschat::proto::lookup::Ask;
use wschat::proto::protocol::{self, Command, MAX_FILE_NAME};

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 by the time they reach the parser; a lossy
    // conversion keeps every input useful (it is the identity on UTF-8).
    let text = String::from_utf8_lossy(data);
    check(&text);
});

fn check(text: &str) {
    let parsed = protocol::parse_command(text);
    // The same frame read independently, to compare field by field.
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Some(obj),
        _ => None,
    };
    let field = |key: &str| object.as_ref().and_then(|o| o.get(key));
    let string_field = |key: &str| field(key).and_then(Value::as_str).map(str::to_owned);
    match parsed {
        Ok(command) => {
            assert!(
                object.is_some(),
                "accepted a frame that is not a JSON object"
            );
            let kind = field("type").and_then(Value::as_str);
            match command {
                Command::Join {
                    room, name, since, ..
                } => {
                    assert_eq!(kind, Some("join"));
                    assert_eq!(room, string_field("room"));
                    assert_eq!(name, string_field("name"));
                    assert_eq!(since, field("since").and_then(Value::as_u64));
                    // The dispatcher checks both; that must not panic either.
                    for value in [room, name].into_iter().flatten() {
                        let _ = wschat::proto::names::name(&value);
                    }
                }
                Command::Message { text: body, cid } => {
                    assert_eq!(kind, Some("message"));
                    assert_eq!(Some(body), string_field("text"));
                    assert_eq!(cid, string_field("cid"));
                    if let Some(cid) = cid {
                        let chars = cid.chars().count();
                        assert!(
                            (1..=64).contains(&chars),
                            "cid of {chars} characters accepted"
                        );
                    }
                }
                Command::File(meta) => {
                    assert_eq!(kind, Some("file"));
                    assert_eq!(Some(&meta.name), string_field("name").as_ref());
                    assert!(!meta.name.is_empty(), "empty file name accepted");
                    assert!(meta.name.len() <= MAX_FILE_NAME, "file name over 255 bytes");
                    assert!(
                        !meta.name.contains(['/', '\\']),
                        "file name with a slash accepted: {:?}",
                        meta.name
                    );
                    assert!(
                        !meta.name.chars().any(char::is_control),
                        "file name with a control character accepted: {:?}",
                        meta.name
                    );
                    assert_eq!(Some(meta.size), field("size").and_then(Value::as_u64));
                    assert!(!meta.mime.is_empty() && meta.mime.len() <= 255);
                    assert!(!meta.mime.chars().any(char::is_control));
                    match string_field("mime").filter(|m| !m.is_empty()) {
                        Some(mime) => assert_eq!(meta.mime, mime),
                        None => assert_eq!(meta.mime, "application/octet-stream"),
                    }
                    let _ = protocol::guess_mime(&meta.name);
                }
                Command::Typing => assert_eq!(kind, Some("typing")),
                Command::FileUrl { id, name } => {
                    assert_eq!(kind, Some("file_url"));
                    assert_eq!(Some(id), field("id").and_then(Value::as_u64));
                    assert_eq!(Some(name), string_field("name"));
                }
                Command::Lookup(Ask::History { before, limit }) => {
                    assert_eq!(kind, Some("history"));
                    assert_eq!(before, field("before").and_then(Value::as_u64));
                    assert_ne!(before, Some(0), "before 0 accepted");
                    assert!((1..=100).contains(&limit), "a page of {limit} accepted");
                }
                Command::Lookup(Ask::Search { q, words, limit }) => {
                    assert_eq!(kind, Some("search"));
                    assert_eq!(Some(q), string_field("q"));
                    let n = words.len();
                    assert!((1..=8).contains(&n), "{n} words accepted");
                    assert!(words.iter().all(|w| !w.is_empty()));
                    assert!((1..=50).contains(&limit), "{limit} results accepted");
                }
                Command::Change { id, change, cid } => {
                    use protocol::changes::{Change, is_one_emoji};
                    assert_eq!(kind, Some(change.kind()));
                    assert!(id > 0, "message id 0 accepted");
                    assert_eq!(Some(id), field("id").and_then(Value::as_u64));
                    assert_eq!(cid, string_field("cid"));
                    match change {
                        Change::Edit(text) => assert_eq!(Some(text), string_field("text")),
                        Change::Delete => {}
                        Change::React(emoji) | Change::Unreact(emoji) => {
                            assert!(is_one_emoji(&emoji), "{emoji:?} accepted as an emoji");
                            assert_eq!(Some(emoji), string_field("emoji"));
                        }
                    }
                }
            }
        }
        Err(refusal) => {
            match refusal.code.as_str() {
                "bad_json" => assert!(object.is_none(), "a JSON object refused as bad_json"),
                "unknown_type" => {
                    assert!(object.is_some());
                    assert!(!matches!(
                        field("type").and_then(Value::as_str),
                        Some(
                            "join"
                                | "message"
                                | "file"
                                | "typing"
                                | "file_url"
                                | "edit"
                                | "delete"
                                | "react"
                                | "unreact"
                        ) | Some("history" | "search")
                    ));
                }
                "bad_field" => assert!(object.is_some()),
                other => panic!("undocumented refusal code {other:?}"),
            }
            // The refusal goes back to the client as an `error` event.
            let event: Value =
                serde_json::from_str(&refusal.to_json()).expect("error events are valid JSON");
            assert_eq!(event["type"], "error");
            assert_eq!(event["code"], refusal.code.as_str());
            assert_eq!(event["message"], refusal.message.as_str());
        }
    }
}
