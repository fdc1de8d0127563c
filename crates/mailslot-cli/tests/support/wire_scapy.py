#!/usr/bin/env python3
"""Third-party check of mailslot-wire with scapy (run with <repo>/.venv/bin/python).

  wire_scapy.py build   -> one JSON line per datagram scapy builds: {"case", "hex", expected fields}
  wire_scapy.py parse   -> reads hex lines on stdin, prints the fields scapy decodes, one JSON line each
"""
import json
import sys

from scapy.layers.netbios import NBTDatagram
from scapy.layers.smb import SMB_Header, SMBMailslot_Write
from scapy.packet import Raw


def sfx(n):  # scapy keeps the first-level encoding of the 16th byte apart
    return ((0x41 + (n >> 4)) << 8) | (0x41 + (n & 0xF))


CASES = [
    # case, type, src, src_sfx, dst, dst_sfx, mailslot, payload, pad
    ("group-unpadded", 0x11, "SCAPY-A", 0x00, "MSLAB", 0x00, "\\MAILSLOT\\TEST", b"hello scapy", False),
    ("unique-unpadded", 0x10, "SCAPY-A", 0x00, "HOST-B", 0x03, "\\MAILSLOT\\MESSNGR", b"A\0B\0text\0", False),
    ("group-padded", 0x11, "SCAPY-A", 0x00, "MSLAB", 0x00, "\\MAILSLOT\\MESSNGR", b"padded body", True),
    ("unique-padded", 0x10, "SCAPY-A", 0x20, "HOST-B", 0x00, "\\MAILSLOT\\X\\Y", bytes(range(40)), True),
]


def build():
    for case, typ, src, ssx, dst, dsx, slot, payload, pad in CASES:
        unpadded = 69 + len(slot) + 1
        offset = (unpadded + 3) & ~3 if pad else unpadded
        kw = {"DataBufferOffset": offset} if pad else {}
        pkt = (NBTDatagram(Type=typ, Flags=0x02, ID=0x4321, SourceIP="10.99.0.7", SourcePort=138,
                           SourceName=src, SUFFIX1=sfx(ssx), DestinationName=dst, SUFFIX2=sfx(dsx))
               / SMB_Header(Command=0x25, Flags=0, Flags2=0)
               / SMBMailslot_Write(Name=slot.encode(), Timeout=0, Setup=[1, 1, 2],
                                   Data=Raw(payload), **kw))
        raw = bytes(pkt)
        print(json.dumps({"case": case, "hex": raw.hex(), "msg_type": typ, "source_name": src,
                          "source_suffix": ssx, "destination_name": dst, "destination_suffix": dsx,
                          "mailslot": slot, "data_hex": payload.hex(), "data_offset": offset}))


def parse():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        p = NBTDatagram(bytes.fromhex(line))
        t = p.getlayer(SMBMailslot_Write)
        data = b""
        if t is not None and t.Data is not None:
            data = bytes(t.Data)
        print(json.dumps({
            "msg_type": p.Type, "flags": p.Flags, "dgm_id": p.ID, "source_ip": p.SourceIP,
            "source_port": p.SourcePort, "dgm_length": p.Length,
            "source_name": p.SourceName.decode().rstrip(), "destination_name": p.DestinationName.decode().rstrip(),
            "mailslot": t.Name.decode() if t is not None else None,
            "setup": list(t.Setup) if t is not None else None,
            "data_hex": data.hex(),
        }), flush=True)


if __name__ == "__main__":
    {"build": build, "parse": parse}[sys.argv[1]]()
