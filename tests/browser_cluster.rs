//! The chat page in a real browser against shared rooms (`--redis`): two
//! wschat instances on one real Redis, behind one real nginx whose
//! `upstream` lists both (docs/DEPLOY.md, "Scaling out"), and two pages,
//! each reaching its own instance; and the admin view of one instance
//! showing the people of both.

mod support;

use std::process::Command;

use support::chromium::{prepare, run_script};
use support::nginx::Nginx;
use support::redis::Redis;
use support::{Server, admin_api, join_v1};

/// Two pages chatting across instances while Redis is restarted without
/// persistence under them, then stops answering for a moment:
///
/// - Each page is pinned to an instance by a cookie that nginx hashes
///   (`hash $cookie_wschat_pin` in place of the docs' `least_conn`); the
///   test finds a value for each instance by asking nginx, and the script
///   checks with each instance's `/metrics` that each holds one page.
/// - After the restart both instances close their page with 1012 `history
///   reset`; the pages come back (through nginx, to the same instances),
///   resume with `since` and `epoch`, are told `recovered:false`,
///   `reason:"epoch"`, say that the history was reset, and chat again
///   across instances, every message shown once on both.
/// - While Redis is paused, a message is refused as `unavailable` with its
///   `cid`; the page keeps it, sends it again with the same `cid`, and once
///   Redis is back it shows once on both pages.
#[test]
fn pages_on_two_instances_get_through_a_redis_restart() {
    let _guard = prepare();
    let mut redis = Redis::start();
    let instance = || Server::start(&["--redis", &redis.url(), "--trusted-proxy", "127.0.0.1"]);
    let (a, b) = (instance(), instance());
    let nginx = Nginx::balancing(&[&a, &b]);
    let (pin_a, pin_b) = (nginx.pin_for(&a), nginx.pin_for(&b));
    let args = [
        nginx.addr.as_str(),
        support::nginx::balanced::PIN_COOKIE,
        &pin_a,
        &pin_b,
        &a.addr,
        &b.addr,
    ];
    let stdout = run_script("cluster_reset.mjs", &args, |command| {
        match command {
            "redis restart" => redis.restart(),
            "redis pause" => redis.pause(),
            "redis resume" => redis.resume(),
            _ => return false,
        }
        true
    });
    print!("{stdout}");
    drop(nginx);
}

const ADMIN: &str = "the admin token of the browser test";

/// The admin view of instance A lists ann (on A) and bob (on B), each with
/// the instance they are on; once B is killed, it says that one instance
/// did not answer and that its people are not listed.
#[test]
fn the_admin_view_shows_every_instance_and_names_a_dead_one() {
    let _guard = prepare();
    let redis = Redis::start();
    let instance = || Server::start(&["--redis", &redis.url(), "--admin-token", ADMIN]);
    let (a, b) = (instance(), instance());
    let _ann = join_v1(&a, "staff", "ann");
    let _bob = join_v1(&b, "staff", "bob");
    // Both instances registered (each does once its subscription is up).
    a.wait_until("both instances to answer", |a| {
        let r = admin_api(a, "GET", "/api/rooms", Some(ADMIN), None);
        r.text().contains(r#""missing":[]"#) && r.text().matches(r#""instance":"#).count() == 2
    });
    let stdout = run_script(
        "admin_instances.mjs",
        &[&a.addr, ADMIN, "staff"],
        |command| {
            if command != "kill b" {
                return false;
            }
            Command::new("kill")
                .args(["-9", &b.pid().to_string()])
                .status()
                .unwrap();
            true
        },
    );
    print!("{stdout}");
}
