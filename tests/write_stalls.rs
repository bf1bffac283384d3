//! Proves the write path towards a receiver that stalls: one that stalls
//! and resumes gets every frame exactly once and in order whether the server
//! wrote to it at once or kept a backlog for it, and a frame interrupted by a
//! stall resumes intact with nothing (not even a ping or a pong) cut into it.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

/// Receive buffer asked for on a staller's socket (the kernel doubles it).
/// With it the kernel can hold only the server's send buffer (at most
/// 4 MiB by default on Linux) for a client that does not read.
const SMALL_RCVBUF: usize = 4096;

/// Bytes the kernel holds between the two ends of the loopback connection
/// from `server` to `client`: the server side's send queue (sent but not
/// acknowledged, or not sent yet) plus the client side's receive queue (not
/// read yet), from /proc/net/tcp. Whatever else is on its way to the client
/// is still held by the server process itself.
fn kernel_held(server: SocketAddr, client: SocketAddr) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => unreachable!("tests use IPv4"),
    };
    let queues = |local: SocketAddr, remote: SocketAddr| -> (u64, u64) {
        let (local, remote) = (hex(local), hex(remote));
        table
            .lines()
            .skip(1)
            .find_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f[1] == local && f[2] == remote).then(|| {
                    let (tx, rx) = f[4].split_once(':').expect("tx_queue:rx_queue");
                    (
                        u64::from_str_radix(tx, 16).unwrap(),
                        u64::from_str_radix(rx, 16).unwrap(),
                    )
                })
            })
            .unwrap_or_else(|| panic!("no socket {local} -> {remote} in /proc/net/tcp"))
    };
    let (server_tx, _) = queues(server, client);
    let (_, client_rx) = queues(client, server);
    server_tx + client_rx
}

// ---------------------------------------------------------------------------
// A receiver that alternates between reading and stalling
// ---------------------------------------------------------------------------

/// Payload bytes of each numbered frame.
const FRAME: usize = 1024;
/// Frames per round: 6 MiB, more than the kernel can hold for the staller.
const ROUND: usize = 6 * 1024;
const ROUNDS: usize = 4;
/// Frames of the next round sent while the staller drains the last one.
const OVERLAP: usize = ROUND / 4;

/// Frame `seq`: its number, then filler that depends on it.
fn numbered(seq: usize) -> String {
    let mut s = format!("{seq:010}|");
    let fill = char::from(b'a' + (seq % 26) as u8);
    s.extend(std::iter::repeat_n(fill, FRAME - s.len()));
    s
}

/// The bytes frame `seq` takes on the wire from the server (2 + 2 bytes of
/// header for a payload of 126 to 65535 bytes).
const WIRE_FRAME: u64 = FRAME as u64 + 4;

/// Reads frames up to (not including) `end`, each of which must be the next
/// numbered frame after `*next`.
fn read_numbered(ws: &mut Client, next: &mut usize, end: usize, who: &str) {
    while *next < end {
        match next_data(ws) {
            Message::Text(t) => {
                let want = numbered(*next);
                if t.as_str() != want {
                    let got: String = t.as_str().chars().take(11).collect();
                    panic!(
                        "{who}: expected frame {} next, got {got:?}… ({} bytes)",
                        *next,
                        t.len()
                    );
                }
            }
            other => panic!("{who}: expected frame {}, got {other:?}", *next),
        }
        *next += 1;
    }
}

#[test]
fn a_receiver_that_stalls_and_resumes_gets_every_frame_once_in_order() {
    let server = Server::start(&[
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        // Megabytes from one address: not what this test is about.
        "--store-rate",
        "0",
        "--queue-frames",
        "100000",
        "--queue-bytes",
        "268435456",
        // A stall lasts as long as a round takes to fan out; a blocked
        // write must not end it.
        "--write-timeout",
        "30",
    ]);
    let mut obs = join_v1(&server, "alt", "obs");
    let (mut sender, _) = connect_raw_synced(&server, &mut obs, "/ws?room=alt&name=sender");
    let (mut watcher, _) = connect_raw_synced(&server, &mut obs, "/ws?room=alt&name=watcher");
    let staller = connect_rcvbuf(&server, "/ws?room=alt&name=staller", SMALL_RCVBUF);
    assert_eq!(wait_join(&mut obs), "staller");
    obs.close(None).unwrap();
    wait_disconnected(&mut obs);
    let server_addr: SocketAddr = server.addr.parse().unwrap();
    let staller_addr = plain_tcp(&staller).local_addr().unwrap();

    // The staller reads on a thread of its own, up to the end it is told,
    // and says when it has got there; in between it does not read at all.
    let (read_to, read_to_rx) = mpsc::channel::<usize>();
    let (reached, reached_rx) = mpsc::channel::<usize>();
    let reader = std::thread::spawn(move || {
        let mut staller = staller;
        let mut next = 0;
        for end in read_to_rx {
            read_numbered(&mut staller, &mut next, end, "staller");
            reached.send(next).unwrap();
        }
        (staller, next)
    });

    let send = |ws: &mut Client, range: std::ops::Range<usize>| {
        for seq in range {
            ws.write(Message::text(numbered(seq))).expect("send frame");
        }
        ws.flush().expect("flush frames");
    };
    let mut sent = 0;
    let mut watched = 0;
    let mut backlogged = Vec::new();
    for round in 0..ROUNDS {
        let end = (round + 1) * ROUND;
        // The staller is not reading: the rest of this round goes out.
        send(&mut sender, sent..end);
        sent = end;
        // Once the watcher has the last frame, the server has fanned out the
        // whole round, to the staller too, however it stores it.
        read_numbered(&mut watcher, &mut watched, end, "watcher");
        // The staller has read everything before this round, so what it has
        // not read is all of this round but what its own client buffered.
        let unread = ROUND as u64 * WIRE_FRAME;
        let held = kernel_held(server_addr, staller_addr);
        backlogged.push(unread.saturating_sub(held));
        // It reads the whole round while the next one starts arriving
        // behind what it has not read yet.
        read_to.send(end).unwrap();
        if round + 1 < ROUNDS {
            send(&mut sender, sent..sent + OVERLAP);
            sent += OVERLAP;
            read_numbered(&mut watcher, &mut watched, sent, "watcher");
        }
        let got = reached_rx
            .recv_timeout(WATCHDOG)
            .expect("the staller did not get its round within the watchdog");
        assert_eq!(got, end);
    }
    drop(read_to);
    let (mut staller, read) = reader.join().expect("staller thread");
    assert_eq!(read, ROUNDS * ROUND, "frames the staller got");
    assert_eq!(watched, ROUNDS * ROUND, "frames the watcher got");
    // The stalls were long enough that the server itself had to hold part
    // of each round (the kernel could not take it all), or this test would
    // not have exercised a backlog at all. The staller's client may have
    // buffered up to its read buffer (128 KiB) of it.
    for (round, beyond_kernel) in backlogged.iter().enumerate() {
        assert!(
            *beyond_kernel > 1024 * 1024,
            "round {round}: only {beyond_kernel} bytes were beyond what the kernel held"
        );
    }
    // Nothing more was sent (no frame twice): the next frame each gets is
    // a fresh one.
    send_text(&mut sender, "after");
    assert_eq!(expect_text(&mut watcher), "after");
    assert_eq!(expect_text(&mut staller), "after");
}

// ---------------------------------------------------------------------------
// A client stalled in the middle of a large frame
// ---------------------------------------------------------------------------

/// Texts sent after the file.
const AFTER_FILE: usize = 10;

/// How often a stalled client sends a ping of its own (see `Keepalive`).
const KEEPALIVE: Duration = Duration::from_millis(100);

/// The writing half of a bare socket, shared by the test and a thread that
/// sends a ping of its own (payload `k0`, `k1`, …) every `KEEPALIVE`. The
/// bytes it sends keep the client from counting as silent while it reads
/// slowly or not at all, though it cannot answer the server's pings that
/// wait behind a frame it stopped in. Each frame is written whole under the
/// lock, so the two writers never interleave.
struct Keepalive {
    out: Arc<Mutex<TcpStream>>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<usize>,
}

impl Keepalive {
    fn start(s: &RawSocket) -> Keepalive {
        let out = Arc::new(Mutex::new(s.tcp.try_clone().expect("clone socket")));
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut sent = 0;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(KEEPALIVE) {
                    let ping = masked_frame(0x89, format!("k{sent}").as_bytes());
                    out.lock()
                        .unwrap()
                        .write_all(&ping)
                        .expect("keepalive ping");
                    sent += 1;
                }
                sent
            })
        };
        Keepalive { out, stop, thread }
    }

    /// Stops the pings; returns how many were sent.
    fn stop(self) -> usize {
        self.stop.send(()).unwrap();
        self.thread.join().expect("keepalive thread")
    }
}

/// What the watcher saw while the staller was stalled.
struct WatcherReport {
    /// Server pings that reached the watcher after the stall began.
    pings_during_stall: usize,
    texts: usize,
    files: usize,
}

#[test]
fn a_client_stalled_inside_a_large_frame_gets_it_intact_then_the_rest_in_order() {
    // Everything is ready before the clients connect: a client that
    // neither reads nor sends for two ping intervals is gone.
    let bytes: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = Arc::new(file_frame("stalled.bin", &bytes));
    let texts: Vec<String> = (0..AFTER_FILE)
        .map(|i| format!("after the file {i}"))
        .collect();
    // On a busy machine the stall can outlast the default write timeout
    // (10 s), which is not what this test is about.
    let ping = PING_INTERVAL;
    let server = Server::start(&[
        "--store-rate",
        "0",
        "--ping-interval",
        &ping.as_secs_f64().to_string(),
        "--write-timeout",
        "60",
    ]);
    let mut obs = join_v1(&server, "big", "obs");
    let (watcher, _) = connect_raw_synced(&server, &mut obs, "/ws?room=big&name=watcher");

    // The watcher reads normally on a thread of its own (answering pings as
    // it reads), counting the server's pings once the stall has begun; it
    // says when it has the file, every text and three such pings, then
    // reads on until the staller speaks.
    let stall_began: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (seen_all, seen_all_rx) = mpsc::channel::<()>();
    let watcher = {
        let stall_began = stall_began.clone();
        let file = file.clone();
        let texts = texts.clone();
        std::thread::spawn(move || {
            let mut ws = watcher;
            let deadline = Instant::now() + WATCHDOG;
            let mut report = WatcherReport {
                pings_during_stall: 0,
                texts: 0,
                files: 0,
            };
            let mut told = false;
            loop {
                assert!(Instant::now() < deadline, "watcher: watchdog");
                match ws.read().expect("watcher: read") {
                    Message::Ping(_) => {
                        if stall_began.lock().unwrap().is_some() {
                            report.pings_during_stall += 1;
                        }
                    }
                    Message::Binary(b) => {
                        assert_eq!(report.files, 0, "watcher: a second file");
                        assert!(b[..] == file[..], "watcher: file altered");
                        report.files += 1;
                    }
                    Message::Text(t) if t.as_str() == "staller is back" => return report,
                    Message::Text(t) => {
                        assert_eq!(report.files, 1, "watcher: text {t} before the file");
                        assert_eq!(t.as_str(), texts[report.texts], "watcher: text order");
                        report.texts += 1;
                    }
                    other => panic!("watcher: unexpected {other:?}"),
                }
                if !told && report.texts == AFTER_FILE && report.pings_during_stall >= 3 {
                    seen_all.send(()).unwrap();
                    told = true;
                }
            }
        })
    };

    let (mut sender, _) = connect_raw_synced(&server, &mut obs, "/ws?room=big&name=sender");
    let mut staller =
        RawSocket::open_rcvbuf(&server, "/ws?room=big&name=staller", &[], SMALL_RCVBUF);
    let keepalive = Keepalive::start(&staller);
    let out = keepalive.out.clone();
    let send = |frame: &[u8]| {
        out.lock()
            .unwrap()
            .write_all(frame)
            .expect("staller: write to server")
    };
    assert_eq!(wait_join(&mut obs), "staller");
    obs.close(None).unwrap();
    let server_addr: SocketAddr = server.addr.parse().unwrap();
    let staller_addr = staller.tcp.local_addr().unwrap();

    // The sender sends on a thread of its own, so that the staller reads
    // while the server takes in the file.
    let sending = {
        let (file, texts) = (file.clone(), texts.clone());
        std::thread::spawn(move || {
            send_binary(&mut sender, file.to_vec());
            for t in &texts {
                send_text(&mut sender, t);
            }
            sender
        })
    };

    // The staller takes the file frame's header and its first MiB, answering
    // any ping that comes before it, and then stops reading.
    let mut pongs = Vec::new();
    let len = loop {
        let (first, len) = staller.read_header().expect("staller: connection ended");
        let opcode = first & 0x0f;
        if opcode == 2 {
            assert_eq!(first & 0x80, 0x80, "the file frame is fragmented");
            break len as usize;
        }
        let payload = staller.read_payload(len as usize).unwrap();
        match opcode {
            9 => send(&masked_frame(0x8a, &payload)),
            10 => pongs.push(String::from_utf8(payload).unwrap()),
            op => panic!("staller: expected the file frame, got opcode {op}"),
        }
    };
    assert_eq!(len, file.len(), "file frame length");
    const PART: usize = 1024 * 1024;
    let mut got = staller.read_payload(PART).expect("staller: first part");
    *stall_began.lock().unwrap() = Some(Instant::now());
    let stall_start = Instant::now();

    // The stall: it reads nothing until the watcher has seen the texts sent
    // after the file and three pings.
    match seen_all_rx.recv_timeout(WATCHDOG) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the watcher saw too little in time"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the watcher failed (see above)"),
    }
    let stall = stall_start.elapsed();
    // Most of the frame was still waiting in the server itself: the stall
    // really was in the middle of it, not only in the kernel's buffers.
    let unread = (file.len() - PART) as u64;
    let held = kernel_held(server_addr, staller_addr);
    assert!(
        held + 1024 * 1024 < unread,
        "the kernel held {held} of the {unread} bytes not read: no stall inside the frame"
    );

    // Resumed: first the rest of the file frame, byte for byte.
    got.extend(
        staller
            .read_payload(file.len() - PART)
            .expect("staller: rest of the file"),
    );
    assert!(got[..] == file[..], "file frame altered");
    // Then the texts in order, with pings and pongs only between frames.
    let mut texts_got = 0;
    let mut final_pong = false;
    let mut keepalive = Some(keepalive);
    let mut keepalives = 0;
    while texts_got < AFTER_FILE || !final_pong {
        let frame = staller.read_frame().expect("staller: connection ended");
        assert!(frame.fin, "a fragmented frame (opcode {})", frame.opcode);
        match frame.opcode {
            1 => {
                assert!(texts_got < AFTER_FILE, "an extra text");
                assert_eq!(String::from_utf8(frame.payload).unwrap(), texts[texts_got]);
                texts_got += 1;
                if texts_got == AFTER_FILE {
                    // The last ping: it must be answered, after the others.
                    keepalives = keepalive.take().unwrap().stop();
                    send(&masked_frame(0x89, b"final"));
                }
            }
            9 => send(&masked_frame(0x8a, &frame.payload)),
            10 if frame.payload == b"final" => final_pong = true,
            10 => pongs.push(String::from_utf8(frame.payload).unwrap()),
            op => panic!("staller: unexpected opcode {op}"),
        }
    }
    // The server answered the staller's pings in order, the last one at
    // least (it may answer only the latest of several, RFC 6455 §5.5.3).
    let numbers: Vec<usize> = pongs
        .iter()
        .map(|p| {
            p.strip_prefix('k')
                .and_then(|n| n.parse().ok())
                .expect("k<n>")
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]) && numbers.iter().all(|&n| n < keepalives),
        "pongs {pongs:?} for {keepalives} pings"
    );
    // The staller is still in the room, both ways.
    let _sender = sending.join().expect("sender thread");
    send(&masked_frame(0x81, b"staller is back"));
    let report = watcher.join().expect("watcher thread");
    assert_eq!(report.files, 1);
    assert_eq!(report.texts, AFTER_FILE);
    assert!(report.pings_during_stall >= 3);
    assert!(
        stall >= ping,
        "the stall ({stall:?}) was shorter than a ping interval"
    );
}
