//! iceoryx2 (crates.io): zero-copy publish-subscribe for the data plus an event service for the
//! blocking wait, the way its examples pair them.
//!
//! A send loans a slice sample, copies the message in and sends it, then notifies the event
//! service; a reader takes samples until none is left, then blocks in `Listener::blocking_wait`.
//! Nothing is dropped: the publisher uses `RetryUntilDelivered` (back-pressure) and there is
//! no history. Service names carry the run's unique directory name, so runs never meet.
//!
//! With a bound (`fanout --capacity/--overflow`): a subscriber buffer of the bound, in samples;
//! `drop` = safe overflow (a full buffer loses its oldest sample, silently: readers count the
//! gaps in the sequence); `refuse` = `RetryUntilDelivered` with a backpressure handler that
//! counts each retry; `block` = `RetryUntilDelivered` (iceoryx2 has no sleeping publisher: it
//! retries with an adaptive wait, yielding then sleeping).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use iceoryx2::node::Node;
use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::{BackpressureAction, BackpressureInfo};
use iceoryx2::prelude::*;

use super::{bound_of, Endpoint, FanoutReader, FanoutWriter, OverflowMode, Side};
use crate::args::Args;
use crate::proc::BenchResult;

/// Samples a subscriber may hold unread before the publisher waits.
const BUFFER: usize = 256;

fn err(what: &str, e: impl std::fmt::Debug) -> String {
    format!("iceoryx2 {what}: {e:?}")
}

fn service_name(args: &Args, what: &str) -> BenchResult<ServiceName> {
    let dir = args.required("dir")?;
    let tag = Path::new(dir)
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let name = format!("mailslot-bench/{tag}/{what}");
    name.as_str().try_into().map_err(|e| err("service name", e))
}

type Sub = Subscriber<ipc::Service, [u8], ()>;
type Pub = Publisher<ipc::Service, [u8], ()>;
type DataService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;
type EventService = iceoryx2::service::port_factory::event::PortFactory<ipc::Service>;

/// The inbox half: node, subscriber of `data`, listener of `event`.
struct Inbox {
    node: Node<ipc::Service>,
    subscriber: Sub,
    listener: Listener<ipc::Service>,
}

/// The outbox half: publisher of `data`, notifier of `event`.
struct Outbox {
    publisher: Pub,
    notifier: Notifier<ipc::Service>,
}

fn node() -> BenchResult<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    NodeBuilder::new()
        .create::<ipc::Service>()
        .map_err(|e| err("node", e))
}

/// The subscriber buffer (samples) and whether a full one drops its oldest (safe overflow).
/// Without a bound: [`BUFFER`] samples, but at most 16 MiB of them per subscriber (large
/// messages: 64 of 256 KiB, 16 of 1 MiB), as the data segment holds every subscriber's buffer.
fn buffer_of(bound: Option<(OverflowMode, usize)>, size: usize) -> (usize, bool) {
    match bound {
        None => (BUFFER.min((16 << 20) / size.max(1)).max(4), false),
        Some((mode, messages)) => (messages.max(1), mode == OverflowMode::Drop),
    }
}

/// Opens (or creates) the pair of services every side of one channel shares. `endpoints` is
/// the most subscribers/listeners it will see.
fn services(
    node: &Node<ipc::Service>,
    args: &Args,
    channel: &str,
    endpoints: usize,
    bound: Option<(OverflowMode, usize)>,
) -> BenchResult<(DataService, EventService)> {
    let size: usize = args.get("size", 64)?;
    let (buffer, safe_overflow) = buffer_of(bound, size);
    let data = node
        .service_builder(&service_name(args, &format!("{channel}-data"))?)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(endpoints)
        .subscriber_max_buffer_size(buffer)
        .history_size(0)
        .enable_safe_overflow(safe_overflow)
        .open_or_create()
        .map_err(|e| err("publish-subscribe service", e))?;
    let event = node
        .service_builder(&service_name(args, &format!("{channel}-event"))?)
        .event()
        .max_notifiers(1)
        .max_listeners(endpoints)
        .open_or_create()
        .map_err(|e| err("event service", e))?;
    Ok((data, event))
}

fn inbox(
    args: &Args,
    channel: &str,
    endpoints: usize,
    bound: Option<(OverflowMode, usize)>,
) -> BenchResult<Inbox> {
    let node = node()?;
    let (data, event) = services(&node, args, channel, endpoints, bound)?;
    let subscriber = data
        .subscriber_builder()
        .buffer_size(buffer_of(bound, args.get("size", 64)?).0)
        .create()
        .map_err(|e| err("subscriber", e))?;
    let listener = event
        .listener_builder()
        .create()
        .map_err(|e| err("listener", e))?;
    Ok(Inbox {
        node,
        subscriber,
        listener,
    })
}

fn outbox(
    node: &Node<ipc::Service>,
    args: &Args,
    channel: &str,
    endpoints: usize,
    size: usize,
    bound: Option<(OverflowMode, usize)>,
) -> BenchResult<(Outbox, Arc<AtomicU64>)> {
    let (data, event) = services(node, args, channel, endpoints, bound)?;
    let retries = Arc::new(AtomicU64::new(0));
    let mut builder = data
        .publisher_builder()
        .initial_max_slice_len(size)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered);
    if matches!(bound, Some((OverflowMode::Refuse, _))) {
        let retries = retries.clone();
        builder = builder.set_backpressure_handler(move |_: &BackpressureInfo| {
            retries.fetch_add(1, Ordering::Relaxed);
            BackpressureAction::Retry
        });
    }
    let publisher = builder.create().map_err(|e| err("publisher", e))?;
    let notifier = event
        .notifier_builder()
        .create()
        .map_err(|e| err("notifier", e))?;
    Ok((
        Outbox {
            publisher,
            notifier,
        },
        retries,
    ))
}

impl Inbox {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(|e| err("receive", e))? {
                let payload = sample.payload();
                let n = payload.len().min(buf.len());
                buf[..n].copy_from_slice(&payload[..n]);
                return Ok(n);
            }
            // Notifications are counted, so one sent between `receive` and here is not lost.
            self.listener
                .blocking_wait(|_| {})
                .map_err(|e| err("blocking_wait", e))?;
        }
    }
}

impl Outbox {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        let sample = self
            .publisher
            .loan_slice_uninit(data.len())
            .map_err(|e| err("loan", e))?;
        sample
            .write_from_slice(data)
            .send()
            .map_err(|e| err("send", e))?;
        self.notifier.notify().map_err(|e| err("notify", e))?;
        Ok(())
    }
}

impl FanoutReader for Inbox {
    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<Option<(usize, u64)>> {
        Inbox::recv(self, buf).map(|n| Some((n, 0)))
    }
}

pub fn fanout_reader(args: &Args) -> BenchResult<Box<dyn FanoutReader>> {
    let readers: usize = args.need("readers")?;
    Ok(Box::new(inbox(args, "fanout", readers, bound_of(args)?)?))
}

struct Writer {
    _node: Node<ipc::Service>,
    outbox: Outbox,
    retries: Arc<AtomicU64>,
}

impl FanoutWriter for Writer {
    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.outbox.send(data)
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

pub fn fanout_writer(args: &Args) -> BenchResult<Box<dyn FanoutWriter>> {
    let readers: usize = args.need("readers")?;
    let size: usize = args.need("size")?;
    let node = node()?;
    let (outbox, retries) = outbox(&node, args, "fanout", readers, size, bound_of(args)?)?;
    Ok(Box::new(Writer {
        _node: node,
        outbox,
        retries,
    }))
}

struct PingPong {
    args: Args,
    side: Side,
    inbox: Inbox,
    outbox: Option<Outbox>,
}

impl Endpoint for PingPong {
    fn connect(&mut self) -> BenchResult<()> {
        let channel = format!("to-{}", self.side.other().name());
        let (outbox, _) = outbox(&self.inbox.node, &self.args, &channel, 1, 64, None)?;
        self.outbox = Some(outbox);
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> BenchResult<()> {
        self.outbox.as_mut().ok_or("not connected")?.send(data)
    }

    fn recv(&mut self, buf: &mut [u8]) -> BenchResult<usize> {
        self.inbox.recv(buf)
    }
}

pub fn endpoint(side: Side, args: &Args) -> BenchResult<Box<dyn Endpoint>> {
    let inbox = inbox(args, &format!("to-{}", side.name()), 1, None)?;
    Ok(Box::new(PingPong {
        args: args.clone(),
        side,
        inbox,
        outbox: None,
    }))
}
