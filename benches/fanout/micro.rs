//! Parsing, encoding and metrics, in process: what the server's own code
//! costs per call, without a socket in the way.

use std::time::{Duration, Instant};

/// Runs `f` repeatedly for about `budget` and returns nanoseconds per call.
fn ns_per_op(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            f();
        }
        ops += 1000;
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// Times each operation for about `budget`; returns its name and ns per call.
pub fn micro(budget: Duration) -> Vec<(&'static str, f64)> {
    use std::hint::black_box;
    use wschat::proto::protocol::{Event, encode, file_frame, parse_command, parse_file_header};
    let frame = r#"{"type":"message","text":"hello everyone, the build is green again"}"#;
    let file = file_frame("holiday-photo.png", &[0u8; 1024]);
    vec![
        (
            "parse_command (v1 message frame)",
            ns_per_op(budget, || {
                black_box(parse_command(black_box(frame)).is_ok());
            }),
        ),
        (
            "encode (v1 message event)",
            ns_per_op(budget, || {
                black_box(encode(black_box(&Event::Message {
                    id: 58,
                    room: "lobby",
                    from: "alice",
                    text: "hello everyone, the build is green again",
                    ts: 1_764_028_800_000,
                    cid: None,
                    edited: false,
                    deleted: false,
                    reactions: None,
                    replay: false,
                })));
            }),
        ),
        (
            "parse_file_header (raw file frame)",
            ns_per_op(budget, || {
                black_box(parse_file_header(black_box(&file)).is_ok());
            }),
        ),
        (
            "metrics: one client's send (count, depth)",
            ns_per_op(budget, || {
                wschat::metrics::get().delivered(black_box(1));
                wschat::metrics::get().queue_depth(black_box(3));
            }),
        ),
        (
            "metrics: one fan-out timed",
            ns_per_op(budget, || {
                drop(black_box(wschat::metrics::get().fanout_timer()));
            }),
        ),
    ]
}

/// Prints the rows of `micro`.
pub fn print_table(rows: &[(&str, f64)]) {
    println!("Parsing, encoding and metrics, in process, one thread");
    println!("{:<36} {:>10} {:>14}", "operation", "ns/op", "ops/s");
    for (name, ns) in rows {
        println!("{name:<36} {ns:>10.1} {:>14.0}", 1e9 / ns);
    }
}
