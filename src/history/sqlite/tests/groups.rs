//! Appends written together, in one group: each room's ids in the order
//! of its records, resends within the group, rooms without a row, files,
//! and what each room's row counts.

use super::super::fold::room_key;
use super::*;

fn with_cid(record: Record, cid: &str) -> Record {
    Record {
        cid: Some(cid.to_owned()),
        ..record
    }
}

/// What a record stored in room `key` counts against `retain_bytes`, its
/// file's bytes aside: its strings and 64, and a message's words in the
/// word index (see `retention`).
fn cost(key: &str, record: &Record) -> u64 {
    let (body, words) = match &record.body {
        Body::Text(text) => (text.len(), 48 + 2 * key.len() + text.len() / 2),
        Body::File { name, mime, .. } => (name.len() + mime.len(), 0),
        body => (body.text().map_or(0, str::len), 0),
    };
    (key.len() + record.from.len() + record.cid.as_ref().map_or(0, String::len) + body + 64 + words)
        as u64
}

/// The next answer to an append: the record, its outcome and its epoch.
fn appended(running: &Running) -> (Record, Outcome, Option<String>) {
    match running.reply() {
        Reply::Appended {
            record,
            outcome,
            epoch,
            ..
        } => (record, outcome, epoch),
        other => panic!("expected Appended, got {other:?}"),
    }
}

#[test]
fn a_group_gives_each_room_its_ids_in_order_and_knows_a_resend_within_it() {
    let store = open(&options(":memory:")).unwrap();
    let stats = store.stats();
    let reader = store.reader();
    let running = Running::start(store);
    // kitchen has history; lobby was opened, so it has an epoch but no
    // row; attic has neither.
    assert!(running.append(text("kitchen", 1, "earlier"), None));
    let (kitchen, _, _) = running.open("kitchen", 0);
    let (lobby, _, _) = running.open("lobby", 0);
    // The same room as lobby, by a look-alike spelling (Cyrillic о).
    let lookalike = "l\u{43e}bby";
    assert_eq!(room_key(lookalike), room_key("lobby"));
    let bob = |record: Record| Record {
        from: "bob".to_owned(),
        ..record
    };
    let group = [
        (with_cid(text("lobby", 0, "one"), "a"), None),
        (text("kitchen", 0, "two"), None),
        (with_cid(text(lookalike, 0, "one again"), "a"), None),
        (file("attic", 0, "f.bin", 3), Some(bytes(3, 1))),
        (bob(with_cid(text("lobby", 0, "bob's"), "a")), None),
        (with_cid(text("kitchen", 0, "a elsewhere"), "a"), None),
        (file("lobby", 0, "announced.txt", 10), None),
        (with_cid(text("kitchen", 0, "again"), "a"), None),
    ];
    let sent: Vec<Record> = group.iter().map(|(record, _)| record.clone()).collect();
    let held = running.hold();
    for (record, data) in group {
        running.send_append(record, data);
    }
    held.release();
    let answers: Vec<(Record, Outcome, Option<String>)> =
        (0..sent.len()).map(|_| appended(&running)).collect();
    let ids: Vec<(u64, Outcome)> = answers.iter().map(|(r, o, _)| (r.id, *o)).collect();
    use Outcome::{Resent, Stored};
    assert_eq!(
        ids,
        [
            (1, Stored),
            (2, Stored),
            (1, Resent),
            (1, Stored),
            (2, Stored),
            (3, Stored),
            (3, Stored),
            (3, Resent),
        ]
    );
    // A resend is answered with the record stored, in the resender's
    // spelling, and with no epoch.
    let (resent, _, epoch) = &answers[2];
    assert_eq!(
        resent,
        &Record {
            room: lookalike.to_owned(),
            id: 1,
            ..sent[0].clone()
        }
    );
    assert_eq!(*epoch, None);
    assert_eq!(answers[7].0.body, Body::Text("a elsewhere".to_owned()));
    // Each stored record joined its room's history: lobby's is the epoch
    // handed out when it was opened, attic's begins now.
    assert_eq!(answers[0].2.as_deref(), Some(lobby.as_str()));
    assert_eq!(answers[1].2.as_deref(), Some(kitchen.as_str()));
    let (attic, last_id, _) = running.open("attic", 0);
    assert_eq!(
        (answers[3].2.as_deref(), last_id),
        (Some(attic.as_str()), 1)
    );

    // What was read back is what was answered.
    let (_, last_id, recent) = running.open("lobby", 10);
    assert_eq!(last_id, 3);
    let kept: Vec<(u64, &str, bool)> = recent
        .iter()
        .map(|r| match &r.body {
            Body::File {
                name, available, ..
            } => (r.id, name.as_str(), *available),
            body => (r.id, body.text().unwrap_or_default(), true),
        })
        .collect();
    assert_eq!(
        kept,
        [
            (1, "one", true),
            (2, "bob's", true),
            (3, "announced.txt", false)
        ]
    );
    assert_eq!(
        reader.file("attic", 1).unwrap().unwrap().bytes,
        bytes(3, 1).to_vec()
    );
    let kitchen_ids: Vec<u64> = running
        .fetch("kitchen", 0, 10, 10)
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kitchen_ids, [1, 2, 3]);

    // Each room's row counts its records, the file's bytes and itself.
    let mut counted = 0;
    for (room, name) in [
        ("kitchen", "kitchen"),
        ("lobby", "lobby"),
        ("attic", "attic"),
    ] {
        let key = room_key(room);
        counted += (key.len() + name.len() + 128) as u64;
        let records = running.fetch(room, 0, 10, 10);
        counted += records.iter().map(|r| cost(&key, r)).sum::<u64>();
    }
    assert_eq!(stats.stored_bytes.load(Ordering::Relaxed), counted + 3);
    assert_eq!(stats.file_bytes.load(Ordering::Relaxed), 3);
    assert_eq!(stats.records_written.load(Ordering::Relaxed), 7);
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 0);
    running.stop();
}

#[test]
fn a_full_group_of_every_size_is_stored_in_order() {
    // Sizes that are not powers of two are written in several inserts.
    let store = open(&options(":memory:")).unwrap();
    let stats = store.stats();
    let running = Running::start(store);
    let size = super::super::writer::GROUP - 1;
    let held = running.hold();
    for n in 0..size as u64 {
        running.send_append(
            with_cid(text("lobby", 0, &n.to_string()), &n.to_string()),
            None,
        );
    }
    held.release();
    for id in 1..=size as u64 {
        assert_eq!(running.appended(), (id, Outcome::Stored));
    }
    let texts: Vec<Body> = running
        .fetch("lobby", 0, size as u64, size)
        .into_iter()
        .map(|r| r.body)
        .collect();
    let expected: Vec<Body> = (0..size).map(|n| Body::Text(n.to_string())).collect();
    assert_eq!(texts, expected);
    // Every one of them is known as sent, by its sender, also when many
    // are looked up at once.
    let held = running.hold();
    running.send_append(with_cid(text("lobby", 0, "again"), "17"), None);
    running.send_append(with_cid(text("lobby", 0, "new"), "new"), None);
    let bob = Record {
        from: "bob".to_owned(),
        ..with_cid(text("lobby", 0, "bob's"), "200")
    };
    running.send_append(bob, None);
    running.send_append(with_cid(text("lobby", 0, "again"), "3"), None);
    held.release();
    let last = size as u64;
    assert_eq!(running.appended(), (18, Outcome::Resent));
    assert_eq!(running.appended(), (last + 1, Outcome::Stored));
    assert_eq!(running.appended(), (last + 2, Outcome::Stored));
    assert_eq!(running.appended(), (4, Outcome::Resent));
    assert_eq!(stats.records_written.load(Ordering::Relaxed), last + 2);
    running.stop();
}
