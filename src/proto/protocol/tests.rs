//! Unit tests of `protocol`.

use super::*;

#[test]
fn parses_each_command() {
    assert_eq!(
        parse_command(r#"{"type":"join","room":"r","name":"a","since":3}"#),
        Ok(Command::Join {
            room: Some("r".into()),
            name: Some("a".into()),
            since: Some(3),
            epoch: None,
            token: None,
            key: None,
        })
    );
    assert_eq!(
        parse_command(r#"{"type":"message","text":"hi","extra":1}"#),
        Ok(Command::Message {
            text: "hi".into(),
            cid: None
        })
    );
    assert_eq!(
        parse_command(r#"{"type":"file","name":"a.png","size":3}"#),
        Ok(Command::File(FileMeta {
            name: "a.png".into(),
            size: 3,
            mime: "application/octet-stream".into(),
            cid: None
        }))
    );
    assert_eq!(parse_command(r#"{"type":"typing"}"#), Ok(Command::Typing));
    assert_eq!(
        parse_command(r#"{"type":"file_url","id":7,"name":"a.png"}"#),
        Ok(Command::FileUrl {
            id: 7,
            name: "a.png".into()
        })
    );
    for bad in [
        r#"{"type":"file_url","name":"a.png"}"#,
        r#"{"type":"file_url","id":7}"#,
        r#"{"type":"file_url","id":-1,"name":"a.png"}"#,
        r#"{"type":"file_url","id":7,"name":"a/b"}"#,
    ] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn refuses_with_precise_codes() {
    let code = |s: &str| parse_command(s).unwrap_err().code.as_str();
    assert_eq!(code("{"), "bad_json");
    assert_eq!(code("[1]"), "bad_json");
    assert_eq!(code(r#"{"text":"x"}"#), "unknown_type");
    assert_eq!(code(r#"{"type":5}"#), "unknown_type");
    assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
    assert_eq!(code(r#"{"type":"message"}"#), "bad_field");
    assert_eq!(code(r#"{"type":"message","text":1}"#), "bad_field");
    assert_eq!(code(r#"{"type":"file","name":"a","size":-1}"#), "bad_field");
    assert_eq!(
        code(r#"{"type":"file","name":"../a","size":1}"#),
        "bad_field"
    );
    assert_eq!(code(r#"{"type":"join","since":"x"}"#), "bad_field");
}

#[test]
fn file_header_round_trip() {
    let frame = file_frame("a.txt", b"hello");
    assert_eq!(parse_file_header(&frame), Ok(("a.txt", 7)));
    assert_eq!(&frame[7..], b"hello");
    assert_eq!(parse_file_header(&[1]), Err(FileHeaderError::Truncated));
    assert_eq!(
        parse_file_header(&[5, 0, b'a']),
        Err(FileHeaderError::Truncated)
    );
    assert_eq!(
        parse_file_header(&[1, 0, 0xff]),
        Err(FileHeaderError::NameNotUtf8)
    );
}

#[test]
fn media_types_come_from_the_extension() {
    assert_eq!(guess_mime("cat.PNG"), "image/png");
    assert_eq!(guess_mime("a.b.jpeg"), "image/jpeg");
    assert_eq!(guess_mime("song.mp3"), "audio/mpeg");
    assert_eq!(guess_mime("page.html"), "text/html");
    assert_eq!(guess_mime("data.zzqx"), "application/octet-stream");
    assert_eq!(guess_mime("blob"), "application/octet-stream");
}

#[test]
fn every_error_code_is_documented() {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    for code in ErrorCode::ALL {
        let row = format!("| `{}` |", code.as_str());
        assert!(doc.contains(&row), "{row} is not in docs/PROTOCOL.md");
    }
}

#[test]
fn events_match_the_protocol_document() {
    let json = encode(&Event::Message {
        id: 58,
        room: "lobby",
        from: "alice",
        text: "hello",
        ts: 1,
        cid: None,
        edited: false,
        deleted: false,
        reactions: None,
        replay: false,
    });
    assert_eq!(
        json,
        r#"{"type":"message","id":58,"room":"lobby","from":"alice","text":"hello","ts":1}"#
    );
}
