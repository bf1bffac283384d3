//! Names that cannot pass for someone else's: the rules a person's or a
//! room's name must meet, the confusable skeleton (Unicode UTS #39) by which
//! two names that look alike are the same name, who holds a name in a room
//! (one person may hold it from several connections), and which spelling of
//! a room name is the room.
//!
//! Without these, `alice\u{200b}` (a zero-width space), a Cyrillic `аlice`
//! or `ecila` behind a right-to-left override would all sit beside `alice`
//! and be read as her.

use std::collections::HashMap;
use std::fmt;

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// Longest name or room name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 32;

/// Longest file name, in bytes.
pub const MAX_FILE_NAME: usize = 255;

/// Why a name (of a person or a room) is refused. Each says what is wrong
/// in words a person can act on, for the `invalid_name`/`invalid_room` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Nothing but white space.
    Empty,
    /// More than [`MAX_NAME_CHARS`] characters after normalisation.
    TooLong,
    /// A control character (Unicode category Cc), like a newline.
    Control(char),
    /// A character that draws nothing or reorders what is drawn: format
    /// characters (Cf, which include the bidirectional controls and the
    /// zero-width joiners), line and paragraph separators, and the other
    /// default-ignorable code points (such as the Hangul fillers).
    Invisible(char),
    /// A code point with no meaning yet, a private-use one or a lone
    /// surrogate: no one can say what it looks like.
    Unassigned(char),
    /// Only marks, spaces, variation selectors or blank symbols.
    NothingVisible,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "it is empty"),
            NameError::TooLong => write!(f, "it is longer than {MAX_NAME_CHARS} characters"),
            NameError::Control(c) => {
                write!(f, "it contains the control character U+{:04X}", *c as u32)
            }
            NameError::Invisible(c) => write!(
                f,
                "it contains U+{:04X}, an invisible or direction-changing character",
                *c as u32
            ),
            NameError::Unassigned(c) => write!(
                f,
                "it contains U+{:04X}, which is unassigned or for private use",
                *c as u32
            ),
            NameError::NothingVisible => write!(f, "it has nothing visible in it"),
        }
    }
}

impl std::error::Error for NameError {}

/// A name that meets the rules, with the skeleton it is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The form used from now on: NFC, trimmed.
    pub text: String,
    /// Its confusable skeleton: two names with the same one look alike.
    pub skeleton: String,
}

/// Checks a person's or a room's name: normalised to NFC and trimmed, 1-32
/// characters, no control, format, bidirectional or other invisible
/// characters (variation selectors excepted: they choose how an emoji or an
/// ideograph is drawn), nothing unassigned, and something visible.
pub fn name(raw: &str) -> Result<Name, NameError> {
    let nfc: String = raw.nfc().collect();
    let text = nfc.trim();
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    for c in text.chars() {
        match get_general_category(c) {
            GeneralCategory::Control => return Err(NameError::Control(c)),
            GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator => return Err(NameError::Invisible(c)),
            GeneralCategory::Unassigned
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate => return Err(NameError::Unassigned(c)),
            _ if default_ignorable(c) && !variation_selector(c) => {
                return Err(NameError::Invisible(c));
            }
            _ => {}
        }
    }
    if !text.chars().any(visible) {
        return Err(NameError::NothingVisible);
    }
    Ok(Name {
        skeleton: skeleton(text),
        text: text.to_owned(),
    })
}

/// The UTS #39 skeleton of `s`: decomposed, default-ignorable code points
/// removed, each character replaced by the prototype of its confusables
/// class. `alice` and Cyrillic `аlice` share one; `alice` and `Alice` do
/// not (they look different).
pub fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s).collect()
}

/// Feeds the skeleton of `s`, trimmed as [`name`] trims, to `hasher`
/// without building it: names that look alike hash alike. (A string that
/// is not a valid name hashes too; whoever uses the hash still checks it.)
pub fn hash_skeleton(s: &str, hasher: &mut impl std::hash::Hasher) {
    for c in unicode_security::skeleton(s.trim()) {
        hasher.write_u32(c as u32);
    }
}

/// Whether `c` is a Default_Ignorable_Code_Point. unicode-security keeps
/// that table to itself, but uses it in the skeleton, which drops exactly
/// those code points: a single character with an empty skeleton is one.
fn default_ignorable(c: char) -> bool {
    let mut buf = [0; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf))
        .next()
        .is_none()
}

/// Variation selectors: default-ignorable, but part of how emoji (`❤️`)
/// and some ideographs are written, and dropped from the skeleton anyway.
fn variation_selector(c: char) -> bool {
    matches!(c, '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `c` draws something on its own: not white space, not a mark
/// (which needs a base), not default-ignorable, not a blank pattern.
fn visible(c: char) -> bool {
    !c.is_whitespace()
        && !default_ignorable(c)
        && c != '\u{2800}' // BRAILLE PATTERN BLANK: a symbol that draws nothing
        && !matches!(
            get_general_category(c),
            GeneralCategory::NonspacingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::EnclosingMark
                | GeneralCategory::SpaceSeparator
        )
}

/// Whether `c` is a format character (Cf): invisible, and among them the
/// bidirectional controls that make `exe.txt` read as `txt.exe`.
pub fn is_format(c: char) -> bool {
    get_general_category(c) == GeneralCategory::Format
}

/// A raw client's file name made to meet the v1 rules before v1 clients
/// see it (raw clients get the frame as it was sent): control and format
/// characters and path separators become `_`, an empty name becomes
/// `file`, and a name over 255 bytes is cut at a character boundary.
pub fn file_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_control() || is_format(c) || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.len() > MAX_FILE_NAME {
        let mut end = MAX_FILE_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    if name.is_empty() {
        name.push_str("file");
    }
    name
}

/// Who holds a name in a room. The same owner may hold it from several
/// connections (two tabs of one person); anyone else is refused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Owner {
    /// Nothing says who this is: the name is held by this connection only.
    #[default]
    Nobody,
    /// A browser's random key (the `key` field of `join`), when the server
    /// has no `--auth-secret`.
    Key(String),
    /// The `sub` of a verified identity token.
    Subject(String),
}

impl Owner {
    /// The owner as a string that compares equal exactly when [`same`]
    /// would, for claims shared with other instances: `-` is nobody, whom
    /// nobody shares with. (Tabs separate fields there, so none are kept.)
    ///
    /// [`same`]: Owner::same
    pub fn key(&self) -> String {
        match self {
            Owner::Nobody => "-".to_owned(),
            Owner::Key(key) => format!("k:{}", key.replace('\t', " ")),
            Owner::Subject(sub) => format!("s:{}", sub.replace('\t', " ")),
        }
    }

    /// Whether a connection of `other` may share a name held by `self`.
    fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Key(a), Owner::Key(b)) | (Owner::Subject(a), Owner::Subject(b)) => a == b,
            _ => false,
        }
    }
}

/// Someone else holds a name that looks the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// How the holder spells it.
    pub holder: String,
}

/// A person's place in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The name as the room knows it: the holder's spelling when the person
    /// was already there.
    pub name: String,
    /// Whether this is the person's first connection in the room (the room
    /// is told of a join only then).
    pub first: bool,
}

#[derive(Debug)]
struct Person {
    name: String,
    owner: Owner,
    connections: usize,
}

/// The people in one room, one entry per person however many connections
/// they have, keyed by the skeleton of their name.
#[derive(Debug, Default)]
pub struct People {
    by_skeleton: HashMap<String, Person>,
}

impl People {
    /// Seats a connection of `owner` under `name`, unless a name that looks
    /// the same is held by someone else.
    pub fn admit(&mut self, name: &Name, owner: &Owner) -> Result<Seat, Taken> {
        match self.by_skeleton.get_mut(&name.skeleton) {
            Some(person) if person.owner.same(owner) => {
                person.connections += 1;
                Ok(Seat {
                    name: person.name.clone(),
                    first: false,
                })
            }
            Some(person) => Err(Taken {
                holder: person.name.clone(),
            }),
            None => {
                self.by_skeleton.insert(
                    name.skeleton.clone(),
                    Person {
                        name: name.text.clone(),
                        owner: owner.clone(),
                        connections: 1,
                    },
                );
                Ok(Seat {
                    name: name.text.clone(),
                    first: true,
                })
            }
        }
    }

    /// One connection of the person called `name` has left; `true` when it
    /// was their last (the room is told of a leave only then).
    pub fn leave(&mut self, name: &str) -> bool {
        let key = skeleton(name);
        let Some(person) = self.by_skeleton.get_mut(&key) else {
            return true;
        };
        person.connections -= 1;
        if person.connections > 0 {
            return false;
        }
        self.by_skeleton.remove(&key);
        true
    }

    /// Whether a name that looks like `name` is held.
    pub fn holds(&self, name: &str) -> bool {
        self.by_skeleton.contains_key(&skeleton(name))
    }

    /// The holder's spelling of a name that looks like `name`, and how many
    /// connections they have.
    pub fn find(&self, name: &str) -> Option<(&str, usize)> {
        self.by_skeleton
            .get(&skeleton(name))
            .map(|p| (p.name.as_str(), p.connections))
    }
}

/// Which spelling of a room name is the room: the first one used. A room
/// named `lоbby` with a Cyrillic `о` is then the room `lobby`, not a copy
/// of it that a newcomer might mistake for it.
#[derive(Debug, Default)]
pub struct Rooms {
    by_skeleton: HashMap<String, String>,
    /// Entries held when the next sweep of stale ones is due.
    sweep_above: usize,
}

impl Rooms {
    /// The room a join for `name` enters: an existing room whose name looks
    /// the same (`exists` says which rooms the dispatcher still holds), or
    /// else a new one under this spelling.
    pub fn resolve(&mut self, name: Name, exists: impl Fn(&str) -> bool) -> String {
        if let Some(room) = self.by_skeleton.get(&name.skeleton)
            && exists(room)
        {
            return room.clone();
        }
        // Rooms the dispatcher has forgotten, whichever way, leave stale
        // entries here; they are swept whenever the entries have doubled
        // since the last sweep, which costs a join nothing on average.
        if self.by_skeleton.len() >= self.sweep_above {
            self.by_skeleton.retain(|_, room| exists(room));
            self.sweep_above = 2 * self.by_skeleton.len() + 64;
        }
        self.by_skeleton.insert(name.skeleton, name.text.clone());
        name.text
    }

    /// The spelling this server knows a room by, when it knows one that
    /// looks like `room`: another instance sharing the room through Redis
    /// may spell it otherwise.
    pub fn spelled_here(&self, room: &str) -> Option<&str> {
        self.by_skeleton.get(&skeleton(room)).map(String::as_str)
    }

    /// The room's history came back from the store for `asked`, shown by
    /// `spelling` when the store holds another spelling of it: from now on
    /// that spelling is the room. Returns the room's name.
    pub fn settle(&mut self, asked: &str, spelling: Option<String>) -> String {
        let Some(spelling) = spelling else {
            return asked.to_owned();
        };
        self.by_skeleton.insert(skeleton(asked), spelling.clone());
        spelling
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> NameError {
        name(raw).expect_err(raw)
    }

    #[test]
    fn ordinary_names_in_many_scripts() {
        for ok in [
            "alice",
            "Zoë",
            "José María",
            "李小龙",
            "محمد",
            "Дмитрий",
            "Ἀθηνᾶ",
            "שרה",
            "अनु",
            "さくら",
            "김민준",
            "❤️ fan",
            "o'brien-2",
        ] {
            let n = name(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert_eq!(n.text, ok.nfc().collect::<String>());
        }
    }

    #[test]
    fn normalised_and_trimmed() {
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(name("  Jose\u{301} ").unwrap().text, "José");
        assert_eq!(
            name("Jose\u{301}").unwrap().skeleton,
            name("José").unwrap().skeleton
        );
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for (raw, c) in [
            ("alice\u{200b}", '\u{200b}'),
            ("al\u{200d}ice", '\u{200d}'),
            ("alice\u{feff}", '\u{feff}'),
            ("\u{202e}ecila", '\u{202e}'),
            ("a\u{2066}b", '\u{2066}'),
            ("a\u{00ad}b", '\u{00ad}'),
            ("al\u{3164}ice", '\u{3164}'),
            ("al\u{034f}ice", '\u{034f}'),
            ("a\u{2028}b", '\u{2028}'),
        ] {
            assert_eq!(refused(raw), NameError::Invisible(c), "{raw:?}");
        }
        assert_eq!(refused("a\u{7}b"), NameError::Control('\u{7}'));
        assert_eq!(refused("a\u{e000}"), NameError::Unassigned('\u{e000}'));
        assert_eq!(refused("a\u{378}"), NameError::Unassigned('\u{378}'));
    }

    #[test]
    fn names_with_nothing_visible_are_refused() {
        assert_eq!(refused(""), NameError::Empty);
        assert_eq!(refused(" \u{3000} "), NameError::Empty);
        assert_eq!(refused("\u{2800}"), NameError::NothingVisible);
        assert_eq!(refused("\u{301}\u{301}"), NameError::NothingVisible);
        assert_eq!(refused("\u{fe0f}"), NameError::NothingVisible);
        assert_eq!(refused("\u{200b}"), NameError::Invisible('\u{200b}'));
    }

    #[test]
    fn length_counts_characters_after_normalisation() {
        assert!(name(&"é".repeat(32)).is_ok());
        assert!(name(&"e\u{301}".repeat(32)).is_ok());
        assert_eq!(refused(&"x".repeat(33)), NameError::TooLong);
    }

    #[test]
    fn lookalikes_share_a_skeleton() {
        let alice = skeleton("alice");
        assert_eq!(skeleton("\u{430}lice"), alice, "Cyrillic a");
        assert_eq!(skeleton("alice\u{fe0f}"), alice, "variation selector");
        assert_eq!(skeleton("ａｌｉｃｅ"), alice, "fullwidth");
        assert_eq!(skeleton("I"), skeleton("l"));
        assert_ne!(skeleton("Alice"), alice, "case is seen");
        assert_ne!(skeleton("alicia"), alice);
    }

    #[test]
    fn one_person_many_connections() {
        let mut people = People::default();
        let alice = name("alice").unwrap();
        let key = Owner::Key("k".repeat(22));
        let first = people.admit(&alice, &key).unwrap();
        assert_eq!(
            first,
            Seat {
                name: "alice".into(),
                first: true
            }
        );
        let lookalike = name("\u{430}lice").unwrap();
        assert_eq!(
            people.admit(&lookalike, &key).unwrap(),
            Seat {
                name: "alice".into(),
                first: false
            },
            "the same person, whichever way they spell it"
        );
        assert_eq!(people.find("alice"), Some(("alice", 2)));
        for other in [
            Owner::Nobody,
            Owner::Key("j".repeat(22)),
            Owner::Subject("alice".into()),
        ] {
            assert_eq!(
                people.admit(&lookalike, &other),
                Err(Taken {
                    holder: "alice".into()
                })
            );
        }
        assert!(!people.leave("alice"));
        assert!(people.holds("alice"));
        assert!(people.leave("alice"));
        assert!(!people.holds("alice"));

        // Without an owner a name is one connection's alone.
        people.admit(&alice, &Owner::Nobody).unwrap();
        assert!(people.admit(&alice, &Owner::Nobody).is_err());
    }

    #[test]
    fn rooms_that_look_alike_are_one_room() {
        let mut rooms = Rooms::default();
        let held = std::cell::RefCell::new(vec![]);
        let exists = |r: &str| held.borrow().iter().any(|h: &String| h == r);
        let lobby = rooms.resolve(name("lobby").unwrap(), exists);
        held.borrow_mut().push(lobby.clone());
        assert_eq!(rooms.resolve(name("l\u{43e}bby").unwrap(), exists), "lobby");
        assert_eq!(rooms.resolve(name("Lobby").unwrap(), exists), "Lobby");
        // Once the room is gone, a new spelling makes a new room.
        held.borrow_mut().clear();
        assert_eq!(
            rooms.resolve(name("l\u{43e}bby").unwrap(), exists),
            "l\u{43e}bby"
        );
    }

    #[test]
    fn raw_file_names_meet_the_v1_rules() {
        assert_eq!(file_name("cat.png"), "cat.png");
        assert_eq!(file_name("../etc/passwd"), ".._etc_passwd");
        assert_eq!(file_name("a\\b\u{0}c"), "a_b_c");
        assert_eq!(file_name("invoice\u{202e}fdp.exe"), "invoice_fdp.exe");
        assert_eq!(file_name(""), "file");
        let long = "é".repeat(200);
        let cut = file_name(&long);
        assert!(cut.len() <= MAX_FILE_NAME && cut.len() >= MAX_FILE_NAME - 1);
        assert!(long.starts_with(&cut));
    }
}
