//! `mailslot decode`: print one NetBIOS datagram, or every datagram of a capture file, as JSON
//! (DESIGN.md §4).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use mailslot_wire::nbns::{self, RrName};
use mailslot_wire::{
    BrowserFrame, Datagram, DatagramBody, DatagramRepr, MailslotDatagram, MessengerMessage,
    NbnsKind, NbnsMessage, ScopedName, SmbStyle, SmbTransaction, BROWSE_MAILSLOT, HEADER_LEN,
    MESSENGER_MAILSLOT, NAME_SERVICE_PORT,
};
use serde_json::{json, Map, Value};

use crate::{pcap, Global, Outcome, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The datagram as hex text (whitespace allowed), or `-` to read raw bytes from stdin.
    /// Without HEX, --file or --pcap, hex text is read from stdin.
    #[arg(value_name = "HEX | -", conflicts_with_all = ["file", "pcap"])]
    pub hex: Option<String>,
    /// Read the raw datagram from a file (`-` = stdin).
    #[arg(long, value_name = "F", conflicts_with = "pcap")]
    pub file: Option<PathBuf>,
    /// Decode every UDP datagram to or from --port (default 138) in a pcap or pcapng file,
    /// one JSON line each; undecodable ones get an `error` field. With --port 137 (here and
    /// for HEX, -, --file) name-service packets are decoded: queries and their answers, node
    /// status, registration, release, refresh, WACK.
    #[arg(long, value_name = "F")]
    pub pcap: Option<PathBuf>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if let Some(path) = &args.pcap {
        let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        decode_pcap(&file, global.port, &mut out)
            .with_context(|| format!("capture {}", path.display()))?;
        out.flush()?;
        return Ok(Outcome::Success);
    }
    let bytes = match (&args.hex, &args.file) {
        (Some(h), None) if h == "-" => read_stdin()?,
        (Some(h), None) => parse_hex(h)?,
        (None, Some(p)) if p.as_os_str() == "-" => read_stdin()?,
        (None, Some(p)) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        _ => hex_from_stdin()?,
    };
    let value = if global.port == NAME_SERVICE_PORT {
        nbns_json(&bytes).map_err(|e| anyhow::anyhow!("malformed name-service packet: {e}"))?
    } else {
        decode_datagram(&bytes).map_err(|e| anyhow::anyhow!("malformed datagram: {e}"))?
    };
    writeln!(out, "{}", Value::Object(value))?;
    out.flush()?;
    Ok(Outcome::Success)
}

/// Hex text piped in (`mailslot decode < dg.hex`); a terminal or empty input is a usage error:
/// there is nothing to decode.
fn hex_from_stdin() -> anyhow::Result<Vec<u8>> {
    let nothing = |why: &str| {
        UsageError(format!(
            "nothing to decode ({why}): give HEX, - (raw bytes on stdin), --file F or --pcap F, \
             or pipe hex text in"
        ))
    };
    if std::io::stdin().is_terminal() {
        bail!(nothing("standard input is a terminal"));
    }
    let bytes = read_stdin()?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("standard input is not hex text (raw bytes: decode -)"))?;
    if text.trim().is_empty() {
        bail!(nothing("standard input is empty"));
    }
    parse_hex(text).context("standard input (hex text; raw bytes: decode -)")
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut v = Vec::new();
    std::io::stdin()
        .read_to_end(&mut v)
        .context("reading stdin")?;
    Ok(v)
}

/// Hex text to bytes; whitespace anywhere and a leading `0x` are allowed.
pub fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.split_whitespace().collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        bail!("invalid hex digit {bad:?}");
    }
    if digits.len() & 1 == 1 {
        bail!("hex input has an odd number of digits");
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or_default())
        .collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn latin(bytes: &[u8]) -> String {
    mailslot_wire::cp850::decode(bytes)
}

fn name_json(n: &ScopedName<'_>) -> Value {
    let mut v = json!({ "name": n.name.name(), "suffix": n.name.suffix() });
    if !n.scope.is_empty() {
        v["scope"] = json!(n.scope.to_string());
    }
    v
}

/// The JSON object of one datagram-service packet, or the reason it is malformed.
pub fn decode_datagram(bytes: &[u8]) -> Result<Map<String, Value>, mailslot_wire::Error> {
    let view = Datagram::new_checked(bytes)?;
    let repr = DatagramRepr::parse(&view)?;
    let mut o = Map::new();
    o.insert("msg_type".into(), json!(u8::from(repr.msg_type)));
    o.insert("flags".into(), json!(repr.flags.0));
    o.insert(
        "node_type".into(),
        json!(format!("{:?}", repr.flags.node_type())),
    );
    o.insert("dgm_id".into(), json!(repr.dgm_id));
    o.insert("source_ip".into(), json!(repr.source_ip.to_string()));
    o.insert("source_port".into(), json!(repr.source_port));
    o.insert("len".into(), json!(bytes.len()));
    match repr.body {
        DatagramBody::Error { error_code } => {
            o.insert("error_code".into(), json!(error_code));
        }
        DatagramBody::Query { destination_name } => {
            o.insert("destination_name".into(), name_json(&destination_name));
        }
        DatagramBody::Data {
            packet_offset,
            source_name,
            destination_name,
            user_data,
        } => {
            let dgm_length = view.dgm_length().unwrap_or_default();
            o.insert("dgm_length".into(), json!(dgm_length));
            o.insert(
                "dgm_length_ok".into(),
                json!(usize::from(dgm_length) == bytes.len() - HEADER_LEN),
            );
            o.insert("packet_offset".into(), json!(packet_offset));
            o.insert("fragment".into(), json!(repr.is_fragment()));
            o.insert("source_name".into(), name_json(&source_name));
            o.insert("destination_name".into(), name_json(&destination_name));
            if repr.is_fragment() {
                o.insert("user_data_hex".into(), json!(hex(user_data)));
                return Ok(o);
            }
            let d = MailslotDatagram::from_datagram(&repr)?;
            let smb = SmbTransaction::new_checked(user_data)?;
            insert_write(&mut o, &d, &smb);
        }
    }
    Ok(o)
}

fn insert_write(o: &mut Map<String, Value>, d: &MailslotDatagram<'_>, smb: &SmbTransaction<&[u8]>) {
    let w = &d.write;
    o.insert("mailslot".into(), json!(w.mailslot));
    o.insert("opcode".into(), json!(smb.opcode()));
    o.insert("priority".into(), json!(w.priority));
    o.insert("class".into(), json!(w.class));
    o.insert(
        "smb_style".into(),
        json!(match w.style {
            SmbStyle::Windows => "windows",
            SmbStyle::Samba => "samba",
        }),
    );
    o.insert("data_offset".into(), json!(smb.data_offset()));
    o.insert("data_count".into(), json!(smb.data_count()));
    o.insert("total_data_count".into(), json!(smb.total_data_count()));
    o.insert("byte_count".into(), json!(smb.byte_count()));
    o.insert("timeout".into(), json!(smb.timeout()));
    o.insert("data_hex".into(), json!(hex(w.data)));
    if let Ok(text) = std::str::from_utf8(w.data) {
        o.insert("data_text".into(), json!(text));
    }
    if w.is_mailslot(MESSENGER_MAILSLOT) {
        match MessengerMessage::parse(w.data) {
            Ok(m) => {
                o.insert(
                    "messenger".into(),
                    json!({ "from": m.from_text(), "to": m.to_text(), "text": m.text_text() }),
                );
            }
            Err(e) => {
                o.insert("messenger_error".into(), json!(e.to_string()));
            }
        }
    }
    if w.is_mailslot(BROWSE_MAILSLOT) {
        match BrowserFrame::parse(w.data) {
            Ok(f) => {
                o.insert("browser".into(), browser_json(&f));
            }
            Err(e) => {
                o.insert("browser_error".into(), json!(e.to_string()));
            }
        }
    }
}

fn browser_json(f: &BrowserFrame<'_>) -> Value {
    let mut v = json!({
        "opcode": f.opcode(),
        "command": mailslot_wire::browser::opcode_name(f.opcode()),
    });
    let fields = match f {
        BrowserFrame::HostAnnouncement(a)
        | BrowserFrame::LocalMasterAnnouncement(a)
        | BrowserFrame::DomainAnnouncement(a) => json!({
            "update_count": a.update_count,
            "periodicity": a.periodicity,
            "server_name": latin(a.server_name),
            "os_version_major": a.os_version_major,
            "os_version_minor": a.os_version_minor,
            "server_type": a.server_type,
            "browser_version_major": a.browser_version_major,
            "browser_version_minor": a.browser_version_minor,
            "signature": a.signature,
            "comment": latin(a.comment),
        }),
        BrowserFrame::AnnouncementRequest { response_name } => {
            json!({ "response_name": latin(response_name) })
        }
        BrowserFrame::RequestElection(e) => json!({
            "version": e.version,
            "criteria": e.criteria,
            "uptime": e.uptime,
            "server_name": latin(e.server_name),
        }),
        BrowserFrame::GetBackupListRequest {
            requested_count,
            token,
        } => {
            json!({ "requested_count": requested_count, "token": token })
        }
        BrowserFrame::GetBackupListResponse {
            backup_server_count,
            token,
            servers,
        } => json!({
            "backup_server_count": backup_server_count,
            "token": token,
            "servers": servers.iter().map(latin).collect::<Vec<_>>(),
        }),
        BrowserFrame::Other { body, .. } => json!({ "body_hex": hex(body) }),
    };
    if let (Value::Object(dst), Value::Object(src)) = (&mut v, fields) {
        dst.extend(src);
    }
    v
}

/// The JSON object of one name-service packet (UDP 137), any kind RFC 1002 defines: `nbns`
/// names the kind; the header, the question and the record follow, with the record's RDATA
/// read as addresses, a node status or a WACK's flags.
pub fn nbns_json(bytes: &[u8]) -> Result<Map<String, Value>, mailslot_wire::Error> {
    let m = NbnsMessage::parse(bytes)?;
    let h = &m.header;
    let mut o = Map::new();
    o.insert("nbns".into(), json!(m.kind().name()));
    o.insert("trn_id".into(), json!(h.trn_id));
    o.insert("response".into(), json!(h.response()));
    o.insert("opcode".into(), json!(u8::from(h.opcode())));
    o.insert("authoritative".into(), json!(h.authoritative()));
    o.insert("truncated".into(), json!(h.truncated()));
    o.insert("recursion_desired".into(), json!(h.recursion_desired()));
    o.insert("recursion_available".into(), json!(h.recursion_available()));
    o.insert("broadcast".into(), json!(h.broadcast()));
    o.insert("rcode".into(), json!(h.rcode()));
    if let Some(q) = m.question {
        o.insert(
            "question".into(),
            json!({ "name": name_json(&q.name), "type": rr_type(q.qtype), "class": q.qclass }),
        );
    }
    // The name the packet is about: the question's, else the record's.
    if let Some(name) = m.question.map(|q| q.name).or_else(|| m.record_name()) {
        o.insert("name".into(), name_json(&name));
    }
    if let Some((section, rr)) = m.record {
        let mut r = json!({
            "section": section.name(),
            "type": rr_type(rr.rr_type),
            "class": rr.rr_class,
            "ttl": rr.ttl,
            "rdata_hex": hex(rr.rdata),
        });
        if let Some(name) = m.record_name() {
            r["name"] = name_json(&name);
        }
        if rr.name == RrName::QuestionPointer {
            r["name_is_pointer"] = json!(true);
        }
        if m.kind() == NbnsKind::WaitForAcknowledgement {
            r["wack_flags"] = json!(rr.wack_flags());
        } else if let Ok(list) = rr.addresses() {
            let addresses: Vec<Value> = list
                .iter()
                .map(|a| {
                    json!({
                        "group": a.group, "node_type": format!("{:?}", a.node_type),
                        "address": a.address.to_string(),
                    })
                })
                .collect();
            o.insert("addresses".into(), json!(addresses));
            o.insert("ttl".into(), json!(rr.ttl));
        } else if let Ok(status) = rr.node_status() {
            let names: Vec<Value> = status
                .names()
                .map(|n| {
                    json!({
                        "name": n.name.name(), "suffix": n.name.suffix(), "group": n.group(),
                        "active": n.active(), "node_type": format!("{:?}", n.node_type()),
                        "flags": n.flags,
                    })
                })
                .collect();
            o.insert("node_names".into(), json!(names));
            if let Some(id) = status.unit_id() {
                let mac: Vec<String> = id.iter().map(|b| format!("{b:02x}")).collect();
                o.insert("unit_id".into(), json!(mac.join(":")));
            }
        }
        o.insert("record".into(), r);
    }
    Ok(o)
}

/// `NB`, `NBSTAT`, `NULL`, `A`, `NS`, or the number.
fn rr_type(t: u16) -> Value {
    match t {
        nbns::TYPE_NB => json!("NB"),
        nbns::TYPE_NBSTAT => json!("NBSTAT"),
        nbns::TYPE_NULL => json!("NULL"),
        nbns::TYPE_A => json!("A"),
        nbns::TYPE_NS => json!("NS"),
        t => json!(t),
    }
}

/// One JSON line per UDP datagram to or from `port`.
fn decode_pcap(file: &[u8], port: u16, out: &mut impl Write) -> anyhow::Result<()> {
    for frame in pcap::read_frames(file)? {
        let Some(udp) = pcap::udp_of(&frame) else {
            continue;
        };
        if udp.src_port != port && udp.dst_port != port {
            continue;
        }
        let decoded = if udp.ip_fragment {
            Err("IPv4 fragment (not reassembled)".to_string())
        } else if udp.truncated {
            Err("UDP datagram cut by the capture's snap length".to_string())
        } else if port == NAME_SERVICE_PORT {
            nbns_json(udp.payload).map_err(|e| e.to_string())
        } else {
            decode_datagram(udp.payload).map_err(|e| e.to_string())
        };
        let mut o = match decoded {
            Ok(o) => o,
            Err(e) => {
                let mut o = Map::new();
                o.insert("error".into(), json!(e));
                o.insert("udp_payload_hex".into(), json!(hex(udp.payload)));
                o
            }
        };
        o.insert("frame".into(), json!(frame.number));
        if let Some(t) = frame.time {
            o.insert("time".into(), json!(t));
        }
        o.insert(
            "udp_src".into(),
            json!(format!("{}:{}", udp.src, udp.src_port)),
        );
        o.insert(
            "udp_dst".into(),
            json!(format!("{}:{}", udp.dst, udp.dst_port)),
        );
        writeln!(out, "{}", Value::Object(o))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input() {
        assert_eq!(parse_hex(" 11 02\n0a\t").unwrap(), [0x11, 0x02, 0x0a]);
        assert_eq!(parse_hex("0xff").unwrap(), [0xff]);
        assert!(parse_hex("1").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
