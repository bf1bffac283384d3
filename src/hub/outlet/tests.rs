//! Unit tests of `outlet`.

use super::*;
use std::io::Read;
use std::net::TcpListener;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

fn outlet(sock: TcpStream, frames: usize, bytes: usize) -> Arc<Outlet> {
    let bounds = Bounds {
        frames,
        bytes,
        write_timeout: Duration::from_secs(5),
        share: Share::new("outbound", 64 << 20),
    };
    Outlet::new(1, sock, bounds, Writers::new(4))
}

#[test]
fn small_frames_are_written_at_once() {
    let (server, mut client) = pair();
    let out = outlet(server, 10, 1000);
    let frames = [Encoded::text("a"), Encoded::text("bc")];
    out.send(frames.iter()).unwrap();
    assert!(!out.lock().writer, "no writer for what the socket took");
    let mut got = [0u8; 7];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\x81\x01a\x81\x02bc");
}

#[test]
fn a_backlog_keeps_order_and_is_bounded() {
    let (server, mut client) = pair();
    // Kernel buffers small enough for a backlog to form at once (smaller
    // ones stall loopback TCP on its window rules).
    SockRef::from(&server)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    SockRef::from(&client)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    let out = outlet(server, 1000, 1 << 20);
    let big = Encoded::binary(vec![7u8; 128 * 1024]);
    let mut sent = 0;
    while out.send(std::iter::once(&big)).is_ok() {
        sent += 1;
    }
    assert!(sent >= 2, "the first frames fit");
    assert!(out.lock().backlog_bytes <= 1 << 20);
    out.close(&Close::going_away("bye"));
    // Everything accepted arrives whole, in order, then the close.
    let frame = big.as_bytes();
    let mut all = vec![0u8; sent * frame.len() + 7];
    client.read_exact(&mut all).unwrap();
    for i in 0..sent {
        assert_eq!(&all[i * frame.len()..(i + 1) * frame.len()], frame);
    }
    assert_eq!(&all[sent * frame.len()..], b"\x88\x05\x03\xe9bye");
    out.end();
    assert_eq!(
        client.read(&mut [0u8; 1]).unwrap(),
        0,
        "nothing after the close"
    );
}

/// A pair whose kernel buffers are small enough for a backlog to form
/// at once (smaller ones stall loopback TCP on its window rules).
fn squeezed() -> (TcpStream, TcpStream) {
    let (server, client) = pair();
    SockRef::from(&server)
        .set_send_buffer_size(64 * 1024)
        .unwrap();
    SockRef::from(&client)
        .set_recv_buffer_size(64 * 1024)
        .unwrap();
    (server, client)
}

/// Far more than the kernel buffers take: once sent, it is partly
/// written and the rest waits, for as long as the client does not read.
fn big() -> Encoded {
    Encoded::binary(vec![7u8; 4 << 20])
}

/// Reads `frames`, whole and in order, then expects the stream to end.
fn expect_then_end(client: &mut TcpStream, out: &Outlet, frames: &[&Encoded]) {
    for frame in frames {
        let mut got = vec![0u8; frame.len()];
        client.read_exact(&mut got).unwrap();
        assert!(
            got == frame.as_bytes(),
            "a frame of {} bytes differs",
            frame.len()
        );
    }
    out.end();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "nothing more");
}

#[test]
fn over_its_frame_bound_a_backlog_is_full() {
    let (server, mut client) = squeezed();
    let out = outlet(server, 3, 1 << 30);
    let big = big();
    out.send(std::iter::once(&big)).unwrap();
    assert_eq!(out.lock().backlog.len(), 1, "begun, so queued");
    let small = [Encoded::text("a"), Encoded::text("b"), Encoded::text("c")];
    // Two fit; the third, and whatever follows it, do not.
    assert_eq!(out.send(small.iter()), Err(Full));
    assert_eq!(out.lock().backlog.len(), 3);
    assert_eq!(out.send(std::iter::once(&small[2])), Err(Full));
    assert_eq!(out.lock().backlog.len(), 3);
    out.close(&Close::policy("too slow"));
    let close = Encoded::close(&Close::policy("too slow"));
    expect_then_end(&mut client, &out, &[&big, &small[0], &small[1], &close]);
}

#[test]
fn over_its_byte_bound_a_backlog_is_full() {
    let (server, mut client) = squeezed();
    let big = big();
    let out = outlet(server, 1000, big.len() + 100);
    out.send(std::iter::once(&big)).unwrap();
    let forty = Encoded::text("x".repeat(38));
    assert_eq!(forty.len(), 40);
    out.send(std::iter::once(&forty)).unwrap();
    out.send(std::iter::once(&forty)).unwrap();
    assert_eq!(out.send(std::iter::once(&forty)), Err(Full));
    let twenty = Encoded::text("x".repeat(18));
    out.send(std::iter::once(&twenty)).unwrap();
    assert_eq!(out.lock().backlog_bytes, big.len() + 100);
    out.close(&Close::going_away("bye"));
    let close = Encoded::close(&Close::going_away("bye"));
    expect_then_end(&mut client, &out, &[&big, &forty, &forty, &twenty, &close]);
}

#[test]
fn a_full_outbound_share_refuses_too() {
    let (server, _client) = squeezed();
    let bounds = Bounds {
        frames: 1000,
        bytes: 1 << 30,
        write_timeout: Duration::from_secs(60),
        share: Share::new("outbound", 1024),
    };
    let out = Outlet::new(1, server, bounds, Writers::new(4));
    // The frame begun is queued whatever the share says.
    out.send(std::iter::once(&big())).unwrap();
    assert!(out.bounds.share.used() > 1024);
    assert_eq!(out.send(std::iter::once(&Encoded::text("a"))), Err(Full));
    assert_eq!(out.lock().backlog.len(), 1);
    out.end();
    assert_eq!(out.bounds.share.used(), 0, "all given back");
}

#[test]
fn a_close_is_queued_past_the_bounds_and_nothing_after_it() {
    let (server, mut client) = squeezed();
    let out = outlet(server, 1, 1 << 30);
    let big = big();
    out.send(std::iter::once(&big)).unwrap();
    let small = Encoded::text("a");
    assert_eq!(out.send(std::iter::once(&small)), Err(Full));
    out.close(&Close::policy("too slow"));
    assert_eq!(out.lock().backlog.len(), 2, "the close is forced in");
    // After a close, nothing: not a delivery, not another close.
    out.send(std::iter::once(&small)).unwrap();
    out.close(&Close::going_away("bye"));
    assert_eq!(out.lock().backlog.len(), 2);
    let close = Encoded::close(&Close::policy("too slow"));
    expect_then_end(&mut client, &out, &[&big, &close]);
}

#[test]
fn eviction_discards_all_but_the_frame_begun() {
    let (server, mut client) = squeezed();
    let out = outlet(server, 1000, 1 << 30);
    let big = big();
    out.send(std::iter::once(&big)).unwrap();
    let queued: Vec<Encoded> = (0..5).map(|i| Encoded::text(format!("m{i}"))).collect();
    out.send(queued.iter()).unwrap();
    assert_eq!(out.lock().backlog.len(), 6);
    out.discard_backlog();
    {
        let state = out.lock();
        assert_eq!(state.backlog.len(), 1);
        assert_eq!(state.backlog_bytes, big.len());
    }
    assert_eq!(
        out.bounds.share.used(),
        ENTRY + big.len(),
        "the rest given back"
    );
    out.close(&Close::policy("too slow"));
    let close = Encoded::close(&Close::policy("too slow"));
    expect_then_end(&mut client, &out, &[&big, &close]);
    assert_eq!(out.bounds.share.used(), 0);
}

/// An eviction while the backlog writer writes a batch: the batch goes
/// out whole, and the close follows it (it was once dropped unwritten,
/// or `written` panicked past the backlog's end).
#[test]
fn an_eviction_during_a_writers_batch_keeps_the_close_of_one() {
    let (server, _client) = pair();
    let out = outlet(server, 1000, 1 << 30);
    // Stand in for a running backlog writer, so that frames queue.
    out.lock().writer = true;
    out.send(std::iter::once(&Encoded::text("a"))).unwrap();
    let (batch, offset) = out.next_batch(64).unwrap();
    assert_eq!((batch.len(), offset), (1, 0));
    // The dispatcher evicts the client while the writer writes.
    out.discard_backlog();
    out.close(&Close::policy("too slow"));
    out.written(batch.len());
    let state = out.lock();
    assert!(
        state.backlog.back().is_some_and(Encoded::is_close),
        "the close is still to be written"
    );
}

/// The same, with a batch of three frames.
#[test]
fn an_eviction_during_a_writers_batch_keeps_the_close_of_many() {
    let (server, _client) = pair();
    let out = outlet(server, 1000, 1 << 30);
    out.lock().writer = true;
    let frames = [Encoded::text("a"), Encoded::text("b"), Encoded::text("c")];
    out.send(frames.iter()).unwrap();
    let (batch, _) = out.next_batch(64).unwrap();
    assert_eq!(batch.len(), 3);
    out.discard_backlog();
    out.close(&Close::policy("too slow"));
    out.written(batch.len());
    let state = out.lock();
    assert!(
        state.backlog.back().is_some_and(Encoded::is_close),
        "the close is still to be written"
    );
}
