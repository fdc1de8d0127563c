import mailslot

# A reader. With shared=True several processes may open the name: each gets every message.
with mailslot.Server("news", shared=True, timeout=5.0) as server:
    # Writers: any process of the user (names are case-insensitive).
    mailslot.write("NEWS", b"hello")
    with mailslot.Writer("news") as writer:  # for repeated writes
        for i in range(3):
            writer.write(f"update {i}".encode())

    print(server.info().count, "messages wait")  # GetMailslotInfo: nothing is consumed
    message = server.recv()  # the whole message, oldest first; waits up to 5 s
    print(message.data, "from pid", message.source.pid, "lost before it:", message.lost)
    server.timeout = 0  # SetMailslotInfo: from now on, never wait
    for message in server:  # ends when no message waits
        print(message.data.decode())

try:
    mailslot.write("news", b"anyone?")
except FileNotFoundError as e:  # mailslot.NotFoundError: the last instance closed
    print(e.kind, "-", e)
