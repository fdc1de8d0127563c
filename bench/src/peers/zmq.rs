//! ZeroMQ PUB/SUB over `ipc://` (libzmq from the system), in no-drop mode.
//!
//! Every subscriber binds its own `ipc://` endpoint; the publisher (an XPUB socket with
//! `ZMQ_XPUB_NODROP` and `ZMQ_XPUB_VERBOSE`) connects to each and waits for every
//! subscription before it sends, so nothing is lost to the slow-joiner race. With no-drop, a
//! blocking send waits when a subscriber's high-water mark is reached instead of dropping:
//! back-pressure, like the datagram baseline.

use std::path::{Path, PathBuf};

use super::{Endpoint, FanoutReader, FanoutWriter, Side};
use crate::args::Args;
use crate::proc::BenchResult;

fn err(what: &str, e: zmq::Error) -> String {
    format!("zmq {what}: {e}")
}

fn endpoint_of(dir: &Path, who: &str) -> String {
    format!("ipc://{}", dir.join(format!("zmq-{who}")).display())
}

/// `ZMQ_XPUB_NODROP` (libzmq >= 4.1): the `zmq` crate has no setter for it.
fn set_xpub_nodrop(socket: &mut zmq::Socket) -> BenchResult<()> {
    let on: libc::c_int = 1;
    // SAFETY: `as_mut_ptr` is the live libzmq socket owned by `socket`; the option value is a
    // readable c_int of the size passed, as ZMQ_XPUB_NODROP expects.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as libc::c_int,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "zmq setsockopt(XPUB_NODROP): {}",
            zmq::Error::from_raw(
                // SAFETY: zmq_errno only reads the calling thread's errno.
                unsafe { zmq_sys::zmq_errno() },
            )
        ))
    }
}

/// A publisher connected to `endpoints`, returned once each has subscribed.
///
/// libzmq attaches a new connection to a socket only when its owner calls into it, so while
/// waiting this also services `inbox` (the caller's own subscriber, which the other side is
/// connecting to at the same time).
fn publisher(
    context: &zmq::Context,
    endpoints: &[String],
    inbox: Option<&zmq::Socket>,
) -> BenchResult<zmq::Socket> {
    let mut socket = context.socket(zmq::XPUB).map_err(|e| err("socket", e))?;
    set_xpub_nodrop(&mut socket)?;
    socket
        .set_xpub_verbose(true)
        .map_err(|e| err("xpub_verbose", e))?;
    for endpoint in endpoints {
        socket.connect(endpoint).map_err(|e| err("connect", e))?;
    }
    // Each subscriber's subscription arrives as one message (verbose: duplicates too).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut subscribed = 0;
    while subscribed < endpoints.len() {
        match socket.recv_bytes(zmq::DONTWAIT) {
            Ok(subscription) if subscription.first() == Some(&1) => subscribed += 1,
            Ok(_) => return Err("zmq: unexpected message on the XPUB socket".into()),
            Err(zmq::Error::EAGAIN) if std::time::Instant::now() < deadline => {
                if let Some(inbox) = inbox {
                    let _ = inbox.get_events();
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(err("waiting for subscriptions", e)),
        }
    }
    Ok(socket)
}

fn subscriber(context: &zmq::Context, endpoint: &str) -> BenchResult<zmq::Socket> {
    let socket = context.socket(zmq::SUB).map_err(|e| err("socket", e))?;
    socket.set_subscribe(b"").map_err(|e| err("subscribe", e))?;
    socket.bind(endpoint).map_err(|e| err("bind", e))?;
    Ok(socket)
}

struct Reader {
    _context: zmq::Context,
    socket: zmq::Socket,
}

impl FanoutReader for Reader {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<(usize, u64)> {
        let n = self.socket.recv_into(buf, 0).map_err(|e| err("recv", e))?;
        Ok((n.min(buf.len()), 0))
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let dir = PathBuf::from(args.required("dir")?);
    let index: usize = args.need("index")?;
    let context = zmq::Context::new();
    let socket = subscriber(&context, &endpoint_of(&dir, &format!("reader-{index}")))?;
    Ok(Box::new(Reader {
        _context: context,
        socket,
    }))
}

struct Writer {
    _context: zmq::Context,
    socket: zmq::Socket,
}

impl FanoutWriter for Writer {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.socket.send(data, 0).map_err(|e| err("send", e))
    }
}

pub fn fanout_writer(args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let dir = PathBuf::from(args.required("dir")?);
    let readers: usize = args.need("readers")?;
    let context = zmq::Context::new();
    let endpoints: Vec<String> = (0..readers)
        .map(|i| endpoint_of(&dir, &format!("reader-{i}")))
        .collect();
    let socket = publisher(&context, &endpoints, None)?;
    Ok(Box::new(Writer {
        _context: context,
        socket,
    }))
}

struct PingPong {
    context: zmq::Context,
    dir: PathBuf,
    side: Side,
    inbox: zmq::Socket,
    outbox: Option<zmq::Socket>,
}

impl Endpoint for PingPong {
    fn connect(&mut self) -> BenchResult<()> {
        let peer = endpoint_of(&self.dir, self.side.other().name());
        self.outbox = Some(publisher(&self.context, &[peer], Some(&self.inbox))?);
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.outbox
            .as_ref()
            .ok_or("not connected")?
            .send(data, 0)
            .map_err(|e| err("send", e))
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        let n = self.inbox.recv_into(buf, 0).map_err(|e| err("recv", e))?;
        Ok(n.min(buf.len()))
    }
}

pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let dir = PathBuf::from(args.required("dir")?);
    let context = zmq::Context::new();
    let inbox = subscriber(&context, &endpoint_of(&dir, side.name()))?;
    Ok(Box::new(PingPong {
        context,
        dir,
        side,
        inbox,
        outbox: None,
    }))
}
