//! A user's network role when the host service holds the port: instead of binding it, the
//! holder tells the service which names its runtime directory has (watching the directory
//! with inotify) and delivers the datagrams the service hands over, as a holder of the port
//! would. The service never writes a user's memory; the user's own process does.

use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::config::NetConfig;
use super::sink::Delivering;
use super::state::{Counters, StateRecord, FLUSH_INTERVAL};
use crate::name::MailslotName;
use crate::service::{Datagram, Subscription, MAX_PACKET};

/// How often a holder whose service went away looks for the next one.
const RESUBSCRIBE_INTERVAL: Duration = Duration::from_millis(200);

/// The names of `dir` (case-folded), from its files.
fn names_of(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| MailslotName::key_from_file_name(e.file_name().to_str()?))
        .collect()
}

fn watch(dir: &Path) -> Option<Inotify> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
    let mask = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM;
    inotify.add_watch(dir, mask).ok()?;
    Some(inotify)
}

/// Serves the role through `sub` until `stop_rx` is readable. `Err` when the directory
/// cannot be watched.
pub(super) fn hold(
    config: &NetConfig,
    sub: Subscription,
    sink: &mut Delivering,
    counters: &Counters,
    stop_rx: &UnixDatagram,
    record: &mut StateRecord,
) -> Result<(), String> {
    let state_path = config.state_path();
    let inotify = watch(&config.dir)
        .ok_or_else(|| format!("cannot watch {} for new names", config.dir.display()))?;
    let mut sub = Some(sub);
    let mut names_sent = false;
    let mut buf = vec![0u8; MAX_PACKET];
    let mut last_flush = Instant::now();
    let mut retry_at = Instant::now();
    loop {
        if sub.is_none() && Instant::now() >= retry_at {
            sub = Subscription::start(config.port);
            names_sent = false;
            retry_at = Instant::now() + RESUBSCRIBE_INTERVAL;
        }
        // Names first: the directory changed (or we just subscribed).
        let changed = inotify.read_events().is_ok_and(|events| !events.is_empty());
        if let Some(s) = &sub {
            if (changed || !names_sent) && s.set_names(names_of(&config.dir)).is_err() {
                sub = None;
            }
            names_sent = true;
        }
        if let Some(s) = &sub {
            loop {
                match s.try_recv(&mut buf) {
                    Ok(Some(d)) => handle(d, sink, counters),
                    Ok(None) => break,
                    Err(_) => {
                        sub = None;
                        break;
                    }
                }
            }
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL {
            record.counters = counters.snapshot();
            let _ = record.write(&state_path);
            last_flush = Instant::now();
        }
        let timeout = if sub.is_some() {
            FLUSH_INTERVAL
        } else {
            RESUBSCRIBE_INTERVAL
        };
        let mut fds = vec![
            PollFd::new(stop_rx.as_fd(), PollFlags::POLLIN),
            PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(s) = &sub {
            fds.push(PollFd::new(s.fd(), PollFlags::POLLIN));
        }
        let ms = timeout.as_millis() as i32;
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
        );
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
    }
}

fn handle(d: Datagram, sink: &mut Delivering, counters: &Counters) {
    Counters::bump(&counters.received);
    sink.deliver_one(&d.name, &d.data, &d.source, counters);
}
