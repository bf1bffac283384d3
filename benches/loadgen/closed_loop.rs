//! The closed-loop fan-out driver: senders flat out, each keeping at most
//! `WINDOW` of its messages in flight (message k+WINDOW waits until *every*
//! receiver has message k), deliveries counted over a measured window after
//! a warm-up, and every receiver checked to get every frame exactly once,
//! in each sender's order. The receivers and senders may be spread over
//! several rooms ([`run_rooms`]): a message then waits only for the
//! receivers of its sender's room, and one heard in another room is a fault.

use std::time::{Duration, Instant};

use super::{Net, STALL_TIMEOUT, message, parse_message};

/// Messages one sender may have in flight.
pub const WINDOW: usize = 32;

/// What the loop watches besides its connections: the processes under test.
pub trait Watched {
    /// CPU used so far, read when the measured window opens and closes.
    type Cpu;
    fn cpu(&self) -> Self::Cpu;
    /// Fails the run if a process died or a client connection ended.
    fn health(&mut self, net: &Net) -> Result<(), String>;
}

/// What one closed-loop run counted.
pub struct Tally<C> {
    /// Deliveries inside the measured window.
    pub measured: u64,
    /// CPU readings when the measured window opened and when it closed.
    pub cpu_from: C,
    pub cpu_to: C,
    /// Messages sent that some receiver still lacked at the end.
    pub missing: u64,
    /// Messages some receiver skipped over (it got a later one first).
    pub skipped: u64,
    /// Frames a receiver got again, or earlier than one it had.
    pub duplicated: u64,
    /// Frames that arrived past a gap in their sender's sequence.
    pub out_of_order: u64,
    /// Frames a receiver got from a sender of another room.
    pub strays: u64,
}

/// Runs the loop. The receivers are connections `0..receivers` of `net`
/// (every frame a sender hears is dropped); `senders` are the connections
/// that send. Warm-up first, then `measure`, then a drain until everything
/// sent has arrived (or `STALL_TIMEOUT` passed).
pub fn run<W: Watched>(
    net: &mut Net,
    receivers: usize,
    senders: &[usize],
    warm_up: Duration,
    measure: Duration,
    watched: &mut W,
) -> Result<Tally<W::Cpu>, String> {
    let one_room = Rooms {
        of_receiver: &vec![0; receivers],
        of_sender: &vec![0; senders.len()],
    };
    run_rooms(net, &one_room, senders, warm_up, measure, watched)
}

/// Which room each receiver (by connection id) and each sender (by its
/// index in `senders`) is in. A receiver hears the senders of its own room.
pub struct Rooms<'a> {
    pub of_receiver: &'a [usize],
    pub of_sender: &'a [usize],
}

/// [`run`] with the receivers and senders spread over rooms: the receivers
/// are connections `0..rooms.of_receiver.len()`.
pub fn run_rooms<W: Watched>(
    net: &mut Net,
    rooms: &Rooms,
    senders: &[usize],
    warm_up: Duration,
    measure: Duration,
    watched: &mut W,
) -> Result<Tally<W::Cpu>, String> {
    let (r_count, s_count) = (rooms.of_receiver.len(), senders.len());
    assert_eq!(rooms.of_sender.len(), s_count, "a room for every sender");
    let hears = |r: usize, s: usize| rooms.of_receiver[r] == rooms.of_sender[s];
    // audience[s]: the receivers that must have each message of sender s.
    let audience: Vec<usize> = (0..s_count)
        .map(|s| (0..r_count).filter(|&r| hears(r, s)).count())
        .collect();
    assert!(audience.iter().all(|&n| n > 0), "a sender nobody hears");

    // next[r * S + s]: the sequence number receiver r expects next from s.
    let mut next = vec![0u64; r_count * s_count];
    // heard[s][k % WINDOW]: receivers that have message k of sender s.
    let mut heard = vec![[0usize; WINDOW]; s_count];
    // acked[s]: messages of sender s that every receiver has (they complete
    // in order, since each receiver gets a sender's messages in order).
    let mut acked = vec![0u64; s_count];
    let mut sent = vec![0u64; s_count];
    let (mut skipped, mut duplicated, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut strays = 0u64;

    let start = net.now_ns();
    let measure_from = start + warm_up.as_nanos() as u64;
    let measure_to = measure_from + measure.as_nanos() as u64;
    let mut measured = 0u64;
    let mut cpu_from = None;
    let mut cpu_to = None;
    let mut drain_deadline = None;
    let mut health_check = Instant::now();
    loop {
        let now = net.now_ns();
        if cpu_from.is_none() && now >= measure_from {
            cpu_from = Some(watched.cpu());
        }
        if cpu_from.is_some() && cpu_to.is_none() && now >= measure_to {
            cpu_to = Some(watched.cpu());
            drain_deadline = Some(Instant::now() + STALL_TIMEOUT);
        }
        match drain_deadline {
            // Measuring is over: wait for everything sent to arrive.
            Some(deadline) => {
                if acked == sent || Instant::now() > deadline {
                    break;
                }
            }
            None => {
                for (s, &conn) in senders.iter().enumerate() {
                    while sent[s] < acked[s] + WINDOW as u64 {
                        net.send_text(conn, &message(s, sent[s], now));
                        sent[s] += 1;
                    }
                }
            }
        }
        net.poll(Duration::from_millis(5), |id, at, payload| {
            // Senders read what the other senders send, and drop it.
            if id >= r_count {
                return;
            }
            let Some(m) = parse_message(payload).filter(|m| m.sender < s_count) else {
                return;
            };
            if !hears(id, m.sender) {
                strays += 1;
                return;
            }
            let expected = &mut next[id * s_count + m.sender];
            if m.seq < *expected {
                duplicated += 1;
                return;
            }
            if m.seq > *expected {
                out_of_order += 1;
                skipped += m.seq - *expected;
            }
            *expected = m.seq + 1;
            if (measure_from..measure_to).contains(&at) {
                measured += 1;
            }
            let slot = &mut heard[m.sender][m.seq as usize % WINDOW];
            *slot += 1;
            if *slot == audience[m.sender] {
                *slot = 0;
                acked[m.sender] = m.seq + 1;
            }
        });
        if health_check.elapsed() > Duration::from_millis(100) {
            watched.health(net)?;
            health_check = Instant::now();
        }
    }
    let missing: u64 = (0..r_count)
        .flat_map(|r| (0..s_count).map(move |s| (r, s)))
        .filter(|&(r, s)| hears(r, s))
        .map(|(r, s)| sent[s] - next[r * s_count + s])
        .sum();
    Ok(Tally {
        measured,
        cpu_from: cpu_from.expect("measured"),
        cpu_to: cpu_to.expect("measured"),
        missing,
        skipped,
        duplicated,
        out_of_order,
        strays,
    })
}
