"""Shared mailslots for Linux, compatible with Windows and Samba on the LAN.

A mailslot is a named, one-way, message-oriented mailbox on a host: any process writes whole
messages to it (locally, to a named host, or as a broadcast to a workgroup), and its server
reads them whole, in order. Several processes may open one name with ``shared=True``: every
instance then receives every message (or exactly one does, with ``deliver="one"``).

>>> import mailslot
>>> with mailslot.Server("news", shared=True, timeout=5) as server:
...     mailslot.write("news", b"hello")
...     print(server.recv().data)
b'hello'

- :class:`Server`: ``recv()``, ``try_recv()``, ``recv_into(buffer)``, ``info()``, the
  ``timeout`` property, ``fileno()`` for selectors and asyncio, iteration, ``close()``.
- :func:`write` and :class:`Writer`: local names, and ``\\\\HOST\\mailslot\\NAME``,
  ``\\\\WORKGROUP\\mailslot\\NAME``, ``\\\\*\\mailslot\\NAME`` on the LAN.
- :func:`decode`: a NetBIOS datagram (or name-service packet) as a dict, the fields
  ``mailslot decode`` prints.
- Errors: :class:`Error` (an :class:`OSError`) and one subclass per kind, which is also the
  builtin that fits (``NotFoundError`` is a :class:`FileNotFoundError`, ...).

Names live in the user's runtime directory (``$MAILSLOT_DIR``, else
``$XDG_RUNTIME_DIR/mailslot``, else ``/dev/shm/mailslot-<uid>``) unless ``scope="global"`` or
``dir=...`` say otherwise. Network settings come from the environment, as for the C library:
``MAILSLOT_PORT``, ``MAILSLOT_NETBIOS_NAME``, ``MAILSLOT_WORKGROUP``, ``MAILSLOT_BROADCAST``,
``MAILSLOT_BIND``, ``MAILSLOT_NAME_SERVICE_PORT``, ``MAILSLOT_NO_NAME_SERVICE``.
"""

from . import _errors
from ._errors import *  # noqa: F403 (Error and one subclass per kind: _errors.__all__)
from ._mailslot import (
    DEFAULT_PORT,
    MAX_MESSAGE_SIZE,
    MAX_NAME_LEN,
    Info,
    Message,
    Server,
    Source,
    Writer,
    decode,
    write,
)

__all__ = [
    "Server",
    "Message",
    "Source",
    "Info",
    "Writer",
    "write",
    "decode",
    "MAX_MESSAGE_SIZE",
    "MAX_NAME_LEN",
    "DEFAULT_PORT",
    *_errors.__all__,
]
