#!/usr/bin/env python3
"""A third-party NetBIOS datagram peer for the LAN tests, built on Samba's NDR
(python3-samba; run with /usr/bin/python3).

  lan_peer.py send --to IP [--port 138] [--sport 138] --type group|unique --src NAME
                   --dst NAME [--dst-suffix N] --mailslot '\\MAILSLOT\\X' --payload TEXT
  lan_peer.py echo [--port 138] --reply-mailslot '\\MAILSLOT\\X' --src NAME --dst NAME
                   [--count 1] [--timeout 20]
      Binds 0.0.0.0:PORT; for each mailslot datagram received, prints one JSON line and
      answers the UDP source address (as nmbd answers GetBackupListRequest) with a unique
      datagram to DST<00> carrying b"echo:" + the data.

Every loop is bounded by --count and --timeout.
"""
import argparse
import json
import socket
import sys

from samba.dcerpc import nbt
from samba.ndr import ndr_pack, ndr_unpack


def build(msg_type, src, dst, dst_suffix, mailslot, payload, src_ip, sport, dgm_id=0x4242):
    trans = nbt.smb_trans_body()
    trans.total_param_count = 0
    trans.total_data_count = len(payload)
    trans.max_param_count = trans.max_data_count = trans.max_setup_count = 0
    trans.trans_flags = trans.timeout = trans.param_count = trans.param_offset = 0
    trans.data_count = len(payload)
    trans.data_offset = 70 + len(mailslot)
    trans.opcode, trans.priority = 1, 1
    setattr(trans, "_class", 2)
    trans.mailslot_name = mailslot
    trans.data = payload
    smb = nbt.dgram_smb_packet()
    smb.smb_command = nbt.SMB_TRANSACTION
    smb.err_class = smb.pad = smb.err_code = smb.flags = smb.flags2 = 0
    smb.pid_high = smb.reserved = smb.tid = smb.pid = smb.vuid = smb.mid = 0
    smb.signature = [0] * 8
    smb.body = trans
    msg = nbt.dgram_message()
    msg.length = 138 + len(mailslot) + len(payload)
    msg.offset = 0
    sn = nbt.name()
    sn.name, sn.type = src, 0
    dn = nbt.name()
    dn.name, dn.type = dst, dst_suffix
    msg.source_name, msg.dest_name = sn, dn
    msg.dgram_body_type = nbt.DGRAM_SMB
    msg.body = smb
    pkt = nbt.dgram_packet()
    pkt.msg_type = msg_type
    pkt.flags = nbt.DGRAM_FLAG_FIRST
    pkt.dgram_id = dgm_id
    pkt.src_addr = src_ip
    pkt.src_port = sport
    pkt.data = msg
    return ndr_pack(pkt)


def local_ip_towards(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.connect((ip, 9))
    addr = s.getsockname()[0]
    s.close()
    return addr


def cmd_send(a):
    typ = {"group": 0x11, "unique": 0x10}[a.type]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", a.sport))
    sport = s.getsockname()[1]
    data = build(typ, a.src, a.dst, a.dst_suffix, a.mailslot, a.payload.encode(),
                 local_ip_towards(a.to), sport)
    s.sendto(data, (a.to, a.port))
    print(json.dumps({"sent": len(data), "sport": sport}), flush=True)


def cmd_echo(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.port))
    s.settimeout(a.timeout)
    print(json.dumps({"listening": a.port}), flush=True)
    done = 0
    while done < a.count:
        try:
            data, (ip, port) = s.recvfrom(65535)
        except socket.timeout:
            print(json.dumps({"timeout": True}), flush=True)
            sys.exit(3)
        try:
            p = ndr_unpack(nbt.dgram_packet, data)
            body = p.data.body.body
            payload = bytes(body.data)[-body.data_count:] if body.data_count else b""
            src_name = p.data.source_name.name
        except Exception as e:  # not a mailslot datagram: report and ignore
            print(json.dumps({"ignored": str(e)}), flush=True)
            continue
        print(json.dumps({"from": ip, "port": port, "src": src_name,
                          "mailslot": body.mailslot_name, "data": payload.decode("latin-1")}),
              flush=True)
        reply = build(0x10, a.src, a.dst, 0, a.reply_mailslot, b"echo:" + payload,
                      local_ip_towards(ip), a.port, dgm_id=0x4343 + done)
        s.sendto(reply, (ip, port))
        done += 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("send")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--sport", type=int, default=138)
    p.add_argument("--type", choices=["group", "unique"], required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--dst-suffix", type=lambda v: int(v, 0), default=0)
    p.add_argument("--mailslot", required=True)
    p.add_argument("--payload", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--port", type=int, default=138)
    p.add_argument("--reply-mailslot", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    {"send": cmd_send, "echo": cmd_echo}[a.cmd](a)


if __name__ == "__main__":
    main()
