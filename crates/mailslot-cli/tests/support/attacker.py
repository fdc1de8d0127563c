"""A hostile client of the mailslot host service, run as another user by tests/host_service.rs.

It speaks the service's packet protocol directly (SOCK_SEQPACKET, first byte = type; see
crates/mailslot/src/service/proto.rs) and prints one line per attempt: `NAME ok` when the
attempt succeeded, `NAME refused ERRNO-OR-REASON` when the system or service stopped it.
Usage: attacker.py SOCKET ATTACK NAME [ARG]
"""
import array
import ctypes
import errno
import mmap
import os
import socket
import struct
import sys
import time

OPEN_READER, OPEN_WRITER, ARM, FLUSH = 1, 2, 3, 6
RING_SIZE, RING_DATA, BELL_SIZE = 128 * 1024, 128, 4096
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
SYS_FUTEX = {"x86_64": 202, "aarch64": 98}[os.uname().machine]


class Refused(Exception):
    pass


class RingWriter:
    """A writer as the library is one: messages into the submission ring the service shares
    with this connection (see crates/mailslot/src/service/submit.rs), the service's thread
    woken through its doorbell (a futex word this side maps read-only)."""

    def __init__(self, path, name):
        self.s = connect(path)
        self.s.send(bytes([OPEN_WRITER]) + short(name))
        msg, fds = recv_with_fds(self.s)
        if msg[:1] != b"\x82" or len(fds) < 3:
            raise Refused(msg[:1].hex())
        self.fds = fds
        self.ring = mmap.mmap(fds[1], RING_DATA + RING_SIZE, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)
        self.bell = LIBC.mmap(None, BELL_SIZE, mmap.PROT_READ, mmap.MAP_SHARED, fds[2], 0)
        self.tail = 0

    def push(self, data):
        need = 8 + (len(data) + 7) // 8 * 8
        while True:
            head = struct.unpack_from("<Q", self.ring, 64)[0]
            off = self.tail % RING_SIZE
            pad = RING_SIZE - off if RING_SIZE - off < need else 0
            if self.tail - head + pad + need <= RING_SIZE:
                break
            self.wake()
            time.sleep(0.0005)
        if pad:
            struct.pack_into("<II", self.ring, RING_DATA + off, 0, 2)
        at = RING_DATA + (self.tail + pad) % RING_SIZE
        struct.pack_into("<II", self.ring, at, len(data), 1)
        self.ring[at + 8:at + 8 + len(data)] = data
        self.tail += pad + need
        struct.pack_into("<Q", self.ring, 0, self.tail)
        self.wake()

    def wake(self):
        # Always (Python gives no store-load fence for the doorbell's handshake).
        LIBC.syscall(SYS_FUTEX, ctypes.c_void_p(self.bell), 1, 1)  # FUTEX_WAKE one

    def note_packet(self):
        count = struct.unpack_from("<Q", self.ring, 16)[0]
        struct.pack_into("<Q", self.ring, 16, count + 1)

    def flush(self):
        self.note_packet()
        self.s.send(bytes([FLUSH]))
        self.wake()
        while True:
            answer = self.s.recv(4096)
            if not answer:
                raise OSError(errno.EPIPE, "the service went away")
            if answer[:1] == b"\x84":
                return answer


def ring_writer(path, name):
    """A RingWriter, or None (said on stdout) when the service refuses it."""
    try:
        return RingWriter(path, name)
    except Refused as e:
        print(f"open refused {e}", flush=True)
        return None


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    return s


def recv_with_fds(s):
    """One answer of the service and the descriptors that came with it."""
    fds = array.array("i")
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def short(text):
    raw = text.encode()
    return bytes([len(raw)]) + raw


def open_reader(path, name, mode=0o666):
    s = connect(path)
    s.send(struct.pack("<BBHIIQ", OPEN_READER, 1, mode, 0, 0, 0) + short(name))
    msg, fds = recv_with_fds(s)
    return s, msg, fds


def open_writer(path, name):
    s = connect(path)
    s.send(bytes([OPEN_WRITER]) + short(name))
    msg, _, _, _ = s.recvmsg(4096, socket.CMSG_LEN(16))
    return s, msg


def attempt(label, fn):
    try:
        fn()
        print(f"{label} ok", flush=True)
    except OSError as e:
        print(f"{label} refused {errno.errorcode.get(e.errno, e.errno)}", flush=True)


def ring(path, name):
    """Everything a reader could try on the read-only ring it was handed."""
    s, reply, fds = open_reader(path, name)
    if reply[:1] != b"\x81" or not fds:
        print(f"open refused {reply[:1].hex()}", flush=True)
        return
    print("open ok", flush=True)
    fd = fds[0]
    size = os.fstat(fd).st_size
    print(f"ring_size {size}", flush=True)
    attempt("mmap_write", lambda: mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    attempt("write", lambda: os.pwrite(fd, b"\xff" * 64, 0))
    attempt("truncate", lambda: os.ftruncate(fd, 4096))
    attempt("grow", lambda: os.ftruncate(fd, size * 2))
    attempt("reopen_rw", lambda: os.open(f"/proc/self/fd/{fd}", os.O_RDWR))
    attempt("fallocate", lambda: os.posix_fallocate(fd, 0, size * 2))
    F_ADD_SEALS = 1033
    F_SEAL_WRITE = 8
    import fcntl
    attempt("seal_write", lambda: fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE))
    attempt("fchmod", lambda: os.fchmod(fd, 0o666))
    # A private copy-on-write mapping is allowed and harms no one: prove it stays private.
    m = mmap.mmap(fd, size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:8] = b"\0" * 8
    print("private_scribble ok", flush=True)
    s.close()


def forge(path, name):
    """Claim to be root, then another process, on the packets; then one honest write."""
    w = ring_writer(path, name)
    if w is None:
        return
    print("open ok", flush=True)
    for label, creds in [("as_root", (os.getpid(), 0, 0)), ("as_pid1", (1, os.getuid(), os.getgid()))]:
        cmsg = [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", *creds))]
        attempt(label, lambda: w.s.sendmsg([bytes([FLUSH])], cmsg))
    w.push(b"honest from attacker")
    w.flush()
    print("honest ok", flush=True)


def garbage(path, name):
    """Malformed, truncated and oversized packets, then an arm flood on its own instance."""
    for i, packet in enumerate([b"", b"\x00", b"\x55" * 10, b"\x01", b"\x01\xff", b"\x02\xff",
                                bytes([OPEN_READER]) + b"\xff" * 30, b"\x04" * 200_000]):
        try:
            s = connect(path)
            s.send(packet)
            s.settimeout(2)
            try:
                s.recv(4096)
            except (socket.timeout, OSError):
                pass
            s.close()
            print(f"garbage{i} sent", flush=True)
        except OSError as e:
            print(f"garbage{i} refused {errno.errorcode.get(e.errno, e.errno)}", flush=True)
    s, reply, fds = open_reader(path, name)
    for _ in range(20000):
        s.send(struct.pack("<BQQQ", ARM, 0, 0, 0))
    s.send(b"\x63")  # unknown: the service ends this instance
    print("arm_flood ok", flush=True)


def scribble(path, name):
    """Open a writer, try to write the service's doorbell, then write garbage over its own
    submission ring and wake the service."""
    w = ring_writer(path, name)
    if w is None:
        return
    print("open ok", flush=True)
    attempt("shrink_own_ring", lambda: os.ftruncate(w.fds[1], 4096))
    attempt("map_doorbell_writable", lambda: mmap.mmap(w.fds[2], BELL_SIZE, mmap.MAP_SHARED,
                                                        mmap.PROT_READ | mmap.PROT_WRITE))
    attempt("write_doorbell", lambda: os.pwrite(w.fds[2], b"\0\0\0\0", 0))
    struct.pack_into("<II", w.ring, RING_DATA, 0x7FFFFFFF, 1)  # longer than anything
    struct.pack_into("<Q", w.ring, 0, 64)  # "64 bytes published"
    w.wake()
    try:
        w.s.settimeout(5)
        left = w.s.recv(4096)
        print("dropped" if left == b"" else f"answered {left[:1].hex()}", flush=True)
    except OSError as e:
        print(f"dropped {errno.errorcode.get(e.errno, e.errno)}", flush=True)


def flood(path, name, count):
    w = ring_writer(path, name)
    if w is None:
        return
    for _ in range(int(count)):
        w.push(b"x" * 1000)
    w.flush()
    print("flood ok", flush=True)


def stream(path, name, count):
    """A steady writer (not an attack): numbered messages, a flush every 50 with the number
    confirmed so far printed; stops at the first error (the service went away)."""
    w = ring_writer(path, name)
    if w is None:
        return
    print("open ok", flush=True)
    try:
        for i in range(int(count)):
            w.push(f"seq {i}".encode())
            if i % 50 == 49:
                w.flush()
                print(f"confirmed {i}", flush=True)
                time.sleep(0.005)
    except OSError as e:
        print(f"stopped {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return
    print("done", flush=True)


def connections(path, name, count):
    held = []
    refused = 0
    for _ in range(int(count)):
        try:
            s = connect(path)
            s.send(bytes([OPEN_WRITER]) + short(name))
            s.settimeout(5)
            reply = s.recv(4096)
            if reply[:1] == b"\x82":
                held.append(s)
            else:
                refused += 1
        except OSError:
            refused += 1
    print(f"held {len(held)} refused {refused}", flush=True)
    sys.stdin.readline()  # keep them until the test says so


if __name__ == "__main__":
    path, attack, name = sys.argv[1:4]
    extra = sys.argv[4:]
    {"ring": ring, "forge": forge, "garbage": garbage, "flood": flood,
     "connections": connections, "stream": stream, "scribble": scribble}[attack](path, name, *extra)
