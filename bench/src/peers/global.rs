//! This project's global scope: names owned by the host service (a process of its own, see
//! `crate::global`), reached through `MAILSLOT_GLOBAL_DIR`, which the orchestrator sets for
//! every client.
//!
//! Fan-out: every reader opens the same shared global name (mode 0666, so readers and the
//! writer may be other users than its creator); the writer puts each message into its
//! submission ring, and the service appends it and wakes the readers that sleep. Ping-pong:
//! each side has its own global name and a writer of the other's.
//!
//! Readers wait with a guard timeout ([`GUARD`]) instead of forever, and count the receives
//! that needed it: a wake-up the service lost then costs one guard and shows in the tables as
//! a stall, instead of hanging the run.

use std::time::{Duration, Instant};

use mailslot::{ErrorKind, Overflow, Scope, Server, Timeout, Writer};

use super::{Endpoint, FanoutReader, FanoutWriter, Side};
use crate::args::Args;
use crate::proc::BenchResult;

/// The name every fan-out reader shares.
const FANOUT_NAME: &str = "bench-global-fanout";

/// Readers, writers and the creator may all be different users.
const MODE: u32 = 0o666;

/// How long a reader waits before it looks at the ring without a bell.
pub const GUARD: Duration = Duration::from_millis(50);

fn err(what: &str, e: mailslot::Error) -> String {
    format!("mailslot (global) {what}: {e}")
}

/// A global reader that waits at most [`GUARD`] at a time.
struct Guarded {
    server: Server,
    stalls: u64,
}

impl Guarded {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<mailslot::Received> {
        loop {
            let start = Instant::now();
            match self.server.recv_into(buf) {
                Ok(got) => {
                    // The message was there when the guard expired: no bell had come for it.
                    if start.elapsed() >= GUARD {
                        self.stalls += 1;
                    }
                    return Ok(got);
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => continue,
                Err(e) => return Err(err("recv", e)),
            }
        }
    }
}

struct Reader {
    inbox: Guarded,
}

impl FanoutReader for Reader {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>> {
        let got = self.inbox.recv(buf)?;
        Ok(Some((got.len, got.lost)))
    }

    fn stalls(&self) -> u64 {
        self.inbox.stalls
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let capacity: usize = args.need("capacity")?;
    let server = Server::builder(FANOUT_NAME)
        .shared(true)
        .scope(Scope::Global)
        .mode(MODE)
        .capacity(capacity)
        // As for the user scope: the rounds fit the capacity, so `lost` must stay 0.
        .overflow(Overflow::DropOldest)
        .read_timeout(Timeout::After(GUARD))
        .open()
        .map_err(|e| err("open server", e))?;
    Ok(Box::new(Reader {
        inbox: Guarded { server, stalls: 0 },
    }))
}

struct WriterEnd {
    writer: Writer,
}

impl FanoutWriter for WriterEnd {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.writer.write(data).map_err(|e| err("write", e))
    }

    /// `write` only hands the message to the service: a round ends with a `flush`, so an
    /// append the service refused fails the round instead of passing unseen.
    fn end_round(&mut self) -> BenchResult<()> {
        self.writer.flush().map_err(|e| err("flush", e))
    }
}

pub fn fanout_writer(_args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let writer = Writer::open_in(&Scope::Global, FANOUT_NAME).map_err(|e| err("open writer", e))?;
    Ok(Box::new(WriterEnd { writer }))
}

struct PingPong {
    side: Side,
    inbox: Guarded,
    outbox: Option<Writer>,
}

fn inbox_name(side: Side) -> String {
    format!("bench-global-{}", side.name())
}

impl Endpoint for PingPong {
    fn connect(&mut self) -> BenchResult<()> {
        let writer = Writer::open_in(&Scope::Global, &inbox_name(self.side.other()))
            .map_err(|e| err("open writer", e))?;
        self.outbox = Some(writer);
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.outbox
            .as_mut()
            .ok_or("not connected")?
            .write(data)
            .map_err(|e| err("write", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        Ok(self.inbox.recv(buf)?.len)
    }

    fn stalls(&self) -> u64 {
        self.inbox.stalls
    }
}

pub fn endpoint(side: Side, _args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let server = Server::builder(&inbox_name(side))
        .scope(Scope::Global)
        .mode(MODE)
        .read_timeout(Timeout::After(GUARD))
        .open()
        .map_err(|e| err("open server", e))?;
    Ok(Box::new(PingPong {
        side,
        inbox: Guarded { server, stalls: 0 },
        outbox: None,
    }))
}
