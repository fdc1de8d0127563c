//! The holder's local delivery: what the inbound step accepted goes into the local mailslots
//! of the runtime directory (a [`Deliverer`] owned by the receive thread: no lock, and one
//! wake-up per name per batch), or to the application's callback, one message at a time.

use std::path::Path;

use super::config::{DeliverFn, DeliveryOutcome, NetSource, Sink};
use super::inbound::Accepted;
use super::pending::Pending;
use super::state::Counters;
use crate::error::ErrorKind;
use crate::ring::{padded, RecordSource};
use crate::writer::{Deliverer, NetMessage};

/// A holder's sink, for the length of its term.
pub(crate) enum Delivering {
    Local {
        deliverer: Deliverer,
        outcomes: Vec<Result<(), ErrorKind>>,
    },
    Callback(DeliverFn),
}

impl Delivering {
    pub(crate) fn new(sink: &Sink, dir: &Path) -> Delivering {
        match sink {
            Sink::Local => Delivering::Local {
                deliverer: Deliverer::new(dir.to_path_buf()),
                outcomes: Vec::new(),
            },
            Sink::Callback(f) => Delivering::Callback(f.clone()),
        }
    }

    /// Delivers a batch and counts each message in exactly one counter: `delivered`,
    /// `dropped_no_mailslot` or `dropped_failed`; writes in `pending` what is done: the
    /// local mailslots' batch once it is in the rings, before their readers are woken (a
    /// successor wakes them if we die in between: [`Delivering::wake`]), a callback's message
    /// as it returns.
    pub(crate) fn deliver(
        &mut self,
        batch: &[Accepted<'_>],
        counters: &Counters,
        pending: &mut Pending,
    ) {
        if batch.is_empty() {
            return;
        }
        match self {
            Delivering::Local {
                deliverer,
                outcomes,
            } => {
                let messages: Vec<NetMessage<'_>> = batch
                    .iter()
                    .map(|a| NetMessage {
                        name: a.mailslot,
                        data: a.data,
                        source: record_source(a),
                    })
                    .collect();
                deliverer.deliver_batch(&messages, outcomes, |_| {
                    for a in batch {
                        pending.note(a.key);
                    }
                    pending.write();
                });
                for outcome in outcomes.iter() {
                    Counters::bump(match outcome {
                        Ok(()) => &counters.delivered,
                        Err(ErrorKind::NotFound) => &counters.dropped_no_mailslot,
                        Err(_) => &counters.dropped_failed,
                    });
                }
            }
            Delivering::Callback(f) => {
                for a in batch {
                    let source = NetSource {
                        ip: *a.from.ip(),
                        port: a.from.port(),
                        netbios_name: a.source.name(),
                        netbios_suffix: a.source.suffix(),
                        destination_name: a.destination.name(),
                        destination_suffix: a.destination.suffix(),
                        msg_type: a.msg_type,
                    };
                    count_callback(call(f, a.mailslot, a.data, &source), counters);
                    pending.note(a.key);
                    pending.write();
                }
            }
        }
    }

    /// Wakes the readers of what the previous holder delivered and may have died before
    /// waking them for (local mailslots; a callback has nothing to wake).
    pub(crate) fn wake(&mut self, delivered: &[Accepted<'_>]) {
        if let Delivering::Local { deliverer, .. } = self {
            let mut names: Vec<&str> = Vec::new();
            for a in delivered {
                if !names.contains(&a.mailslot) {
                    names.push(a.mailslot);
                    deliverer.ring(a.mailslot, &record_source(a));
                }
            }
        }
    }

    /// Delivers one message handed over by the host service (already validated there).
    pub(crate) fn deliver_one(
        &mut self,
        name: &str,
        data: &[u8],
        source: &NetSource,
        counters: &Counters,
    ) {
        match self {
            Delivering::Local {
                deliverer,
                outcomes,
            } => {
                let message = NetMessage {
                    name,
                    data,
                    source: source.record_source(),
                };
                deliverer.deliver_batch(std::slice::from_ref(&message), outcomes, |_| {});
                Counters::bump(match outcomes.first() {
                    Some(Ok(())) => &counters.delivered,
                    Some(Err(ErrorKind::NotFound)) => &counters.dropped_no_mailslot,
                    _ => &counters.dropped_failed,
                });
            }
            Delivering::Callback(f) => count_callback(call(f, name, data, source), counters),
        }
    }
}

/// A panicking callback must not take the role down with it (it counts as failed).
fn call(f: &DeliverFn, name: &str, data: &[u8], source: &NetSource) -> Option<DeliveryOutcome> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(name, data, source))).ok()
}

fn count_callback(outcome: Option<DeliveryOutcome>, counters: &Counters) {
    Counters::bump(match outcome {
        Some(DeliveryOutcome::Delivered) => &counters.delivered,
        Some(DeliveryOutcome::NoMailslot) => &counters.dropped_no_mailslot,
        Some(DeliveryOutcome::Failed(_)) | None => &counters.dropped_failed,
    });
}

/// The record's source and destination: the NetBIOS names as [`RecordSource::network`]
/// stores them, without building a `String` for the usual ASCII names.
fn record_source(a: &Accepted<'_>) -> RecordSource {
    let (src, dst) = (a.source.name_bytes(), a.destination.name_bytes());
    if !src.is_ascii() || !dst.is_ascii() {
        // Code page 850 decodes to multi-byte UTF-8: the rare case takes the slow road.
        return RecordSource::network(
            *a.from.ip(),
            a.from.port(),
            (&a.source.name(), a.source.suffix()),
            (&a.destination.name(), a.destination.suffix()),
        );
    }
    RecordSource::Network {
        ip: a.from.ip().octets(),
        port: a.from.port(),
        name: padded(src),
        suffix: a.source.suffix(),
        destination: padded(dst),
        destination_suffix: a.destination.suffix(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::codec::NbName;
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn record_source_matches_the_slow_road() {
        let names = ["PEER", "A", "FIFTEEN-CHARS-X", "caf\u{e9}"];
        for (name, to) in names.iter().zip(names.iter().rev()) {
            let nb = NbName::new(name, 0x20).unwrap();
            let dest = NbName::new(to, 0x03).unwrap();
            let a = Accepted {
                mailslot: "T",
                data: b"",
                from: SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 138),
                source: nb,
                destination: dest,
                msg_type: 0x10,
                dgm_length_mismatch: false,
                key: 0,
            };
            let slow = RecordSource::network(
                Ipv4Addr::new(10, 1, 2, 3),
                138,
                (&nb.name(), 0x20),
                (&dest.name(), 0x03),
            );
            assert_eq!(record_source(&a), slow, "{name} to {to}");
        }
    }

    /// A holder that dies between noting its batch and waking the readers leaves them asleep
    /// with the message in the ring; the successor, which skips the message, wakes them.
    #[test]
    fn a_successor_wakes_the_readers_a_dead_holder_did_not() {
        use crate::{Scope, Server, Timeout};
        use std::time::{Duration, Instant};
        let dir = std::env::temp_dir().join(format!("ms-sink-wake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let mut server = Server::builder("WAKE")
            .scope(Scope::Dir(dir.clone()))
            .read_timeout(Timeout::After(Duration::from_secs(20)))
            .open()
            .unwrap();
        let reader = std::thread::spawn(move || {
            let got = server.recv().map(|m| m.data);
            (got, Instant::now())
        });
        // The reader is asleep before anything is appended. Asleep, it looks again on its own
        // only every 500 ms (`REVALIDATE_EVERY`): everything below happens well within that.
        std::thread::sleep(Duration::from_millis(50));
        let asleep = Instant::now();
        let a = Accepted {
            mailslot: "WAKE",
            data: b"x",
            from: SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 138),
            source: NbName::new("PEER", 0).unwrap(),
            destination: NbName::new("HOST", 0).unwrap(),
            msg_type: 0x10,
            dgm_length_mismatch: false,
            key: 1,
        };
        let message = NetMessage {
            name: a.mailslot,
            data: a.data,
            source: record_source(&a),
        };
        // The dying holder: appended and noted, then "killed" before its wake-ups.
        let mut outcomes = Vec::new();
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Deliverer::new(dir.clone()).deliver_batch(&[message], &mut outcomes, |_| {
                panic!("killed after the note")
            })
        }));
        assert!(died.is_err());
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "the reader was woken by nobody");
        Delivering::new(&Sink::Local, &dir).wake(&[a]);
        let (got, at) = reader.join().unwrap();
        assert_eq!(got.unwrap(), b"x");
        assert!(
            at.duration_since(asleep) < Duration::from_millis(400),
            "woken by the successor, not by its own look 500 ms after it fell asleep"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
