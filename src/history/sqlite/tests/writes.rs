//! Appends and what is read back: ids, epochs, files, `cid`s, and
//! readers beside the writer.

use super::*;

#[test]
fn ids_and_epoch_survive_reopening_a_file() {
    let db = TempDb::new("reopen");
    let running = Running::start(open(&options(&db.path())).unwrap());
    let (epoch, last_id, recent) = running.open("lobby", 10);
    assert_eq!((epoch.len(), last_id, recent.len()), (16, 0, 0));
    assert!(epoch.chars().all(|c| c.is_ascii_hexdigit()));
    for id in 1..=3 {
        assert!(running.append(text("lobby", id, &format!("hello {id}")), None));
    }
    running.stop();

    let running = Running::start(open(&options(&db.path())).unwrap());
    let (again, last_id, recent) = running.open("lobby", 10);
    assert_eq!((again.as_str(), last_id), (epoch.as_str(), 3));
    let expected: Vec<Record> = (1..=3)
        .map(|id| text("lobby", id, &format!("hello {id}")))
        .collect();
    assert_eq!(recent, expected);
    // Another room has its own epoch, the same at every open while it has
    // no history, and not written down until it has.
    let (other, last_id, _) = running.open("kitchen", 10);
    assert_ne!(other, epoch);
    assert_eq!(last_id, 0);
    assert_eq!(running.open("kitchen", 10).0, other);
    running.stop();

    let running = Running::start(open(&options(&db.path())).unwrap());
    assert_ne!(running.open("kitchen", 10).0, other);
    assert_eq!(running.open("lobby", 0).0, epoch);
    running.stop();
}

#[test]
fn memory_lasts_while_the_process_does_and_begins_anew_after() {
    let store = open(&options(":memory:")).unwrap();
    let reader = store.reader();
    let running = Running::start(store);
    let (epoch, _, _) = running.open("lobby", 10);
    assert!(running.append(file("lobby", 1, "a.bin", 3), Some(bytes(3, 1))));
    running.stop();
    // The store's thread is gone; what it wrote is still there.
    let kept = reader.file("lobby", 1).unwrap().unwrap();
    assert_eq!(kept.bytes, bytes(3, 1).to_vec());
    assert!(reader.ping());

    // A new process's `:memory:` store starts from nothing.
    let running = Running::start(open(&options(":memory:")).unwrap());
    let (fresh, last_id, recent) = running.open("lobby", 10);
    assert_ne!(fresh, epoch);
    assert_eq!((last_id, recent.len()), (0, 0));
    running.stop();
}

#[test]
fn an_append_to_a_room_never_opened_creates_it() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    running.send_append(text("attic", 1, "first"), None);
    assert_eq!(running.appended(), (1, Outcome::Stored));
    let (epoch, last_id, recent) = running.open("attic", 10);
    assert_eq!((last_id, recent.len()), (1, 1));
    assert_eq!(running.open("attic", 0).0, epoch);
    running.stop();
}

#[test]
fn group_commit_keeps_order() {
    const N: u64 = 10_000;
    for fsync in [false, true] {
        let db = TempDb::new("group");
        let mut opts = options(&db.path());
        opts.fsync = fsync;
        opts.retain_messages = N as usize;
        let store = open(&opts).unwrap();
        let stats = store.stats();
        let running = Running::start(store);
        running.open("busy", 0);
        let started = Instant::now();
        for id in 1..=N {
            running.send_append(
                Record {
                    cid: Some(format!("c{id}")),
                    ..text(
                        "busy",
                        id,
                        "a message of about the usual length, forty-odd bytes",
                    )
                },
                None,
            );
        }
        for id in 1..=N {
            assert_eq!(running.appended(), (id, Outcome::Stored));
        }
        let took = started.elapsed();
        eprintln!(
            "store group commit (synchronous={}): {N} appends in {:.1} ms, {:.0} records/s",
            if fsync { "FULL" } else { "NORMAL" },
            took.as_secs_f64() * 1e3,
            N as f64 / took.as_secs_f64()
        );
        assert_eq!(stats.records_written.load(Ordering::Relaxed), N);
        assert_eq!(stats.write_errors.load(Ordering::Relaxed), 0);
        assert_eq!(stats.queue_len.load(Ordering::Relaxed), 0);
        let (_, last_id, recent) = running.open("busy", 2);
        assert_eq!(last_id, N);
        assert_eq!(recent[1].cid.as_deref(), Some("c10000"));

        // One at a time, each waited for: one commit per record.
        const ALONE: u64 = 200;
        let started = Instant::now();
        for id in N + 1..=N + ALONE {
            assert!(running.append(text("busy", id, "alone"), None));
        }
        let took = started.elapsed();
        eprintln!(
            "store single commits (synchronous={}): {ALONE} in {:.1} ms, {:.0} commits/s",
            if fsync { "FULL" } else { "NORMAL" },
            took.as_secs_f64() * 1e3,
            ALONE as f64 / took.as_secs_f64()
        );
        running.stop();
    }
}

#[test]
fn a_five_mib_file_round_trips() {
    let db = TempDb::new("bigfile");
    let store = open(&options(&db.path())).unwrap();
    let reader = store.reader();
    let running = Running::start(store);
    let data = bytes(5 << 20, 42);
    let mut record = file("lobby", 1, "photo.jpg", data.len() as u64);
    if let Body::File { mime, .. } = &mut record.body {
        *mime = "image/jpeg".to_owned();
    }
    assert!(running.append(record.clone(), Some(data.clone())));

    let got = reader.file("lobby", 1).unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.mime.as_str(), got.size, got.ts),
        ("photo.jpg", "image/jpeg", 5 << 20, record.ts)
    );
    assert!(got.bytes == data, "bytes differ");

    let part = reader.read_range("lobby", 1, 1000, 4096).unwrap().unwrap();
    assert_eq!((part.size, &part.bytes[..]), (5 << 20, &data[1000..5096]));
    let tail = reader.read_range("lobby", 1, (5 << 20) - 10, 100).unwrap();
    assert_eq!(tail.unwrap().bytes, &data[(5 << 20) - 10..]);
    let past = reader.read_range("lobby", 1, 6 << 20, 100).unwrap();
    assert_eq!(past.unwrap().bytes.len(), 0);
    assert_eq!(reader.file("lobby", 2).unwrap(), None);
    assert_eq!(reader.file("nowhere", 1).unwrap(), None);
    running.stop();
}

#[test]
fn cid_is_stored_and_returned() {
    let running = Running::start(open(&options(":memory:")).unwrap());
    let sent = Record {
        cid: Some("k7Qe-1".to_owned()),
        ..text("lobby", 1, "once")
    };
    assert!(running.append(sent.clone(), None));
    assert!(running.append(text("lobby", 2, "no cid"), None));
    let (_, _, recent) = running.open("lobby", 10);
    assert_eq!(recent[0], sent);
    assert_eq!(recent[1].cid, None);
    assert_eq!(running.fetch("lobby", 0, 1, 10), [sent]);
    running.stop();
}

#[test]
fn a_resent_cid_is_answered_with_the_stored_record() {
    let store = open(&options(":memory:")).unwrap();
    let stats = store.stats();
    let running = Running::start(store);
    running.open("lobby", 0);
    let with_cid = |id, body: &str, cid: &str| Record {
        cid: Some(cid.to_owned()),
        ..text("lobby", id, body)
    };
    // In one group: the resend of `a` is recognised, and uses no id.
    for record in [
        with_cid(1, "one", "a"),
        with_cid(0, "one again", "a"),
        with_cid(2, "two", "b"),
    ] {
        running.send_append(record, None);
    }
    assert_eq!(running.appended(), (1, Outcome::Stored));
    assert_eq!(running.appended(), (1, Outcome::Resent));
    assert_eq!(running.appended(), (2, Outcome::Stored));
    // Much later, in another group: still recognised, from the database.
    for id in 3..=200 {
        assert!(running.append(text("lobby", id, "filler"), None));
    }
    running.send_append(with_cid(0, "two again", "b"), None);
    assert_eq!(running.appended(), (2, Outcome::Resent));
    // The same cid from someone else is theirs.
    running.send_append(
        Record {
            from: "bob".into(),
            ..with_cid(0, "bob's", "b")
        },
        None,
    );
    assert_eq!(running.appended(), (201, Outcome::Stored));
    assert_eq!(stats.write_errors.load(Ordering::Relaxed), 0);
    running.stop();
}

#[test]
fn readers_read_while_the_writer_writes() {
    for path in [":memory:".to_owned(), TempDb::new("readers").path()] {
        let store = open(&options(&path)).unwrap();
        let reader = store.reader();
        let running = Running::start(store);
        assert!(running.append(file("lobby", 1, "a", 4096), Some(bytes(4096, 1))));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        let got = reader.file("lobby", 1).unwrap().unwrap();
                        assert_eq!(got.bytes.len(), 4096);
                    }
                })
            })
            .collect();
        for id in 2..=300 {
            running.send_append(file("lobby", id, "b", 4096), Some(bytes(4096, id)));
        }
        for id in 2..=300 {
            assert_eq!(running.appended(), (id, Outcome::Stored));
        }
        for reader in readers {
            reader.join().unwrap();
        }
        running.stop();
        if path != ":memory:" {
            TempDb(PathBuf::from(path)).remove();
        }
    }
}
