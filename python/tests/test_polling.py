"""fileno() with selectors and asyncio: readable when messages wait, armed again once drained."""

from __future__ import annotations

import asyncio
import selectors
import threading
import time

import mailslot


def test_selectors_wake_on_a_write_and_not_before(msdir, name):
    with mailslot.Server(name, timeout=0) as server, selectors.DefaultSelector() as sel:
        sel.register(server.fileno(), selectors.EVENT_READ)
        assert sel.select(timeout=0.2) == []  # nothing waits
        writer = threading.Timer(0.2, mailslot.write, (name, b"wake up"))
        writer.start()
        try:
            events = sel.select(timeout=10)
        finally:
            writer.join()
        assert len(events) == 1
        assert server.try_recv().data == b"wake up"
        assert server.try_recv() is None  # drained: armed again
        assert sel.select(timeout=0.2) == []
        # Messages that arrived while nobody polled make it readable at once.
        mailslot.write(name, b"a")
        mailslot.write(name, b"b")
        assert len(sel.select(timeout=10)) == 1
        drained = []
        while (message := server.try_recv()) is not None:
            drained.append(message.data)
        assert drained == [b"a", b"b"]
        assert sel.select(timeout=0.2) == []


def test_asyncio_add_reader_receives_from_another_thread(msdir, name):
    count = 50

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        with mailslot.Server(name, timeout=0) as server:

            def readable() -> None:
                while (message := server.try_recv()) is not None:
                    queue.put_nowait(message.data)

            loop.add_reader(server.fileno(), readable)
            try:

                def produce() -> None:
                    for i in range(count):
                        mailslot.write(name, b"m%d" % i)
                        if i % 10 == 0:
                            time.sleep(0.02)

                producer = threading.Thread(target=produce)
                producer.start()
                got = [await asyncio.wait_for(queue.get(), 20) for _ in range(count)]
                producer.join()
            finally:
                loop.remove_reader(server.fileno())
        return got

    assert asyncio.run(main()) == [b"m%d" % i for i in range(count)]
