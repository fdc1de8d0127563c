import asyncio

import mailslot


async def main() -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[mailslot.Message] = asyncio.Queue()
    with mailslot.Server("jobs", timeout=0) as server:

        def readable() -> None:
            # The descriptor is edge-triggered: read until nothing waits.
            while (message := server.try_recv()) is not None:
                queue.put_nowait(message)

        loop.add_reader(server.fileno(), readable)
        # Another process would write; a thread does here.
        await asyncio.to_thread(mailslot.write, "jobs", b"job 1")
        message = await asyncio.wait_for(queue.get(), timeout=5)
        print("got", message.data)
        loop.remove_reader(server.fileno())


asyncio.run(main())
