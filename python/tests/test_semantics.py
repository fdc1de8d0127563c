"""The Windows semantics through Python: timeouts, info, buffers, zero-length messages,
errors, sharing, iteration, writers."""

from __future__ import annotations

import array
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

import mailslot


def test_timeout_zero_returns_at_once(msdir, name):
    with mailslot.Server(name, timeout=0) as server:
        started = time.monotonic()
        with pytest.raises(mailslot.TimedOutError) as caught:
            server.recv()
        assert time.monotonic() - started < 0.5
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.kind == "TimedOut"
        assert name in str(caught.value)
        assert server.try_recv() is None


def test_timeout_n_waits_that_long(msdir, name):
    with mailslot.Server(name, timeout=0.35) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            server.recv()
        waited = time.monotonic() - started
        assert 0.35 <= waited < 3.0, waited
        # recv_into waits the same way.
        started = time.monotonic()
        with pytest.raises(mailslot.TimedOutError):
            server.recv_into(bytearray(16))
        assert 0.35 <= time.monotonic() - started < 3.0


def test_timeout_forever_gets_a_later_write(msdir, name):
    with mailslot.Server(name) as server:
        assert server.timeout is None
        writer = threading.Timer(0.4, mailslot.write, (name, b"later"))
        started = time.monotonic()
        writer.start()
        try:
            message = server.recv()
        finally:
            writer.join()
        assert message.data == b"later"
        assert time.monotonic() - started >= 0.35


def test_the_gil_is_released_while_a_read_blocks(msdir, name):
    with mailslot.Server(name, timeout=0.6) as server:
        ticks = 0
        stop = threading.Event()

        def count() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.001)

        counter = threading.Thread(target=count)
        counter.start()
        try:
            with pytest.raises(mailslot.TimedOutError):
                server.recv()
        finally:
            stop.set()
            counter.join()
        assert ticks > 50, ticks


def test_setting_the_timeout(msdir, name):
    with mailslot.Server(name, timeout=2.5) as server:
        assert server.timeout == 2.5
        assert server.info().timeout == 2.5
        server.timeout = 0
        assert server.timeout == 0.0
        started = time.monotonic()
        with pytest.raises(mailslot.TimedOutError):
            server.recv()
        assert time.monotonic() - started < 0.5
        server.timeout = None
        assert server.info().timeout is None
        for bad in (-1, float("nan"), "soon"):
            with pytest.raises((ValueError, TypeError)):
                server.timeout = bad
        assert server.timeout is None


def test_info_reports_size_count_and_limit(msdir, name):
    with mailslot.Server(name, max_message_size=64, timeout=0) as server:
        info = server.info()
        assert (info.max_message_size, info.next_size, info.count) == (64, None, 0)
        mailslot.write(name, b"12345")
        mailslot.write(name, b"")
        mailslot.write(name, b"x" * 64)
        info = server.info()
        assert (info.next_size, info.count) == (5, 3)
        assert "count=3" in repr(info)
        with pytest.raises(mailslot.MessageTooLargeError) as caught:
            mailslot.write(name, b"x" * 65)
        assert caught.value.kind == "MessageTooLarge"
        assert server.info().count == 3  # nothing queued
        assert server.recv().data == b"12345"
        assert (server.info().next_size, server.info().count) == (0, 2)


def test_zero_length_messages_are_messages(msdir, name):
    with mailslot.Server(name, timeout=1) as server:
        mailslot.write(name, b"")
        mailslot.write(name, bytearray())
        assert server.info().count == 2
        message = server.recv()
        assert message.data == b"" and len(message) == 0 and bytes(message) == b""
        assert server.recv_into(bytearray()) == 0
        assert server.try_recv() is None


def test_too_small_a_buffer_keeps_the_message(msdir, name):
    with mailslot.Server(name, timeout=1) as server:
        mailslot.write(name, b"0123456789")
        small = bytearray(b"untouched")
        with pytest.raises(mailslot.InsufficientBufferError) as caught:
            server.recv_into(small)
        err = caught.value
        assert err.kind == "InsufficientBuffer" and err.size == 10
        assert name in str(err) and "10 bytes" in str(err)
        assert small == b"untouched"
        assert server.info().count == 1  # still queued
        big = bytearray(32)
        assert server.recv_into(big) == 10
        assert big[:10] == b"0123456789" and big[10:] == bytes(22)


def test_recv_into_takes_any_writable_buffer(msdir, name):
    with mailslot.Server(name, timeout=1) as server:
        mailslot.write(name, b"abcdefgh")
        words = array.array("I", [0, 0, 0])  # 12 bytes, item size 4
        assert server.recv_into(words) == 8
        assert words.tobytes()[:8] == b"abcdefgh"
        mailslot.write(name, memoryview(b"xyz"))
        target = bytearray(8)
        assert server.recv_into(memoryview(target)[2:]) == 3
        assert target == b"\0\0xyz\0\0\0"
        with pytest.raises(TypeError):
            server.recv_into(b"read-only bytes")
        with pytest.raises(TypeError):
            server.recv_into("text")
        with pytest.raises(BufferError):
            server.recv_into(memoryview(bytearray(8))[::2])
        assert server.try_recv() is None  # the refused calls consumed nothing


def test_a_message_carries_its_source(msdir, name):
    with mailslot.Server(name, timeout=1) as server:
        mailslot.write(name, b"hi")
        message = server.recv()
        assert message.lost == 0
        source = message.source
        assert (source.kind, source.pid, source.uid) == ("local", os.getpid(), os.getuid())
        assert (source.ip, source.port, source.netbios_name, source.suffix) == (None,) * 4
        assert (source.destination, source.destination_suffix) == (None, None)
        assert "kind='local'" in repr(source)
        assert message == message and message != b"hi"


def test_a_duplicate_create_is_file_exists(msdir, name):
    with mailslot.Server(name):
        with pytest.raises(FileExistsError) as caught:
            mailslot.Server(name)
        err = caught.value
        assert isinstance(err, mailslot.AlreadyExistsError)
        assert isinstance(err, mailslot.Error) and isinstance(err, OSError)
        assert err.kind == "AlreadyExists" and err.mailslot == name
        assert name in str(err) and "\n" not in str(err)
        # Names are case-insensitive, and the prefix form is the same name.
        with pytest.raises(mailslot.AlreadyExistsError):
            mailslot.Server("\\\\.\\mailslot\\" + name.upper())


def test_a_write_without_a_reader_is_file_not_found(msdir, name):
    with pytest.raises(FileNotFoundError) as caught:
        mailslot.write(name, b"anyone?")
    err = caught.value
    assert isinstance(err, mailslot.NotFoundError)
    assert err.kind == "NotFound" and name in str(err)
    assert err.errno == 2
    with pytest.raises(mailslot.NotFoundError):
        mailslot.Writer(name)


def test_errors_pickle_with_their_kind(msdir, name):
    with pytest.raises(mailslot.NotFoundError) as caught:
        mailslot.write(name, b"x")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is mailslot.NotFoundError
    assert (str(copy), copy.kind, copy.mailslot) == (
        str(caught.value),
        "NotFound",
        name,
    )
    assert repr(type(copy)) == "<class 'mailslot.NotFoundError'>"


def test_bad_arguments_are_value_and_type_errors(msdir, name):
    for bad in ["", "a/b", "x" * 81, "a\\..\\b", "nul\0"]:
        with pytest.raises(ValueError) as caught:
            mailslot.Server(bad)
        assert isinstance(caught.value, mailslot.InvalidNameError), bad
        assert caught.value.kind == "InvalidName"
    with pytest.raises(ValueError, match="deliver"):
        mailslot.Server(name, deliver="some")
    with pytest.raises(ValueError, match="overflow"):
        mailslot.Server(name, overflow="spill")
    with pytest.raises(ValueError, match="scope"):
        mailslot.Server(name, scope="planet")
    with pytest.raises(ValueError, match="timeout"):
        mailslot.Server(name, timeout=-0.5)
    with pytest.raises(ValueError):
        mailslot.Server(name, scope="global", dir=str(msdir))
    with pytest.raises(mailslot.InvalidOptionError):
        mailslot.Server(name, capacity=1 << 40)
    with pytest.raises(TypeError):
        mailslot.Server(name, shared="yes")
    with mailslot.Server(name):
        with pytest.raises(TypeError, match="bytes-like"):
            mailslot.write(name, "text is not bytes")
        with pytest.raises(TypeError):
            mailslot.write(name, 42)
    # None of these left an instance behind: the name opens again.
    mailslot.Server(name).close()


def test_shared_names_give_every_instance_every_message(msdir, name):
    with mailslot.Server(name, shared=True, timeout=1) as a, mailslot.Server(
        name, shared=True, timeout=1
    ) as b:
        for text in (b"one", b"two", b""):
            mailslot.write(name, text)
        assert [a.recv().data for _ in range(3)] == [b"one", b"two", b""]
        assert [b.recv().data for _ in range(3)] == [b"one", b"two", b""]
        # A non-shared open of a shared name, or one with another delivery, is refused.
        with pytest.raises(mailslot.AlreadyExistsError):
            mailslot.Server(name)
        with pytest.raises(mailslot.AlreadyExistsError):
            mailslot.Server(name, shared=True, deliver="one")


def test_deliver_one_gives_each_message_to_one_instance(msdir, name):
    with mailslot.Server(name, shared=True, deliver="one", timeout=0) as a, mailslot.Server(
        name, shared=True, deliver="one", timeout=0
    ) as b:
        for i in range(10):
            mailslot.write(name, str(i).encode())
        got = []
        for server in (a, b, a, b):
            while (message := server.try_recv()) is not None:
                got.append(message.data)
        assert sorted(got, key=int) == [str(i).encode() for i in range(10)]


def test_a_shared_name_across_processes(msdir, name):
    """A second instance in another Python process gets the same messages."""
    script = (
        "import mailslot, sys\n"
        f"s = mailslot.Server({name!r}, shared=True, timeout=20)\n"
        "print('ready', flush=True)\n"
        "print(s.recv().data.decode(), s.recv().data.decode(), flush=True)\n"
    )
    with mailslot.Server(name, shared=True, timeout=20) as mine:
        child = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout.readline().strip() == "ready"
            mailslot.write(name, b"first")
            with mailslot.Writer(name) as writer:
                writer.write(b"second")
            out, _ = child.communicate(timeout=30)
        finally:
            child.kill()
            child.wait()
        assert child.returncode == 0
        assert out.split() == ["first", "second"]
        assert [mine.recv().data for _ in range(2)] == [b"first", b"second"]


def test_iteration_ends_at_the_timeout(msdir, name):
    with mailslot.Server(name, timeout=0.2) as server:
        for text in (b"a", b"b", b"c"):
            mailslot.write(name, text)
        assert [m.data for m in server] == [b"a", b"b", b"c"]
        assert list(server) == []


def test_close_from_another_thread_ends_a_blocked_read(msdir, name):
    server = mailslot.Server(name)  # waits forever
    seen: list[object] = []

    def read_all() -> None:
        seen.extend(m.data for m in server)
        try:
            server.recv()
        except ValueError as e:
            seen.append(str(e))

    reader = threading.Thread(target=read_all)
    reader.start()
    mailslot.write(name, b"before close")
    time.sleep(0.3)
    started = time.monotonic()
    server.close()
    reader.join(10)
    assert not reader.is_alive()
    assert time.monotonic() - started < 2
    assert seen[0] == b"before close"
    assert "closed" in seen[1] and name in seen[1]
    assert server.closed
    server.close()  # twice: nothing
    for call in (server.recv, server.info, server.fileno, server.try_recv):
        with pytest.raises(ValueError, match="closed"):
            call()
    # Closing the last instance deleted the name.
    with pytest.raises(mailslot.NotFoundError):
        mailslot.write(name, b"after")


def test_ctrl_c_interrupts_a_blocked_read(msdir, name):
    script = (
        "import mailslot, time\n"
        f"s = mailslot.Server({name!r})\n"
        "print('ready', flush=True)\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    s.recv()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted after', time.monotonic() - started, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        child.send_signal(2)  # SIGINT, as Ctrl-C
        out, _ = child.communicate(timeout=10)
    finally:
        child.kill()
        child.wait()
    assert out.startswith("interrupted after"), out
    assert child.returncode == 0


def test_a_writer_lives_as_long_as_its_server(msdir, name):
    server = mailslot.Server(name, timeout=1)
    with mailslot.Writer("\\\\.\\mailslot\\" + name) as writer:
        assert writer.target.endswith(name) and not writer.closed
        for i in range(100):
            writer.write(b"%d" % i)
        writer.flush()
        assert server.info().count == 100
        assert [server.recv().data for _ in range(100)] == [b"%d" % i for i in range(100)]
        server.close()
        with mailslot.Server(name):  # a new server of the name: not this writer's
            with pytest.raises(mailslot.NotFoundError):
                writer.write(b"late")
    assert writer.closed
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def test_a_full_name_refuses_or_blocks(msdir, name):
    with mailslot.Server(
        name, shared=True, capacity=4096, max_message_size=1024, overflow="refuse", timeout=0
    ) as server:
        with pytest.raises(mailslot.QueueFullError):
            for _ in range(100):
                mailslot.write(name, b"x" * 1000)
        assert server.info().count > 0
    blocking = name + "-b"
    with mailslot.Server(
        blocking, capacity=4096, max_message_size=1024, overflow="block", timeout=0
    ) as server:
        with mailslot.Writer(blocking) as writer:
            writer.write_timeout = 0.2
            assert writer.write_timeout == 0.2
            started = time.monotonic()
            with pytest.raises(mailslot.TimedOutError):
                for _ in range(100):
                    writer.write(b"y" * 1000)
            assert time.monotonic() - started >= 0.2
        assert server.info().count > 0


def test_an_explicit_directory_scope(msdir, other_dir, name):
    with mailslot.Server(name, dir=other_dir, timeout=1) as server:
        assert str(server.dir) == str(other_dir)
        with pytest.raises(mailslot.NotFoundError):
            mailslot.write(name, b"wrong directory")  # $MAILSLOT_DIR
        mailslot.write(name, b"right directory", dir=other_dir)
        with mailslot.Writer(name, dir=str(other_dir)) as writer:
            writer.write(b"again")
        assert [server.recv().data for _ in range(2)] == [b"right directory", b"again"]
