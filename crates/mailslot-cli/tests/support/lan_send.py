#!/usr/bin/env python3
"""Third-party senders of mailslot writes for the LAN tests (tests/lan.rs).

  lan_send.py cases --impl samba|scapy --unicast IP --broadcast IP --host NAME --group NAME
                    --prefix TAG [--mailslot '\\MAILSLOT\\THIRD'] [--sport 138]
      Builds every case below with the chosen encoder (samba: Samba's NDR, python3-samba, run
      with /usr/bin/python3; scapy: <repo>/.venv/bin/python), sends it (unique cases to
      --unicast, group ones to --broadcast) and prints one JSON line per case with what a
      receiver must see: {"case", "impl", "src", "data_hex", "data_offset", "padded", ...}.
      Cases: group/unique x unpadded (Samba style: DataOffset = 70 + len(name)) / padded
      (Windows style: data 4-byte aligned from the SMB header; the samba padded unique case
      pads with 0x42 like Win98), a group to NAME<1d> (browser style), a BROADCAST (0x12) to
      `*` (samba only: scapy pads `*` with spaces, RFC 1002 pads it with NULs), and a datagram
      whose header SOURCE_IP/SOURCE_PORT lie (the receiver must report the UDP source).
      The mailslot name must need padding (69 + len + NUL not a multiple of 4).

  lan_send.py tick --to IP --host NAME --src NAME [--mailslot '\\MAILSLOT\\TICK']
                   [--interval-ms 1] [--duration 30]
      Sends a unique datagram every --interval-ms until --duration (bounded to 60 s) with the
      body "tick SEQ MONOTONIC_US" (CLOCK_MONOTONIC, the clock Rust's Instant and
      time.monotonic() share), built by hand (stdlib only). Prints {"started": ...} first and
      {"sent": N} at the end.

Everything is bounded: a fixed list of cases, and --duration for tick. Only send to lab
namespaces or loopback.
"""
import argparse
import json
import socket
import struct
import sys
import time


def local_ip_towards(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.connect((ip, 9))
    addr = s.getsockname()[0]
    s.close()
    return addr


def build_samba(c):
    from samba_dgram import mailslot_datagram

    return mailslot_datagram(c["type"], c["src"], 0, c["dst"], c["dst_suffix"], c["mailslot"],
                             c["payload"], c["pad"], c["id"], c["hdr_ip"], c["hdr_port"])


def build_scapy(c):
    from scapy.layers.netbios import NBTDatagram
    from scapy.layers.smb import SMB_Header, SMBMailslot_Write
    from scapy.packet import Raw

    def sfx(n):  # scapy keeps the first-level encoding of the 16th byte apart
        return ((0x41 + (n >> 4)) << 8) | (0x41 + (n & 0xF))

    slot = c["mailslot"]
    kw = {}
    if c["pad"]:
        kw["DataBufferOffset"] = 70 + len(slot) + len(c["pad"])
    pkt = (NBTDatagram(Type=c["type"], Flags=0x02, ID=c["id"], SourceIP=c["hdr_ip"],
                       SourcePort=c["hdr_port"], SourceName=c["src"], SUFFIX1=sfx(0),
                       DestinationName=c["dst"], SUFFIX2=sfx(c["dst_suffix"]))
           / SMB_Header(Command=0x25, Flags=0, Flags2=0)
           / SMBMailslot_Write(Name=slot.encode(), Timeout=0, Setup=[1, 1, 2],
                               Data=Raw(c["payload"]), **kw))
    return bytes(pkt)


def smb_fields(raw):
    """(DataOffset, DataCount, the data) read back from the bytes, as a receiver must."""
    smb = 14 + 34 + 34
    count, offset = struct.unpack_from("<HH", raw, smb + 55)
    return offset, count, raw[smb + offset: smb + offset + count]


def cmd_cases(a):
    slot = a.mailslot
    unpadded = 70 + len(slot)  # 69 + name + NUL, from the SMB header
    pad_len = (4 - unpadded % 4) % 4
    assert pad_len, "choose a mailslot name that needs padding (e.g. \\MAILSLOT\\THIRD)"
    zero_pad, win98_pad = b"\0" * pad_len, b"\x42" * pad_len
    p = a.prefix
    cases = [
        # case, msg type, source name, destination, suffix, padding, payload
        ("group-unpadded", 0x11, p + "-GU", a.group, 0x00, b"", "group unpadded"),
        ("group-padded", 0x11, p + "-GP", a.group, 0x00, zero_pad, "group padded"),
        ("unique-unpadded", 0x10, p + "-UU", a.host, 0x00, b"", "unique unpadded"),
        ("unique-padded", 0x10, p + "-UP", a.host, 0x00,
         win98_pad if a.impl == "samba" else zero_pad, "unique padded"),
        ("group-1d", 0x11, p + "-G1D", a.group, 0x1D, b"", "group to <1d>"),
        ("spoofed-header", 0x10, p + "-SPF", a.host, 0x00, b"", "spoofed header"),
    ]
    if a.impl == "samba":
        cases.append(("broadcast-star", 0x12, p + "-STAR", "*", 0x00, b"", "broadcast to *"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.sport))
    sport = s.getsockname()[1]
    build = build_samba if a.impl == "samba" else build_scapy
    for i, (case, typ, src, dst, dsx, pad, text) in enumerate(cases):
        to = a.unicast if typ == 0x10 else a.broadcast
        # Text plus a few non-ASCII bytes: the receiver must hand over bytes, not text.
        payload = f"{a.impl} {text} ".encode() + bytes([0x00, 0x7F, 0x80, 0xFF])
        c = {"mailslot": slot, "payload": payload, "pad": pad, "src": src, "dst": dst,
             "dst_suffix": dsx, "type": typ, "id": 0x5000 + i,
             "hdr_ip": local_ip_towards(to), "hdr_port": sport}
        if case == "spoofed-header":
            c["hdr_ip"], c["hdr_port"] = "10.99.0.77", 4242
        raw = build(c)
        offset, count, data = smb_fields(raw)
        # The encoder did what we asked for (else the case would test nothing).
        assert data == payload, (case, raw.hex())
        assert offset == unpadded + len(pad), (case, offset)
        if pad:
            assert offset % 4 == 0, (case, offset)
        s.sendto(raw, (to, a.port))
        print(json.dumps({"case": case, "impl": a.impl, "src": src, "dst": dst,
                          "dst_suffix": dsx, "type": typ, "to": to, "sport": sport,
                          "data_hex": payload.hex(), "data_offset": offset,
                          "padded": bool(pad), "len": len(raw)}), flush=True)
        time.sleep(0.002)


def build_raw(src, dst, dst_suffix, typ, dgm_id, src_ip, src_port, slot, payload):
    """A mailslot write by hand (stdlib only), Samba layout (no padding)."""

    def name(n, sfx):
        b = n.encode().ljust(15, b" " if n != "*" else b"\0")[:15] + bytes([sfx])
        enc = bytes(x for c in b for x in (0x41 + (c >> 4), 0x41 + (c & 0xF)))
        return b"\x20" + enc + b"\0"

    name_b = slot.encode() + b"\0"
    data_offset = 69 + len(name_b)
    smb = (b"\xffSMB\x25" + b"\0" * 27
           + struct.pack("<BHHHHBBHIHHHHHBBHHHH", 17, 0, len(payload), 0, 0, 0, 0, 0, 0, 0,
                         0, 0, len(payload), data_offset, 3, 0, 1, 1, 2,
                         len(name_b) + len(payload))
           + name_b + payload)
    names = name(src, 0) + name(dst, dst_suffix)
    hdr = struct.pack(">BBH4sHHH", typ, 0x02, dgm_id, socket.inet_aton(src_ip), src_port,
                      len(names) + len(smb), 0)
    return hdr + names + smb


def cmd_tick(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    sport = s.getsockname()[1]
    src_ip = local_ip_towards(a.to)
    end = time.monotonic() + min(a.duration, 60)
    print(json.dumps({"started": sport}), flush=True)
    seq = 0
    errors = 0
    while time.monotonic() < end:
        body = f"tick {seq} {int(time.monotonic() * 1e6)}".encode()
        raw = build_raw(a.src, a.host, 0, 0x10, seq & 0xFFFF, src_ip, sport, a.mailslot, body)
        try:
            s.sendto(raw, (a.to, a.port))
        except OSError:
            errors += 1  # e.g. ECONNREFUSED from an ICMP port unreachable during a takeover
        seq += 1
        time.sleep(a.interval_ms / 1000)
    print(json.dumps({"sent": seq, "errors": errors}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("cases")
    p.add_argument("--impl", choices=["samba", "scapy"], required=True)
    p.add_argument("--unicast", required=True)
    p.add_argument("--broadcast", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--mailslot", default="\\MAILSLOT\\THIRD")
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--sport", type=int, default=138)
    p = sub.add_parser("tick")
    p.add_argument("--to", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--mailslot", default="\\MAILSLOT\\TICK")
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--interval-ms", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=30)
    a = ap.parse_args()
    {"cases": cmd_cases, "tick": cmd_tick}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
