//! Third parties agree with mailslot-wire: tshark and Samba's NDR decode what we emit; what
//! Samba's NDR and scapy build parses with our codec to the same fields; every datagram of the
//! lab's nmbd capture decodes via `mailslot decode --pcap`.
//!
//! Tool policy: a missing tool is a SKIP (message on stderr) unless `CI` is set, where it is a
//! failure. External tools run under `timeout`.

#[path = "../../mailslot/tests/common/skip.rs"]
mod skip;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailslot_wire::{
    BrowserFrame, MailslotDatagram, MessageType, MessengerMessage, NetbiosName, SizeLimit, SmbStyle,
};
use serde_json::Value;

const TOOL_TIMEOUT_SECS: &str = "120";
const SAMBA_PYTHON: &str = "/usr/bin/python3";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn support(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script)
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args` under `timeout`, feeding `stdin`; panics on failure; returns stdout.
fn run_tool(program: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["-k", "5", TOOL_TIMEOUT_SECS, program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What we emit for the third parties, with the values they must see.
struct Case {
    bytes: Vec<u8>,
    source: NetbiosName,
    destination: NetbiosName,
    mailslot: &'static str,
    data: Vec<u8>,
    data_offset: u16,
}

/// msg_type, source, suffix, destination, suffix, mailslot, data, style.
type Spec = (
    MessageType,
    &'static str,
    u8,
    &'static str,
    u8,
    &'static str,
    Vec<u8>,
    SmbStyle,
);

fn our_cases() -> Vec<Case> {
    let messenger = MessengerMessage::encode("LINUXBOX", "HOST-B", "Hi there").unwrap();
    let backup = BrowserFrame::GetBackupListRequest {
        requested_count: 4,
        token: 0xDEAD_BEEF,
    }
    .to_vec()
    .unwrap();
    let binary: Vec<u8> = (0..40).collect();
    let specs: Vec<Spec> = vec![
        (
            MessageType::DirectGroup,
            "LINUXBOX",
            0,
            "WORKGROUP",
            0,
            "\\MAILSLOT\\TEST",
            b"Hello".to_vec(),
            SmbStyle::Windows,
        ),
        (
            MessageType::DirectUnique,
            "LINUXBOX",
            0,
            "HOST-B",
            3,
            "\\MAILSLOT\\MESSNGR",
            messenger,
            SmbStyle::Windows,
        ),
        (
            MessageType::DirectUnique,
            "LINUXBOX",
            0,
            "MSLAB",
            0x1d,
            "\\MAILSLOT\\BROWSE",
            backup,
            SmbStyle::Samba,
        ),
        (
            MessageType::DirectUnique,
            "LINUXBOX",
            0x20,
            "HOST-B",
            0,
            "\\MAILSLOT\\X\\Y",
            binary.clone(),
            SmbStyle::Windows,
        ),
        (
            MessageType::DirectGroup,
            "LINUXBOX",
            0,
            "MSLAB",
            0,
            "\\MAILSLOT\\ODD",
            binary,
            SmbStyle::Samba,
        ),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (mt, src, ss, dst, ds, slot, data, style))| {
            let source = NetbiosName::new(src, ss).unwrap();
            let destination = NetbiosName::new(dst, ds).unwrap();
            let mut d = MailslotDatagram::new(mt, source, destination, slot, &data);
            d.write.style = style;
            d.write.priority = style.default_priority();
            d.dgm_id = 0x1000 + i as u16;
            d.source_ip = Ipv4Addr::new(10, 99, 0, 2);
            let bytes = d.to_vec(SizeLimit::SambaSafe).unwrap();
            let data_offset = d.write.data_offset() as u16;
            Case {
                bytes,
                source,
                destination,
                mailslot: slot,
                data,
                data_offset,
            }
        })
        .collect()
}

/// A classic pcap of Ethernet/IPv4/UDP frames, UDP port `port` both ways.
fn pcap_of(payloads: &[&[u8]], port: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xA1B2_C3D4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend(((28 + p.len()) as u16).to_be_bytes());
        ip.extend([
            0, i as u8, 0x40, 0, 64, 17, 0, 0, 10, 99, 0, 2, 10, 99, 0, 255,
        ]);
        let sum = !ip.chunks(2).fold(0u32, |a, c| {
            let s = a + u32::from(u16::from_be_bytes([c[0], c[1]]));
            (s & 0xFFFF) + (s >> 16)
        }) as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend(ip);
        f.extend(port.to_be_bytes());
        f.extend(port.to_be_bytes());
        f.extend(((8 + p.len()) as u16).to_be_bytes());
        f.extend([0, 0]); // no UDP checksum
        f.extend(*p);
        out.extend((1_700_000_000 + i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    out
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mailslot-interop-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn tshark_decodes_what_we_emit() {
    if !skip::require(runs("tshark", &["--version"]), "tshark") {
        return;
    }
    let cases = our_cases();
    let payloads: Vec<&[u8]> = cases.iter().map(|c| &c.bytes[..]).collect();
    // A non-standard port proves the `-d` decode-as path too.
    let path = temp_file("tshark.pcap", &pcap_of(&payloads, 13800));
    let out = run_tool(
        "tshark",
        &[
            "-r",
            path.to_str().unwrap(),
            "-d",
            "udp.port==13800,nbdgm",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "nbdgm.type",
            "-e",
            "nbdgm.dgram_len",
            "-e",
            "nbdgm.source_name",
            "-e",
            "nbdgm.destination_name",
            "-e",
            "mailslot.name",
            "-e",
            "smb.data_offset",
            "-e",
            "mailslot.opcode",
            "-e",
            "data.data",
            "-e",
            "browser.command",
        ],
        "",
    );
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len(), "{out}");
    for (case, line) in cases.iter().zip(lines) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], case.bytes[0].to_string(), "{line}");
        assert_eq!(f[1], (case.bytes.len() - 14).to_string(), "{line}");
        assert_eq!(f[2], case.source.to_string(), "{line}");
        assert_eq!(f[3], case.destination.to_string(), "{line}");
        assert_eq!(f[4], case.mailslot, "{line}");
        assert_eq!(f[5], case.data_offset.to_string(), "{line}");
        assert_eq!(f[6], "1", "{line}");
        if case.mailslot.ends_with("BROWSE") {
            assert_eq!(f[8], "0x09", "{line}");
        } else {
            assert_eq!(f[7].replace(':', ""), hex(&case.data), "{line}");
        }
    }
}

#[test]
fn samba_ndr_decodes_what_we_emit() {
    if !skip::require(
        runs(SAMBA_PYTHON, &["-c", "import samba.dcerpc.nbt"]),
        "python3-samba (/usr/bin/python3)",
    ) {
        return;
    }
    let cases = our_cases();
    let input: String = cases.iter().map(|c| hex(&c.bytes) + "\n").collect();
    let out = run_tool(
        SAMBA_PYTHON,
        &[support("wire_samba.py").to_str().unwrap(), "unpack"],
        &input,
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len());
    for (case, v) in cases.iter().zip(&lines) {
        assert_eq!(v["msg_type"], u64::from(case.bytes[0]), "{v}");
        assert_eq!(v["dgm_length"], case.bytes.len() - 14, "{v}");
        assert_eq!(v["source_name"], case.source.name(), "{v}");
        assert_eq!(v["source_suffix"], case.source.suffix(), "{v}");
        assert_eq!(v["destination_name"], case.destination.name(), "{v}");
        assert_eq!(v["destination_suffix"], case.destination.suffix(), "{v}");
        assert_eq!(v["smb_command"], 0x25, "{v}");
        assert_eq!(v["mailslot"], case.mailslot, "{v}");
        assert_eq!(v["opcode"], 1, "{v}");
        assert_eq!(v["class"], 2, "{v}");
        assert_eq!(v["data_offset"], case.data_offset, "{v}");
        assert_eq!(v["data_count"], case.data.len(), "{v}");
        assert_eq!(v["data_hex"], hex(&case.data), "{v}");
    }
}

fn scapy_python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}

#[test]
fn scapy_decodes_what_we_emit() {
    let py = scapy_python();
    if !skip::require(
        runs(py.to_str().unwrap(), &["-c", "import scapy.layers.smb"]),
        "scapy in <repo>/.venv",
    ) {
        return;
    }
    let cases = our_cases();
    let input: String = cases.iter().map(|c| hex(&c.bytes) + "\n").collect();
    let out = run_tool(
        py.to_str().unwrap(),
        &[support("wire_scapy.py").to_str().unwrap(), "parse"],
        &input,
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len());
    for (case, v) in cases.iter().zip(&lines) {
        assert_eq!(v["dgm_length"], case.bytes.len() - 14, "{v}");
        assert_eq!(v["source_name"], case.source.name(), "{v}");
        assert_eq!(v["destination_name"], case.destination.name(), "{v}");
        assert_eq!(v["mailslot"], case.mailslot, "{v}");
        assert_eq!(v["setup"][0], 1, "{v}");
        assert_eq!(v["data_hex"], hex(&case.data), "{v}");
    }
}

/// Datagrams a third party builds parse with our codec to the fields it reports.
fn check_built_by(program: &str, script: &str) {
    let out = run_tool(program, &[support(script).to_str().unwrap(), "build"], "");
    let cases: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 4);
    for c in &cases {
        let bytes = unhex(c["hex"].as_str().unwrap());
        let d = MailslotDatagram::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", c["case"]));
        assert_eq!(
            u64::from(u8::from(d.msg_type)),
            c["msg_type"].as_u64().unwrap(),
            "{}",
            c["case"]
        );
        assert_eq!(
            d.source_name.name.name(),
            c["source_name"].as_str().unwrap()
        );
        assert_eq!(
            u64::from(d.source_name.name.suffix()),
            c["source_suffix"].as_u64().unwrap()
        );
        assert_eq!(
            d.destination_name.name.name(),
            c["destination_name"].as_str().unwrap()
        );
        assert_eq!(
            u64::from(d.destination_name.name.suffix()),
            c["destination_suffix"].as_u64().unwrap()
        );
        assert_eq!(
            d.write.mailslot,
            c["mailslot"].as_str().unwrap(),
            "{}",
            c["case"]
        );
        assert_eq!(
            hex(d.write.data),
            c["data_hex"].as_str().unwrap(),
            "{}",
            c["case"]
        );
        let smb = mailslot_wire::SmbTransaction::new_checked(&bytes[82..]).unwrap();
        assert_eq!(
            u64::from(smb.data_offset()),
            c["data_offset"].as_u64().unwrap(),
            "{}",
            c["case"]
        );
        assert!(mailslot_wire::Datagram::new_checked(&bytes[..])
            .unwrap()
            .dgm_length_matches());
        mailslot_wire::fuzz_parse(&bytes);
    }
}

#[test]
fn we_parse_what_samba_ndr_builds() {
    if !skip::require(
        runs(SAMBA_PYTHON, &["-c", "import samba.dcerpc.nbt"]),
        "python3-samba (/usr/bin/python3)",
    ) {
        return;
    }
    check_built_by(SAMBA_PYTHON, "wire_samba.py");
}

#[test]
fn we_parse_what_scapy_builds() {
    let py = scapy_python();
    if !skip::require(
        runs(py.to_str().unwrap(), &["-c", "import scapy.layers.smb"]),
        "scapy in <repo>/.venv",
    ) {
        return;
    }
    check_built_by(py.to_str().unwrap(), "wire_scapy.py");
}

#[test]
fn nmbd_capture_decodes_via_mailslot_decode() {
    // A capture kept in the repository (tests/fixtures/README.md).
    let pcap = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nmbd-browse.pcap"
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_mailslot"))
        .args(["decode", "--pcap", pcap.to_str().unwrap()])
        .env_remove("MAILSLOT_PORT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        11,
        "11 datagrams in nmbd-browse.pcap (fixtures/README.md)"
    );
    let mut opcodes = Vec::new();
    for v in &lines {
        assert!(v.get("error").is_none(), "{v}");
        assert_eq!(v["source_name"]["name"], "NMBD-A", "{v}");
        assert_eq!(v["msg_type"], 0x11);
        if v["mailslot"] == "\\MAILSLOT\\BROWSE" {
            let b = &v["browser"];
            opcodes.push(b["opcode"].as_u64().unwrap());
            if b["opcode"] == 1 {
                assert_eq!(b["server_name"], "NMBD-A");
                assert_eq!(b["periodicity"], 60000);
                assert_eq!(
                    v["destination_name"],
                    serde_json::json!({"name": "MSLAB", "suffix": 0x1d})
                );
            }
        } else {
            assert_eq!(v["mailslot"], "\\MAILSLOT\\LANMAN");
        }
    }
    for op in [1, 8, 2, 0x0F, 0x0C] {
        assert!(
            opcodes.contains(&op),
            "browser opcode {op} missing: {opcodes:?}"
        );
    }

    // tshark agrees on the browser commands, when present.
    if runs("tshark", &["--version"]) {
        let t = run_tool(
            "tshark",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-e",
                "mailslot.name",
                "-e",
                "browser.command",
            ],
            "",
        );
        let tshark_ops: Vec<u64> = t
            .lines()
            .filter_map(|l| l.strip_prefix("\\MAILSLOT\\BROWSE|"))
            .map(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert_eq!(tshark_ops, opcodes);
    }
}
