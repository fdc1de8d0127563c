//! `large`: fan-out of large messages (16 KiB, 256 KiB, 1 MiB by default) to k = 1, 2, 4
//! readers, against a `memcpy` floor measured in the same run, and one `recv_into` of 1 MiB
//! against one `memcpy` of 1 MiB.
//!
//! The fan-out is `fanout`'s (same processes, same accounting) with fewer messages per round,
//! `--large-bytes` of messages per round (default 16 MiB). The floor: one `memcpy` of the
//! message size per delivered message, the least any transport that hands each reader its own
//! copy must spend; measured here, each copy from a source just filled (cache-warm, as a
//! message just written is: the cheapest copy, so the floor flatters no transport) into one
//! buffer of the message size (as a reader's).
//!
//! `recv_into`: one process opens a name (maximum message 1 MiB) and a writer of it, and
//! repeats: write 1 MiB, `recv_into` a 1 MiB buffer, timing the `recv_into` alone. The floor
//! is the same loop with the write replaced by filling a 1 MiB source and the `recv_into` by
//! one `memcpy` of it, so both copy data that was just written.

use std::hint::black_box;

use mailslot::{Scope, Server, Timeout, Writer};

use crate::args::Args;
use crate::fanout::{self, lost_cell, Outcome};
use crate::peers::Peer;
use crate::proc::{BenchResult, TempDir};
use crate::report::{Record, Table};
use crate::sys;

/// The largest Unix datagram the baseline sends without raising socket buffers (the default
/// `wmem` is 208 KiB): larger sizes skip it.
const DGRAM_MAX: usize = 65_536;

#[derive(Debug, Clone)]
pub struct Options {
    pub sizes: Vec<usize>,
    pub readers: Vec<usize>,
    pub bytes: usize,
    pub rounds: usize,
    pub peers: Vec<Peer>,
    pub recv_iterations: usize,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &[
        "large-sizes",
        "large-readers",
        "large-bytes",
        "large-rounds",
        "large-peers",
        "recv-iterations",
        "out",
    ];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            sizes: args.list("large-sizes", &[16 << 10, 256 << 10, 1 << 20])?,
            readers: args.list("large-readers", &[1, 2, 4])?,
            bytes: args.get("large-bytes", 16 << 20)?,
            rounds: args.get("large-rounds", 3)?,
            peers: args.list(
                "large-peers",
                &[Peer::Mailslot, Peer::UnixDgram, Peer::Zmq, Peer::Iceoryx2],
            )?,
            recv_iterations: args.get("recv-iterations", 200)?,
        };
        if options.sizes.iter().any(|&s| !(8..=1 << 20).contains(&s)) {
            return Err("--large-sizes must be 8..=1048576".into());
        }
        if options.rounds == 0 || options.recv_iterations == 0 {
            return Err("--large-rounds and --recv-iterations must be at least 1".into());
        }
        Ok(options)
    }

    fn messages(&self, size: usize) -> usize {
        (self.bytes / size).max(8)
    }
}

/// Nanoseconds per `memcpy` of `size` bytes of data just written: the median copy. Each
/// copy's source is filled first, untimed, as a writer fills a message before the readers
/// copy it, so the floor is the cheap (cache-warm) copy, not a cold one; the median keeps a
/// preempted copy on a loaded host out of it.
fn memcpy_floor(size: usize) -> f64 {
    let mut source = vec![0x5au8; size];
    let mut dest = vec![0u8; size];
    let copies = ((64 << 20) / size).clamp(64, 4096);
    let mut times: Vec<u64> = (0..copies)
        .map(|i| {
            source.fill(i as u8);
            let start = sys::monotonic_ns();
            dest.copy_from_slice(black_box(&source));
            black_box(&mut dest);
            sys::monotonic_ns() - start
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2] as f64
}

/// p50 and p99 of ns per `recv_into` of `size` bytes, and of one memcpy of just-written data.
fn recv_into_vs_memcpy(size: usize, iterations: usize) -> BenchResult<[(u64, u64); 2]> {
    let dir = TempDir::new("recvinto")?;
    let scope = Scope::Dir(dir.path().to_path_buf());
    let err = |what: &str, e: mailslot::Error| format!("recv_into: {what}: {e}");
    let mut server = Server::builder("bench-recv-into")
        .scope(scope.clone())
        .max_message_size(size)
        .capacity(4 * size)
        .read_timeout(Timeout::Forever)
        .open()
        .map_err(|e| err("open server", e))?;
    let mut writer =
        Writer::open_in(&scope, "bench-recv-into").map_err(|e| err("open writer", e))?;
    let mut message = vec![0u8; size];
    let mut buf = vec![0u8; size];
    let warmup = 20;
    let mut recv = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        message.fill(i as u8);
        writer.write(&message).map_err(|e| err("write", e))?;
        let start = sys::monotonic_ns();
        let got = server
            .recv_into(&mut buf)
            .map_err(|e| err("recv_into", e))?;
        let t = sys::monotonic_ns() - start;
        if got.len != size || buf[size - 1] != i as u8 {
            return Err("recv_into: wrong message".into());
        }
        if i >= warmup {
            recv.push(t);
        }
    }
    let mut copy = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        message.fill(i as u8);
        let start = sys::monotonic_ns();
        buf.copy_from_slice(black_box(&message));
        black_box(&mut buf);
        let t = sys::monotonic_ns() - start;
        if i >= warmup {
            copy.push(t);
        }
    }
    let q = |mut v: Vec<u64>| {
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        (at(0.5), at(0.99))
    };
    Ok([q(recv), q(copy)])
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut skipped = Vec::new();
    let mut floors = Vec::new();
    for &size in &options.sizes {
        let peers: Vec<Peer> = options
            .peers
            .iter()
            .copied()
            .filter(|&p| {
                if p == Peer::UnixDgram && size > DGRAM_MAX {
                    skipped.push(format!("unix-dgram at {size} bytes (> {DGRAM_MAX})"));
                    return false;
                }
                true
            })
            .collect();
        let fan = fanout::Options {
            messages: options.messages(size),
            sizes: vec![size],
            readers: options.readers.clone(),
            rounds: options.rounds,
            peers,
            capacity: None,
            overflow: None,
        };
        fan.check_with(1 << 20)?;
        eprintln!("large: memcpy floor, {size} bytes ...");
        floors.push((size, memcpy_floor(size)));
        let measured = fanout::measure(&fan)?;
        skipped.extend(measured.skipped);
        outcomes.extend(measured.outcomes);
    }
    skipped.sort();
    skipped.dedup();

    let mut table = Table::new(
        "large fan-out against a memcpy floor",
        &[
            "size",
            "k",
            "peer",
            "wall ns/msg",
            "CPU ns/msg",
            "memcpy ns/msg",
            "wall vs memcpy",
            "CPU vs memcpy",
            "GB/s delivered",
            "sent",
            "delivered",
            "lost",
        ],
    );
    let mut records = Vec::new();
    for &(size, floor) in &floors {
        for &k in &options.readers {
            for o in outcomes.iter().filter(|o| o.size == size && o.readers == k) {
                table.row(vec![
                    size.to_string(),
                    k.to_string(),
                    o.peer.name().into(),
                    format!("{:.0}", o.wall_ns_per_msg),
                    format!("{:.0}", o.cpu_ns_per_msg),
                    format!("{floor:.0}"),
                    format!("{:.2}", o.wall_ns_per_msg / floor),
                    format!("{:.2}", o.cpu_ns_per_msg / floor),
                    format!("{:.2}", size as f64 / o.wall_ns_per_msg),
                    o.sent.to_string(),
                    o.delivered.to_string(),
                    lost_cell(o),
                ]);
                records.push(Record::new(
                    "large",
                    vec![
                        ("peer", o.peer.name().into()),
                        ("size", size.into()),
                        ("readers", k.into()),
                        ("wall_ns_per_msg", o.wall_ns_per_msg.into()),
                        ("cpu_ns_per_msg", o.cpu_ns_per_msg.into()),
                        ("memcpy_ns_per_msg", floor.into()),
                        ("sent", o.sent.into()),
                        ("delivered", o.delivered.into()),
                        ("lost", o.lost.into()),
                    ],
                ));
            }
        }
    }
    table.note(format!(
        "As `fanout` (one writer, k blocking readers, every reader gets every message; \
         per delivered message), with {} bytes of messages per round ({}), median of {} \
         rounds after warm-up. memcpy = one copy of the message size per delivered message, \
         measured in this run (the median copy), each from a source just filled (cache-warm, \
         the cheapest copy) into one message-sized buffer: a transport that gives each reader its own copy cannot go below it; wall \
         time can, with k readers copying in parallel on 2 cores. mailslot copies once per \
         reader (ring -> buffer, plus a CRC-32C check) and once in the writer (plus the \
         CRC-32C it computes); \
         iceoryx2 copies once in the writer (into the loaned sample) and once per reader (the \
         bench copies the payload out, as an application keeping it would); zmq copies into \
         its pipes and out. iceoryx2: subscriber buffer of 256 samples, at most 16 MiB.{}",
        options.bytes,
        options
            .sizes
            .iter()
            .map(|&s| format!("{} x {s}", options.messages(s)))
            .collect::<Vec<_>>()
            .join(", "),
        options.rounds,
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" Skipped: {}.", skipped.join(", "))
        }
    ));

    eprintln!("large: recv_into vs memcpy, 1 MiB ...");
    let size = 1 << 20;
    let [recv, copy] = recv_into_vs_memcpy(size, options.recv_iterations)?;
    let mut single = Table::new(
        "recv_into of 1 MiB against one memcpy of 1 MiB (ns)",
        &["operation", "p50", "p99", "p50 vs memcpy", "GB/s at p50"],
    );
    for (what, (p50, p99)) in [("Server::recv_into, 1 MiB", recv), ("memcpy, 1 MiB", copy)] {
        single.row(vec![
            what.into(),
            p50.to_string(),
            p99.to_string(),
            format!("{:.2}", p50 as f64 / copy.0.max(1) as f64),
            format!("{:.2}", size as f64 / p50.max(1) as f64),
        ]);
        records.push(Record::new(
            "recv-into",
            vec![
                ("operation", what.into()),
                ("size", size.into()),
                ("p50_ns", p50.into()),
                ("p99_ns", p99.into()),
                ("iterations", options.recv_iterations.into()),
            ],
        ));
    }
    single.note(format!(
        "{} iterations after 20 warm-up ones, one process: write 1 MiB to a name (maximum \
         message 1 MiB, capacity 4 MiB), then time its recv_into into a 1 MiB buffer; the \
         floor fills a 1 MiB source instead of the write and times one memcpy of it, so both \
         copy data just written. recv_into copies the record out of the ring into the \
         caller's buffer and checks the CRC-32C of what it copied.",
        options.recv_iterations
    ));
    Ok((vec![table, single], records))
}
