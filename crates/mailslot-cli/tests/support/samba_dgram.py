"""One mailslot write as a NetBIOS datagram, built by Samba's NDR (python3-samba).

Shared by wire_samba.py and lan_send.py; run them with /usr/bin/python3 (Debian's, which has
the Samba bindings).
"""
from samba.dcerpc import nbt
from samba.ndr import ndr_pack


def mailslot_datagram(msg_type, src, src_suffix, dst, dst_suffix, mailslot, payload,
                      pad=b"", dgm_id=0x4321, src_ip="10.99.0.9", src_port=138):
    """Samba style (DataOffset = 70 + len(name)) unless `pad` puts bytes before the data."""
    trans = nbt.smb_trans_body()
    trans.total_param_count = 0
    trans.total_data_count = len(payload)
    trans.max_param_count = trans.max_data_count = trans.max_setup_count = 0
    trans.trans_flags = trans.timeout = trans.param_count = trans.param_offset = 0
    trans.data_count = len(payload)
    trans.data_offset = 70 + len(mailslot) + len(pad)
    trans.opcode, trans.priority = 1, 1
    setattr(trans, "_class", 2)
    trans.mailslot_name = mailslot
    # NDR's data is "everything after the name": the padding goes in front of the payload.
    trans.data = pad + payload
    smb = nbt.dgram_smb_packet()
    smb.smb_command = nbt.SMB_TRANSACTION
    smb.err_class = smb.pad = smb.err_code = smb.flags = smb.flags2 = 0
    smb.pid_high = smb.reserved = smb.tid = smb.pid = smb.vuid = smb.mid = 0
    smb.signature = [0] * 8
    smb.body = trans
    msg = nbt.dgram_message()
    msg.length = 138 + len(mailslot) + len(pad) + len(payload)
    msg.offset = 0
    source = nbt.name()
    source.name, source.type = src, src_suffix
    dest = nbt.name()
    dest.name, dest.type = dst, dst_suffix
    msg.source_name, msg.dest_name = source, dest
    msg.dgram_body_type = nbt.DGRAM_SMB
    msg.body = smb
    pkt = nbt.dgram_packet()
    pkt.msg_type = msg_type
    pkt.flags = nbt.DGRAM_FLAG_FIRST
    pkt.dgram_id = dgm_id
    pkt.src_addr = src_ip
    pkt.src_port = src_port
    pkt.data = msg
    return ndr_pack(pkt)
