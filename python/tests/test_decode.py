"""mailslot.decode against `mailslot decode` of the Rust CLI, on the wire crate's golden
vectors (crates/mailslot-wire/tests/)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

import mailslot
from conftest import REPO

WIRE_TESTS = REPO / "crates" / "mailslot-wire" / "tests"


def rust_vectors() -> dict[str, bytes]:
    """The `pub const NAME: &str = "hex";` vectors of tests/vectors/mod.rs."""
    source = (WIRE_TESTS / "vectors" / "mod.rs").read_text()
    found = re.findall(r'pub const (\w+): &str = "([0-9A-Fa-f\s]+)";', source)
    vectors = {name: bytes.fromhex("".join(text.split())) for name, text in found}
    assert {"P10_1", "P10_3", "R4_GROUP", "R4_UNIQUE"} <= vectors.keys(), vectors.keys()
    return vectors


def nbns_vectors() -> list[tuple[str, bytes]]:
    lines = (WIRE_TESTS / "fixtures" / "nbns.vectors").read_text().splitlines()
    out = []
    for line in lines:
        if line.strip() and not line.startswith("#"):
            kind, hex_text = line.split()
            out.append((kind, bytes.fromhex(hex_text)))
    assert len(out) >= 16
    return out


def cli_decode(cli: str, packet: bytes, *global_args: str) -> dict:
    out = subprocess.run(
        [cli, *global_args, "decode", packet.hex()],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_golden_10_1_has_the_fields_of_the_design():
    d = mailslot.decode(rust_vectors()["P10_1"])
    assert d["msg_type"] == 0x11 and d["dgm_id"] == 0x1234
    assert d["source_ip"] == "192.168.1.10" and d["source_port"] == 138
    assert d["source_name"] == {"name": "LINUXBOX", "suffix": 0}
    assert d["destination_name"] == {"name": "WORKGROUP", "suffix": 0}
    assert d["mailslot"] == "\\MAILSLOT\\TEST"
    assert (d["data_hex"], d["data_text"]) == ("48656c6c6f", "Hello")
    assert d["smb_style"] == "windows" and d["dgm_length_ok"] is True


@pytest.mark.parametrize("vector", ["P10_1", "P10_3", "R4_GROUP", "R4_UNIQUE"])
def test_datagrams_decode_as_the_cli_decodes_them(cli, vector):
    packet = rust_vectors()[vector]
    assert mailslot.decode(packet) == cli_decode(cli, packet, "--port", "138")
    # Any bytes-like object.
    assert mailslot.decode(bytearray(packet)) == mailslot.decode(memoryview(packet))


def test_browser_frames_are_decoded():
    d = mailslot.decode(rust_vectors()["P10_3"])
    assert d["mailslot"] == "\\MAILSLOT\\BROWSE"
    assert d["browser"]["command"] == "HostAnnouncement"
    assert d["browser"]["server_name"] == "SAMBAPEER"


def test_name_service_packets_decode_as_the_cli_decodes_them(cli):
    for kind, packet in nbns_vectors():
        mine = mailslot.decode(packet, port=137)
        assert mine == cli_decode(cli, packet, "--port", "137"), kind
        assert mine["nbns"] == kind


def test_malformed_packets_raise_value_error():
    with pytest.raises(ValueError, match="malformed datagram"):
        mailslot.decode(b"")
    with pytest.raises(ValueError, match="malformed datagram"):
        mailslot.decode(rust_vectors()["P10_1"][:-40])
    with pytest.raises(ValueError, match="malformed name-service packet"):
        mailslot.decode(b"\x12\x34", port=137)
    with pytest.raises(TypeError):
        mailslot.decode("1102")
