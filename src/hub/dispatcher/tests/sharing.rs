//! Rooms shared through Redis: arrivals in id order, fills, epochs and
//! presence on other instances.

use super::*;

#[test]
fn shared_arrivals_are_delivered_in_id_order_and_duplicates_dropped() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    assert_eq!(types(&h.events(a)), ["welcome", "presence"]);
    for id in [1, 2, 3] {
        h.note(Note::Arrived(arrival("r", EPOCH, id)));
    }
    // Again, as after a resubscription: dropped.
    h.note(Note::Arrived(arrival("r", EPOCH, 2)));
    h.note(Note::Arrived(arrival("r", EPOCH, 3)));
    let events = h.events(a);
    assert_eq!(message_ids(&events), [1, 2, 3]);
    assert_eq!(events.len(), 3);
    assert_eq!(h.d.rooms["r"].last_id, 3);
    assert!(h.requests.try_recv().is_err(), "nothing to fetch");
}

#[test]
fn a_shared_arrival_that_skips_ahead_waits_for_the_missed_ones() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    h.received(a);
    h.note(Note::Arrived(arrival("r", EPOCH, 1)));
    h.note(Note::Arrived(arrival("r", EPOCH, 4)));
    let token = match h.requests.try_recv() {
        Ok(sqlite::Request::Fetch {
            room,
            after,
            upto,
            token,
            ..
        }) => {
            assert_eq!((room.as_str(), after, upto), ("r", 1, 3));
            token
        }
        other => panic!("{other:?}"),
    };
    let sqlite::FetchFor::Fill(token) = token else {
        panic!("not answered with the senders: {token:?}");
    };
    // Held back meanwhile, with whatever follows.
    h.note(Note::Arrived(arrival("r", EPOCH, 5)));
    h.note(Note::Arrived(arrival("r", EPOCH, 3)));
    assert_eq!(message_ids(&h.events(a)), [1]);
    assert!(h.requests.try_recv().is_err(), "one fetch at a time");
    h.note(Note::Filled {
        token,
        room: "r".into(),
        epoch: Some(EPOCH.into()),
        arrivals: Some(vec![arrival("r", EPOCH, 2), arrival("r", EPOCH, 3)]),
        members: None,
    });
    assert_eq!(message_ids(&h.events(a)), [2, 3, 4, 5]);
    assert_eq!(h.d.rooms["r"].last_id, 5);
    assert!(h.d.rooms["r"].filling.is_none());
    h.note(Note::Arrived(arrival("r", EPOCH, 6)));
    assert_eq!(message_ids(&h.events(a)), [6]);
}

/// The messages among a closed client's frames, the close aside.
fn ids_before_close(frames: &[Frame]) -> Vec<u64> {
    let (last, rest) = frames.split_last().unwrap();
    assert_eq!(last.close(), Some((1012, "history reset".into())));
    message_ids(&rest.iter().map(Frame::json).collect::<Vec<_>>())
}

#[test]
fn a_fill_that_finds_a_new_epoch_closes_the_room_with_1012() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    let b = h.shared_join("r", "bea");
    h.note(Note::Arrived(arrival("r", EPOCH, 1)));
    // The subscription was lost and is back: the room is read up to date,
    // and Redis has another history now.
    h.note(Note::Subscribed { room: "r".into() });
    let token = match h.requests.try_recv() {
        Ok(sqlite::Request::Fetch {
            after,
            token: sqlite::FetchFor::Fill(token),
            ..
        }) => {
            assert_eq!(after, 1);
            token
        }
        other => panic!("{other:?}"),
    };
    h.note(Note::Filled {
        token,
        room: "r".into(),
        epoch: Some("epoch-2".into()),
        arrivals: Some(vec![arrival("r", "epoch-2", 1)]),
        members: None,
    });
    for id in [a, b] {
        let frames = h.closed(id);
        assert_eq!(ids_before_close(&frames), [1], "nothing of the new epoch");
        assert!(!h.d.clients.contains_key(&id));
    }
    // Nobody is left here, and the old history is gone with the room.
    assert!(!h.d.rooms.contains_key("r"));
    assert_eq!((h.share_used(), h.d.stored), (0, 0));
}

/// An arrival of a new epoch in a room with members here closes them all;
/// the room goes with its last member (the dispatcher once unwrapped the
/// room it had looked up before the reset, and panicked).
#[test]
fn a_shared_arrival_of_a_new_epoch_closes_the_room_with_1012() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    let b = h.shared_join("r", "bea");
    h.note(Note::Arrived(arrival("r", EPOCH, 1)));
    h.note(Note::Arrived(arrival("r", EPOCH, 2)));
    h.note(Note::Arrived(arrival("r", "epoch-2", 1)));
    for id in [a, b] {
        let frames = h.closed(id);
        assert_eq!(
            ids_before_close(&frames),
            [1, 2],
            "nothing of the new epoch"
        );
        assert!(!h.d.clients.contains_key(&id));
    }
    assert!(
        h.d.rooms
            .get("r")
            .is_none_or(|room| room.members.is_empty())
    );
}

#[test]
fn presence_on_another_instance_is_told_and_listed() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    h.received(a);
    h.note(Note::Presence {
        room: "r".into(),
        name: "bob".into(),
        change: Change::Joined,
        own: false,
    });
    let events = h.events(a);
    assert_eq!(types(&events), ["join"]);
    assert_eq!(events[0]["name"], "bob");
    // Told once.
    h.note(Note::Presence {
        room: "r".into(),
        name: "bob".into(),
        change: Change::Joined,
        own: false,
    });
    assert!(h.received(a).is_empty());
    let c = h.shared_join("r", "cy");
    let events = h.events(c);
    assert_eq!(types(&events), ["welcome", "presence"]);
    assert_eq!(events[1]["users"], serde_json::json!(["ann", "cy", "bob"]));
    // Gone from every instance: told, and no longer listed.
    h.note(Note::Presence {
        room: "r".into(),
        name: "bob".into(),
        change: Change::Left,
        own: false,
    });
    let events = h.events(a);
    assert_eq!(types(&events), ["join", "leave"], "cy's join, bob's leave");
    assert_eq!(events[1]["name"], "bob");
    let d = h.shared_join("r", "dee");
    let events = h.events(d);
    assert_eq!(events[1]["users"], serde_json::json!(["ann", "cy", "dee"]));
}

/// The subscriptions the dispatcher asked for, in order: `+room`, `-room`.
fn subscriptions(h: &Harness) -> Vec<String> {
    h.commands
        .try_iter()
        .filter_map(|order| match order {
            redis::Order::Subscribe { room } => Some(format!("+{room}")),
            redis::Order::Unsubscribe { room } => Some(format!("-{room}")),
            _ => None,
        })
        .collect()
}

#[test]
fn a_room_is_listened_to_while_someone_is_in_it_here_and_read_up_to_date_once_it_is() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    // Asked for by the first member here.
    assert_eq!(subscriptions(&h), ["+r"]);
    let b = h.shared_join("r", "bea");
    assert!(h.d.rooms["r"].subscribed);
    h.received(a);
    h.note(Note::Arrived(arrival("r", EPOCH, 1)));
    // Redis confirms: what was published before is read from the stream.
    h.note(Note::Subscribed { room: "r".into() });
    match h.requests.try_recv() {
        Ok(sqlite::Request::Fetch {
            after,
            upto,
            token: sqlite::FetchFor::Fill(_),
            ..
        }) => assert_eq!((after, upto), (1, u64::MAX)),
        other => panic!("{other:?}"),
    }
    for id in [a, b] {
        h.d.handle(Input::Leave { id });
    }
    // The last one here left: let go of, and forgotten.
    assert_eq!(subscriptions(&h), ["-r"]);
    assert!(!h.d.rooms.contains_key("r"));
    // A late confirmation of a room let go of asks for nothing.
    h.note(Note::Subscribed { room: "r".into() });
    assert!(h.requests.try_recv().is_err());
}

#[test]
fn presence_missed_before_the_subscription_is_told_from_the_read() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    h.note(Note::Presence {
        room: "r".into(),
        name: "old".into(),
        change: Change::Joined,
        own: false,
    });
    h.received(a);
    h.note(Note::Subscribed { room: "r".into() });
    let Ok(sqlite::Request::Fetch {
        token: sqlite::FetchFor::Fill(token),
        ..
    }) = h.requests.try_recv()
    else {
        panic!("no fill")
    };
    // Heard while the read was under way: kept as heard.
    h.note(Note::Presence {
        room: "r".into(),
        name: "late".into(),
        change: Change::Joined,
        own: false,
    });
    h.note(Note::Filled {
        token,
        room: "r".into(),
        epoch: Some(EPOCH.into()),
        arrivals: Some(Vec::new()),
        members: Some(vec!["ann".into(), "bob".into()]),
    });
    let events = h.events(a);
    let told: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["type"].to_string(), e["name"].to_string()))
        .collect();
    assert_eq!(
        told,
        [
            ("\"join\"".into(), "\"late\"".into()),
            ("\"join\"".into(), "\"bob\"".into()),
            ("\"leave\"".into(), "\"old\"".into()),
        ]
    );
}

#[test]
fn a_subscription_confirmed_during_a_read_is_followed_by_another_read() {
    let mut h = Harness::shared();
    let a = h.shared_join("r", "ann");
    h.received(a);
    h.note(Note::Subscribed { room: "r".into() });
    h.note(Note::Subscribed { room: "r".into() });
    let fills: Vec<u64> = h
        .requests
        .try_iter()
        .filter_map(|r| match r {
            sqlite::Request::Fetch {
                token: sqlite::FetchFor::Fill(token),
                ..
            } => Some(token),
            _ => None,
        })
        .collect();
    assert_eq!(fills.len(), 1, "one read at a time");
    h.note(Note::Filled {
        token: fills[0],
        room: "r".into(),
        epoch: Some(EPOCH.into()),
        arrivals: Some(vec![arrival("r", EPOCH, 1)]),
        members: None,
    });
    assert_eq!(message_ids(&h.events(a)), [1]);
    match h.requests.try_recv() {
        Ok(sqlite::Request::Fetch {
            after,
            token: sqlite::FetchFor::Fill(_),
            ..
        }) => assert_eq!(after, 1, "read again from where the first ended"),
        other => panic!("{other:?}"),
    }
}
