//! Proves that instances sharing rooms through a real Redis Cluster (three
//! masters; `--redis` names one of them) relay every room, whichever shard
//! holds it, once and in one order; that a killed instance's clients resume
//! on another with nothing lost; and that a shard failing over to its
//! replica, or restarted empty, gives its rooms a new epoch
//! (`recovered:false`) while rooms on the other shards keep theirs; and
//! that the admin view of one instance lists every instance's people and a
//! moderator's ban through it counts and holds on the others.

mod support;

use std::collections::HashSet;
use std::process::Command;

use serde_json::{Value, json};
use support::redis_cluster::{RedisCluster, cli};
use support::*;

fn instance(cluster: &RedisCluster) -> Server {
    Server::start(&["--redis", &cluster.url()])
}

/// Asserts that the room's keys are on the master at `port`.
fn assert_on(room: &str, port: u16) {
    let key = format!("wschat:{{{room}}}:meta");
    assert!(RedisCluster::holds(port, &key), "{key} is not on :{port}");
}

#[test]
fn rooms_on_every_shard_reach_every_instance_once_in_one_order() {
    let cluster = RedisCluster::start(false);
    let servers: Vec<Server> = (0..3).map(|_| instance(&cluster)).collect();
    let rooms: Vec<String> = (0..3).map(|i| cluster.room_on(i, "hall")).collect();
    let names = ["ann", "bob", "cat"];
    // In every room, one person through each instance.
    let mut clients: Vec<Vec<Client>> = rooms
        .iter()
        .map(|room| {
            servers
                .iter()
                .zip(names)
                .map(|(s, n)| join_v1(s, room, n))
                .collect()
        })
        .collect();
    for (room, master) in rooms.iter().zip(&cluster.masters) {
        assert_on(room, master.port);
    }
    for room in clients.iter_mut() {
        for (i, ws) in room.iter_mut().enumerate() {
            let mut joined = HashSet::new();
            while joined.len() < 2 - i {
                joined.insert(wait_join(ws));
            }
        }
    }
    const EACH: usize = 15;
    for k in 0..EACH {
        for (r, room) in clients.iter_mut().enumerate() {
            for (i, ws) in room.iter_mut().enumerate() {
                say(
                    ws,
                    &format!("{} {r} {k}", names[i]),
                    &format!("{r}-{i}-{k}"),
                );
            }
        }
    }
    let total = EACH * 3;
    for (r, room) in clients.iter_mut().enumerate() {
        let mut orders = Vec::new();
        for ws in room.iter_mut() {
            let got = messages(ws, total);
            let ids: Vec<u64> = got.iter().map(|m| m["id"].as_u64().unwrap()).collect();
            assert_eq!(ids, (1..=total as u64).collect::<Vec<_>>(), "room {r}");
            let texts: Vec<String> = got.iter().map(|m| m["text"].to_string()).collect();
            assert!(
                texts.iter().all(|t| t.contains(&format!(" {r} "))),
                "room {r}"
            );
            orders.push(texts);
        }
        assert_eq!(orders[0], orders[1], "room {r}: instances disagree");
        assert_eq!(orders[0], orders[2], "room {r}: instances disagree");
        for name in names {
            let own: Vec<&String> = orders[0].iter().filter(|t| t.contains(name)).collect();
            let sent: Vec<String> = (0..EACH).map(|k| format!("\"{name} {r} {k}\"")).collect();
            assert_eq!(own, sent.iter().collect::<Vec<_>>(), "room {r}");
        }
    }
}

/// Joins `room` through `server` with a page's key, resuming after `since`
/// of `epoch` when given, retrying while the instance says it cannot reach
/// Redis (as the page does); returns the client and its welcome.
fn rejoin(server: &Server, room: &str, name: &str, since: Option<(u64, &str)>) -> (Client, Value) {
    loop {
        let mut ws = connect_v1(&server.url("/ws"));
        let mut join = json!({"type": "join", "room": room, "name": name, "key": format!("{name}-browser-key-1")});
        if let Some((since, epoch)) = since {
            join["since"] = json!(since);
            join["epoch"] = json!(epoch);
        }
        send_json(&mut ws, join);
        let welcome = next_json(&mut ws);
        if welcome["type"] == "welcome" {
            return (ws, welcome);
        }
        assert_eq!(welcome["code"], "unavailable", "{welcome}");
        server.wait_until("/readyz 200", |s| {
            http_fetch(&s.addr, "/readyz").status == 200
        });
    }
}

#[test]
fn a_killed_instances_clients_resume_on_another_with_nothing_lost() {
    let cluster = RedisCluster::start(false);
    let a = instance(&cluster);
    let b = instance(&cluster);
    let room = cluster.room_on(2, "den");
    let (mut ann, welcome) = rejoin(&a, &room, "ann", None);
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let mut bob = join_v1(&b, &room, "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    for k in 0..5 {
        say(&mut ann, &format!("before {k}"), &format!("a{k}"));
    }
    let last = messages(&mut ann, 5)[4]["id"].as_u64().unwrap();
    messages(&mut bob, 5);

    Command::new("kill")
        .args(["-9", &a.pid().to_string()])
        .status()
        .unwrap();
    wait_disconnected(&mut ann);
    for k in 0..3 {
        say(&mut bob, &format!("meanwhile {k}"), &format!("b{k}"));
    }
    messages(&mut bob, 3);

    let (mut ann, welcome) = rejoin(&b, &room, "ann", Some((last, &epoch)));
    assert_eq!(welcome["recovered"], true, "{welcome}");
    let replay = messages(&mut ann, 3);
    let ids: Vec<u64> = replay.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (last + 1..=last + 3).collect::<Vec<_>>());
}

/// A room on the shard that fails and one on another, each with a message
/// said through `server`: the clients, the rooms and their epochs.
struct TwoRooms {
    hit: (String, Client, String),
    spared: (String, Client, String),
}

fn two_rooms(server: &Server, cluster: &RedisCluster, hit: usize, spared: usize) -> TwoRooms {
    let open = |i: usize, name: &str| {
        let room = cluster.room_on(i, "shard");
        let (mut ws, welcome) = rejoin(server, &room, name, None);
        assert_on(&room, cluster.masters[i].port);
        say(&mut ws, "kept?", &format!("{name}-1"));
        assert_eq!(messages(&mut ws, 1)[0]["id"], 1);
        let epoch = welcome["epoch"].as_str().unwrap().to_owned();
        (room, ws, epoch)
    };
    TwoRooms {
        hit: open(hit, "ann"),
        spared: open(spared, "bob"),
    }
}

/// The hit room's people are told its history reset, and come back to a
/// new epoch; the spared room's go on in theirs, and a page resuming there
/// recovers.
fn assert_only_the_hit_room_reset(server: &Server, rooms: TwoRooms) {
    let (room, mut ann, epoch) = rooms.hit;
    let (code, reason) = close_frame(&mut ann).expect("a close frame");
    assert_eq!((code, reason.as_str()), (1012, "history reset"));
    let (_ann, welcome) = rejoin(server, &room, "ann", Some((1, &epoch)));
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "epoch", "{welcome}");
    assert_ne!(welcome["epoch"], epoch.as_str());

    let (room, mut bob, epoch) = rooms.spared;
    say(&mut bob, "still here", "bob-2");
    assert_eq!(messages(&mut bob, 1)[0]["id"], 2, "the spared room goes on");
    let (_page, welcome) = rejoin(server, &room, "bob", Some((1, &epoch)));
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["epoch"], epoch.as_str());
}

#[test]
fn a_failed_over_shard_gives_its_rooms_a_new_epoch_and_others_keep_theirs() {
    let cluster = RedisCluster::start(true);
    let a = instance(&cluster);
    let rooms = two_rooms(&a, &cluster, 0, 1);
    let replica = cluster.replica.as_ref().unwrap().port;
    // The replica has every write: even so, ids given by the old master
    // cannot be trusted once another one took over.
    let master = cluster.masters[0].port;
    assert_eq!(cli(master, &["WAIT", "1", "5000"]).trim(), "1");

    Command::new("kill")
        .args(["-9", &cluster.masters[0].pid().to_string()])
        .status()
        .unwrap();
    support::redis_cluster::wait_for("the replica to take over", || {
        support::redis_cluster::info(replica, "replication").contains("role:master")
    });
    assert_only_the_hit_room_reset(&a, rooms);
}

#[test]
fn a_shard_restarted_empty_gives_its_rooms_a_new_epoch_and_others_keep_theirs() {
    let mut cluster = RedisCluster::start(false);
    let a = instance(&cluster);
    let rooms = two_rooms(&a, &cluster, 2, 0);
    // Same nodes.conf: it takes its slots back, without their keys.
    cluster.masters[2].restart();
    cluster.wait_ok();
    assert_only_the_hit_room_reset(&a, rooms);
}

const ADMIN: &str = "an admin token for the tests";

#[test]
fn a_ban_through_one_instance_holds_on_the_others() {
    let cluster = RedisCluster::start(false);
    let with_admin = || Server::start(&["--redis", &cluster.url(), "--admin-token", ADMIN]);
    let a = with_admin();
    let b = with_admin();
    let room = cluster.room_on(1, "hall");
    let mut ann = join_v1(&a, &room, "ann");
    let mut bob = join_v1(&b, &room, "bob");
    assert_eq!(wait_join(&mut ann), "bob");

    // The admin view of either instance lists both instances' people,
    // once both have registered with the cluster.
    a.wait_until("the admin view to list ann and bob", |s| {
        let r = admin_api(s, "GET", "/api/rooms", Some(ADMIN), None);
        let view: Value = serde_json::from_str(&r.text()).unwrap_or(Value::Null);
        let named: HashSet<&str> = view["rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|room| room["people"].as_array().into_iter().flatten())
            .filter_map(|p| p["name"].as_str())
            .collect();
        view["instances"].as_array().map(Vec::len) == Some(2)
            && view["missing"] == json!([])
            && named == HashSet::from(["ann", "bob"])
    });

    // Moderation is published on one node and heard from every node, and
    // the ban counts bob's connection on the other instance.
    let r = admin_api(
        &a,
        "POST",
        "/api/ban",
        Some(ADMIN),
        Some(json!({"name": "bob", "minutes": 5})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let banned: Value = serde_json::from_str(&r.text()).expect("a JSON answer");
    assert_eq!(banned["kicked"], 1, "{banned}");
    assert_eq!(
        close_frame(&mut bob),
        Some((1008, "banned by moderator".to_string()))
    );
    assert_eq!(wait_leave(&mut ann), "bob");
    // An instance started after the ban reads it from the cluster.
    let c = with_admin();
    let mut again = connect_v1(&c.url("/ws"));
    send_json(
        &mut again,
        json!({"type": "join", "room": room, "name": "bob"}),
    );
    expect_error(&mut again, "banned");
}
