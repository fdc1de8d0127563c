"""The exceptions of mailslot: one class per kind of error of the Rust library.

Every one is a :class:`mailslot.Error`, itself an :class:`OSError`, and where a builtin fits
it is that too (``NotFoundError`` is a :class:`FileNotFoundError`, ``TimedOutError`` a
:class:`TimeoutError`, ``InvalidNameError`` a :class:`ValueError`, ...), so code that knows
nothing of mailslot still catches them. ``str(error)`` is one line naming the mailslot and the
cause; ``.kind`` is the Rust ``ErrorKind``'s name (``"NotFound"``, ``"TimedOut"``, ...).
"""

from __future__ import annotations

import errno as _errno

__all__ = [
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


class Error(OSError):
    """A failed mailslot operation.

    Attributes:
        kind: the kind of error, as the Rust library names it (``"Io"`` for other
            operating-system errors).
        mailslot: the mailslot name or target the operation was about ("" when none).
    """

    kind: str
    mailslot: str
    #: The errno that fits the kind, or None.
    _errno: int | None = None

    def __init__(self, message: str, kind: str = "Io", mailslot: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.mailslot = mailslot
        self.errno = self._errno

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):  # type: ignore[override]
        return (type(self), (str(self), self.kind, self.mailslot))


class NotFoundError(Error, FileNotFoundError):
    """No server has the name open (or the server a writer opened has closed)."""

    _errno = _errno.ENOENT


class AlreadyExistsError(Error, FileExistsError):
    """The name is open and cannot be joined (not shared, or shared with other settings)."""

    _errno = _errno.EEXIST


class TimedOutError(Error, TimeoutError):
    """No message arrived within the read timeout (at once with timeout 0), or a lock was
    not obtained in time."""

    _errno = _errno.ETIMEDOUT


class PermissionDeniedError(Error, PermissionError):
    """The caller may not open, read or write this mailslot (or its directory)."""

    _errno = _errno.EACCES


class InsufficientBufferError(Error):
    """The buffer given to ``recv_into`` is smaller than the next message, which stays
    queued.

    Attributes:
        size: the next message's size, so a buffer of that size reads it (None if it was
            taken meanwhile).
    """

    size: int | None = None


class MessageTooLargeError(Error):
    """The message is larger than the mailslot (or a datagram) takes; nothing was queued."""

    _errno = _errno.EMSGSIZE


class QueueFullError(Error):
    """The queue is full and the mailslot refuses new messages (``overflow="refuse"``)."""

    _errno = _errno.ENOBUFS


class CorruptedError(Error):
    """Damage to the name's shared file was found and skipped (messages may be lost); reading
    goes on."""


class InvalidNameError(Error, ValueError):
    """The name or target is malformed (empty, too long, ``/``, NUL, ``..``, ...)."""

    _errno = _errno.EINVAL


class InvalidOptionError(Error, ValueError):
    """An option outside what a mailslot can have, or a bad network setting."""

    _errno = _errno.EINVAL


class NetworkUnavailableError(Error):
    """The network cannot be used for this (no interface, the port cannot be bound, ...)."""


class ServiceUnavailableError(Error, ConnectionError):
    """The host service that owns the global scope is not running; the message says how to
    start it."""


class HostNotFoundError(Error):
    """A remote write's host answered no NetBIOS name query and is not in DNS or
    /etc/hosts."""


# Shown (and pickled) as the package's own: mailslot.NotFoundError, not mailslot._errors.
for _name in __all__:
    globals()[_name].__module__ = "mailslot"
del _name
