//! The v1 client's reads of its room's history: `history` (an older page,
//! for scrolling back) and `search` (messages by words), and the events
//! that answer them (docs/PROTOCOL.md, "Scrollback and search").

use serde::Serialize;
use serde_json::{Map, Value};
use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use super::protocol::{ErrorCode, FrameRefusal};

/// Most events one `history` page holds; a larger `limit` is lowered to it.
pub const MAX_PAGE: u64 = 100;

/// A `history` page's events when the client gives no `limit`.
pub const DEFAULT_PAGE: u64 = 50;

/// Most results one `search` answers with; a larger `limit` is lowered to it.
pub const MAX_RESULTS: u64 = 50;

/// Results of a `search` when the client gives no `limit`.
pub const DEFAULT_RESULTS: u64 = 20;

/// Longest `q`, in bytes, and most words in it.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most words a search may hold.
pub const MAX_QUERY_WORDS: usize = 8;

/// What a client asks to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// The room's events with ids below `before` (the newest when `None`),
    /// the newest `limit` of them, answered oldest first.
    History {
        /// Ids below this one.
        before: Option<u64>,
        /// At most this many (1 to [`MAX_PAGE`]).
        limit: usize,
    },
    /// The room's messages that hold every one of `words`, newest first.
    Search {
        /// `q` as the client wrote it, echoed in the answer.
        q: String,
        /// Its words (see [`words`]).
        words: Vec<String>,
        /// At most this many (1 to [`MAX_RESULTS`]).
        limit: usize,
    },
}

/// The words of a search or a text: runs of letters and digits,
/// lower-cased and without their accents (`Déjà` is `deja`), as the
/// store's word index takes them.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.nfd()
                .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
}

/// Parses a `history` or `search` frame (`kind`).
pub(crate) fn parse(kind: &str, obj: &Map<String, Value>) -> Result<Ask, FrameRefusal> {
    match kind {
        "history" => {
            let before = match obj.get("before") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|b| b > 0) => n.as_u64(),
                Some(_) => return Err(bad("\"before\" must be a positive integer")),
            };
            Ok(Ask::History {
                before,
                limit: limit(obj, DEFAULT_PAGE, MAX_PAGE)?,
            })
        }
        _ => {
            let q = match obj.get("q") {
                Some(Value::String(q)) => q.clone(),
                None | Some(Value::Null) => return Err(bad("missing field \"q\"")),
                Some(_) => return Err(bad("field \"q\" must be a string")),
            };
            if q.len() > MAX_QUERY_BYTES {
                return Err(bad("field \"q\" must be at most 256 bytes"));
            }
            let mut words: Vec<String> = words(&q).collect();
            words.sort();
            words.dedup();
            if words.is_empty() || words.len() > MAX_QUERY_WORDS {
                return Err(bad(
                    "field \"q\" must hold 1 to 8 words (letters and digits)",
                ));
            }
            Ok(Ask::Search {
                q,
                words,
                limit: limit(obj, DEFAULT_RESULTS, MAX_RESULTS)?,
            })
        }
    }
}

fn bad(why: &str) -> FrameRefusal {
    FrameRefusal::new(ErrorCode::BadField, why)
}

/// `limit`: a positive integer, `default` when absent, lowered to `max`.
fn limit(obj: &Map<String, Value>, default: u64, max: u64) -> Result<usize, FrameRefusal> {
    match obj.get("limit") {
        None | Some(Value::Null) => Ok(default as usize),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|l| l > 0) => {
            Ok(n.as_u64().map_or(max, |l| l.min(max)) as usize)
        }
        Some(_) => Err(bad("field \"limit\" must be a positive integer")),
    }
}

/// The `history` event: `events` are replayed events' JSON, oldest first.
pub fn history_event(room: &str, before: u64, events: &[&str], complete: bool) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        r#type: &'static str,
        room: &'a str,
        before: u64,
        complete: bool,
    }
    let head = serde_json::to_string(&Head {
        r#type: "history",
        room,
        before,
        complete,
    })
    .expect("strings and integers");
    // The events are already JSON objects: spliced in, not parsed again.
    let mut out =
        String::with_capacity(head.len() + events.iter().map(|e| e.len() + 1).sum::<usize>() + 16);
    out.push_str(&head[..head.len() - 1]);
    out.push_str(",\"events\":[");
    out.push_str(&events.join(","));
    out.push_str("]}");
    out
}

/// One message a search found.
#[derive(Serialize, Debug)]
pub struct Hit<'a> {
    /// Its id in the room.
    pub id: u64,
    /// Who sent it.
    pub from: &'a str,
    /// When, in ms since the epoch.
    pub ts: u64,
    /// Its whole text.
    pub text: &'a str,
}

/// The `search` event: what a search found, newest first.
pub fn search_event(room: &str, q: &str, results: &[Hit]) -> String {
    serde_json::to_string(&serde_json::json!({
        "type": "search",
        "room": room,
        "q": q,
        "results": results,
    }))
    .expect("strings and integers")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Ask, FrameRefusal> {
        let Value::Object(obj) = serde_json::from_str(text).unwrap() else {
            panic!()
        };
        let kind = obj["type"].as_str().unwrap().to_owned();
        parse(&kind, &obj)
    }

    #[test]
    fn words_fold_case_and_accents() {
        let w: Vec<String> = words("Déjà-vu, NAÏVE café_2!").collect();
        assert_eq!(w, ["deja", "vu", "naive", "cafe", "2"]);
        assert_eq!(words(" -- ").count(), 0);
    }

    #[test]
    fn history_limits_are_bounded() {
        assert_eq!(
            parse_text(r#"{"type":"history","before":9,"limit":500}"#),
            Ok(Ask::History {
                before: Some(9),
                limit: 100
            })
        );
        assert_eq!(
            parse_text(r#"{"type":"history"}"#),
            Ok(Ask::History {
                before: None,
                limit: 50
            })
        );
        for bad in [
            r#"{"type":"history","limit":0}"#,
            r#"{"type":"history","before":0}"#,
            r#"{"type":"history","before":"9"}"#,
        ] {
            assert_eq!(
                parse_text(bad).unwrap_err().code,
                ErrorCode::BadField,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_search_needs_words() {
        let Ask::Search { words, limit, .. } =
            parse_text(r#"{"type":"search","q":"Deploy  the SERVER!","limit":99}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(words, ["deploy", "server", "the"]);
        assert_eq!(limit, 50);
        for bad in [
            r#"{"type":"search","q":" !? "}"#,
            r#"{"type":"search"}"#,
            r#"{"type":"search","q":"a b c d e f g h i"}"#,
        ] {
            assert_eq!(
                parse_text(bad).unwrap_err().code,
                ErrorCode::BadField,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_history_event_splices_its_events() {
        let e = history_event("den", 7, &[r#"{"id":5}"#, r#"{"id":6}"#], false);
        let v: Value = serde_json::from_str(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"history","room":"den","before":7,"complete":false,
                "events":[{"id":5},{"id":6}]})
        );
        let empty: Value = serde_json::from_str(&history_event("den", 1, &[], true)).unwrap();
        assert_eq!(empty["events"], serde_json::json!([]));
    }
}
