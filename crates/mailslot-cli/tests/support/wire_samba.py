#!/usr/bin/env python3
"""Third-party check of mailslot-wire with Samba's NDR (python3-samba; run with /usr/bin/python3).

  wire_samba.py build   -> one JSON line per datagram Samba's NDR builds: {"case", "hex", expected}
  wire_samba.py unpack  -> reads hex lines on stdin, prints what ndr_unpack(nbt.dgram_packet) sees
"""
import json
import sys

from samba.dcerpc import nbt
from samba.ndr import ndr_unpack

from samba_dgram import mailslot_datagram

CASES = [
    # case, type, src, src_sfx, dst, dst_sfx, mailslot, payload, pad(bytes or None)
    ("group-unpadded", 0x11, "SAMBA-A", 0x00, "MSLAB", 0x00, "\\MAILSLOT\\TEST", b"hello samba", None),
    ("unique-unpadded", 0x10, "SAMBA-A", 0x00, "HOST-B", 0x03, "\\MAILSLOT\\MESSNGR", b"A\0B\0text\0", None),
    ("group-padded", 0x11, "SAMBA-A", 0x00, "MSLAB", 0x00, "\\MAILSLOT\\MESSNGR", b"padded", b"\0"),
    ("unique-padded-garbage", 0x10, "SAMBA-A", 0x20, "HOST-B", 0x00, "\\MAILSLOT\\X\\Y", bytes(range(40)), b"\x42\x42\x42"),
]


def build():
    for case, typ, src, ssx, dst, dsx, slot, payload, pad in CASES:
        pad = pad or b""
        datagram = mailslot_datagram(typ, src, ssx, dst, dsx, slot, payload, pad)
        print(json.dumps({"case": case, "hex": datagram.hex(), "msg_type": typ,
                          "source_name": src, "source_suffix": ssx, "destination_name": dst,
                          "destination_suffix": dsx, "mailslot": slot, "data_hex": payload.hex(),
                          "data_offset": 70 + len(slot) + len(pad)}))


def unpack():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        p = ndr_unpack(nbt.dgram_packet, bytes.fromhex(line))
        m = p.data
        t = m.body.body
        print(json.dumps({
            "msg_type": p.msg_type, "flags": p.flags, "dgm_id": p.dgram_id,
            "source_ip": p.src_addr, "source_port": p.src_port, "dgm_length": m.length,
            "packet_offset": m.offset,
            "source_name": m.source_name.name, "source_suffix": m.source_name.type,
            "destination_name": m.dest_name.name, "destination_suffix": m.dest_name.type,
            "smb_command": m.body.smb_command, "mailslot": t.mailslot_name,
            "opcode": t.opcode, "priority": t.priority, "class": getattr(t, "_class"),
            "data_offset": t.data_offset, "data_count": t.data_count,
            # NDR's data is "everything after the name": strip the padding with data_offset.
            "data_hex": bytes(t.data)[t.data_offset - (70 + len(t.mailslot_name)):].hex(),
        }), flush=True)


if __name__ == "__main__":
    {"build": build, "unpack": unpack}[sys.argv[1]]()
