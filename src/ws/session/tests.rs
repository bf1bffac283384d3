//! Unit tests of `session`.

use super::*;
use crate::testing::{self, Frame};
use clap::Parser;
use crossbeam_channel::Receiver;
use std::net::TcpStream;

/// A session with its outlet, the client end of its socket and what it
/// hands the dispatcher.
struct Client {
    session: Session,
    own: Arc<Outlet>,
    peer: TcpStream,
    events: Receiver<Input>,
}

impl Client {
    fn new(mode: Mode, config: Config) -> Client {
        let (server, peer) = testing::pair();
        let own = testing::outlet(1, server, testing::roomy());
        let (tx, events) = crossbeam_channel::unbounded();
        let endpoint = Endpoint::Room(mode, RoomQuery::default());
        let mut session = Session::new(
            1,
            endpoint,
            &Arc::new(config),
            crate::hub::hubs::Hubs::new(vec![tx]),
            Share::new("incoming", 1 << 30),
            None,
        );
        session
            .connect(peer.local_addr().unwrap(), &own)
            .expect("the hub is listening");
        Client {
            session,
            own,
            peer,
            events,
        }
    }

    fn send(&mut self, msg: Message) -> Flow {
        self.session.on_message(msg, 0, &self.own)
    }

    fn text(&mut self, text: &str) -> Flow {
        self.send(Message::text(text))
    }

    /// What the client has been sent so far.
    fn received(&mut self) -> Vec<Frame> {
        testing::until_mark(&self.own, &mut self.peer)
    }

    /// The code of the one `error` event the client has been sent.
    fn error(&mut self) -> String {
        let frames = self.received();
        assert_eq!(frames.len(), 1, "{frames:?}");
        let event = frames[0].json();
        assert_eq!(event["type"], "error", "{event}");
        event["code"].as_str().unwrap().to_owned()
    }

    /// What the session handed the dispatcher so far.
    fn told(&self) -> Vec<Input> {
        self.events
            .try_iter()
            .filter(|e| !matches!(e, Input::Connect { .. }))
            .collect()
    }
}

fn config() -> Config {
    Config::parse_from(["wschat"])
}

fn continued(flow: Flow) {
    match flow {
        Flow::Continue => {}
        Flow::Close(close) => panic!("closed: {close:?}"),
        Flow::Gone => panic!("gone"),
    }
}

fn closed(flow: Flow) -> Close {
    match flow {
        Flow::Close(close) => close,
        Flow::Continue => panic!("not closed"),
        Flow::Gone => panic!("gone"),
    }
}

#[test]
fn raw_text_over_the_limit_closes_with_1009() {
    let mut config = config();
    config.max_message_size = 8;
    let mut c = Client::new(Mode::Raw, config);
    continued(c.text("12345678"));
    let close = closed(c.text("123456789"));
    assert_eq!(u16::from(close.code()), 1009);
    assert_eq!(close.reason(), "message too big");
    assert!(!close.is_abuse());
    let told = c.told();
    assert_eq!(told.len(), 1, "only the message within the limit goes on");
    assert!(matches!(&told[0], Input::Text { text, .. } if text.as_str() == "12345678"));
}

#[test]
fn a_bad_raw_file_header_closes_with_1007() {
    for frame in [vec![7u8], vec![5, 0, b'a', b'b'], vec![2, 0, 0xff, 0xfe, 1]] {
        let mut c = Client::new(Mode::Raw, config());
        let close = closed(c.send(Message::binary(frame.clone())));
        assert_eq!(u16::from(close.code()), 1007, "{frame:?}");
        assert_eq!(close.reason(), "bad file header");
        assert!(c.told().is_empty());
    }
    // A good one goes on, its bytes after the header.
    let mut c = Client::new(Mode::Raw, config());
    continued(c.send(Message::binary(protocol::file_frame("a.txt", b"abc"))));
    let told = c.told();
    assert!(
        matches!(&told[..], [Input::File { name, data, .. }] if name == "a.txt" && &data[..] == b"abc")
    );
}

#[test]
fn a_v1_file_announced_before_joining_is_refused() {
    let mut c = Client::new(Mode::V1, config());
    continued(c.text(r#"{"type":"file","name":"a.txt","size":3}"#));
    assert_eq!(c.error(), "not_joined");
    // Nothing was announced, so its bytes are unexpected.
    continued(c.send(Message::binary(b"abc".to_vec())));
    assert_eq!(c.error(), "unexpected_binary");
    assert!(c.told().is_empty());
    assert_eq!(c.session.message_limit(), c.session.config.max_message_size);
}

#[test]
fn v1_bytes_without_an_announcement_are_unexpected() {
    let mut c = Client::new(Mode::V1, config());
    continued(c.text(r#"{"type":"join","room":"r","name":"ann"}"#));
    assert!(matches!(&c.told()[..], [Input::Join(_)]));
    continued(c.send(Message::binary(b"abc".to_vec())));
    assert_eq!(c.error(), "unexpected_binary");
    assert!(c.told().is_empty());
}

#[test]
fn v1_bytes_of_another_size_than_announced_are_refused() {
    let mut c = Client::new(Mode::V1, config());
    continued(c.text(r#"{"type":"join","room":"r","name":"ann"}"#));
    continued(c.text(r#"{"type":"file","name":"a.txt","size":3}"#));
    assert!(c.received().is_empty(), "an announcement has no answer");
    continued(c.send(Message::binary(b"ab".to_vec())));
    assert_eq!(c.error(), "size_mismatch");
    // The announcement is spent: the right size now is unexpected.
    continued(c.send(Message::binary(b"abc".to_vec())));
    assert_eq!(c.error(), "unexpected_binary");
    // Announced again and sent whole, the file goes on.
    continued(c.text(r#"{"type":"file","name":"a.txt","size":3,"cid":"f1"}"#));
    continued(c.send(Message::binary(b"abc".to_vec())));
    let told = c.told();
    assert!(matches!(&told[0], Input::Join(_)));
    assert!(
        matches!(&told[1..], [Input::File { name, data, cid: Some(cid), raw_frame: None, .. }]
            if name == "a.txt" && &data[..] == b"abc" && cid == "f1"),
        "{told:?}"
    );
}

#[test]
fn running_out_of_errors_closes_as_abuse() {
    let mut c = Client::new(Mode::V1, config());
    let mut errors = 0;
    let close = loop {
        match c.text("not json") {
            Flow::Continue => {
                assert_eq!(c.error(), "bad_json");
                errors += 1;
                assert!(errors <= ERROR_BURST + 1, "never closed");
            }
            flow => break closed(flow),
        }
    };
    // The budget earns one back a second: one more if the test was slow.
    assert!(
        (ERROR_BURST..=ERROR_BURST + 1).contains(&errors),
        "{errors}"
    );
    assert_eq!(u16::from(close.code()), 1008);
    assert_eq!(close.reason(), "too many errors");
    assert!(close.is_abuse());
    assert!(c.received().is_empty(), "no error frame with the close");
}

#[test]
fn over_its_rate_a_v1_client_is_held_back_and_told_once() {
    let mut config = config();
    config.rate = 20.0;
    config.burst = 1;
    let mut c = Client::new(Mode::V1, config);
    for i in 0..3 {
        continued(c.text(&format!(r#"{{"type":"message","text":"m{i}"}}"#)));
    }
    // Two frames over the burst at 20 a second: each waited for the
    // allowance it lacked, and no more (bar the 1 ms floor of a wait).
    assert!(c.session.held > Duration::ZERO);
    assert!(
        c.session.held <= Duration::from_millis(2 * 50 + 2),
        "{:?}",
        c.session.held
    );
    let frames = c.received();
    assert_eq!(frames.len(), 1, "one notice: {frames:?}");
    let notice = frames[0].json();
    assert_eq!(notice["type"], "slow_down");
    let wait = notice["wait_ms"].as_u64().unwrap();
    assert!((1..=50).contains(&wait), "{wait}");
    // Held back, nothing lost, in order.
    let texts: Vec<String> = c
        .told()
        .into_iter()
        .map(|e| match e {
            Input::Text { text, .. } => text.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2"]);
}

#[test]
fn a_raw_client_is_held_back_without_a_notice() {
    let mut config = config();
    config.rate = 20.0;
    config.burst = 2;
    let mut c = Client::new(Mode::Raw, config);
    for i in 0..3 {
        continued(c.text(&format!("m{i}")));
    }
    assert!(c.session.held > Duration::ZERO);
    assert!(c.session.held <= Duration::from_millis(50 + 1));
    assert!(c.received().is_empty());
    assert_eq!(c.told().len(), 3);
}
