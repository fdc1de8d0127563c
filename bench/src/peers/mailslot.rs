//! This project's transport: shared mailslots in a private runtime directory.
//!
//! Fan-out: every reader opens the same shared name (`Delivery::All`), the writer appends once
//! per message. Ping-pong: each side has its own mailslot and a writer of the other's.

use std::path::PathBuf;

use mailslot::{ErrorKind, Overflow, Scope, Server, Timeout, Writer};

use super::{bound_of, Endpoint, FanoutReader, FanoutWriter, OverflowMode, Side};
use crate::args::Args;
use crate::proc::BenchResult;

/// The name every fan-out reader shares.
const FANOUT_NAME: &str = "bench-fanout";

/// Bytes a message takes in the mailslot ring (64-byte record header, data padded to 8), as
/// the library's `ring::record::record_size` counts them (it is not public).
pub fn record(size: usize) -> usize {
    64 + size.div_ceil(8) * 8
}

/// The ring the library makes for a capacity and maximum message size (`max_message` 0 = the
/// default 1 MiB), as its `ring::ring_size_for` does: the capacity plus one largest record, at
/// least two largest records and two pages, in whole 4 KiB pages. The ring, not the capacity,
/// is what a reader may lag behind before the overflow policy applies.
pub fn ring_for(capacity: usize, max_message: usize) -> usize {
    let max = if max_message == 0 {
        1 << 20
    } else {
        max_message
    };
    let largest = record(max);
    (capacity + largest)
        .max(2 * largest)
        .max(2 * 4096)
        .next_multiple_of(4096)
}

/// Messages of `size` bytes that lap a ring made for `capacity` once: after that many, every
/// page of the ring has been touched (a fresh ring faults its pages in one by one, a
/// long-lived name has them resident).
pub fn messages_to_lap(capacity: usize, size: usize) -> usize {
    ring_for(capacity, 0).div_ceil(record(size))
}

/// The library's policy for a bench overflow mode.
fn overflow_of(mode: Option<OverflowMode>) -> BenchResult<Overflow> {
    match mode {
        None | Some(OverflowMode::Drop) => Ok(Overflow::DropOldest),
        Some(OverflowMode::Refuse) => Ok(Overflow::Refuse),
        Some(OverflowMode::Block) => Ok(Overflow::Block),
    }
}

fn scope(args: &Args) -> BenchResult<Scope> {
    Ok(Scope::Dir(PathBuf::from(args.required("dir")?)))
}

fn err(what: &str, e: mailslot::Error) -> String {
    format!("mailslot {what}: {e}")
}

struct Reader {
    server: Server,
}

impl FanoutReader for Reader {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>> {
        let got = self.server.recv_into(buf).map_err(|e| err("recv", e))?;
        Ok(Some((got.len, got.lost)))
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let capacity: usize = args.need("capacity")?;
    let bound = bound_of(args)?;
    let server = Server::builder(FANOUT_NAME)
        .shared(true)
        .scope(scope(args)?)
        .capacity(capacity)
        // `--max-message` (with an explicit `--capacity`) lets the ring follow the capacity
        // instead of being at least two 1 MiB messages.
        .max_message_size(args.get("max-message", 0)?)
        // Without `--overflow`: capacity, not back-pressure: the orchestrator sizes rounds to
        // fit, so `lost` must stay 0; a lagging reader would show it.
        .overflow(overflow_of(bound.map(|b| b.0))?)
        .read_timeout(Timeout::Forever)
        .open()
        .map_err(|e| err("open server", e))?;
    Ok(Box::new(Reader { server }))
}

struct WriterEnd {
    writer: Writer,
    /// `--overflow refuse`: retry a write refused with `QueueFull`.
    retry_full: bool,
    retries: u64,
}

impl FanoutWriter for WriterEnd {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        loop {
            match self.writer.write(data) {
                Ok(()) => return Ok(()),
                // Refused: give the readers the CPU and try again (what an application that
                // must not lose a message does with a refusing name).
                Err(e) if self.retry_full && e.kind() == ErrorKind::QueueFull => {
                    self.retries += 1;
                    std::thread::yield_now();
                }
                Err(e) => return Err(err("write", e)),
            }
        }
    }

    fn retries(&self) -> u64 {
        self.retries
    }
}

pub fn fanout_writer(args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let writer = Writer::open_in(&scope(args)?, FANOUT_NAME).map_err(|e| err("open writer", e))?;
    let retry_full = matches!(bound_of(args)?, Some((OverflowMode::Refuse, _)));
    Ok(Box::new(WriterEnd {
        writer,
        retry_full,
        retries: 0,
    }))
}

struct PingPong {
    scope: Scope,
    side: Side,
    inbox: Server,
    outbox: Option<Writer>,
}

fn inbox_name(side: Side) -> String {
    format!("bench-{}", side.name())
}

impl Endpoint for PingPong {
    fn connect(&mut self) -> BenchResult<()> {
        let writer = Writer::open_in(&self.scope, &inbox_name(self.side.other()))
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
        let got = self.inbox.recv_into(buf).map_err(|e| err("recv", e))?;
        Ok(got.len)
    }
}

pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let scope = scope(args)?;
    let inbox = Server::builder(&inbox_name(side))
        .scope(scope.clone())
        .read_timeout(Timeout::Forever)
        .open()
        .map_err(|e| err("open server", e))?;
    Ok(Box::new(PingPong {
        scope,
        side,
        inbox,
        outbox: None,
    }))
}
