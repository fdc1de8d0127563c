#!/usr/bin/env python3
"""Hostile traffic for the LAN tests (tests/lan.rs), built with scapy (run with
<repo>/.venv/bin/python): valid datagrams come from scapy's NBTDatagram/SMBMailslot_Write and
are then broken byte by byte, as an attacker would.

  lan_hostile.py hostile --to IP --host NAME --group NAME
      Sends every hostile case below (the receive checks of docs/wire.md), 2 ms apart, from one
      ephemeral UDP port, then an END sentinel to \\MAILSLOT\\TEST. Prints one JSON line per
      case ({"case", "expect"}) and a summary {"summary": {counter: expected increase}}, the
      counters being those of `mailslot status --json` (network object).
      Deliveries expected (mailslot, length, first bytes) are listed in {"deliveries": [...]}.

  lan_hostile.py flood --to IP --host NAME --count N
      Sends N datagrams (bounded to 1,000,000) as fast as the socket takes them, cycling
      through: empty, garbage, a fragment, a write for a mailslot nobody has, a write for
      another host, the same valid datagram again and again (deduplicated), and valid writes to
      \\MAILSLOT\\FLOOD with distinct DGM_IDs. Prints {"sent", "errors", "seconds", "kinds"}.
"""
import argparse
import json
import socket
import struct
import sys
import time

from scapy.layers.netbios import NBTDatagram
from scapy.layers.smb import SMB_Header, SMBMailslot_Write
from scapy.packet import Raw

SMB = 14 + 34 + 34  # where the SMB starts with two unscoped names


def sfx(n):
    return ((0x41 + (n >> 4)) << 8) | (0x41 + (n & 0xF))


def dgram(dst, slot="TEST", data=b"payload", typ=0x10, dgm_id=1, src="HOSTILE", dst_sfx=0,
          src_ip="10.99.0.1", src_port=138, pad=0, mailslot_class=2, priority=1):
    name = ("\\MAILSLOT\\" + slot).encode()
    kw = {"DataBufferOffset": 70 + len(name) + pad} if pad else {}
    pkt = (NBTDatagram(Type=typ, Flags=0x02, ID=dgm_id, SourceIP=src_ip, SourcePort=src_port,
                       SourceName=src, SUFFIX1=sfx(0), DestinationName=dst,
                       SUFFIX2=sfx(dst_sfx))
           / SMB_Header(Command=0x25, Flags=0, Flags2=0)
           / SMBMailslot_Write(Name=name, Timeout=0, Setup=[1, priority, mailslot_class],
                               Data=Raw(data), **kw))
    return bytearray(bytes(pkt))


def set_le(d, at, v):
    d[SMB + at:SMB + at + 2] = struct.pack("<H", v)


def hostile_cases(host, group):
    base = dgram(host, dgm_id=100)
    cases = []  # (case, expected counter, the bytes)

    def add(case, expect, d):
        cases.append((case, expect, bytes(d)))

    # --- malformed (the receive checks 1-5 of docs/wire.md, past CVEs) ---
    add("empty datagram (CVE-2020-14303)", "dropped_malformed", b"")
    add("13-byte header", "dropped_malformed", base[:13])
    add("truncated source name", "dropped_malformed", base[:30])
    add("truncated destination name", "dropped_malformed", base[:14 + 34 + 20])
    add("truncated SMB header", "dropped_malformed", base[:SMB + 20])
    add("SMB cut inside the parameter words", "dropped_malformed", base[:SMB + 60])
    d = bytearray(base); d[14] = 0x1F
    add("first label length 31", "dropped_malformed", d)
    d = bytearray(base); d[14:16] = b"\xC0\x0E"
    add("name pointer to itself (pointer loop)", "dropped_malformed", d)
    d = bytearray(base); d[14 + 34:14 + 36] = b"\xC0\x0E"
    add("destination name as a compression pointer", "dropped_malformed", d)
    d = bytearray(base); d[20] = ord("Z")
    add("name byte outside A..P", "dropped_malformed", d)
    d = bytearray(base); d[14 + 33] = 0x3F; d = d[:14 + 40]
    add("scope label running past the end", "dropped_malformed", d)
    d = bytearray(base)
    # A source name whose scope labels add up to more than 255 bytes (RFC 1002 limit).
    d[14 + 33:14 + 34] = b"".join(bytes([60]) + b"s" * 60 for _ in range(5)) + b"\0"
    add("scope longer than 255 bytes", "dropped_malformed", d)
    d = bytearray(base); d[SMB] = 0xFE
    add("bad SMB magic", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 4] = 0x72
    add("SMB command NEGOTIATE instead of TRANSACTION", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 32] = 16
    add("WordCount 16", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 32] = 0xFF
    add("WordCount 255 (words past the end)", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 59] = 2
    add("SetupCount 2", "dropped_malformed", d)
    d = bytearray(base); set_le(d, 61, 2)
    add("mailslot opcode 2", "dropped_malformed", d)
    d = bytearray(base); set_le(d, 57, 70)
    add("DataOffset inside the fixed part", "dropped_malformed", d)
    d = bytearray(base); set_le(d, 57, 0xFFF0)
    add("DataOffset beyond the datagram", "dropped_malformed", d)
    d = bytearray(base); set_le(d, 55, 0xFFFF)
    add("DataOffset+DataCount beyond the datagram", "dropped_malformed", d)
    d = bytearray(base); set_le(d, 55, 0xFFFF); set_le(d, 57, 0xFFFF)
    add("DataOffset and DataCount 0xFFFF (overflowing sum)", "dropped_malformed", d)
    # CVE-2006-3942: no NUL between the transaction name and DataOffset.
    d = bytearray(base)
    name_end = SMB + 69 + len("\\MAILSLOT\\TEST")
    off = struct.unpack_from("<H", d, SMB + 57)[0]
    d[name_end:SMB + off] = b"A" * (SMB + off - name_end)
    add("transaction name without NUL (CVE-2006-3942)", "dropped_malformed", d)
    d = bytearray(base)
    d = d[:name_end]  # the name runs into the end of the datagram
    set_le(d, 55, 0); set_le(d, 57, len(d) - SMB)
    add("transaction name running to the end of the datagram", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 69:SMB + 79] = b"\\PIPE\\XXXX"
    add("transaction name not \\MAILSLOT\\", "dropped_malformed", d)
    d = bytearray(base); d[SMB + 69 + 11] = 0x07
    add("control character in the mailslot name", "dropped_malformed", d)
    add("empty mailslot name after \\MAILSLOT\\", "dropped_malformed", dgram(host, slot=""))
    # A path escape if names mapped to files unchecked. The role's parser lets it through and
    # the local delivery refuses it (counted as dropped_failed, not dropped_malformed): either
    # counter is accepted, nothing may be delivered or created.
    add("'..' in the mailslot name", "dropped_malformed_or_failed",
        dgram(host, slot="..\\..\\ETC"))
    g = bytearray((i * 37 + 11) & 0xFF for i in range(300)); g[0] = 0x10
    add("random bytes after a data MSG_TYPE", "dropped_malformed", g)
    # --- other datagram-service types: parsed for counting, never answered ---
    add("DATAGRAM ERROR 0x13", "dropped_other_type",
        bytes([0x13, 0x02, 0, 1, 10, 99, 0, 1, 0, 138, 0x82]))
    for t in (0x14, 0x15, 0x16):
        add(f"datagram query type {t:#04x}", "dropped_other_type",
            bytes([t, 0x02, 0, 1, 10, 99, 0, 1, 0, 138]) + bytes(base[14 + 34:14 + 68]))
    d = bytearray(base); d[0] = 0x42
    add("unknown MSG_TYPE 0x42", "dropped_other_type", d)
    # --- fragments: nobody reassembles ---
    d = bytearray(base); d[1] |= 0x01
    add("first fragment with MORE set", "dropped_fragment", d)
    d = bytearray(base); d[12:14] = struct.pack(">H", 100)
    add("PACKET_OFFSET 100", "dropped_fragment", d)
    d = bytearray(base); d[1] = 0x00; d[12:14] = struct.pack(">H", 40)
    add("last fragment (F=0, M=0, offset 40)", "dropped_fragment", d)
    # --- not for us (receive check 3) ---
    add("unique to another host", "dropped_not_for_us", dgram("OTHERHOST", dgm_id=101))
    add("group to another workgroup", "dropped_not_for_us",
        dgram("OTHERGRP", typ=0x11, dgm_id=102))
    d = dgram(host, dgm_id=103)
    d[14 + 34 + 33:14 + 34 + 33] = b"\x03com"
    add("destination in another NetBIOS scope", "dropped_not_for_us", d)
    # --- valid, but nobody has the mailslot ---
    add("write to a mailslot nobody has", "dropped_no_mailslot",
        dgram(host, slot="NOSUCH", dgm_id=104))
    # --- valid and unusual: delivered (a wrong DGM_LENGTH, odd padding, a spoofed header) ---
    deliveries = []

    def deliver(case, d, slot, data, counters=("delivered",)):
        cases.append((case, list(counters), bytes(d)))
        deliveries.append({"case": case, "mailslot": slot, "len": len(data),
                           "head_hex": data[:16].hex()})

    d = dgram(host, data=b"impacket dgm-length", dgm_id=105)
    d[10:12] = struct.pack(">H", 19)  # impacket counts the data only
    deliver("impacket's DGM_LENGTH (data only)", d, "TEST", b"impacket dgm-length",
            ("delivered", "dgm_length_mismatch"))
    deliver("zero DataCount", dgram(host, data=b"", dgm_id=106), "TEST", b"")
    d = dgram(host, slot="MSG", data=b"win98 pad", dgm_id=107, pad=1)
    d[SMB + 83] = 0x42
    deliver("Win98 garbage padding byte 0x42", d, "MSG", b"win98 pad")
    big = bytes(range(256)) * 4
    deliver("1024-byte payload (beyond nmbd's 576-byte read)", dgram(host, data=big, dgm_id=108),
            "TEST", big)
    huge = b"H" * 65000
    deliver("65,000-byte datagram (IP fragments on the wire)",
            dgram(host, data=huge, dgm_id=109), "TEST", huge)
    deliver("class 1, priority 9 (both ignored)",
            dgram(host, data=b"class one", dgm_id=110, mailslot_class=1, priority=9),
            "TEST", b"class one")
    deliver("header claims our own name and another IP (spoofable identity)",
            dgram(host, data=b"spoofed", dgm_id=111, src=host, src_ip="6.6.6.6",
                  src_port=1), "TEST", b"spoofed")
    # [MS-BRWS] frames are mailslot data: the role hands them over as bytes and parses none
    # (VU#323172 length underflow, CVE-2014-3560 16-byte name without NUL).
    frame = b"\x01\x00\x60"
    deliver("HostAnnouncement cut after 3 bytes (VU#323172)",
            dgram(group, slot="BROWSE", data=frame, typ=0x11, dgm_id=112, dst_sfx=0x1D),
            "BROWSE", frame)
    frame = (b"\x01\x00" + struct.pack("<I", 60000) + b"N" * 16 + b"\x06\x01"
             + struct.pack("<I", 0x1003) + b"\x0f\x01\x55\xaa" + b"C" * 40)
    deliver("HostAnnouncement with a 16-byte ServerName without NUL (CVE-2014-3560)",
            dgram(group, slot="BROWSE", data=frame, typ=0x11, dgm_id=113, dst_sfx=0x1D),
            "BROWSE", frame)
    return cases, deliveries


def cmd_hostile(a):
    cases, deliveries = hostile_cases(a.host, a.group)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", 0))
    summary = {}
    for case, expect, d in cases:
        s.sendto(d, (a.to, a.port))
        counters = expect if isinstance(expect, list) else [expect]
        for c in counters:
            summary[c] = summary.get(c, 0) + 1
        print(json.dumps({"case": case, "expect": counters, "len": len(d)}), flush=True)
        time.sleep(0.002)
    end = bytes(dgram(a.host, data=b"END", dgm_id=199))
    s.sendto(end, (a.to, a.port))
    summary["delivered"] = summary.get("delivered", 0) + 1
    summary["received"] = len(cases) + 1
    deliveries.append({"case": "END", "mailslot": "TEST", "len": 3, "head_hex": b"END".hex()})
    print(json.dumps({"deliveries": deliveries}), flush=True)
    print(json.dumps({"summary": summary}), flush=True)


def cmd_flood(a):
    count = min(a.count, 1_000_000)
    valid = dgram(a.host, slot="FLOOD", data=b"flood 0000000", dgm_id=0)
    frag = dgram(a.host, dgm_id=2); frag[1] |= 1
    kinds = [
        ("empty", b""),
        ("garbage", bytes([0x10]) + b"\xff" * 60),
        ("fragment", bytes(frag)),
        ("no mailslot", bytes(dgram(a.host, slot="NOSUCH", dgm_id=3))),
        ("not for us", bytes(dgram("ELSEWHERE", dgm_id=4))),
        ("duplicate", bytes(dgram(a.host, slot="FLOOD", data=b"the same", dgm_id=5))),
        ("valid", None),
    ]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    dest = (a.to, a.port)
    errors = 0
    t0 = time.monotonic()
    n = len(kinds)
    for i in range(count):
        name, d = kinds[i % n]
        if d is None:
            # Distinct DGM_ID and body: not duplicates of each other.
            valid[2:4] = struct.pack(">H", i & 0xFFFF)
            valid[-7:] = b"%07d" % (i % 10_000_000)
            d = valid
        try:
            s.sendto(d, dest)
        except OSError:
            errors += 1
    print(json.dumps({"sent": count, "errors": errors,
                      "seconds": round(time.monotonic() - t0, 3),
                      "kinds": [k for k, _ in kinds]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hostile")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--host", required=True)
    p.add_argument("--group", required=True)
    p = sub.add_parser("flood")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--host", required=True)
    p.add_argument("--count", type=int, required=True)
    a = ap.parse_args()
    {"hostile": cmd_hostile, "flood": cmd_flood}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
