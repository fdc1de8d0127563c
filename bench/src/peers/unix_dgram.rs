//! The raw baseline: `SOCK_DGRAM` Unix sockets with blocking sends. In a fan-out the writer
//! holds one connected socket per reader and sends every message to each in turn, so a full
//! receive queue (`net.unix.max_dgram_qlen`) blocks it: back-pressure, never a loss.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::{Endpoint, FanoutReader, FanoutWriter, Side};
use crate::args::Args;
use crate::proc::BenchResult;

fn reader_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("reader-{index}.sock"))
}

fn io(what: &str, e: std::io::Error) -> String {
    format!("unix-dgram {what}: {e}")
}

struct Reader {
    socket: UnixDatagram,
}

impl FanoutReader for Reader {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>> {
        let n = self.socket.recv(buf).map_err(|e| io("recv", e))?;
        Ok(Some((n, 0)))
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let dir = PathBuf::from(args.required("dir")?);
    let index: usize = args.need("index")?;
    let socket = UnixDatagram::bind(reader_path(&dir, index)).map_err(|e| io("bind", e))?;
    Ok(Box::new(Reader { socket }))
}

struct Writer {
    sockets: Vec<UnixDatagram>,
}

impl FanoutWriter for Writer {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        for socket in &self.sockets {
            socket.send(data).map_err(|e| io("send", e))?;
        }
        Ok(())
    }
}

pub fn fanout_writer(args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let dir = PathBuf::from(args.required("dir")?);
    let readers: usize = args.need("readers")?;
    let sockets = (0..readers)
        .map(|i| {
            let socket = UnixDatagram::unbound()?;
            socket.connect(reader_path(&dir, i))?;
            Ok(socket)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| io("connect", e))?;
    Ok(Box::new(Writer { sockets }))
}

struct PingPong {
    dir: PathBuf,
    side: Side,
    socket: UnixDatagram,
}

fn side_path(dir: &Path, side: Side) -> PathBuf {
    dir.join(format!("{}.sock", side.name()))
}

impl Endpoint for PingPong {
    fn connect(&mut self) -> BenchResult<()> {
        self.socket
            .connect(side_path(&self.dir, self.side.other()))
            .map_err(|e| io("connect", e))
    }

    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.socket.send(data).map(drop).map_err(|e| io("send", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        self.socket.recv(buf).map_err(|e| io("recv", e))
    }
}

pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let dir = PathBuf::from(args.required("dir")?);
    let socket = UnixDatagram::bind(side_path(&dir, side)).map_err(|e| io("bind", e))?;
    Ok(Box::new(PingPong { dir, side, socket }))
}
