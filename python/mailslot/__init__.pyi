"""Type stubs of the mailslot package (the runtime's docstrings say more)."""

import os
from pathlib import Path

from types import TracebackType
from typing import ClassVar, Final, Literal, final

from typing_extensions import Buffer

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
    "Error",
    "NotFoundError",
    "AlreadyExistsError",
    "TimedOutError",
    "PermissionDeniedError",
    "InsufficientBufferError",
    "MessageTooLargeError",
    "QueueFullError",
    "CorruptedError",
    "InvalidNameError",
    "InvalidOptionError",
    "NetworkUnavailableError",
    "ServiceUnavailableError",
    "HostNotFoundError",
]

MAX_MESSAGE_SIZE: Final[int]
"""The largest message a local mailslot takes (1 MiB)."""
MAX_NAME_LEN: Final[int]
"""The longest mailslot name, in bytes of UTF-8 (without ``\\\\.\\mailslot\\``)."""
DEFAULT_PORT: Final[int]
"""The UDP port of the NetBIOS datagram service (138)."""

@final
class Source:
    """Where a message came from: this host (``kind == "local"``) or the network."""

    @property
    def kind(self) -> Literal["local", "network"]: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def uid(self) -> int | None: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def netbios_name(self) -> str | None: ...
    @property
    def suffix(self) -> int | None: ...
    @property
    def destination(self) -> str | None: ...
    @property
    def destination_suffix(self) -> int | None: ...
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class Message:
    """One message, read whole."""

    @property
    def data(self) -> bytes: ...
    @property
    def source(self) -> Source: ...
    @property
    def lost(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def __len__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class Info:
    """What ``Server.info()`` reports (GetMailslotInfo)."""

    @property
    def max_message_size(self) -> int: ...
    @property
    def next_size(self) -> int | None: ...
    @property
    def count(self) -> int: ...
    @property
    def timeout(self) -> float | None: ...
    def __eq__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class Server:
    """A server (reader) of a mailslot: reads whole messages, oldest first."""

    def __new__(
        cls,
        name: str,
        shared: bool = False,
        deliver: Literal["all", "one"] = "all",
        max_message_size: int = 0,
        timeout: float | None = None,
        scope: Literal["user", "global"] = "user",
        *,
        dir: str | os.PathLike[str] | None = None,
        capacity: int | None = None,
        overflow: Literal["drop_oldest", "refuse", "block"] = "drop_oldest",
        mode: int | None = None,
        group: int | None = None,
        network: bool = False,
    ) -> Server: ...
    def recv(self) -> Message: ...
    def try_recv(self) -> Message | None: ...
    def recv_into(self, buffer: Buffer) -> int: ...
    def info(self) -> Info: ...
    @property
    def timeout(self) -> float | None: ...
    @timeout.setter
    def timeout(self, timeout: float | None) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def dir(self) -> Path: ...
    @property
    def closed(self) -> bool: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Server: ...
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...
    def __iter__(self) -> Server: ...
    def __next__(self) -> Message: ...

@final
class Writer:
    """An opened writer of a mailslot, for repeated writes."""

    def __new__(
        cls,
        target: str,
        *,
        scope: Literal["user", "global"] = "user",
        dir: str | os.PathLike[str] | None = None,
    ) -> Writer: ...
    def write(self, data: Buffer) -> None: ...
    def flush(self) -> None: ...
    @property
    def write_timeout(self) -> float | None: ...
    @write_timeout.setter
    def write_timeout(self, timeout: float | None) -> None: ...
    @property
    def target(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Writer: ...
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

def write(
    target: str,
    data: Buffer,
    *,
    scope: Literal["user", "global"] = "user",
    dir: str | os.PathLike[str] | None = None,
) -> None:
    """Writes one message to a local or remote mailslot."""

def decode(data: Buffer, port: int = 138) -> dict[str, object]:
    """Decodes one NetBIOS packet into the fields ``mailslot decode`` prints."""

class Error(OSError):
    """A failed mailslot operation."""

    kind: str
    mailslot: str
    def __init__(self, message: str, kind: str = "Io", mailslot: str = "") -> None: ...

class NotFoundError(Error, FileNotFoundError): ...
class AlreadyExistsError(Error, FileExistsError): ...
class TimedOutError(Error, TimeoutError): ...
class PermissionDeniedError(Error, PermissionError): ...

class InsufficientBufferError(Error):
    size: int | None

class MessageTooLargeError(Error): ...
class QueueFullError(Error): ...
class CorruptedError(Error): ...
class InvalidNameError(Error, ValueError): ...
class InvalidOptionError(Error, ValueError): ...
class NetworkUnavailableError(Error): ...
class ServiceUnavailableError(Error, ConnectionError): ...
class HostNotFoundError(Error): ...
