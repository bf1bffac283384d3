//! Fetches, read beside the writer.

use super::*;

#[test]
fn fetch_gives_a_window_oldest_first() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    for id in 1..=10 {
        assert!(running.append(text("lobby", id, &id.to_string()), None));
    }
    let ids = |records: Vec<Record>| records.iter().map(|r| r.id).collect::<Vec<u64>>();
    assert_eq!(ids(running.fetch("lobby", 3, 7, 100)), [4, 5, 6, 7]);
    assert_eq!(ids(running.fetch("lobby", 3, 7, 2)), [4, 5]);
    assert_eq!(ids(running.fetch("lobby", 8, u64::MAX, 100)), [9, 10]);
    assert!(running.fetch("elsewhere", 0, u64::MAX, 100).is_empty());
    running.stop();
}

#[test]
fn a_fetch_sees_the_appends_sent_before_it_and_is_read_beside_the_writer() {
    let db = TempDb::new("fetch-order");
    for path in [db.path(), ":memory:".to_owned()] {
        let store = open(&options(&path)).unwrap();
        let (tx, replies) = crossbeam_channel::unbounded();
        let reply = Box::new(move |reply| {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send((name, reply));
        });
        let (handle, thread) = store.spawn(reply).unwrap();
        // Sent without waiting: the fetch must still see every one.
        for id in 1..=500 {
            handle.send(Request::Append {
                record: text("lobby", id, &id.to_string()),
                data: None,
                origin: Default::default(),
                relay: None,
            });
        }
        handle.send(Request::Fetch {
            room: "lobby".to_owned(),
            after: 0,
            upto: 500,
            limit: 1000,
            token: FetchFor::Resume(7),
            asker: None,
        });
        let mut committed = 0;
        let (name, records) = loop {
            match replies.recv_timeout(WAIT).expect("a reply") {
                (_, Reply::Appended { outcome, .. }) => {
                    assert_eq!(outcome, Outcome::Stored);
                    committed += 1;
                }
                (name, Reply::Fetched { token, records, .. }) => {
                    assert_eq!(token, FetchFor::Resume(7));
                    break (name, records);
                }
                (_, other) => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(
            committed, 500,
            "{path}: answered after the commits before it"
        );
        assert_eq!(name.as_deref(), Some("store-reads"), "{path}");
        let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
        assert_eq!(ids, (1..=500).collect::<Vec<_>>(), "{path}");
        handle.send(Request::Shutdown);
        thread.join().unwrap();
    }
}

#[test]
fn a_fetch_answers_with_the_newest_records_that_fit_in_its_bytes() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    let long = "x".repeat(8 << 10);
    for id in 1..=800 {
        assert!(running.append(text("lobby", id, &long), None));
    }
    let fetched = running.fetch("lobby", 0, 800, 1000);
    // Each weighs its room, sender and text: 5 + 3 + 8,192 bytes.
    let fit = (1 << 20) / (5 + 3 + (8 << 10));
    let ids: Vec<u64> = fetched.iter().map(|r| r.id).collect();
    assert_eq!(ids, (800 - fit as u64 + 1..=800).collect::<Vec<_>>());
    running.stop();
}
