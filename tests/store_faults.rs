//! Proves that acknowledged means stored, at the default options: with the
//! database on a full filesystem a message is refused to its sender as
//! `unavailable` (with its `cid`) and delivered to nobody, `/readyz` says
//! 503 and `/metrics` counts it; once space is freed the server takes
//! messages again without a restart, the resends are delivered once each,
//! and after a restart ids go on from the last stored one and a resume from
//! before the fault gets exactly what was stored (`recovered: true`). A raw
//! client, which has no way to hear of an error, is closed with 1013.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::nginx::ws_from;
use support::*;

/// A small tmpfs mounted for the test, unmounted when dropped: a disk that
/// fills.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(tag: &str, size: &str) -> SmallDisk {
        let dir = TempDir::new(tag);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir.path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a small tmpfs to fill it and needs root: run it as root \
             (`sudo -E cargo test --test store_faults`)"
        );
        SmallDisk { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path.join(name)
    }

    /// Writes a file until the filesystem refuses more.
    fn fill(&self) -> PathBuf {
        let path = self.path("filler");
        let mut f = fs::File::create(&path).unwrap();
        let block = vec![0x5a; 64 * 1024];
        loop {
            if f.write_all(&block).is_err() || f.sync_all().is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir.path).status();
    }
}

fn v1_from(server: &Server, from: &str) -> Client {
    ws_from(
        &server.addr,
        "/ws",
        from,
        &["Sec-WebSocket-Protocol: wschat.v1"],
    )
    .unwrap()
}

fn join(ws: &mut Client, room: &str, name: &str) -> Value {
    join_frame(ws, room, name)
}

fn status(server: &Server, path: &str) -> u16 {
    http_fetch(&server.addr, path).status
}

fn start(db: &Path) -> Server {
    Server::start(&["--db", db.to_str().unwrap()])
}

#[test]
fn a_full_disk_refuses_messages_and_recovers_without_a_restart() {
    let disk = SmallDisk::mount("store-full", "4m");
    let db = disk.path("chat.db");
    let server = start(&db);
    let mut ann = v1_from(&server, "127.0.0.2");
    let mut bob = v1_from(&server, "127.0.0.3");
    let welcome = join(&mut ann, "lobby", "ann");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    join(&mut bob, "lobby", "bob");
    expect_type(&mut ann, "join");
    say(&mut ann, "before", "c0");
    assert_eq!(expect_type(&mut ann, "message")["id"], 1);
    assert_eq!(expect_type(&mut bob, "message")["text"], "before");
    assert_eq!(status(&server, "/readyz"), 200);

    let filler = disk.fill();
    for i in 1..=20 {
        say(&mut ann, &format!("m{i}"), &format!("c{i}"));
        let error = expect_error(&mut ann, "unavailable");
        assert_eq!(error["cid"], format!("c{i}"), "{error}");
    }
    assert_eq!(status(&server, "/readyz"), 503);
    let metrics = scrape(&server.addr);
    assert_eq!(sample(&metrics, "wschat_store_failing"), 1.0);
    assert!(sample(&metrics, "wschat_store_write_errors_total") >= 20.0);

    // Space comes back: the server is ready again by itself, and every
    // resend is stored once, under the ids after the last stored one.
    fs::remove_file(filler).unwrap();
    server.wait_until("ready again", |s| status(s, "/readyz") == 200);
    for i in 1..=20 {
        say(&mut ann, &format!("m{i}"), &format!("c{i}"));
        let ack = expect_type(&mut ann, "message");
        assert_eq!(
            (ack["id"].as_u64(), ack["cid"].as_str()),
            (Some(i + 1), Some(&*format!("c{i}")))
        );
    }
    // Bob got each once, in order, and nothing of the refused sends.
    for i in 1..=20u64 {
        let v = expect_type(&mut bob, "message");
        assert_eq!(
            (v["id"].as_u64(), v["text"].as_str()),
            (Some(i + 1), Some(&*format!("m{i}")))
        );
    }
    // A resend of one already stored is answered, not stored again.
    say(&mut ann, "m5", "c5");
    let again = expect_type(&mut ann, "message");
    assert_eq!(
        (again["id"].as_u64(), again["replay"].as_bool()),
        (Some(6), Some(true))
    );
    drop(server);

    // After a restart ids go on, and a resume from before the fault gets
    // exactly the stored messages.
    let server = start(&db);
    let mut bob = v1_from(&server, "127.0.0.3");
    send_json(
        &mut bob,
        json!({"type": "join", "room": "lobby", "name": "bob", "since": 1, "epoch": epoch}),
    );
    let welcome = expect_type(&mut bob, "welcome");
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["last_id"], 21, "{welcome}");
    expect_type(&mut bob, "presence");
    let replayed: Vec<u64> = (0..20)
        .map(|_| expect_type(&mut bob, "message")["id"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, (2..=21).collect::<Vec<_>>());
    say(&mut bob, "after", "b1");
    assert_eq!(expect_type(&mut bob, "message")["id"], 22);
}

#[test]
fn a_raw_client_whose_message_cannot_be_stored_is_closed_with_1013() {
    let disk = SmallDisk::mount("store-full-raw", "4m");
    let server = start(&disk.path("chat.db"));
    let mut watcher = join_v1(&server, "lobby", "watcher");
    let (mut raw, _) = connect_raw_synced(&server, &mut watcher, "/ws");
    send_text(&mut raw, "stored");
    assert_eq!(expect_type(&mut watcher, "message")["text"], "stored");
    let _filler = disk.fill();
    send_text(&mut raw, "lost?");
    assert_eq!(close_code(&mut raw), Some(1013));
    // The watcher saw nothing of it: the next thing it hears is the leave.
    let v = next_json(&mut watcher);
    assert_eq!(v["type"], "leave", "{v}");
}
