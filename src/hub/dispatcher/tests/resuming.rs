//! Resumes: what a returning client is sent, read from memory or the
//! store, a few at a time.

use super::*;

#[test]
fn a_resume_beyond_what_may_be_read_back_gets_the_exact_gap() {
    let mut h = Harness::new(3, 1 << 20, 1 << 20);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    let said = RESUME_FROM_STORE + 5;
    for i in 1..=said {
        h.say(a, &format!("m{i}"));
    }
    assert_eq!(h.kept("r"), [said - 2, said - 1, said]);
    // Missed more than a resume reads back from the store: the history in
    // memory, after a gap.
    let b = h.join_as("r", Mode::V1, "bea", Some(1));
    assert!(h.d.catchups.is_empty(), "nothing asked of the store");
    let events = h.events(b);
    assert_eq!(
        types(&events),
        [
            "welcome", "presence", "gap", "message", "message", "message"
        ]
    );
    assert_eq!(events[0]["recovered"], false);
    assert_eq!(events[0]["reason"], "trimmed");
    assert_eq!(events[0]["last_id"], said);
    assert_eq!(events[2]["since"], 1);
    assert_eq!(events[2]["first"], said - 2);
    assert_eq!(message_ids(&events), [said - 2, said - 1, said]);
    assert!(events[3..].iter().all(|e| e["replay"] == true));
}

#[test]
fn a_resume_read_back_from_a_trimmed_store_gets_the_exact_gap() {
    // Three in memory, five in the store, ten said.
    let mut h = Harness::with_store(limits(3, 1 << 20, 1 << 20), 5);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    for i in 1..=10 {
        h.say(a, &format!("m{i}"));
    }
    assert_eq!(h.kept("r"), [8, 9, 10]);
    let b = h.join_as("r", Mode::V1, "bea", Some(2));
    // The welcome waits for the store.
    assert_eq!(h.d.catchups.len(), 1);
    assert!(h.received(b).is_empty());
    h.pump(|d| d.catchups.is_empty());
    let events = h.events(b);
    assert_eq!(
        types(&events),
        [
            "welcome", "presence", "gap", "message", "message", "message", "message", "message"
        ]
    );
    assert_eq!(events[0]["recovered"], false);
    assert_eq!(events[0]["reason"], "trimmed");
    // 3, 4 and 5 are gone from the store too: the gap says so exactly.
    assert_eq!(
        (&events[2]["since"], &events[2]["first"]),
        (&2.into(), &6.into())
    );
    assert_eq!(message_ids(&events), [6, 7, 8, 9, 10]);
    // A resume that misses nothing the store still has is whole.
    let c = h.join_as("r", Mode::V1, "cy", Some(6));
    h.pump(|d| d.catchups.is_empty());
    let events = h.events(c);
    assert_eq!(events[0]["recovered"], true);
    assert!(!types(&events).contains(&"gap"));
    assert_eq!(message_ids(&events), [7, 8, 9, 10]);
}

#[test]
fn a_live_message_in_the_batch_of_the_stores_answer_follows_the_replay() {
    let mut h = Harness::with_store(limits(3, 1 << 20, 1 << 20), 1000);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    for i in 1..=10 {
        h.say(a, &format!("m{i}"));
    }
    let b = h.join_as("r", Mode::V1, "bea", Some(2));
    assert_eq!(h.d.catchups.len(), 1);
    // The store's answer comes in one batch with a live message, after it.
    let fetched = loop {
        match h.replies.recv_timeout(Duration::from_secs(10)).unwrap() {
            reply @ sqlite::Reply::Fetched { .. } => break reply,
            other => h.d.handle(Input::Store(other)),
        }
    };
    h.d.handle(Input::Text {
        id: a,
        text: "live".into(),
        cid: None,
    });
    let appended = h.replies.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(appended, sqlite::Reply::Appended { .. }));
    h.d.handle(Input::Store(fetched));
    h.d.handle(Input::Store(appended));
    let events = h.events(b);
    assert_eq!(types(&events)[..2], ["welcome", "presence"]);
    assert_eq!(message_ids(&events), (3..=11).collect::<Vec<_>>());
}

#[test]
fn resumes_from_one_address_beyond_its_bound_wait_their_turn() {
    let mut h = Harness::with_store(limits(3, 1 << 20, 1 << 20), 1000);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    for i in 1..=10 {
        h.say(a, &format!("m{i}"));
    }
    // Every client of the harness is 127.0.0.1: one address.
    let n = resumes::PER_ADDRESS + 2;
    let resumers: Vec<ClientId> = (0..n)
        .map(|i| h.join_as("r", Mode::V1, &format!("r{i}"), Some(2)))
        .collect();
    assert_eq!(h.d.catchups.len(), resumes::PER_ADDRESS);
    assert_eq!(h.d.resumes.waiting(), 2);
    // Those waiting have nothing yet, and hold what the room says meanwhile.
    assert!(h.received(resumers[n - 1]).is_empty());
    h.say(a, "live");
    h.pump(|d| d.catchups.is_empty() && d.resumes.waiting() == 0);
    assert_eq!(h.d.resumes.running(), 0);
    for id in resumers {
        let events = h.events(id);
        assert_eq!(types(&events)[..2], ["welcome", "presence"]);
        assert_eq!(events[0]["recovered"], true);
        // The replay, then the live message, each once, in order.
        assert_eq!(message_ids(&events), (3..=11).collect::<Vec<_>>());
    }
}

#[test]
fn a_resume_whose_client_left_while_waiting_is_skipped() {
    let mut h = Harness::with_store(limits(3, 1 << 20, 1 << 20), 1000);
    let a = h.join_as("r", Mode::Raw, "ann", None);
    for i in 1..=10 {
        h.say(a, &format!("m{i}"));
    }
    let n = resumes::PER_ADDRESS + 1;
    let resumers: Vec<ClientId> = (0..n)
        .map(|i| h.join_as("r", Mode::V1, &format!("r{i}"), Some(2)))
        .collect();
    assert_eq!(h.d.resumes.waiting(), 1);
    h.d.handle(Input::Leave {
        id: resumers[n - 1],
    });
    h.pump(|d| d.catchups.is_empty());
    assert_eq!((h.d.resumes.running(), h.d.resumes.waiting()), (0, 0));
    let events = h.events(resumers[0]);
    assert_eq!(message_ids(&events), (3..=10).collect::<Vec<_>>());
}
