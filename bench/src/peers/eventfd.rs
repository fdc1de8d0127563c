//! The eventfd handoff: one blocking eventfd per side, created by the orchestrator and
//! inherited by both processes. A send adds 1 to the peer's counter; a receive blocks in
//! `read` until its counter is non-zero.

use std::fs::File;
use std::io::{Read, Write};

use super::{Endpoint, Side};
use crate::args::Args;
use crate::proc::BenchResult;
use crate::sys;

struct PingPong {
    inbox: File,
    outbox: File,
}

impl Endpoint for PingPong {
    fn send(&mut self, _data: &[u8]) -> BenchResult<()> {
        self.outbox
            .write_all(&1u64.to_ne_bytes())
            .map_err(|e| format!("eventfd write: {e}"))
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        let mut count = [0u8; 8];
        self.inbox
            .read_exact(&mut count)
            .map_err(|e| format!("eventfd read: {e}"))?;
        Ok(buf.len().min(64))
    }
}

/// `--fd-ping` and `--fd-pong` name the inherited eventfds (each side's inbox).
pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let fd_of = |s: Side| -> BenchResult<File> {
        let fd: i32 = args.need(&format!("fd-{}", s.name()))?;
        sys::inherited_fd(fd).map_err(|e| format!("eventfd {fd}: {e}"))
    };
    Ok(Box::new(PingPong {
        inbox: fd_of(side)?,
        outbox: fd_of(side.other())?,
    }))
}
