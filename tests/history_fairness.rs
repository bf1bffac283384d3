//! Proves that the biggest user pays when the history share of the memory
//! budget is full, at the default options: raw clients flooding rooms of
//! their own with 64 KiB texts (each six times larger as a v1 replay) fill
//! the share, and a newcomer to an unrelated quiet room still gets every one
//! of its messages, in order.

mod support;

use std::net::TcpStream;

use serde_json::json;
use support::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

fn raw_from(server: &Server, path: &str, from: &str) -> Client {
    let request = server.url(path).into_client_request().unwrap();
    let tcp: TcpStream = support::nginx::tcp_from(&server.addr, from);
    let stream = tungstenite::stream::MaybeTlsStream::Plain(tcp);
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => ws,
        Err(e) => panic!("connect {path} from {from}: {e}"),
    }
}

/// A 64 KiB text of control characters: each byte becomes six in JSON.
fn heavy_text(tag: usize) -> String {
    let mut text = format!("{tag:08}");
    text.push_str(&"\u{1}".repeat(64 * 1024 - text.len()));
    text
}

fn history_share(server: &Server) -> (f64, f64) {
    let m = scrape(&server.addr);
    (
        sample(&m, "wschat_memory_used_bytes{share=\"history\"}"),
        sample(&m, "wschat_memory_limit_bytes{share=\"history\"}"),
    )
}

#[test]
fn a_flood_of_other_rooms_leaves_a_quiet_rooms_history_to_its_newcomers() {
    let server = Server::start(&[]);
    let mut alice = join_v1(&server, "quiet", "alice");
    for i in 1..=5 {
        send_json(
            &mut alice,
            json!({"type": "message", "text": format!("q{i}")}),
        );
        expect_type(&mut alice, "message");
    }
    // Ten rooms of 45 heavy texts each: ~170 MiB of replay frames against
    // a 128 MiB share.
    let flooders: Vec<Client> = (0..10)
        .map(|r| {
            let mut ws = raw_from(
                &server,
                &format!("/ws?room=flood{r}"),
                &format!("127.0.0.{}", 10 + r),
            );
            for i in 0..45 {
                ws.send(Message::text(heavy_text(r * 100 + i))).unwrap();
            }
            ws
        })
        .collect();
    server.wait_until("the history share is full", |s| {
        let (used, limit) = history_share(s);
        used > limit * 0.9
    });
    let mut newcomer = join_v1(&server, "quiet", "newcomer");
    let texts: Vec<String> = (0..5)
        .map(|_| {
            let v = expect_type(&mut newcomer, "message");
            assert_eq!(v["replay"], true, "{v}");
            v["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(texts, ["q1", "q2", "q3", "q4", "q5"]);
    drop(flooders);
}
