//! Proves the admin view of any instance sharing a Redis (`--redis`) is
//! the whole service's: it lists every instance's people with the instance
//! they are on, a kick or ban closes and counts connections on every
//! instance, and an instance that died is named as not answering instead of
//! being waited for or silently left out.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::Redis;
use support::*;

const ADMIN: &str = "an admin token for the tests";

fn with_admin(redis: &Redis) -> Server {
    Server::start(&["--redis", &redis.url(), "--admin-token", ADMIN])
}

/// The answer to an admin request, which must be a 200.
fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = admin_api(server, method, path, Some(ADMIN), body);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_str(&r.text()).expect("a JSON answer")
}

fn rooms(server: &Server) -> Value {
    api(server, "GET", "/api/rooms", None)
}

/// Waits until `server`'s view is answered by `n` instances (each
/// registers once its subscription is up).
fn wait_for_instances(server: &Server, n: usize) -> Value {
    let mut last = Value::Null;
    server.wait_until("every instance to answer the admin view", |s| {
        last = rooms(s);
        last["instances"].as_array().map(Vec::len) == Some(n)
    });
    last
}

/// `(room, name, instance)` of everyone the view lists.
fn people(view: &Value) -> HashSet<(String, String, String)> {
    let mut all = HashSet::new();
    for room in view["rooms"].as_array().expect("rooms") {
        for person in room["people"].as_array().expect("people") {
            all.insert((
                room["name"].as_str().unwrap().to_owned(),
                person["name"].as_str().unwrap().to_owned(),
                person["instance"].as_str().expect("an instance").to_owned(),
            ));
        }
    }
    all
}

/// The instance `name` is listed on.
fn instance_of(view: &Value, name: &str) -> String {
    people(view)
        .into_iter()
        .find(|(_, n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in {view}"))
        .2
}

/// Joins `room` as `name` with a per-browser key, as the page does: the
/// same key on two instances is the same person.
fn join_keyed(server: &Server, room: &str, name: &str) -> Client {
    let mut ws = connect_v1(&server.url("/ws"));
    send_json(
        &mut ws,
        json!({"type": "join", "room": room, "name": name, "key": format!("{name}-browser-key-1")}),
    );
    expect_type(&mut ws, "welcome");
    ws
}

#[test]
fn the_admin_view_lists_every_instances_people() {
    let redis = Redis::start();
    let servers: Vec<Server> = (0..3).map(|_| with_admin(&redis)).collect();
    let mut ann = join_v1(&servers[0], "hall", "ann");
    let _bob = join_v1(&servers[1], "hall", "bob");
    let _cat = join_v1(&servers[2], "yard", "cat");
    assert_eq!(wait_join(&mut ann), "bob");

    let view = wait_for_instances(&servers[0], 3);
    assert_eq!(view["missing"], json!([]), "{view}");
    let ids: HashSet<String> = ["ann", "bob", "cat"]
        .iter()
        .map(|n| instance_of(&view, n))
        .collect();
    assert_eq!(ids.len(), 3, "each on its own instance: {view}");
    let listed: HashSet<(String, String)> = people(&view)
        .into_iter()
        .map(|(room, name, _)| (room, name))
        .collect();
    let expected: HashSet<(String, String)> = [("hall", "ann"), ("hall", "bob"), ("yard", "cat")]
        .iter()
        .map(|(r, n)| (r.to_string(), n.to_string()))
        .collect();
    assert_eq!(listed, expected);
    let hall = view["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hall")
        .unwrap();
    assert_eq!(hall["connections"], 2, "one room, merged: {hall}");
    assert_eq!(view["connections"], 3);
    // Every instance's view is the same.
    for server in &servers[1..] {
        let theirs = wait_for_instances(server, 3);
        assert_eq!(people(&theirs), people(&view));
    }
}

#[test]
fn a_kick_closes_and_counts_connections_on_every_instance() {
    let redis = Redis::start();
    let servers: Vec<Server> = (0..3).map(|_| with_admin(&redis)).collect();
    let mut on_a = join_keyed(&servers[0], "hall", "bob");
    let mut on_b = join_keyed(&servers[1], "hall", "bob");
    let mut ann = join_v1(&servers[2], "hall", "ann");
    let view = wait_for_instances(&servers[2], 3);
    let bobs: HashSet<String> = people(&view)
        .into_iter()
        .filter(|(_, n, _)| n == "bob")
        .map(|(_, _, i)| i)
        .collect();
    assert_eq!(bobs.len(), 2, "bob listed once per instance: {view}");

    // Kicked through the third instance, where bob has no connection.
    let kicked = api(
        &servers[2],
        "POST",
        "/api/kick",
        Some(json!({"name": "bob"})),
    );
    assert_eq!(kicked["kicked"], 2, "{kicked}");
    assert_eq!(kicked["missing"], json!([]));
    for ws in [&mut on_a, &mut on_b] {
        assert_eq!(
            close_frame(ws),
            Some((1008, "kicked by moderator".to_string()))
        );
    }
    assert_eq!(wait_leave(&mut ann), "bob");
    let after = rooms(&servers[0]);
    assert!(
        !people(&after).iter().any(|(_, n, _)| n == "bob"),
        "{after}"
    );
}

#[test]
fn a_ban_from_one_instance_counts_and_refuses_the_name_on_another() {
    let redis = Redis::start();
    let servers: Vec<Server> = (0..3).map(|_| with_admin(&redis)).collect();
    let mut bob = join_v1(&servers[1], "hall", "bob");
    wait_for_instances(&servers[0], 3);

    let banned = api(
        &servers[0],
        "POST",
        "/api/ban",
        Some(json!({"name": "bob", "minutes": 5})),
    );
    assert_eq!(banned["kicked"], 1, "bob's connection on B: {banned}");
    assert_eq!(
        close_frame(&mut bob),
        Some((1008, "banned by moderator".to_string()))
    );
    let mut again = connect_v1(&servers[2].url("/ws"));
    send_json(
        &mut again,
        json!({"type": "join", "room": "hall", "name": "bob"}),
    );
    expect_error(&mut again, "banned");
    let view = rooms(&servers[2]);
    assert_eq!(view["bans"][0]["name"], "bob", "{view}");

    let lifted = api(
        &servers[2],
        "POST",
        "/api/unban",
        Some(json!({"name": "bob"})),
    );
    assert_eq!(lifted["unbanned"], true, "{lifted}");
    join_v1(&servers[1], "hall", "bob");
}

#[test]
fn a_killed_instance_is_named_as_missing_not_waited_for() {
    let redis = Redis::start();
    let servers: Vec<Server> = (0..3).map(|_| with_admin(&redis)).collect();
    let mut ann = join_v1(&servers[0], "hall", "ann");
    let mut cat = join_v1(&servers[2], "hall", "cat");
    assert_eq!(wait_join(&mut ann), "cat");
    let view = wait_for_instances(&servers[0], 3);
    let dead = instance_of(&view, "cat");

    Command::new("kill")
        .args(["-9", &servers[2].pid().to_string()])
        .status()
        .unwrap();
    wait_disconnected(&mut cat);

    let asked = Instant::now();
    let view = rooms(&servers[0]);
    let took = asked.elapsed();
    assert_eq!(view["missing"], json!([dead]), "{view}");
    assert_eq!(view["instances"].as_array().unwrap().len(), 2, "{view}");
    assert!(
        !people(&view).iter().any(|(_, n, _)| n == "cat"),
        "the dead instance's people are not made up: {view}"
    );
    // About a second of waiting for it, not the request's whole timeout.
    assert!(took < Duration::from_secs(4), "took {took:?}");

    // A kick says so too: its count covers only the instances that answered.
    let kicked = api(
        &servers[1],
        "POST",
        "/api/kick",
        Some(json!({"name": "ann"})),
    );
    assert_eq!(kicked["kicked"], 1, "{kicked}");
    assert_eq!(kicked["missing"], json!([dead]), "{kicked}");
}

#[test]
fn a_stopped_instance_leaves_the_view_at_once() {
    let redis = Redis::start();
    let mut servers: Vec<Server> = (0..2).map(|_| with_admin(&redis)).collect();
    let mut ann = join_v1(&servers[0], "hall", "ann");
    let _bob = join_v1(&servers[1], "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    wait_for_instances(&servers[0], 2);

    // A graceful stop (SIGTERM) takes the instance out of the registry as
    // it ends: it is neither waited for nor named missing, as a killed one
    // is until its entry lapses.
    let stopped = servers.pop().expect("two servers");
    assert!(stopped.terminate().success());
    let asked = Instant::now();
    let view = rooms(&servers[0]);
    assert_eq!(view["missing"], json!([]), "{view}");
    assert_eq!(view["instances"].as_array().unwrap().len(), 1, "{view}");
    assert!(
        asked.elapsed() < Duration::from_millis(900),
        "answered without waiting for the stopped instance: {:?}",
        asked.elapsed()
    );
}
