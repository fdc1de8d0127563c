//! The bare futex handoff: two 32-bit words in a shared file, one inbox per side. A send bumps
//! the peer's word and always wakes it; a receive sleeps until its word changes. No payload,
//! no spinning: the floor any futex-based doorbell is measured against.
//!
//! `futex-yield` is the same handoff with one change, the one mailslot's reader makes
//! (`Server::wait_take`): a receive that finds nothing gives the CPU away once
//! (`sched_yield`) and looks again before it sleeps. On one core the other side then runs
//! and answers at once, which saves a sleep and a wake-up: it is the transport-independent
//! part of mailslot's same-core latency, so mailslot is compared with it, not only with the
//! plain futex.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::{Endpoint, Side};
use crate::args::Args;
use crate::proc::BenchResult;
use crate::sys::{self, SharedWords};

/// The file the orchestrator creates (8 zero bytes) before starting the two sides.
pub const FILE_NAME: &str = "futex-words";

fn word_of(side: Side) -> usize {
    match side {
        Side::Ping => 0,
        Side::Pong => 1,
    }
}

struct PingPong {
    words: SharedWords,
    side: Side,
    sent: u32,
    seen: u32,
    /// Yield once before each sleep (`futex-yield`).
    yield_first: bool,
}

impl Endpoint for PingPong {
    fn send(&mut self, _data: &[u8]) -> BenchResult<()> {
        self.sent = self.sent.wrapping_add(1);
        let word = self.words.word(word_of(self.side.other()));
        word.store(self.sent, Ordering::Release);
        sys::futex_wake(word);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        let word = self.words.word(word_of(self.side));
        let mut yielded = !self.yield_first;
        loop {
            let now = word.load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                return Ok(buf.len().min(64));
            }
            if !yielded {
                yielded = true;
                std::thread::yield_now();
                continue;
            }
            yielded = !self.yield_first;
            sys::futex_wait(word, now);
        }
    }
}

/// `yield_first`: the `futex-yield` variant.
pub fn endpoint(side: Side, args: &Args, yield_first: bool) -> BenchResult<Box<dyn Endpoint>> {
    let path = PathBuf::from(args.required("dir")?).join(FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("futex: cannot open {}: {e}", path.display()))?;
    let words = SharedWords::map(&file, 2).map_err(|e| format!("futex: cannot map: {e}"))?;
    Ok(Box::new(PingPong {
        words,
        side,
        sent: 0,
        seen: 0,
        yield_first,
    }))
}
