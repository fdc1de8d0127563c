//! Our NetBIOS names on the LAN, as a B-node (RFC 1001 §15.2, RFC 1002 §4.2 and §5.1.1):
//! register each name before answering for it, defend our unique names, give way on a
//! conflict, release them when the role is given up. No I/O: the holder sends what this
//! returns and feeds it what arrives on the name-service port.
//!
//! - Registration: a broadcast NAME REGISTRATION REQUEST, repeated [`TRIES`] times
//!   [`RETRY`] apart; if nobody objects, a NAME OVERWRITE DEMAND tells every node the name is
//!   ours, and from then on we answer queries for it.
//! - A NEGATIVE NAME REGISTRATION RESPONSE to our request (its owner defends it), or a NAME
//!   CONFLICT DEMAND, puts the name in conflict: reported once, never answered for again in
//!   this term. Datagrams to it that reach us are still delivered.
//! - Defence: another node's registration of one of our registered unique names gets a
//!   negative response; so does its registration of our group name as unique.
//! - Release: a broadcast NAME RELEASE REQUEST for every registered name.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mailslot_wire::{NbAddress, NbnsKind, NbnsMessage, NodeType, ScopedName};

use super::codec::{same_name, NbName};

/// Broadcast registration requests before a name is ours (RFC 1002 BCAST_REQ_RETRY_COUNT).
pub(crate) const TRIES: u8 = 3;
/// Wait for an objection after each request (RFC 1002 BCAST_REQ_RETRY_TIMEOUT).
pub(crate) const RETRY: Duration = Duration::from_millis(250);
/// The TTL we register with (what Windows and Samba use).
const TTL: u32 = 300_000;

/// Where a name stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameState {
    /// Requests sent so far, and when the next step is due.
    Registering {
        sent: u8,
        due: Instant,
    },
    Registered,
    /// Another node holds it (`defender`: the address its objection came from).
    Conflict {
        defender: Ipv4Addr,
    },
}

/// One of our names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    name: NbName,
    group: bool,
    state: NameState,
    trn_id: u16,
}

/// A packet to send: to every broadcast address (with our address on that subnet in its NB
/// entry), or back to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Broadcast(Packet),
    Reply(Packet),
}

/// What to send, before our address is filled in (it depends on the subnet it goes to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) kind: PacketKind,
    pub(crate) trn_id: u16,
    pub(crate) name: NbName,
    pub(crate) group: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketKind {
    Registration,
    Overwrite,
    Release,
    /// A negative registration response: we own the name.
    Defence,
}

impl Packet {
    /// The bytes, with `addr` (ours, on the subnet it goes to) in the NB entry.
    pub(crate) fn encode(&self, addr: Ipv4Addr) -> Vec<u8> {
        let entry = NbAddress {
            group: self.group,
            node_type: NodeType::B,
            address: addr,
        }
        .to_bytes();
        let name = ScopedName::new(self.name);
        let m = match self.kind {
            PacketKind::Registration => {
                NbnsMessage::registration_request(self.trn_id, name, &entry, TTL, false)
            }
            PacketKind::Overwrite => {
                NbnsMessage::registration_request(self.trn_id, name, &entry, TTL, true)
            }
            PacketKind::Release => NbnsMessage::release_request(self.trn_id, name, &entry),
            PacketKind::Defence => {
                NbnsMessage::negative_registration_response(self.trn_id, name, &entry)
            }
        };
        let mut out = vec![0u8; m.buffer_len()];
        match m.emit(&mut out) {
            Ok(n) => out.truncate(n),
            // Cannot happen: the buffer is the packet's length and the RDATA 6 bytes.
            Err(_) => out.clear(),
        }
        out
    }
}

/// A conflict found by [`Claims::packet`], to report once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub(crate) name: NbName,
    pub(crate) defender: Ipv4Addr,
}

/// What an incoming packet meant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Heard {
    /// Send this back to the packet's source.
    pub(crate) reply: Option<Outgoing>,
    /// One of our names went into conflict.
    pub(crate) conflict: Option<Conflict>,
    /// The packet was about registration (handled here; not a query).
    pub(crate) handled: bool,
}

/// Our names and where each stands.
#[derive(Debug, Clone)]
pub(crate) struct Claims {
    claims: Vec<Claim>,
}

impl Claims {
    /// Claims for `names` (name, group), registration starting now; or already registered
    /// when this host held them a moment ago (a successor after a holder died: nobody else
    /// took them, and asking again would leave queries unanswered for a second).
    pub(crate) fn new(
        names: &[(NbName, bool)],
        now: Instant,
        registered: bool,
        mut next_id: impl FnMut() -> u16,
    ) -> Claims {
        let claims = names
            .iter()
            .map(|&(name, group)| Claim {
                name,
                group,
                state: if registered {
                    NameState::Registered
                } else {
                    NameState::Registering { sent: 0, due: now }
                },
                trn_id: next_id(),
            })
            .collect();
        Claims { claims }
    }

    /// What is due at `now`: registration requests, and the overwrite demand of a name whose
    /// last request went unanswered (it is then registered).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for c in &mut self.claims {
            let NameState::Registering { sent, due } = c.state else {
                continue;
            };
            if now < due {
                continue;
            }
            let kind = if sent < TRIES {
                c.state = NameState::Registering {
                    sent: sent + 1,
                    due: now + RETRY,
                };
                PacketKind::Registration
            } else {
                c.state = NameState::Registered;
                PacketKind::Overwrite
            };
            out.push(Outgoing::Broadcast(Packet {
                kind,
                trn_id: c.trn_id,
                name: c.name,
                group: c.group,
            }));
        }
        out
    }

    /// When [`Claims::due`] next has something to do.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.claims
            .iter()
            .filter_map(|c| match c.state {
                NameState::Registering { due, .. } => Some(due),
                _ => None,
            })
            .min()
    }

    /// A packet from `from` on the name-service port. `ours` says whether an address is this
    /// host's (our own broadcasts come back to us, and are not another node's).
    pub(crate) fn packet(
        &mut self,
        bytes: &[u8],
        from: Ipv4Addr,
        ours: impl Fn(Ipv4Addr) -> bool,
    ) -> Heard {
        let Ok(m) = NbnsMessage::parse(bytes) else {
            return Heard::default();
        };
        let kind = m.kind();
        let registration = matches!(
            kind,
            NbnsKind::NameRegistrationRequest
                | NbnsKind::NameOverwriteRequest
                | NbnsKind::MultiHomedNameRegistrationRequest
                | NbnsKind::NegativeNameRegistrationResponse
                | NbnsKind::PositiveNameRegistrationResponse
                | NbnsKind::NameConflictDemand
                | NbnsKind::NameReleaseRequest
                | NbnsKind::WaitForAcknowledgement
        );
        let mut heard = Heard {
            handled: registration,
            ..Heard::default()
        };
        let Some(name) = m.record_name().or(m.question.map(|q| q.name)) else {
            return heard;
        };
        // Names with a scope are another NetBIOS scope's: not ours.
        if !name.scope.is_empty() || ours(from) {
            return heard;
        }
        let entry = m
            .record
            .and_then(|(_, rr)| rr.addresses().ok())
            .and_then(|a| a.iter().next());
        let Some(claim) = self
            .claims
            .iter_mut()
            .find(|c| same_name(&c.name, &name.name) && c.name.suffix() == name.name.suffix())
        else {
            return heard;
        };
        match kind {
            // Someone else registers one of our names: defend a registered unique name, and
            // our group name against a unique claim.
            NbnsKind::NameRegistrationRequest
            | NbnsKind::NameOverwriteRequest
            | NbnsKind::MultiHomedNameRegistrationRequest => {
                let their_group = entry.is_some_and(|e| e.group);
                if claim.state == NameState::Registered
                    && !(claim.group && their_group)
                    && entry.is_some_and(|e| !ours(e.address))
                {
                    heard.reply = Some(Outgoing::Reply(Packet {
                        kind: PacketKind::Defence,
                        trn_id: m.header.trn_id,
                        name: claim.name,
                        group: claim.group,
                    }));
                }
            }
            // The owner objects to our registration, or a node says the name is in conflict.
            NbnsKind::NegativeNameRegistrationResponse | NbnsKind::NameConflictDemand => {
                let ours_asked = kind == NbnsKind::NameConflictDemand
                    || matches!(claim.state, NameState::Registering { .. })
                        && m.header.trn_id == claim.trn_id;
                if ours_asked && !matches!(claim.state, NameState::Conflict { .. }) {
                    // The sender, not the NB entry: nmbd echoes our own entry in its refusal.
                    let defender = from;
                    claim.state = NameState::Conflict { defender };
                    heard.conflict = Some(Conflict {
                        name: claim.name,
                        defender,
                    });
                }
            }
            _ => {}
        }
        heard
    }

    /// Whether we answer queries for `name`, and as a group name: only names registered.
    pub(crate) fn answers_for(&self, name: &NbName) -> Option<bool> {
        self.claims
            .iter()
            .find(|c| {
                c.state == NameState::Registered
                    && same_name(&c.name, name)
                    && c.name.suffix() == name.suffix()
            })
            .map(|c| c.group)
    }

    /// The names we answer for, for a node status response.
    pub(crate) fn registered(&self) -> Vec<(NbName, bool)> {
        self.claims
            .iter()
            .filter(|c| c.state == NameState::Registered)
            .map(|c| (c.name, c.group))
            .collect()
    }

    /// Release requests for every registered name (the role is given up cleanly).
    pub(crate) fn release(&self) -> Vec<Outgoing> {
        self.claims
            .iter()
            .filter(|c| c.state == NameState::Registered)
            .map(|c| {
                Outgoing::Broadcast(Packet {
                    kind: PacketKind::Release,
                    trn_id: c.trn_id,
                    name: c.name,
                    group: c.group,
                })
            })
            .collect()
    }

    /// The overall state for `status`: `conflict` if any name is in conflict, else
    /// `registering` while any is, else `registered`.
    pub(crate) fn summary(&self) -> (&'static str, Option<Conflict>) {
        if let Some(c) = self.claims.iter().find_map(|c| match c.state {
            NameState::Conflict { defender } => Some(Conflict {
                name: c.name,
                defender,
            }),
            _ => None,
        }) {
            return ("conflict", Some(c));
        }
        if self
            .claims
            .iter()
            .any(|c| matches!(c.state, NameState::Registering { .. }))
        {
            ("registering", None)
        } else {
            ("registered", None)
        }
    }
}

/// `NAME<xx>` for messages.
pub(crate) fn display(name: &NbName) -> String {
    format!("{}<{:02x}>", name.name(), name.suffix())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);

    fn host(suffix: u8) -> NbName {
        NbName::new("HOSTB", suffix).unwrap()
    }

    fn claims(now: Instant) -> Claims {
        let mut id = 100u16;
        Claims::new(
            &[
                (host(0), false),
                (host(3), false),
                (NbName::new("MSLAB", 0).unwrap(), true),
            ],
            now,
            false,
            || {
                id += 1;
                id
            },
        )
    }

    fn ours(a: Ipv4Addr) -> bool {
        a == ME || a.is_loopback()
    }

    fn kinds(out: &[Outgoing]) -> Vec<PacketKind> {
        out.iter()
            .map(|o| match o {
                Outgoing::Broadcast(p) | Outgoing::Reply(p) => p.kind,
            })
            .collect()
    }

    fn packet(o: &Outgoing) -> Packet {
        match o {
            Outgoing::Broadcast(p) | Outgoing::Reply(p) => *p,
        }
    }

    /// Three requests 250 ms apart, then an overwrite demand; answered only once registered.
    #[test]
    fn registers_after_three_unanswered_requests() {
        let t0 = Instant::now();
        let mut c = claims(t0);
        assert_eq!(c.answers_for(&host(0)), None);
        for i in 0..TRIES as u32 {
            let t = t0 + RETRY * i;
            assert_eq!(kinds(&c.due(t)), vec![PacketKind::Registration; 3]);
            assert!(c.due(t + RETRY / 2).is_empty());
            assert_eq!(c.next_due(), Some(t + RETRY));
            assert_eq!(c.summary().0, "registering");
        }
        let out = c.due(t0 + RETRY * 3);
        assert_eq!(kinds(&out), vec![PacketKind::Overwrite; 3]);
        assert_eq!(c.next_due(), None);
        assert_eq!(c.summary(), ("registered", None));
        assert_eq!(c.answers_for(&host(0)), Some(false));
        assert_eq!(c.answers_for(&host(3)), Some(false));
        assert_eq!(c.answers_for(&host(0x20)), None, "<20> is not claimed");
        assert_eq!(c.answers_for(&NbName::new("mslab", 0).unwrap()), Some(true));
        assert_eq!(kinds(&c.release()), vec![PacketKind::Release; 3]);
    }

    /// The encoded request is what the wire crate reads back as one, with our address.
    #[test]
    fn encoded_packets_carry_our_address() {
        let t0 = Instant::now();
        let mut c = claims(t0);
        let out = c.due(t0);
        let bytes = packet(&out[0]).encode(ME);
        let m = NbnsMessage::parse(&bytes).unwrap();
        assert_eq!(m.kind(), NbnsKind::NameRegistrationRequest);
        let e = m
            .record
            .unwrap()
            .1
            .addresses()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        assert_eq!((e.address, e.group), (ME, false));
        let g = packet(&out[2]).encode(ME);
        let m = NbnsMessage::parse(&g).unwrap();
        assert!(
            m.record
                .unwrap()
                .1
                .addresses()
                .unwrap()
                .iter()
                .next()
                .unwrap()
                .group
        );
    }

    fn register_all(c: &mut Claims, t0: Instant) {
        for i in 0..=TRIES as u32 {
            c.due(t0 + RETRY * i);
        }
    }

    /// An owner's negative response to our request: conflict, reported once, never answered.
    #[test]
    fn a_defended_name_is_a_conflict() {
        let t0 = Instant::now();
        let mut c = claims(t0);
        let first = packet(&c.due(t0)[0]);
        // nmbd's refusal echoes the requester's entry (ours): the defender is the sender.
        let entry = NbAddress {
            group: false,
            node_type: NodeType::B,
            address: ME,
        }
        .to_bytes();
        let neg = NbnsMessage::negative_registration_response(
            first.trn_id,
            ScopedName::new(host(0)),
            &entry,
        );
        let mut buf = [0u8; 128];
        let n = neg.emit(&mut buf).unwrap();
        let heard = c.packet(&buf[..n], OTHER, ours);
        assert!(heard.handled);
        assert_eq!(
            heard.conflict,
            Some(Conflict {
                name: host(0),
                defender: OTHER
            })
        );
        // Again: no second report.
        assert_eq!(c.packet(&buf[..n], OTHER, ours).conflict, None);
        register_all(&mut c, t0);
        assert_eq!(c.answers_for(&host(0)), None);
        assert_eq!(
            c.answers_for(&host(3)),
            Some(false),
            "the other names go on"
        );
        assert_eq!(c.summary().0, "conflict");
        assert_eq!(c.summary().1.unwrap().defender, OTHER);
        assert!(!kinds(&c.release()).is_empty());
        assert!(c.registered().iter().all(|(n, _)| *n != host(0)));
        // A negative response with another transaction id is not about our request.
        let mut c = claims(t0);
        c.due(t0);
        let neg = NbnsMessage::negative_registration_response(9, ScopedName::new(host(0)), &entry);
        let n = neg.emit(&mut buf).unwrap();
        assert_eq!(c.packet(&buf[..n], OTHER, ours).conflict, None);
    }

    fn request_from(addr: Ipv4Addr, name: NbName, group: bool, overwrite: bool) -> Vec<u8> {
        let entry = NbAddress {
            group,
            node_type: NodeType::B,
            address: addr,
        }
        .to_bytes();
        let m = NbnsMessage::registration_request(
            0x4242,
            ScopedName::new(name),
            &entry,
            TTL,
            overwrite,
        );
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf).unwrap();
        buf
    }

    /// Another node registering our unique name gets a negative response to its transaction;
    /// our own broadcasts coming back, and names not ours, get nothing.
    #[test]
    fn defends_registered_unique_names() {
        let t0 = Instant::now();
        let mut c = claims(t0);
        // Not yet registered: no defence.
        let req = request_from(OTHER, host(0), false, false);
        assert_eq!(c.packet(&req, OTHER, ours).reply, None);
        register_all(&mut c, t0);
        for overwrite in [false, true] {
            let req = request_from(OTHER, host(0), false, overwrite);
            let heard = c.packet(&req, OTHER, ours);
            let reply = heard.reply.expect("a defence");
            let p = packet(&reply);
            assert!(matches!(reply, Outgoing::Reply(_)));
            assert_eq!(
                (p.kind, p.trn_id, p.name),
                (PacketKind::Defence, 0x4242, host(0))
            );
            let bytes = p.encode(ME);
            let m = NbnsMessage::parse(&bytes).unwrap();
            assert_eq!(m.kind(), NbnsKind::NegativeNameRegistrationResponse);
        }
        // Our own request, looped back.
        assert_eq!(
            c.packet(&request_from(ME, host(0), false, false), ME, ours)
                .reply,
            None
        );
        // Another name, or our group name joined as a group: nothing.
        let other = NbName::new("ELSE", 0).unwrap();
        assert_eq!(
            c.packet(&request_from(OTHER, other, false, false), OTHER, ours)
                .reply,
            None
        );
        let wg = NbName::new("MSLAB", 0).unwrap();
        assert_eq!(
            c.packet(&request_from(OTHER, wg, true, false), OTHER, ours)
                .reply,
            None
        );
        // Our group name claimed as unique: defended.
        assert!(c
            .packet(&request_from(OTHER, wg, false, false), OTHER, ours)
            .reply
            .is_some());
        // Garbage and truncations never panic, and never defend.
        let req = request_from(OTHER, host(0), false, false);
        for cut in 0..req.len() {
            assert_eq!(c.packet(&req[..cut], OTHER, ours).reply, None);
        }
    }

    /// A successor that finds the names registered by this host starts registered.
    #[test]
    fn inherits_registered_names() {
        let c = Claims::new(&[(host(0), false)], Instant::now(), true, || 1);
        assert_eq!(c.answers_for(&host(0)), Some(false));
        assert_eq!(c.next_due(), None);
    }
}
