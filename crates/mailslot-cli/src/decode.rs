//! `mailslot decode`: print one NetBIOS datagram, or every datagram of a capture file, as JSON
//! (fields: docs/cli.md).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use mailslot_wire::json::{decode_datagram, decode_nbns};
use mailslot_wire::NAME_SERVICE_PORT;
use serde_json::{json, Map, Value};

use crate::common::hex;
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
        decode_nbns(&bytes).map_err(|e| anyhow::anyhow!("malformed name-service packet: {e}"))?
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
            decode_nbns(udp.payload).map_err(|e| e.to_string())
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
