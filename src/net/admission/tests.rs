//! Unit tests of `admission`.

use super::*;
use std::io::Read;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A connection's ticket, as the accept thread hands it out, with the
/// ends that see what it gives back.
struct Held {
    ticket: Ticket,
    released: Receiver<Release>,
    alive: Receiver<()>,
}

fn ticket(peer: IpAddr, counted: bool) -> Held {
    let (release, released) = crossbeam_channel::unbounded();
    let (alive_tx, alive) = crossbeam_channel::bounded(0);
    Held {
        ticket: Ticket::new(release, peer, counted, alive_tx),
        released,
        alive,
    }
}

fn head() -> Head {
    Head {
        method: "GET".into(),
        target: "/ws".into(),
        version: 1,
        headers: vec![("Host".into(), "127.0.0.1:8080".into())],
    }
}

/// What `check` decides for a request from `client`.
fn check_from(ticket: &mut Ticket, client: IpAddr, admission: &Admission) -> Result<(), Denial> {
    let seen = Seen {
        scheme: "http".into(),
        host: Some("127.0.0.1:8080".into()),
    };
    let hosts = Hosts::new(&[]).unwrap();
    check(
        ticket,
        (SocketAddr::new(client, 40000), &seen),
        &head(),
        &hosts,
        admission,
    )
}

/// The status line and `Retry-After` of the answer to a refusal.
fn answer(refusal: Denial) -> (String, Option<String>) {
    let (server, mut client) = crate::testing::pair();
    refuse(
        &server,
        &head(),
        "127.0.0.1:40000".parse().unwrap(),
        refusal,
    );
    drop(server);
    let mut text = String::new();
    client.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap().to_owned();
    let retry = text
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .map(str::to_owned);
    (status, retry)
}

#[test]
fn past_the_burst_an_address_gets_429_and_another_is_unaffected() {
    // Three at once, then one every 1,000 seconds.
    let admission = Admission::start(100, 0.001, 3).unwrap();
    let mut tickets: Vec<Held> = Vec::new();
    for _ in 0..3 {
        let mut t = ticket(ip(2), true);
        assert!(check_from(&mut t.ticket, ip(2), &admission).is_ok());
        tickets.push(t);
    }
    let mut t = ticket(ip(2), true);
    let refusal = check_from(&mut t.ticket, ip(2), &admission).err().unwrap();
    let Denial::TooFast(wait) = refusal else {
        panic!("not refused for its rate");
    };
    assert!(wait > Duration::from_secs(990), "{wait:?}");
    assert_eq!(
        answer(Denial::TooFast(wait)),
        ("HTTP/1.1 429 Too Many Requests".into(), Some("1000".into()))
    );
    // Refused, it holds no place: closing the others would not free one.
    assert!(t.ticket.client.is_none());
    // Its own bucket: another address is admitted.
    let mut other = ticket(ip(3), true);
    assert!(check_from(&mut other.ticket, ip(3), &admission).is_ok());
    // Closing connections does not refill the bucket.
    tickets.clear();
    let mut again = ticket(ip(2), true);
    assert!(matches!(
        check_from(&mut again.ticket, ip(2), &admission),
        Err(Denial::TooFast(_))
    ));
}

#[test]
fn the_per_address_cap_gives_503_until_a_ticket_is_dropped() {
    let admission = Admission::start(2, 1000.0, 1000).unwrap();
    let mut first = ticket(ip(2), true);
    let mut second = ticket(ip(2), true);
    assert!(check_from(&mut first.ticket, ip(2), &admission).is_ok());
    assert!(check_from(&mut second.ticket, ip(2), &admission).is_ok());
    let mut third = ticket(ip(2), true);
    assert!(matches!(
        check_from(&mut third.ticket, ip(2), &admission),
        Err(Denial::OverCap)
    ));
    assert_eq!(
        answer(Denial::OverCap),
        (
            "HTTP/1.1 503 Service Unavailable".into(),
            Some(RETRY_AFTER.into())
        )
    );
    let mut elsewhere = ticket(ip(3), true);
    assert!(check_from(&mut elsewhere.ticket, ip(3), &admission).is_ok());
    // The first connection ends: its place is the third's. (Its release
    // reaches the admission thread before the third asks again.)
    drop(first);
    assert!(check_from(&mut third.ticket, ip(2), &admission).is_ok());
    // Over --max-connections, refused without asking.
    let mut uncounted = ticket(ip(4), false);
    assert!(matches!(
        check_from(&mut uncounted.ticket, ip(4), &admission),
        Err(Denial::OverCap)
    ));
    assert!(uncounted.ticket.client.is_none());
}

#[test]
fn a_ticket_gives_everything_back_when_dropped() {
    let mut gate = Gate::new(10, 10, 10);
    let admission = Admission::start(1, 1000.0, 1000).unwrap();

    // A connection whose head was read and which was admitted.
    assert_eq!(gate.enter(ip(2), false), Entry::Read { counted: true });
    let mut done = ticket(ip(2), true);
    assert_eq!(admission.admit(&mut done.ticket, ip(2)), Verdict::Admit);
    done.ticket.head_done();
    done.ticket.head_done();
    let head_read: Vec<Release> = done.released.try_iter().collect();
    assert!(
        matches!(&head_read[..], [Release::HeadDone(p)] if *p == ip(2)),
        "once"
    );
    for release in head_read {
        gate.apply(release);
    }
    assert_eq!((gate.total, gate.handshakes), (1, 0));
    assert_eq!(
        admission.admit(&mut ticket(ip(2), true).ticket, ip(2)),
        Verdict::OverCap
    );
    drop(done.ticket);
    let closed: Vec<Release> = done.released.try_iter().collect();
    assert!(matches!(&closed[..], [Release::Closed]), "{closed:?}");
    for release in closed {
        gate.apply(release);
    }
    assert!(
        done.alive.recv().is_err(),
        "shutdown no longer waits for it"
    );
    let mut next = ticket(ip(2), true);
    assert_eq!(admission.admit(&mut next.ticket, ip(2)), Verdict::Admit);

    // A connection dropped while its head was still being read.
    assert_eq!(gate.enter(ip(3), false), Entry::Read { counted: true });
    let early = ticket(ip(3), true);
    drop(early.ticket);
    let released: Vec<Release> = early.released.try_iter().collect();
    assert!(
        matches!(&released[..], [Release::HeadDone(p), Release::Closed] if *p == ip(3)),
        "{released:?}"
    );
    for release in released {
        gate.apply(release);
    }
    assert_eq!((gate.total, gate.handshakes), (0, 0));
    assert!(gate.handshakes_per_peer.is_empty());
}

#[test]
fn one_peer_gets_only_its_share_of_request_heads() {
    let mut gate = Gate::new(100, 10, 2);
    assert_eq!(gate.enter(ip(2), false), Entry::Read { counted: true });
    assert_eq!(gate.enter(ip(2), false), Entry::Read { counted: true });
    assert_eq!(gate.enter(ip(2), false), Entry::Busy);
    assert_eq!(gate.enter(ip(3), false), Entry::Read { counted: true });
    // A trusted proxy carries many clients' heads.
    assert_eq!(gate.enter(ip(1), true), Entry::Read { counted: true });
    assert_eq!(gate.enter(ip(1), true), Entry::Read { counted: true });
    assert_eq!(gate.enter(ip(1), true), Entry::Read { counted: true });
    gate.apply(Release::HeadDone(ip(2)));
    assert_eq!(gate.enter(ip(2), false), Entry::Read { counted: true });
}

#[test]
fn over_the_total_the_head_is_read_then_refused() {
    let mut gate = Gate::new(1, 10, 10);
    assert_eq!(gate.enter(ip(2), false), Entry::Read { counted: true });
    assert_eq!(gate.enter(ip(3), false), Entry::Read { counted: false });
    gate.apply(Release::Closed);
    assert_eq!(gate.enter(ip(3), false), Entry::Read { counted: true });
}

#[test]
fn per_address_cap_and_connect_rate() {
    let mut clients = Clients {
        open: HashMap::new(),
        attempts: HashMap::new(),
        max_per_ip: 2,
        rate: 1.0,
        burst: 3,
        stores: HashMap::new(),
        store_rate: None,
    };
    assert_eq!(clients.admit(ip(2)), Verdict::Admit);
    assert_eq!(clients.admit(ip(2)), Verdict::Admit);
    assert_eq!(clients.admit(ip(2)), Verdict::OverCap);
    clients.closed(ip(2));
    assert!(matches!(clients.admit(ip(2)), Verdict::TooFast(_)));
    assert_eq!(clients.admit(ip(3)), Verdict::Admit);
}

#[test]
fn connections_of_one_address_share_its_store_rate() {
    let admission = Admission::start_with(10, 1000.0, 1000, Some((1000, 1000))).unwrap();
    let mut a = ticket(ip(2), true);
    let mut b = ticket(ip(2), true);
    let mut c = ticket(ip(3), true);
    for (t, from) in [(&mut a, 2), (&mut b, 2), (&mut c, 3)] {
        assert_eq!(admission.admit(&mut t.ticket, ip(from)), Verdict::Admit);
    }
    let (a, b, c) = (
        a.ticket.store_rate.clone().unwrap(),
        b.ticket.store_rate.clone().unwrap(),
        c.ticket.store_rate.clone().unwrap(),
    );
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c));
    // What one connection of the address stores, the other waits for;
    // the other address does not.
    assert_eq!(a.reserve(1000), Duration::ZERO);
    assert!(b.reserve(1000) > Duration::from_millis(900));
    assert_eq!(c.reserve(1000), Duration::ZERO);
}
