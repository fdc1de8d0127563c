"""Python and the Rust CLI on one name, both ways; and remote writes on the loopback, received
by a network role on a port of the test's own."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import mailslot
from conftest import free_udp_port, wait_for, wait_instance


def test_the_cli_reads_what_python_writes(msdir, name, cli, children):
    listen = children.spawn(
        [cli, "listen", name, "--shared", "--json", "--count", "3", "--timeout", "20000"]
    )
    wait_instance(cli, name, listen.pid)
    mailslot.write(name, "grüße".encode())
    with mailslot.Writer(name) as writer:
        writer.write(b"")
        writer.write(bytes(range(256)))
    out, err = listen.communicate(timeout=30)
    assert listen.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["len"] for line in lines] == [7, 0, 256]
    assert lines[0]["text"] == "grüße" and lines[0]["mailslot"] == name
    assert lines[1]["data_hex"] == ""
    assert lines[2]["data_hex"] == bytes(range(256)).hex()
    assert all(line["source"] == {"kind": "local", "pid": os.getpid(), "uid": os.getuid()}
               for line in lines)


def test_the_cli_times_out_when_python_writes_nothing(msdir, name, cli):
    out = subprocess.run(
        [cli, "listen", name, "--timeout", "300"], capture_output=True, timeout=30
    )
    assert out.returncode == 3
    # Its name is gone with it: Python finds no server.
    with pytest.raises(mailslot.NotFoundError):
        mailslot.write(name, b"late")


def test_python_reads_what_the_cli_sends(msdir, name, cli):
    with mailslot.Server(name, shared=True, timeout=20) as server:
        sent = subprocess.Popen([cli, "send", name, "hello from rust"])
        assert sent.wait(timeout=30) == 0
        message = server.recv()
        assert message.data == b"hello from rust"
        assert message.source.kind == "local" and message.source.pid == sent.pid
        # A second instance in the CLI gets what the CLI sends too: the name is shared.
        out = subprocess.run(
            [cli, "send", "\\\\.\\mailslot\\" + name.upper(), "--stdin"],
            input=b"\0binary\xff",
            capture_output=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert server.recv().data == b"\0binary\xff"


def test_a_cli_instance_and_a_python_instance_share_a_name(msdir, name, cli, children):
    with mailslot.Server(name, shared=True, timeout=20) as server:
        listen = children.spawn([cli, "listen", name, "--shared", "--json", "--count", "1"])
        wait_instance(cli, name, listen.pid)
        mailslot.write(name, b"to both")
        out, err = listen.communicate(timeout=30)
        assert listen.returncode == 0, err
        assert json.loads(out)["text"] == "to both"
        assert server.recv().data == b"to both"


@pytest.fixture
def lan(monkeypatch):
    """Network settings of a loopback "LAN" on ports of this test's own."""
    port = free_udp_port()
    settings = {
        "MAILSLOT_PORT": str(port),
        "MAILSLOT_NAME_SERVICE_PORT": str(free_udp_port()),
        "MAILSLOT_NO_NAME_SERVICE": "1",
        "MAILSLOT_WORKGROUP": "PYGROUP",
        "MAILSLOT_NETBIOS_NAME": "PYHOST",
        "MAILSLOT_BROADCAST": "127.255.255.255",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MAILSLOT_NO_NETWORK")
    return port


def wait_holding(directory, port: int) -> None:
    state = directory / f"network-{port}.state"
    wait_for(
        lambda: state.exists() and "holding" in state.read_text(),
        f"the network role on port {port}",
    )


def test_remote_writes_on_the_loopback(msdir, other_dir, name, lan):
    with mailslot.Server(name, network=True, timeout=20) as server:
        wait_holding(msdir, lan)
        # Written from another "host" (another runtime directory, so no role to hand it to).
        targets = [
            f"\\\\127.0.0.1\\mailslot\\{name}",
            f"\\\\*\\mailslot\\{name}",
            f"\\\\PYGROUP\\mailslot\\{name}",
        ]
        for i, target in enumerate(targets):
            mailslot.write(target, b"remote %d" % i, dir=other_dir)
        with mailslot.Writer(targets[0], dir=other_dir) as writer:
            writer.write(b"remote 3")
        got = {}
        for _ in range(4):
            message = server.recv()
            got[message.data] = message.source
        assert sorted(got) == [b"remote %d" % i for i in range(4)]
        source = got[b"remote 0"]
        assert source.kind == "network" and source.ip == "127.0.0.1"
        assert source.netbios_name == "PYHOST" and source.pid is None
        # Addressed to the host by its IP (the name "*"), to every host and to the workgroup
        # (both the workgroup's name).
        assert (source.destination, source.destination_suffix) == ("*", 0)
        assert got[b"remote 1"].destination == got[b"remote 2"].destination == "PYGROUP"
        assert "destination='*'" in repr(source)
        # Larger than a workgroup datagram carries: refused before anything is sent.
        with pytest.raises(mailslot.MessageTooLargeError) as caught:
            mailslot.write(targets[1], b"x" * 425, dir=other_dir)
        assert caught.value.kind == "MessageTooLarge" and name in str(caught.value)
        assert server.try_recv() is None


def test_bad_remote_targets_and_settings(msdir, name, lan, monkeypatch):
    with pytest.raises(ValueError):
        mailslot.write("\\\\::1\\mailslot\\" + name, b"ipv6")
    monkeypatch.setenv("MAILSLOT_PORT", "not-a-port")
    with pytest.raises(mailslot.InvalidOptionError, match="MAILSLOT_PORT"):
        mailslot.write("\\\\127.0.0.1\\mailslot\\" + name, b"x")
    with pytest.raises(mailslot.InvalidOptionError, match="MAILSLOT_PORT"):
        mailslot.Server(name, network=True)
    mailslot.Server(name).close()  # the refused open left no instance behind


def test_the_cli_and_python_across_the_loopback(msdir, other_dir, name, cli, lan, children):
    # Python holds the role and receives what `mailslot send --to 127.0.0.1` sends.
    with mailslot.Server(name, network=True, timeout=20) as server:
        wait_holding(msdir, lan)
        env = dict(os.environ, MAILSLOT_DIR=str(other_dir))
        out = subprocess.run(
            [cli, "--netbios-name", "RUSTHOST", "send", name, "over udp", "--to", "127.0.0.1"],
            env=env,
            capture_output=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        message = server.recv()
        assert message.data == b"over udp"
        assert (message.source.kind, message.source.netbios_name) == ("network", "RUSTHOST")
    # The CLI holds the role (in the other directory) and receives what Python sends.
    name2 = name + "-back"
    env = dict(os.environ, MAILSLOT_DIR=str(other_dir))
    listen = children.spawn(
        [cli, "listen", name2, "--json", "--count", "1", "--timeout", "20000"], env=env
    )
    wait_instance(cli, name2, listen.pid, env)
    wait_holding(other_dir, lan)
    mailslot.write(f"\\\\127.0.0.1\\mailslot\\{name2}", b"back over udp")
    out, err = listen.communicate(timeout=30)
    assert listen.returncode == 0, err
    line = json.loads(out)
    assert line["text"] == "back over udp"
    assert line["source"]["kind"] == "network" and line["source"]["netbios_name"] == "PYHOST"
