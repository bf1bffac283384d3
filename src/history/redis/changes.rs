//! Redis keeps a room's stream as it was written: a message as it was sent,
//! its changes (edits, deletions, reactions) as entries after it. What is
//! read back is folded here, so that a replay shows each message as it
//! stands, as the embedded store's rows do: a message changed later in the
//! same read becomes `Body::Changed`, and an edit of a message deleted
//! later becomes a deletion, so that no replay gives its text again.

use std::collections::HashMap;

use crate::history::sqlite::{Body, Record};
use crate::history::{Change, Changed};

/// Applies every change among `records` (oldest first) to its target when
/// the target is among them too.
pub(super) fn fold(records: &mut [Record]) {
    if !records
        .iter()
        .any(|r| matches!(r.body, Body::Change { .. }))
    {
        return;
    }
    let mut at: HashMap<u64, usize> = HashMap::new();
    let mut edits: HashMap<u64, Vec<usize>> = HashMap::new();
    for i in 0..records.len() {
        let (target, change) = match &records[i].body {
            Body::Text(_) | Body::Changed(_) => {
                at.insert(records[i].id, i);
                continue;
            }
            Body::Change { target, change, .. } => (*target, change.clone()),
            Body::File { .. } => continue,
        };
        match change {
            Change::Edit(_) => edits.entry(target).or_default().push(i),
            Change::Delete => {
                for e in edits.remove(&target).unwrap_or_default() {
                    if let Body::Change { change, .. } = &mut records[e].body {
                        *change = Change::Delete;
                    }
                }
            }
            _ => {}
        }
        let Some(&t) = at.get(&target) else {
            continue;
        };
        let from = records[i].from.clone();
        let mut changed = match std::mem::replace(&mut records[t].body, Body::Text(String::new())) {
            Body::Text(text) => Changed {
                text,
                ..Changed::default()
            },
            Body::Changed(changed) => *changed,
            other => {
                records[t].body = other;
                continue;
            }
        };
        changed.apply(&change, &from);
        records[t].body = Body::Changed(Box::new(changed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, from: &str, body: Body) -> Record {
        Record {
            room: "r".into(),
            id,
            from: from.into(),
            ts: 0,
            cid: None,
            body,
        }
    }

    fn change(id: u64, from: &str, target: u64, change: Change) -> Record {
        let body = Body::Change {
            target,
            change,
            moderator: false,
        };
        record(id, from, body)
    }

    #[test]
    fn messages_read_back_stand_as_changed_and_deleted_text_is_gone() {
        let mut records = vec![
            record(1, "ann", Body::Text("one".into())),
            record(2, "ann", Body::Text("two".into())),
            change(3, "ann", 1, Change::Edit("uno".into())),
            change(4, "bob", 1, Change::React("👍".into())),
            change(5, "ann", 2, Change::Edit("secret".into())),
            change(6, "ann", 2, Change::Delete),
            change(7, "ann", 9, Change::Edit("older".into())),
        ];
        fold(&mut records);
        let Body::Changed(one) = &records[0].body else {
            panic!("{:?}", records[0]);
        };
        assert_eq!((one.text.as_str(), one.edited), ("uno", true));
        assert_eq!(one.reactions, [("👍".to_owned(), vec!["bob".to_owned()])]);
        let Body::Changed(two) = &records[1].body else {
            panic!("{:?}", records[1]);
        };
        assert!(two.deleted && two.text.is_empty());
        assert!(!format!("{records:?}").contains("secret"));
        // A change to a message older than what was read stays as it is.
        assert!(
            matches!(&records[6].body, Body::Change { target: 9, change: Change::Edit(t), .. } if t == "older")
        );
    }
}
