#!/usr/bin/env python3
"""Third-party check of mailslot-wire with Samba's NDR (python3-samba; run with /usr/bin/python3).

  wire_samba.py build   -> one JSON line per datagram Samba's NDR builds: {"case", "hex", expected}
  wire_samba.py unpack  -> reads hex lines on stdin, prints what ndr_unpack(nbt.dgram_packet) sees
"""
import json
import sys

from samba.dcerpc import nbt
from samba.ndr import ndr_pack, ndr_unpack

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
        trans = nbt.smb_trans_body()
        trans.total_param_count = 0
        trans.total_data_count = len(payload)
        trans.max_param_count = trans.max_data_count = trans.max_setup_count = 0
        trans.trans_flags = trans.timeout = trans.param_count = trans.param_offset = 0
        trans.data_count = len(payload)
        trans.data_offset = 70 + len(slot) + len(pad)
        trans.opcode, trans.priority = 1, 1
        setattr(trans, "_class", 2)
        trans.mailslot_name = slot
        trans.data = pad + payload
        smb = nbt.dgram_smb_packet()
        smb.smb_command = nbt.SMB_TRANSACTION
        smb.err_class = smb.pad = smb.err_code = smb.flags = smb.flags2 = 0
        smb.pid_high = smb.reserved = smb.tid = smb.pid = smb.vuid = smb.mid = 0
        smb.signature = [0] * 8
        smb.body = trans
        msg = nbt.dgram_message()
        msg.length = 138 + len(slot) + len(pad) + len(payload)
        msg.offset = 0
        s = nbt.name(); s.name = src; s.type = ssx
        d = nbt.name(); d.name = dst; d.type = dsx
        msg.source_name, msg.dest_name = s, d
        msg.dgram_body_type = nbt.DGRAM_SMB
        msg.body = smb
        pkt = nbt.dgram_packet()
        pkt.msg_type = typ
        pkt.flags = nbt.DGRAM_FLAG_FIRST
        pkt.dgram_id = 0x4321
        pkt.src_addr = "10.99.0.9"
        pkt.src_port = 138
        pkt.data = msg
        print(json.dumps({"case": case, "hex": ndr_pack(pkt).hex(), "msg_type": typ,
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
