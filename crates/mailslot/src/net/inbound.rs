//! The holder's inbound step, without I/O: a received datagram (bytes, UDP source, the time)
//! becomes a verdict, deliver to a mailslot or drop for one reason; a name-service request
//! becomes an answer or silence. The I/O loop (`holder`) reads the sockets, asks this, delivers
//! and counts; everything that decides is here and tested without sockets.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::claim::Claims;
use super::codec::NbName;
use super::dedupe::{Dedupe, DEFAULT_CAPACITY};
use super::iface::Interface;
use super::nameservice;
use super::pending::DatagramKeys;
use super::recv::{classify, Drop as Classified, Identity};
use super::state::Counters;

/// Name-service answers per second at most (we must not become a reflector).
pub(crate) const NS_ANSWERS_PER_SEC: u32 = 200;

/// A mailslot write to deliver: borrowed from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted<'a> {
    /// The mailslot name after `\MAILSLOT\`, case as sent.
    pub(crate) mailslot: &'a str,
    pub(crate) data: &'a [u8],
    /// The UDP source (the header's SOURCE_IP is spoofable and informational).
    pub(crate) from: SocketAddrV4,
    pub(crate) source: NbName,
    pub(crate) destination: NbName,
    pub(crate) msg_type: u8,
    /// DGM_LENGTH disagrees with the UDP length (delivered anyway, and counted).
    pub(crate) dgm_length_mismatch: bool,
    /// The datagram's name ([`DatagramKeys`]).
    pub(crate) key: u64,
}

/// Why a datagram is not delivered; each reason is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Truncated,
    Malformed(&'static str),
    Fragment,
    OtherType(u8),
    /// Not addressed to us, or (with `deliver_own` off) sent by us.
    NotForUs,
    Duplicate,
}

impl Reason {
    /// The counter this reason lands in.
    pub(crate) fn counter(self, c: &Counters) -> &AtomicU64 {
        match self {
            Reason::Truncated => &c.dropped_truncated,
            Reason::Malformed(_) => &c.dropped_malformed,
            Reason::Fragment => &c.dropped_fragment,
            Reason::OtherType(_) => &c.dropped_other_type,
            Reason::NotForUs => &c.dropped_not_for_us,
            Reason::Duplicate => &c.dropped_duplicate,
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict<'a> {
    Deliver(Accepted<'a>),
    Drop(Reason),
    /// The previous holder delivered it and died before taking it off the socket: not a new
    /// datagram (no counter), and done (its key goes in the pending list again); its readers
    /// may still have to be woken.
    AlreadyDelivered(Accepted<'a>),
}

/// The decision state of one holder's term: who we are, what was seen (dedupe), how many
/// name-service answers went out this second.
#[derive(Debug)]
pub(crate) struct Inbound {
    identity: Identity,
    keys: DatagramKeys,
    dedupe: Dedupe,
    /// Until the end of the first batch: what the previous holder delivered of its last one.
    inherited: Vec<u64>,
    ns_bucket: (Instant, u32),
}

impl Inbound {
    pub(crate) fn new(identity: Identity, dedupe_window: Duration, now: Instant) -> Inbound {
        Inbound {
            identity,
            keys: DatagramKeys::random(),
            dedupe: Dedupe::new(dedupe_window, DEFAULT_CAPACITY),
            inherited: Vec::new(),
            ns_bucket: (now, 0),
        }
    }

    /// Continues the port's previous holder: its datagram keys, and the keys of what it
    /// delivered of the batch it died in (which heads this holder's first batch).
    pub(crate) fn continuing(mut self, keys: DatagramKeys, inherited: Vec<u64>) -> Inbound {
        self.keys = keys;
        self.inherited = inherited;
        self
    }

    /// The end of a batch: what was inherited is behind us.
    pub(crate) fn end_batch(&mut self) {
        self.inherited.clear();
    }

    /// One datagram of the datagram port: `truncated` when it was larger than the receive
    /// buffer (its bytes are then a prefix).
    pub(crate) fn datagram<'a>(
        &mut self,
        bytes: &'a [u8],
        from: SocketAddrV4,
        truncated: bool,
        now: Instant,
    ) -> Verdict<'a> {
        if truncated {
            return Verdict::Drop(Reason::Truncated);
        }
        let p = match classify(bytes, &self.identity) {
            Ok(p) => p,
            Err(d) => {
                return Verdict::Drop(match d {
                    Classified::Malformed(why) => Reason::Malformed(why),
                    Classified::Fragment => Reason::Fragment,
                    Classified::OtherType(t) => Reason::OtherType(t),
                    Classified::NotForUs | Classified::Own => Reason::NotForUs,
                })
            }
        };
        let key = self.keys.key(from.port(), bytes);
        let inherited = self.inherited.iter().position(|&k| k == key);
        // An inherited one counts for the dedupe too: its later copies are duplicates.
        if self.dedupe.check(key, now) && inherited.is_none() {
            return Verdict::Drop(Reason::Duplicate);
        }
        let accepted = Accepted {
            mailslot: p.mailslot,
            data: p.data,
            from,
            source: p.source,
            destination: p.destination,
            msg_type: p.msg_type,
            dgm_length_mismatch: !p.dgm_length_ok,
            key,
        };
        match inherited {
            Some(at) => {
                self.inherited.swap_remove(at);
                Verdict::AlreadyDelivered(accepted)
            }
            None => Verdict::Deliver(accepted),
        }
    }

    /// One request on the name-service port: the answer to send back to `from`, if any, for
    /// the names `claims` has registered. `bind` is the role's bind address and `ifaces` this
    /// host's interfaces (to answer with our address on the asker's subnet when bound to
    /// 0.0.0.0).
    pub(crate) fn name_request(
        &mut self,
        bytes: &[u8],
        from: SocketAddrV4,
        claims: &Claims,
        bind: Ipv4Addr,
        ifaces: &[Interface],
        now: Instant,
    ) -> Option<Vec<u8>> {
        let q = nameservice::parse_request(bytes)?;
        if !self.ns_allow(now) {
            return None;
        }
        let addr = answer_addr(bind, ifaces, *from.ip());
        nameservice::respond(&q, &self.identity.host, claims, addr)
    }

    /// Token bucket: at most `NS_ANSWERS_PER_SEC` answers per second (queries and the claims'
    /// defences alike: a flood of forged requests must not make us a reflector).
    pub(crate) fn ns_allow(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.ns_bucket.0) >= Duration::from_secs(1) {
            self.ns_bucket = (now, 0);
        }
        self.ns_bucket.1 += 1;
        self.ns_bucket.1 <= NS_ANSWERS_PER_SEC
    }
}

/// Our address as seen from `peer`: the bind address, else the interface on its subnet.
pub(crate) fn answer_addr(bind: Ipv4Addr, ifaces: &[Interface], peer: Ipv4Addr) -> Ipv4Addr {
    if !bind.is_unspecified() {
        return bind;
    }
    if let Some(i) = ifaces.iter().find(|i| i.addr == peer) {
        return i.addr;
    }
    if let Some(i) = ifaces.iter().find(|i| !i.loopback && i.contains(peer)) {
        return i.addr;
    }
    if peer.is_loopback() {
        return Ipv4Addr::LOCALHOST;
    }
    ifaces
        .iter()
        .find(|i| !i.loopback)
        .map(|i| i.addr)
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

#[cfg(test)]
mod tests {
    use super::super::codec::{emit_mailslot_datagram, Emit, DIRECT_UNIQUE};
    use super::*;

    fn id() -> Identity {
        Identity {
            host: NbName::new("LINUXBOX", 0).unwrap(),
            workgroup: NbName::new("WORKGROUP", 0).unwrap(),
            accept_any: false,
            deliver_own: true,
        }
    }

    fn dgram(dgm_id: u16, dst: &str, mailslot: &str, data: &[u8]) -> Vec<u8> {
        emit_mailslot_datagram(&Emit {
            msg_type: DIRECT_UNIQUE,
            dgm_id,
            source_ip: Ipv4Addr::new(10, 0, 0, 1),
            source_port: 138,
            source: NbName::new("PEER", 0).unwrap(),
            destination: NbName::new(dst, 0).unwrap(),
            mailslot,
            data,
        })
        .unwrap()
    }

    fn from() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 138)
    }

    /// What the previous holder delivered of its last batch is skipped once, in the first
    /// batch only; with the dedupe off too.
    #[test]
    fn inherited_datagrams_are_skipped_once_in_the_first_batch() {
        let t0 = Instant::now();
        let keys = DatagramKeys::random();
        let (a, b) = (
            dgram(1, "LINUXBOX", "T", b"a"),
            dgram(2, "LINUXBOX", "T", b"b"),
        );
        let (ka, kb) = (keys.key(138, &a), keys.key(138, &b));
        let mut step = Inbound::new(id(), Duration::ZERO, t0).continuing(keys, vec![ka, 7]);
        let Verdict::AlreadyDelivered(done) = step.datagram(&a, from(), false, t0) else {
            panic!("a was delivered by the previous holder")
        };
        assert_eq!((done.mailslot, done.key), ("T", ka));
        let Verdict::Deliver(got) = step.datagram(&b, from(), false, t0) else {
            panic!("b is new")
        };
        assert_eq!((got.data, got.key), (&b"b"[..], kb));
        // A second copy of `a` in the same batch is a new datagram (the dedupe is off).
        assert!(matches!(
            step.datagram(&a, from(), false, t0),
            Verdict::Deliver(_)
        ));
        step.end_batch();
        assert!(matches!(
            step.datagram(&a, from(), false, t0),
            Verdict::Deliver(_)
        ));
    }

    #[test]
    fn delivers_ours_once_and_sorts_the_rest() {
        let t0 = Instant::now();
        let mut step = Inbound::new(id(), Duration::from_secs(2), t0);
        let d = dgram(1, "LINUXBOX", "Test\\Sub", b"hi");
        let Verdict::Deliver(a) = step.datagram(&d, from(), false, t0) else {
            panic!("not delivered")
        };
        assert_eq!(
            (a.mailslot, a.data, a.from),
            ("Test\\Sub", &b"hi"[..], from())
        );
        assert_eq!(
            (a.source.name(), a.msg_type),
            ("PEER".to_string(), DIRECT_UNIQUE)
        );
        assert!(!a.dgm_length_mismatch);
        // The same bytes again within the window: a duplicate; after it, new again.
        assert_eq!(
            step.datagram(&d, from(), false, t0),
            Verdict::Drop(Reason::Duplicate)
        );
        assert!(matches!(
            step.datagram(&d, from(), false, t0 + Duration::from_secs(3)),
            Verdict::Deliver(_)
        ));
        assert_eq!(
            step.datagram(&d, from(), true, t0),
            Verdict::Drop(Reason::Truncated)
        );
        assert_eq!(
            step.datagram(&dgram(2, "ELSEWHERE", "T", b"x"), from(), false, t0),
            Verdict::Drop(Reason::NotForUs)
        );
        assert!(matches!(
            step.datagram(&[], from(), false, t0),
            Verdict::Drop(Reason::Malformed(_))
        ));
        let mut frag = dgram(3, "LINUXBOX", "T", b"x");
        frag[1] |= 1;
        assert_eq!(
            step.datagram(&frag, from(), false, t0),
            Verdict::Drop(Reason::Fragment)
        );
        assert_eq!(
            step.datagram(&[0x13, 2, 0, 0], from(), false, t0),
            Verdict::Drop(Reason::OtherType(0x13))
        );
        let mut bad_len = dgram(4, "LINUXBOX", "T", b"x");
        bad_len[10..12].copy_from_slice(&9u16.to_be_bytes());
        let Verdict::Deliver(a) = step.datagram(&bad_len, from(), false, t0) else {
            panic!("not delivered")
        };
        assert!(a.dgm_length_mismatch);
    }

    /// The names of `id()`, registered.
    fn registered() -> Claims {
        let i = id();
        let names = nameservice::our_names(&i.host, &i.workgroup, false);
        Claims::new(&names, Instant::now(), true, || 1)
    }

    #[test]
    fn name_answers_are_rate_limited() {
        let t0 = Instant::now();
        let mut step = Inbound::new(id(), Duration::from_secs(2), t0);
        let name = NbName::new("LINUXBOX", 0).unwrap();
        let packet = mailslot_wire::NbnsPacket::query(7, mailslot_wire::ScopedName::new(name));
        let mut q = vec![0u8; packet.buffer_len()];
        packet.emit(&mut q).unwrap();
        let bind = Ipv4Addr::LOCALHOST;
        let claims = registered();
        let claims = &claims;
        for _ in 0..NS_ANSWERS_PER_SEC {
            assert!(step
                .name_request(&q, from(), claims, bind, &[], t0)
                .is_some());
        }
        assert!(step
            .name_request(&q, from(), claims, bind, &[], t0)
            .is_none());
        let later = t0 + Duration::from_secs(1);
        assert!(step
            .name_request(&q, from(), claims, bind, &[], later)
            .is_some());
        assert!(step
            .name_request(b"garbage", from(), claims, bind, &[], later)
            .is_none());
    }

    /// A small deterministic generator (xorshift64*): the test needs no dependency and
    /// replays the same inputs on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Random bytes, and valid datagrams with random bytes changed, cut or appended: the step
    /// never panics, and whatever it delivers is a valid mailslot name inside the datagram.
    #[test]
    fn never_panics_on_random_input() {
        let t0 = Instant::now();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut step = Inbound::new(id(), Duration::from_secs(2), t0);
        let mut any = id();
        any.accept_any = true;
        let mut sniff = Inbound::new(any, Duration::ZERO, t0);
        let claims = registered();
        let bases = [
            dgram(1, "LINUXBOX", "TEST", b"hello"),
            dgram(2, "*", "a\\b\\c", &[0u8; 300]),
            dgram(3, "WORKGROUP", "BROWSE", b""),
        ];
        let mut delivered = 0;
        for i in 0..60_000u32 {
            let mut d = if i % 3 == 0 {
                let len = rng.below(600) as usize;
                (0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>()
            } else {
                bases[(i % 3) as usize].clone()
            };
            for _ in 0..rng.below(4) {
                if d.is_empty() {
                    break;
                }
                match rng.below(3) {
                    0 => {
                        let at = rng.below(d.len() as u64) as usize;
                        d[at] = rng.next() as u8;
                    }
                    1 => d.truncate(rng.below(d.len() as u64) as usize),
                    _ => d.push(rng.next() as u8),
                }
            }
            let now = t0 + Duration::from_micros(u64::from(i));
            for s in [&mut step, &mut sniff] {
                if let Verdict::Deliver(a) = s.datagram(&d, from(), rng.below(50) == 0, now) {
                    assert!(crate::name::parses_as_local(a.mailslot));
                    assert!(crate::MailslotName::parse(a.mailslot).is_ok());
                    delivered += 1;
                }
                let _ = s.name_request(&d, from(), &claims, Ipv4Addr::UNSPECIFIED, &[], now);
            }
        }
        assert!(delivered > 0);
    }

    /// The allocation-free name check agrees with the parser.
    #[test]
    fn name_check_agrees_with_the_parser() {
        let mut rng = Rng(42);
        let alphabet = b"\\.mMaAiIlLsSoOtT/\x01 x";
        let mut samples: Vec<String> = [
            "",
            "a",
            "\\\\.\\mailslot\\x",
            "\\\\host\\mailslot\\x",
            "\\mailslot\\a\\b",
            "a\\\\b",
            "..",
            "a\\..",
            "\\\\.\\MAILSLOT\\",
            "\\\\\\x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..20_000 {
            let len = rng.below(24) as usize;
            samples.push(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
                    .collect(),
            );
        }
        for s in samples {
            assert_eq!(
                crate::name::parses_as_local(&s),
                crate::MailslotName::parse(&s).is_ok(),
                "{s:?}"
            );
        }
    }
}
