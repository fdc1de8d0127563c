//! A small pure-Rust reader of capture files: classic pcap (both byte orders, µs and ns
//! timestamps) and pcapng (SHB/IDB/EPB/SPB/obsolete PB, both byte orders), and a decoder of
//! IPv4/UDP inside Ethernet (with 802.1Q tags), Linux cooked SLL and SLL2, raw IPv4 and BSD
//! loopback frames. Everything is bounds-checked; a damaged file stops with an error at the
//! damaged record.

use std::net::Ipv4Addr;

use anyhow::{bail, Context};

/// One captured frame.
#[derive(Debug)]
pub struct Frame<'a> {
    /// 1-based frame number, as Wireshark counts.
    pub number: usize,
    /// Capture time in seconds since the epoch, when known.
    pub time: Option<f64>,
    /// LINKTYPE_* of the frame's interface.
    pub linktype: u32,
    /// Captured bytes (possibly cut at the snap length).
    pub data: &'a [u8],
}

/// A UDP datagram found in a frame.
#[derive(Debug)]
pub struct Udp<'a> {
    pub src: Ipv4Addr,
    pub src_port: u16,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
    pub payload: &'a [u8],
    /// The UDP length field says more than was captured.
    pub truncated: bool,
    /// First fragment of a fragmented IPv4 packet (payload incomplete).
    pub ip_fragment: bool,
}

const LINKTYPE_NULL: u32 = 0;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_LINUX_SLL2: u32 = 276;
/// DLT_RAW as some platforms number it in classic pcap files.
const DLT_RAW_ALT: [u32; 2] = [12, 14];

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Self::Little => u16::from_le_bytes(a),
            Self::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Self::Little => u32::from_le_bytes(a),
            Self::Big => u32::from_be_bytes(a),
        }
    }
}

fn slice(buf: &[u8], at: usize, len: usize) -> anyhow::Result<&[u8]> {
    at.checked_add(len)
        .and_then(|end| buf.get(at..end))
        .with_context(|| format!("capture file truncated at byte {at}"))
}

/// Reads every frame of a pcap or pcapng file.
pub fn read_frames(buf: &[u8]) -> anyhow::Result<Vec<Frame<'_>>> {
    let magic = slice(buf, 0, 4).context("not a capture file (too short)")?;
    match magic {
        [0x0A, 0x0D, 0x0D, 0x0A] => read_pcapng(buf),
        [0xD4, 0xC3, 0xB2, 0xA1] => read_pcap(buf, Endian::Little, 1e-6),
        [0xA1, 0xB2, 0xC3, 0xD4] => read_pcap(buf, Endian::Big, 1e-6),
        [0x4D, 0x3C, 0xB2, 0xA1] => read_pcap(buf, Endian::Little, 1e-9),
        [0xA1, 0xB2, 0x3C, 0x4D] => read_pcap(buf, Endian::Big, 1e-9),
        _ => bail!("not a pcap or pcapng file (magic {:02x?})", magic),
    }
}

fn read_pcap(buf: &[u8], e: Endian, tick: f64) -> anyhow::Result<Vec<Frame<'_>>> {
    let header = slice(buf, 0, 24)?;
    let linktype = e.u32(&header[20..24]) & 0x0FFF_FFFF; // upper bits: FCS info
    let mut frames = Vec::new();
    let mut pos = 24;
    while pos < buf.len() {
        let rec = slice(buf, pos, 16)?;
        let (sec, frac, incl) = (e.u32(&rec[0..4]), e.u32(&rec[4..8]), e.u32(&rec[8..12]));
        let data = slice(buf, pos + 16, incl as usize)?;
        frames.push(Frame {
            number: frames.len() + 1,
            time: Some(f64::from(sec) + f64::from(frac) * tick),
            linktype,
            data,
        });
        pos += 16 + incl as usize;
    }
    Ok(frames)
}

struct Interface {
    linktype: u32,
    /// Seconds per timestamp unit.
    tick: f64,
}

fn read_pcapng(buf: &[u8]) -> anyhow::Result<Vec<Frame<'_>>> {
    let mut frames = Vec::new();
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut endian = Endian::Little;
    let mut pos = 0;
    while pos < buf.len() {
        let head = slice(buf, pos, 12)?;
        if head[0..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
            endian = match head[8..12] {
                [0x4D, 0x3C, 0x2B, 0x1A] => Endian::Little,
                [0x1A, 0x2B, 0x3C, 0x4D] => Endian::Big,
                _ => bail!("pcapng section header with a bad byte-order magic at byte {pos}"),
            };
            interfaces.clear(); // interface ids are per section
        }
        let block_type = endian.u32(&head[0..4]);
        let total = endian.u32(&head[4..8]) as usize;
        if total < 12 || total & 3 != 0 {
            bail!("pcapng block with bad length {total} at byte {pos}");
        }
        let block = slice(buf, pos, total)?;
        let body = &block[8..total - 4];
        match block_type {
            1 => {
                let b = slice(body, 0, 8)?;
                let linktype = u32::from(endian.u16(&b[0..2]));
                interfaces.push(Interface {
                    linktype,
                    tick: if_tsresol(body, endian),
                });
            }
            6 | 2 => {
                // EPB: id(4) ts_hi ts_lo caplen origlen; obsolete PB: id(2) drops(2) ...
                let b = slice(body, 0, 20)?;
                let id = if block_type == 6 {
                    endian.u32(&b[0..4])
                } else {
                    u32::from(endian.u16(&b[0..2]))
                };
                let ts = (u64::from(endian.u32(&b[4..8])) << 32) | u64::from(endian.u32(&b[8..12]));
                let caplen = endian.u32(&b[12..16]) as usize;
                let data = slice(body, 20, caplen)?;
                let iface = interfaces
                    .get(id as usize)
                    .with_context(|| format!("pcapng packet for unknown interface {id}"))?;
                frames.push(Frame {
                    number: frames.len() + 1,
                    time: Some(ts as f64 * iface.tick),
                    linktype: iface.linktype,
                    data,
                });
            }
            3 => {
                let b = slice(body, 0, 4)?;
                let orig = endian.u32(&b[0..4]) as usize;
                let iface = interfaces
                    .first()
                    .context("pcapng simple packet before any interface")?;
                let snap = body.len() - 4;
                frames.push(Frame {
                    number: frames.len() + 1,
                    time: None,
                    linktype: iface.linktype,
                    data: &body[4..4 + orig.min(snap)],
                });
            }
            _ => {} // statistics, name resolution, custom blocks...
        }
        pos += total;
    }
    Ok(frames)
}

/// The if_tsresol option (code 9) of an interface description block; default µs.
fn if_tsresol(body: &[u8], e: Endian) -> f64 {
    let mut pos = 8;
    while let Some(opt) = body.get(pos..pos + 4) {
        let (code, len) = (e.u16(&opt[0..2]), usize::from(e.u16(&opt[2..4])));
        if code == 0 {
            break;
        }
        if code == 9 && len >= 1 {
            if let Some(&v) = body.get(pos + 4) {
                let exp = i32::from(v & 0x7F);
                return if v & 0x80 == 0 {
                    10f64.powi(-exp)
                } else {
                    2f64.powi(-exp)
                };
            }
        }
        pos += 4 + len.div_ceil(4) * 4;
    }
    1e-6
}

/// The IPv4 packet inside a frame of `linktype`, if it carries one.
fn ipv4_of(linktype: u32, data: &[u8]) -> Option<&[u8]> {
    let (proto, rest) = match linktype {
        LINKTYPE_ETHERNET => {
            let mut ethertype = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
            let mut at = 14;
            while ethertype == 0x8100 || ethertype == 0x88A8 {
                ethertype = u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?]);
                at += 4;
            }
            (ethertype, data.get(at..)?)
        }
        LINKTYPE_LINUX_SLL => (
            u16::from_be_bytes([*data.get(14)?, *data.get(15)?]),
            data.get(16..)?,
        ),
        LINKTYPE_LINUX_SLL2 => (
            u16::from_be_bytes([*data.first()?, *data.get(1)?]),
            data.get(20..)?,
        ),
        LINKTYPE_RAW | LINKTYPE_IPV4 => (0x0800, data),
        t if DLT_RAW_ALT.contains(&t) => (0x0800, data),
        LINKTYPE_NULL => {
            let fam = data.get(..4)?;
            let family = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let family_be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            (
                (family == 2 || family_be == 2).then_some(0x0800)?,
                data.get(4..)?,
            )
        }
        _ => return None,
    };
    (proto == 0x0800 && rest.first()? >> 4 == 4).then_some(rest)
}

/// The UDP datagram inside a frame, if any (IPv4 only).
pub fn udp_of<'a>(frame: &Frame<'a>) -> Option<Udp<'a>> {
    let ip = ipv4_of(frame.linktype, frame.data)?;
    let ihl = usize::from(ip.first()? & 0x0F) * 4;
    if ihl < 20 || ip.len() < ihl || ip[9] != 17 {
        return None;
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x1FFF != 0 {
        return None; // a later fragment: no UDP header in it
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let ip = &ip[..total.clamp(ihl, ip.len())];
    let udp = ip.get(ihl..ihl + 8)?;
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let avail = &ip[ihl + 8..];
    let want = udp_len.saturating_sub(8);
    Some(Udp {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        payload: &avail[..want.min(avail.len())],
        truncated: want > avail.len(),
        ip_fragment: frag & 0x2000 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        f.extend([
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ]);
        f.extend([10, 0, 0, 1, 10, 0, 0, 255]);
        let ulen = (8 + payload.len()) as u16;
        f.extend([0, 138, 0, 138, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        f.extend(payload);
        f
    }

    fn classic(frames: &[Vec<u8>], big: bool, nano: bool) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(w32(if nano { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend(w32(0));
        out.extend(w32(0));
        out.extend(w32(65535));
        out.extend(w32(1));
        for f in frames {
            out.extend(w32(100));
            out.extend(w32(5));
            out.extend(w32(f.len() as u32));
            out.extend(w32(f.len() as u32));
            out.extend(f);
        }
        out
    }

    #[test]
    fn classic_both_endians_and_resolutions() {
        let frame = udp_frame(b"abc");
        for (big, nano) in [(false, false), (true, false), (false, true), (true, true)] {
            let file = classic(&[frame.clone(), frame.clone()], big, nano);
            let frames = read_frames(&file).unwrap();
            assert_eq!(frames.len(), 2);
            let t = frames[0].time.unwrap();
            assert!((t - if nano { 100.000000005 } else { 100.000005 }).abs() < 1e-9);
            let udp = udp_of(&frames[1]).unwrap();
            assert_eq!(
                (udp.src_port, udp.dst_port, udp.payload),
                (138, 138, &b"abc"[..])
            );
            assert_eq!(udp.dst, Ipv4Addr::new(10, 0, 0, 255));
            // cut anywhere: an error, never a panic
            for cut in 1..file.len() {
                let _ = read_frames(&file[..cut]);
            }
        }
    }

    #[test]
    fn cooked_and_raw_links() {
        let eth = udp_frame(b"xy");
        let ip = &eth[14..];
        let mut sll = vec![0u8; 14];
        sll.extend([0x08, 0x00]);
        sll.extend(ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend([0u8; 18]);
        sll2.extend(ip);
        for (lt, data) in [(113, &sll[..]), (276, &sll2[..]), (101, ip), (228, ip)] {
            let f = Frame {
                number: 1,
                time: None,
                linktype: lt,
                data,
            };
            assert_eq!(udp_of(&f).unwrap().payload, b"xy", "linktype {lt}");
        }
    }
}
