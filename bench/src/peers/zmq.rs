//! ZeroMQ PUB/SUB over `ipc://` (libzmq from the system), in no-drop mode.
//!
//! Every subscriber binds its own `ipc://` endpoint; the publisher (an XPUB socket with
//! `ZMQ_XPUB_NODROP` and `ZMQ_XPUB_VERBOSE`) connects to each and waits for every
//! subscription before it sends, so nothing is lost to the slow-joiner race. With no-drop, a
//! blocking send waits when a subscriber's high-water mark is reached instead of dropping:
//! back-pressure, like the datagram baseline.
//!
//! With a bound (`fanout --capacity/--overflow`): SNDHWM and RCVHWM of half the bound each, in
//! messages; `block` = no-drop and blocking sends (as without a bound), `refuse` = no-drop and
//! non-blocking sends retried on `EAGAIN`, `drop` = a plain PUB that drops what a full pipe
//! cannot take: the newest messages, silently (readers count the gaps in the sequence).

use std::path::{Path, PathBuf};

use super::{bound_of, Endpoint, FanoutReader, FanoutWriter, OverflowMode, Side};
use crate::args::Args;
use crate::proc::BenchResult;

fn err(what: &str, e: zmq::Error) -> String {
    format!("zmq {what}: {e}")
}

fn endpoint_of(dir: &Path, who: &str) -> String {
    format!("ipc://{}", dir.join(format!("zmq-{who}")).display())
}

/// How long a drop-mode reader waits before it counts the round's tail as dropped (ZeroMQ
/// drops the newest messages, so the last of a round may never come).
const TAIL_WAIT_MS: i32 = 250;

/// The high-water mark on each side for a bound of `messages` per reader: a message can sit
/// in the publisher's pipe (SNDHWM) or the subscriber's (RCVHWM), so each gets half (the
/// kernel's socket buffers between them hold more still).
fn hwm(messages: usize) -> i32 {
    i32::try_from(messages.div_ceil(2).max(1)).unwrap_or(i32::MAX)
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
    bound: Option<(OverflowMode, usize)>,
) -> BenchResult<zmq::Socket> {
    let mut socket = context.socket(zmq::XPUB).map_err(|e| err("socket", e))?;
    // Drop: a plain PUB socket drops what a full pipe cannot take (the newest messages).
    if !matches!(bound, Some((OverflowMode::Drop, _))) {
        set_xpub_nodrop(&mut socket)?;
    }
    if let Some((_, messages)) = bound {
        socket
            .set_sndhwm(hwm(messages))
            .map_err(|e| err("sndhwm", e))?;
    }
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

fn subscriber(
    context: &zmq::Context,
    endpoint: &str,
    bound: Option<(OverflowMode, usize)>,
) -> BenchResult<zmq::Socket> {
    let socket = context.socket(zmq::SUB).map_err(|e| err("socket", e))?;
    socket.set_subscribe(b"").map_err(|e| err("subscribe", e))?;
    if let Some((mode, messages)) = bound {
        socket
            .set_rcvhwm(hwm(messages))
            .map_err(|e| err("rcvhwm", e))?;
        if mode == OverflowMode::Drop {
            socket
                .set_rcvtimeo(TAIL_WAIT_MS)
                .map_err(|e| err("rcvtimeo", e))?;
        }
    }
    socket.bind(endpoint).map_err(|e| err("bind", e))?;
    Ok(socket)
}

struct Reader {
    _context: zmq::Context,
    socket: zmq::Socket,
}

impl FanoutReader for Reader {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>> {
        match self.socket.recv_into(buf, 0) {
            Ok(n) => Ok(Some((n.min(buf.len()), 0))),
            // Only with a receive timeout (drop mode): the round's tail was dropped.
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(e) => Err(err("recv", e)),
        }
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let dir = PathBuf::from(args.required("dir")?);
    let index: usize = args.need("index")?;
    let context = zmq::Context::new();
    let socket = subscriber(
        &context,
        &endpoint_of(&dir, &format!("reader-{index}")),
        bound_of(args)?,
    )?;
    Ok(Box::new(Reader {
        _context: context,
        socket,
    }))
}

struct Writer {
    _context: zmq::Context,
    socket: zmq::Socket,
    /// `--overflow refuse`: non-blocking sends, retried while a pipe is full.
    refuse: bool,
    retries: u64,
}

impl FanoutWriter for Writer {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        if !self.refuse {
            return self.socket.send(data, 0).map_err(|e| err("send", e));
        }
        loop {
            match self.socket.send(data, zmq::DONTWAIT) {
                Ok(()) => return Ok(()),
                Err(zmq::Error::EAGAIN) => {
                    self.retries += 1;
                    std::thread::yield_now();
                }
                Err(e) => return Err(err("send", e)),
            }
        }
    }

    fn retries(&self) -> u64 {
        self.retries
    }
}

pub fn fanout_writer(args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let dir = PathBuf::from(args.required("dir")?);
    let readers: usize = args.need("readers")?;
    let context = zmq::Context::new();
    let endpoints: Vec<String> = (0..readers)
        .map(|i| endpoint_of(&dir, &format!("reader-{i}")))
        .collect();
    let bound = bound_of(args)?;
    let socket = publisher(&context, &endpoints, None, bound)?;
    Ok(Box::new(Writer {
        _context: context,
        socket,
        refuse: matches!(bound, Some((OverflowMode::Refuse, _))),
        retries: 0,
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
        self.outbox = Some(publisher(&self.context, &[peer], Some(&self.inbox), None)?);
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
    let inbox = subscriber(&context, &endpoint_of(&dir, side.name()), None)?;
    Ok(Box::new(PingPong {
        context,
        dir,
        side,
        inbox,
        outbox: None,
    }))
}
