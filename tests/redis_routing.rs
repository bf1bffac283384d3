//! Rooms shared through Redis are routed per room (`--redis`): an instance
//! hears the events of the rooms it hosts (someone is in them through it)
//! and of no other, relays those once and in order, lets a room go when its
//! last member here leaves, and catches up on everything said meanwhile
//! when someone comes back.

mod support;

use serde_json::{Value, json};
use support::redis::{Redis, instance};
use support::*;

/// Events the instance's subscriber heard from Redis.
const HEARD: &str = "wschat_redis_events_total";

fn heard(server: &Server) -> f64 {
    sample(&scrape(&server.addr), HEARD)
}

fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Joins as a page does, with its browser key and, when resuming, where it
/// was; returns the client and its welcome.
fn join_keyed(
    server: &Server,
    room: &str,
    name: &str,
    since: Option<(u64, &str)>,
) -> (Client, Value) {
    let mut ws = connect_v1(&server.url("/ws"));
    let mut join =
        json!({"type": "join", "room": room, "name": name, "key": format!("{name}-browser-key-1")});
    if let Some((since, epoch)) = since {
        join["since"] = json!(since);
        join["epoch"] = json!(epoch);
    }
    send_json(&mut ws, join);
    let welcome = expect_type(&mut ws, "welcome");
    expect_type(&mut ws, "presence");
    (ws, welcome)
}

/// Ann on A and bob on B share the hall; cat on B is alone in a busy room.
/// A hears none of the busy room's traffic, and B all of its own. Returns
/// ann's and bob's clients, after messages 1 to 3 of the hall.
fn only_hosted_rooms_are_heard(a: &Server, b: &Server) -> (Client, Client) {
    let mut ann = join_v1(a, "hall", "ann");
    let mut bob = join_v1(b, "hall", "bob");
    let mut cat = join_v1(b, "elsewhere", "cat");
    assert_eq!(wait_join(&mut ann), "bob");

    // A message comes back to its sender only through Redis: once each has
    // seen one, its instance listens to the room.
    say(&mut cat, "warm", "c-warm");
    assert_eq!(texts(&messages(&mut cat, 1)), ["warm"]);
    say(&mut bob, "hello", "b-hello");
    assert_eq!(texts(&messages(&mut bob, 1)), ["hello"]);
    assert_eq!(texts(&messages(&mut ann, 1)), ["hello"]);
    let (a0, b0) = (heard(a), heard(b));

    // A busy room on B that nobody on A is in.
    const BUSY: usize = 50;
    for k in 0..BUSY {
        say(&mut cat, &format!("busy {k}"), &format!("c{k}"));
    }
    let busy = messages(&mut cat, BUSY);
    assert_eq!(ids(&busy), (2..2 + BUSY as u64).collect::<Vec<_>>());
    // Then one message in the hall: Redis sends each connection's events
    // in the order they were published, so by the time A has delivered this
    // one, it would have heard the busy room's had it been listening.
    say(&mut bob, "after", "b-after");
    assert_eq!(texts(&messages(&mut ann, 1)), ["after"]);
    assert_eq!(texts(&messages(&mut bob, 1)), ["after"]);
    assert_eq!(heard(a) - a0, 1.0, "A heard only the hall's message");
    assert_eq!(
        heard(b) - b0,
        BUSY as f64 + 1.0,
        "B heard both of its rooms"
    );
    (ann, bob)
}

#[test]
fn an_instance_hears_only_the_rooms_it_hosts_and_relays_those_once_in_order() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let (mut ann, mut bob) = only_hosted_rooms_are_heard(&a, &b);

    // The hall, shared by both instances: every message once, in one
    // order, whoever sent it.
    const EACH: usize = 20;
    for k in 0..EACH {
        say(&mut ann, &format!("ann {k}"), &format!("a{k}"));
        say(&mut bob, &format!("bob {k}"), &format!("b{k}"));
    }
    let at_a = messages(&mut ann, 2 * EACH);
    let at_b = messages(&mut bob, 2 * EACH);
    assert_eq!(ids(&at_a), (3..3 + 2 * EACH as u64).collect::<Vec<_>>());
    assert_eq!(ids(&at_a), ids(&at_b));
    assert_eq!(texts(&at_a), texts(&at_b), "one order on both instances");
    for name in ["ann", "bob"] {
        let own: Vec<String> = texts(&at_a)
            .into_iter()
            .filter(|t| t.starts_with(name))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|k| format!("{name} {k}")).collect();
        assert_eq!(own, sent, "{name}'s messages in the order sent");
    }

    // Typing and leaving still cross instances.
    send_json(&mut ann, json!({"type": "typing"}));
    assert_eq!(next_of(&mut bob, "typing")["name"], "ann");
    drop(bob);
    assert_eq!(wait_leave(&mut ann), "bob");
}

#[test]
fn a_room_let_go_by_its_last_member_here_catches_up_when_someone_comes_back() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    let (mut ann, welcome) = join_keyed(&a, "hall", "ann", None);
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let mut bob = join_v1(&b, "hall", "bob");
    assert_eq!(wait_join(&mut ann), "bob");
    for k in 0..3 {
        say(&mut bob, &format!("before {k}"), &format!("b{k}"));
    }
    let last = *ids(&messages(&mut ann, 3)).last().unwrap();
    messages(&mut bob, 3);

    // Ann closes her page: A has nobody left in the hall, lets it go and
    // forgets it.
    drop(ann);
    assert_eq!(wait_leave(&mut bob), "ann");
    a.wait_metric("wschat_rooms", |n| n == 0.0);
    let mut dee = join_v1(&a, "side", "dee");
    // Once dee has seen one of her messages come back, A listens to "side".
    say(&mut dee, "warm", "d-warm");
    assert_eq!(texts(&messages(&mut dee, 1)), ["warm"]);
    let a0 = heard(&a);
    for k in 0..5 {
        say(&mut bob, &format!("meanwhile {k}"), &format!("m{k}"));
    }
    messages(&mut bob, 5);
    // A message in a room A hosts, published after those: once dee has it,
    // A would have heard the hall's had it still listened.
    say(&mut dee, "sync", "d-sync");
    assert_eq!(texts(&messages(&mut dee, 1)), ["sync"]);
    assert_eq!(heard(&a) - a0, 1.0, "A no longer hears the hall");

    // Ann's page comes back to A, where the hall is loaded again: she gets
    // exactly what she missed, then the room live, once each.
    let (mut ann, welcome) = join_keyed(&a, "hall", "ann", Some((last, &epoch)));
    assert_eq!(welcome["recovered"], true, "{welcome}");
    let replay = messages(&mut ann, 5);
    assert_eq!(ids(&replay), (last + 1..=last + 5).collect::<Vec<_>>());
    assert!(replay.iter().all(|m| m["replay"] == true));
    assert_eq!(wait_join(&mut bob), "ann");
    say(&mut bob, "live", "b-live");
    say(&mut ann, "back", "a-back");
    let live = messages(&mut ann, 2);
    assert_eq!(ids(&live), [last + 6, last + 7]);
    let at_b = messages(&mut bob, 2);
    assert_eq!(texts(&live), texts(&at_b));
    // Nothing came twice: the next message is the next id.
    say(&mut bob, "end", "b-end");
    assert_eq!(ids(&messages(&mut ann, 1)), [last + 8]);
}

#[test]
fn presence_spans_instances_for_people_who_joined_before_the_room_was_hosted() {
    let redis = Redis::start();
    let a = instance(&redis);
    let b = instance(&redis);
    // Bob and cat are in the hall on B before anyone is on A.
    let mut bob = join_v1(&b, "hall", "bob");
    let _cat = join_v1(&b, "hall", "cat");
    assert_eq!(wait_join(&mut bob), "cat");
    let (mut ann, _, presence) = join_v1_path(&a, "/ws?room=hall&name=ann");
    assert_eq!(users_sorted(&presence), ["ann", "bob", "cat"], "{presence}");
    assert_eq!(wait_join(&mut bob), "ann");
    // A name held on B is refused on A.
    let mut other = connect_v1(&a.url("/ws?room=hall&name=bob"));
    expect_error(&mut other, "name_taken");
    // Someone joining B now is told to ann on A.
    let _dan = join_v1(&b, "hall", "dan");
    assert_eq!(wait_join(&mut ann), "dan");
    say(&mut ann, "hi", "a-hi");
    assert_eq!(next_of(&mut bob, "message")["text"], "hi");
}

#[test]
fn a_redis_without_sharded_pub_sub_gets_plain_channels_per_room() {
    // As a Redis before 7 would be: no SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE.
    let no_sharding = [
        "--rename-command",
        "SPUBLISH",
        "",
        "--rename-command",
        "SSUBSCRIBE",
        "",
        "--rename-command",
        "SUNSUBSCRIBE",
        "",
    ];
    let redis = Redis::start_with(support::redis::free_port(), &no_sharding);
    let (a, log) = Server::start_logged(&["--redis", &redis.url()]);
    let b = instance(&redis);
    let plain = |l: &str| l.contains("role=subscriber pubsub=plain");
    assert!(log.wait_for(WATCHDOG, plain).is_some(), "{:?}", log.lines());
    let (mut ann, mut bob) = only_hosted_rooms_are_heard(&a, &b);
    say(&mut ann, "plain", "a-plain");
    assert_eq!(texts(&messages(&mut bob, 1)), ["plain"]);
    assert_eq!(texts(&messages(&mut ann, 1)), ["plain"]);
}
