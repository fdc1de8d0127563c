"""Shared fixtures: an isolated mailslot directory per test, unique names, the Rust CLI, free
UDP ports, and child processes that are always reaped."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

# Network settings of the environment must not leak into the tests.
NET_VARS = [
    "MAILSLOT_PORT",
    "MAILSLOT_NETBIOS_NAME",
    "MAILSLOT_WORKGROUP",
    "MAILSLOT_BROADCAST",
    "MAILSLOT_BIND",
    "MAILSLOT_NAME_SERVICE_PORT",
    "MAILSLOT_NO_NAME_SERVICE",
]

REPO = Path(__file__).resolve().parents[2]


def skip_or_fail(reason: str) -> None:
    """A missing tool: SKIP, except under CI, where it is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing tool fails)")
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def make_private_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))  # mode 0700


@pytest.fixture
def msdir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated runtime directory (mode 0700) as $MAILSLOT_DIR, removed afterwards."""
    path = make_private_dir("ms-py-")
    monkeypatch.setenv("MAILSLOT_DIR", str(path))
    monkeypatch.setenv("MAILSLOT_NO_NETWORK", "1")  # CLI children stay off the LAN port
    for var in NET_VARS:
        monkeypatch.delenv(var, raising=False)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_dir() -> Path:
    """A second runtime directory (another "host" on the loopback), removed afterwards."""
    path = make_private_dir("ms-py-other-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A mailslot name of this test alone."""
    base = request.node.name.split("[")[0].removeprefix("test_")[:40]
    return f"py\\{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def cli() -> str:
    """The Rust `mailslot` binary (scripts/test-python.sh passes $MAILSLOT_CLI)."""
    path = os.environ.get("MAILSLOT_CLI", "")
    if not path or not os.access(path, os.X_OK):
        skip_or_fail(f"the mailslot CLI binary is not available (MAILSLOT_CLI={path!r})")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Children:
    """Child processes of a test, killed and reaped at its end whatever happened."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, args: list[str], **kwargs) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()


@pytest.fixture
def children() -> Children:
    kids = Children()
    yield kids
    kids.close()


def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    """Polls `predicate` until true; fails after `timeout` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_line(stream, needle: str, what: str, timeout: float = 20.0) -> str:
    """Reads a child's pipe until a line containing `needle`; fails after `timeout` seconds
    (a hang guard) or when the pipe closes first."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode(errors="replace")
            if needle in text:
                return text
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out waiting for {what} to print {needle!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"{what} ended before printing {needle!r}")
            pending += chunk


def wait_instance(cli: str, name: str, pid: int, env: dict[str, str] | None = None) -> None:
    """Waits until `mailslot status NAME` shows an instance of process `pid` (a listener
    started with --json says nothing when it is ready)."""

    def listed() -> bool:
        out = subprocess.run(
            [cli, "status", name, "--json"], capture_output=True, env=env, timeout=30
        )
        for line in out.stdout.decode().splitlines():
            entry = json.loads(line)
            if any(i.get("pid") == pid for i in entry.get("instances", [])):
                return True
        return False

    wait_for(listed, f"an instance of {name} in process {pid}")
