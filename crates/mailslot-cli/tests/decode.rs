//! `mailslot decode` end to end: golden vectors, input forms, malformed input, captures.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const P10_1: &str = "11 02 12 34 C0 A8 01 0A 00 8A 00 9D 00 00 20 45
4D 45 4A 45 4F 46 46 46 49 45 43 45 50 46 49 43 41 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00
20 46 48 45 50 46 43 45 4C 45 48 46 43 45 50 46 46 46 41 43 41 43 41 43 41 43 41 43 41 43 41 41
41 00 FF 53 4D 42 25 00 00 00 00 18 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 FF FE 00 00
00 00 11 00 00 05 00 02 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 54 00 05 00 54 00 03 00 01
00 00 00 02 00 14 00 5C 4D 41 49 4C 53 4C 4F 54 5C 54 45 53 54 00 48 65 6C 6C 6F";

fn mailslot(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailslot"))
        .args(args)
        .env_remove("MAILSLOT_PORT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn json_ok(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let out = mailslot(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bytes_of(hex: &str) -> Vec<u8> {
    let h: String = hex.split_whitespace().collect();
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// Third-party captures kept in the repository (`tests/fixtures/README.md` says what made
/// each).
fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

#[test]
fn golden_10_1_has_the_design_keys() {
    let v = json_ok(&["decode", P10_1], None);
    assert_eq!(v["msg_type"], 0x11);
    assert_eq!(v["flags"], 2);
    assert_eq!(v["dgm_id"], 0x1234);
    assert_eq!(v["source_ip"], "192.168.1.10");
    assert_eq!(v["source_port"], 138);
    assert_eq!(
        v["source_name"],
        serde_json::json!({"name": "LINUXBOX", "suffix": 0})
    );
    assert_eq!(
        v["destination_name"],
        serde_json::json!({"name": "WORKGROUP", "suffix": 0})
    );
    assert_eq!(v["mailslot"], "\\MAILSLOT\\TEST");
    assert_eq!(
        (
            v["opcode"].as_u64(),
            v["priority"].as_u64(),
            v["class"].as_u64()
        ),
        (Some(1), Some(0), Some(2))
    );
    assert_eq!(v["data_hex"], "48656c6c6f");
    assert_eq!(v["data_text"], "Hello");
    assert_eq!(v["fragment"], false);
    assert_eq!(v["dgm_length"], 157);
    assert_eq!(v["smb_style"], "windows");
}

#[test]
fn input_forms_agree() {
    let expected = json_ok(&["decode", P10_1], None);
    let raw = bytes_of(P10_1);
    assert_eq!(json_ok(&["decode", "-"], Some(&raw)), expected);
    assert_eq!(json_ok(&["decode", "--file", "-"], Some(&raw)), expected);
    let path = std::env::temp_dir().join(format!("mailslot-decode-{}.bin", std::process::id()));
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(
        json_ok(&["decode", "--file", path.to_str().unwrap()], None),
        expected
    );
    std::fs::remove_file(&path).unwrap();
    let compact: String = P10_1.split_whitespace().collect::<String>().to_lowercase();
    assert_eq!(json_ok(&["decode", &compact], None), expected);
}

#[test]
fn messenger_and_browser_objects() {
    // The TEST example's NBT part with a padded MESSNGR body.
    let mut v = bytes_of(P10_1)[..0x70].to_vec();
    v[2..4].copy_from_slice(&[0x12, 0x35]);
    v[10..12].copy_from_slice(&[0x00, 0xB5]);
    v.extend(bytes_of(
        "00 00 11 00 00 19 00 02 00 00 00 00 00 02 00 00 00 00 00 00 00 00 00 58 00 19 00 58 00 03 00 01
         00 00 00 02 00 2C 00 5C 4D 41 49 4C 53 4C 4F 54 5C 4D 45 53 53 4E 47 52 00 00 4C 49 4E 55 58 42
         4F 58 00 57 4F 52 4B 47 52 4F 55 50 00 48 65 6C 6C 6F 00",
    ));
    let j = json_ok(&["decode", "-"], Some(&v));
    assert_eq!(
        j["messenger"],
        serde_json::json!({"from": "LINUXBOX", "to": "WORKGROUP", "text": "Hello"})
    );
    assert_eq!(j["data_offset"], 88);

    let host = bytes_of(
        "11 0A 6B E4 0A 63 00 01 00 8A 00 C9 00 00 20 46 44 45 42 45 4E 45 43 45 42 46 41 45 46 45 46 46
         43 43 41 43 41 43 41 43 41 43 41 43 41 41 41 00 20 46 45 45 46 46 44 46 45 45 48 46 43 46 41 43
         41 43 41 43 41 43 41 43 41 43 41 43 41 43 41 42 4E 00 FF 53 4D 42 25 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 11 00 00 2F 00 00 00 00 00 00 00 00 00 00
         00 00 00 00 00 00 00 00 00 2F 00 56 00 03 00 01 00 01 00 02 00 40 00 5C 4D 41 49 4C 53 4C 4F 54
         5C 42 52 4F 57 53 45 00 01 00 60 EA 00 00 53 41 4D 42 41 50 45 45 52 00 00 00 00 00 00 00 06 01
         03 9A 81 00 0F 01 55 AA 6E 6D 62 64 20 74 65 73 74 20 70 65 65 72 00",
    );
    let j = json_ok(&["decode", "-"], Some(&host));
    let b = &j["browser"];
    assert_eq!(b["opcode"], 1);
    assert_eq!(b["command"], "HostAnnouncement");
    assert_eq!(b["server_name"], "SAMBAPEER");
    assert_eq!(b["periodicity"], 60000);
    assert_eq!(b["server_type"], 0x0081_9A03);
    assert_eq!(b["comment"], "nmbd test peer");
    assert_eq!(
        j["destination_name"],
        serde_json::json!({"name": "TESTGRP", "suffix": 0x1d})
    );
    assert_eq!(j["smb_style"], "samba");
}

#[test]
fn malformed_input_exits_1_with_one_line() {
    let mut no_nul = bytes_of(P10_1);
    no_nul[82 + 83] = b'X';
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            bytes_of(P10_1)[..60].to_vec(),
            "truncated in DESTINATION_NAME",
        ),
        (no_nul, "transaction name has no NUL before DataOffset"),
        (Vec::new(), "empty datagram"),
    ];
    for (input, reason) in cases {
        let out = mailslot(&["decode", "-"], Some(&input));
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("mailslot: ") && err.contains(reason),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = mailslot(&["decode", "11 0"], None);
    assert_eq!(out.status.code(), Some(1));
    let out = mailslot(&["decode", "xyz"], None);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn fragment_is_shown_not_refused() {
    let mut v = bytes_of(P10_1);
    v[1] |= 1;
    let j = json_ok(&["decode", "-"], Some(&v));
    assert_eq!(j["fragment"], true);
    assert!(j.get("mailslot").is_none());
    assert!(j["user_data_hex"].as_str().unwrap().starts_with("ff534d42"));
}

/// A classic little-endian pcap with Ethernet/IPv4/UDP frames.
fn write_pcap(payloads: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xA1B2_C3D4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    for (port, p) in payloads {
        let mut f = vec![0xff; 6];
        f.extend([2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = (28 + p.len()) as u16;
        f.extend([0x45, 0]);
        f.extend(total.to_be_bytes());
        f.extend([0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 255]);
        f.extend(port.to_be_bytes());
        f.extend(port.to_be_bytes());
        f.extend(((8 + p.len()) as u16).to_be_bytes());
        f.extend([0, 0]);
        f.extend(p);
        out.extend(1u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend((f.len() as u32).to_le_bytes());
        out.extend(f);
    }
    out
}

#[test]
fn pcap_errors_are_lines_not_aborts() {
    let good = bytes_of(P10_1);
    let pcap = write_pcap(&[
        (138, good.clone()),
        (138, good[..50].to_vec()),
        (139, vec![1, 2]),
        (138, good),
    ]);
    let path = std::env::temp_dir().join(format!("mailslot-decode-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap).unwrap();
    let out = mailslot(&["decode", "--pcap", path.to_str().unwrap()], None);
    std::fs::remove_file(&path).unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["mailslot"], "\\MAILSLOT\\TEST");
    assert_eq!(lines[1]["error"], "truncated in DESTINATION_NAME");
    assert_eq!(lines[1]["frame"], 2);
    assert_eq!(lines[2]["frame"], 4);
    assert_eq!(lines[2]["udp_src"], "10.0.0.1:138");
}

#[test]
fn lab_captures_decode_without_errors() {
    let dir = fixtures();
    let mut files = vec![dir.join("nmbd-browse.pcap")];
    files.extend(
        std::fs::read_dir(dir.join("pcaps"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    assert_eq!(files.len(), 9, "{files:?}");
    let mut total = 0;
    for f in &files {
        for port in ["138", "13800"] {
            let out = mailslot(
                &["--port", port, "decode", "--pcap", f.to_str().unwrap()],
                None,
            );
            assert!(
                out.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert!(v.get("error").is_none(), "{}: {line}", f.display());
                assert!(v["mailslot"].is_string());
                total += 1;
            }
        }
    }
    assert!(total >= 30, "only {total} datagrams");
}

/// Name-service packets of every kind (the wire crate's golden vectors, RFC 1002 layouts):
/// the registration family, WACK and our own node status answer's shape.
fn nbns_vectors() -> Vec<(&'static str, &'static str)> {
    include_str!("../../mailslot-wire/tests/fixtures/nbns.vectors")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split_once(' ').expect("kind and hex"))
        .collect()
}

#[test]
fn every_name_service_packet_decodes_on_port_137() {
    let mut pcap = Vec::new();
    for (kind, hex) in nbns_vectors() {
        let v = json_ok(&["--port", "137", "decode", hex], None);
        assert_eq!(v["nbns"], *kind, "{v}");
        assert!(v.get("error").is_none(), "{v}");
        assert_eq!(
            v["name"]["name"],
            if kind.starts_with("node_status") {
                "*"
            } else {
                "HOSTB"
            }
        );
        pcap.push((137u16, bytes_of(hex)));
    }
    // Our node status answer: the names, their flags and the unit id.
    let status = nbns_vectors()
        .iter()
        .find(|(k, _)| *k == "node_status_response")
        .unwrap()
        .1;
    let v = json_ok(&["--port", "137", "decode", status], None);
    assert_eq!(v["node_names"][0]["name"], "HOSTB");
    assert_eq!(v["node_names"][1]["group"], true);
    assert_eq!(v["unit_id"], "02:00:00:00:00:01");
    // A registration: the address, through the pointer to the question name.
    let reg = nbns_vectors()
        .iter()
        .find(|(k, _)| *k == "name_registration_request")
        .unwrap()
        .1;
    let v = json_ok(&["--port", "137", "decode", reg], None);
    assert_eq!(v["record"]["section"], "additional");
    assert_eq!(v["record"]["name_is_pointer"], true);
    assert_eq!(v["addresses"][0]["address"], "10.99.0.2");
    let wack = nbns_vectors()
        .iter()
        .find(|(k, _)| *k == "wait_for_acknowledgement")
        .unwrap()
        .1;
    let v = json_ok(&["--port", "137", "decode", wack], None);
    assert_eq!(v["record"]["wack_flags"], 0x2910);
    // The same packets in a capture: one line each, none an error.
    let path = std::env::temp_dir().join(format!("ms-decode-nbns-{}.pcap", std::process::id()));
    std::fs::write(&path, write_pcap(&pcap)).unwrap();
    let out = mailslot(
        &["--port", "137", "decode", "--pcap", path.to_str().unwrap()],
        None,
    );
    let _ = std::fs::remove_file(&path);
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
    assert_eq!(lines.len(), nbns_vectors().len());
    for (line, (kind, _)) in lines.iter().zip(nbns_vectors()) {
        assert_eq!(line["nbns"], *kind, "{line}");
    }
}
