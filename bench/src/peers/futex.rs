//! The bare futex handoff: two 32-bit words in a shared file, one inbox per side. A send bumps
//! the peer's word and always wakes it; a receive sleeps until its word changes. No payload,
//! no spinning: the floor any futex-based doorbell is measured against.

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
        loop {
            let now = word.load(Ordering::Acquire);
            if now != self.seen {
                self.seen = now;
                return Ok(buf.len().min(64));
            }
            sys::futex_wait(word, now);
        }
    }
}

pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
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
    }))
}
