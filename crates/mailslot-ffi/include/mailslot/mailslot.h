/*
 * <mailslot/mailslot.h>: the C API of mailslot, Windows-style mailslots for Linux (local,
 * shared between processes, and on the LAN in the Windows wire format).
 *
 * Generated from crates/mailslot-ffi/src by cbindgen: do not edit.
 *
 * - Every function that can fail returns an ms_error: MS_OK (0) or a failure code; the
 *   failure's message (naming the mailslot and the cause) is ms_last_error() on the same
 *   thread. No function aborts or unwinds into C on a library bug: it returns
 *   MS_ERR_INTERNAL.
 * - Threads: opening, ms_write_to, ms_strerror and ms_last_error may be called from any
 *   thread at any time. A handle (ms_server, ms_writer) may be used from any thread, but by
 *   one thread at a time: guard it with a mutex to share it. Each function says which.
 * - Memory: ms_recv allocates the message it returns (free it with ms_message_free);
 *   ms_recv_into copies into the caller's buffer. Handles are freed by ms_close and
 *   ms_writer_close.
 * - Link with `pkg-config --cflags --libs mailslot` (libmailslot.so), or
 *   `pkg-config --static --libs mailslot` with libmailslot.a.
 * - <mailslot/win32.h> offers the Win32 mailslot functions on top of this API.
 */

#ifndef MAILSLOT_H
#define MAILSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * `read_timeout_ms` (and `ms_set_read_timeout`): wait until a message arrives.
 */
#define MS_WAIT_FOREVER 4294967295

/**
 * `ms_slot_info.next_size` when no message is queued.
 */
#define MS_NO_MESSAGE 18446744073709551615ull

/**
 * The largest message a local mailslot takes (1 MiB).
 */
#define MS_MAX_MESSAGE_SIZE (1 << 20)

/**
 * The longest mailslot name, in bytes (without `\\.\mailslot\`).
 */
#define MS_MAX_NAME_LEN 80

/**
 * `delivery`: every instance of a shared name receives every message (the default).
 */
#define MS_DELIVERY_ALL 0

/**
 * `delivery`: each message goes to exactly one live instance.
 */
#define MS_DELIVERY_ONE 1

/**
 * `overflow`: a reader that lags past the capacity loses the oldest messages (the default).
 */
#define MS_OVERFLOW_DROP_OLDEST 0

/**
 * `overflow`: writes fail with `MS_ERR_QUEUE_FULL` instead.
 */
#define MS_OVERFLOW_REFUSE 1

/**
 * `overflow`: writers wait for room (user scope only).
 */
#define MS_OVERFLOW_BLOCK 2

/**
 * `scope`: the user's own runtime directory (`$MAILSLOT_DIR`, else
 * `$XDG_RUNTIME_DIR/mailslot`, else `/dev/shm/mailslot-<uid>`), or `dir` when set.
 */
#define MS_SCOPE_USER 0

/**
 * `scope`: names shared between users through the host service (`mailslot serve --system`).
 */
#define MS_SCOPE_GLOBAL 1

/**
 * `ms_source.kind`: a process of this host.
 */
#define MS_SOURCE_LOCAL 1

/**
 * `ms_source.kind`: a datagram from the network.
 */
#define MS_SOURCE_NETWORK 2

/**
 * What a call of the C API returned. `MS_OK` (0) is success; every other value is a failure
 * whose message, naming the mailslot and the cause, `ms_last_error()` returns on the same
 * thread. New codes may be added: treat an unknown one as a failure.
 */
typedef enum ms_error {
    /**
     * Success.
     */
    MS_OK = 0,
    /**
     * The name or path is malformed (empty, longer than 80 bytes, `/`, control characters,
     * `..`, not `NAME`, `\\.\mailslot\NAME`, `\\HOST\mailslot\NAME` or `\\*\mailslot\NAME`).
     */
    MS_ERR_INVALID_NAME = 1,
    /**
     * A server of this name exists and cannot be joined (it is not shared, or shared with
     * another delivery).
     */
    MS_ERR_ALREADY_EXISTS = 2,
    /**
     * No server has this name open (or the writer's server has closed).
     */
    MS_ERR_NOT_FOUND = 3,
    /**
     * The caller may not open, read or write this mailslot.
     */
    MS_ERR_PERMISSION_DENIED = 4,
    /**
     * The message is larger than the mailslot or the network accepts; nothing was queued or
     * sent.
     */
    MS_ERR_MESSAGE_TOO_LARGE = 5,
    /**
     * The buffer is smaller than the next message, which stays queued.
     */
    MS_ERR_INSUFFICIENT_BUFFER = 6,
    /**
     * No message arrived within the read timeout (at once with a timeout of 0).
     */
    MS_ERR_TIMED_OUT = 7,
    /**
     * The queue is full and the mailslot refuses new messages (`MS_OVERFLOW_REFUSE`).
     */
    MS_ERR_QUEUE_FULL = 8,
    /**
     * The network cannot be used (no broadcast address, no route, ...).
     */
    MS_ERR_NETWORK_UNAVAILABLE = 9,
    /**
     * Shared state of the mailslot was found damaged and was skipped.
     */
    MS_ERR_CORRUPTED = 10,
    /**
     * An option outside what a mailslot can have.
     */
    MS_ERR_INVALID_OPTION = 11,
    /**
     * The host service (global scope) is not running.
     */
    MS_ERR_SERVICE_UNAVAILABLE = 12,
    /**
     * Any other operating-system error.
     */
    MS_ERR_IO = 13,
    /**
     * A NULL pointer where one is not allowed, or a string that is not UTF-8.
     */
    MS_ERR_INVALID_ARGUMENT = 14,
    /**
     * A remote host name resolved neither by NetBIOS nor by DNS.
     */
    MS_ERR_HOST_NOT_FOUND = 15,
    /**
     * The operation does not apply to this handle (a read of a remote writer, ...).
     */
    MS_ERR_UNSUPPORTED = 16,
    /**
     * A bug in the library (a Rust panic, caught before it reached C).
     */
    MS_ERR_INTERNAL = 17,
} ms_error;

/**
 * A server instance of a mailslot (opaque to C).
 */
typedef struct ms_server ms_server;

/**
 * A writer of a local or remote mailslot (opaque to C).
 */
typedef struct ms_writer ms_writer;

/**
 * Options of `ms_server_open`. All zero (`ms_server_options opts = {0};`, or a NULL
 * pointer) is Windows' `CreateMailslot(name, 0, 0, NULL)`: a private mailslot of the user
 * scope, messages up to 1 MiB, reads that return at once when nothing is queued.
 */
typedef struct ms_server_options {
    /**
     * Largest message accepted, in bytes (0: `MS_MAX_MESSAGE_SIZE`); larger writes fail with
     * `MS_ERR_MESSAGE_TOO_LARGE` and queue nothing.
     */
    uint32_t max_message_size;
    /**
     * How long reads wait, in milliseconds: 0 returns at once, `MS_WAIT_FOREVER` waits until a
     * message arrives.
     */
    uint32_t read_timeout_ms;
    /**
     * Non-zero: several processes may open the name; each instance gets every message (or
     * one instance does, with `MS_DELIVERY_ONE`). Zero: a second open fails with
     * `MS_ERR_ALREADY_EXISTS`, as on Windows.
     */
    int32_t shared;
    /**
     * `MS_DELIVERY_ALL` or `MS_DELIVERY_ONE` (fixed by the name's first instance).
     */
    uint32_t delivery;
    /**
     * `MS_OVERFLOW_DROP_OLDEST`, `MS_OVERFLOW_REFUSE` or `MS_OVERFLOW_BLOCK` (fixed by the
     * first instance).
     */
    uint32_t overflow;
    /**
     * Bytes of queued records a reader may lag behind (0: 1 MiB; fixed by the first instance).
     */
    size_t capacity;
    /**
     * `MS_SCOPE_USER` or `MS_SCOPE_GLOBAL`.
     */
    uint32_t scope;
    /**
     * With `MS_SCOPE_USER`: a runtime directory of its own instead of the user's (NULL: the
     * user's). Created with mode 0700 if missing.
     */
    const char *dir;
    /**
     * Permission bits of a name this open creates (0: 0600 in the user scope, 0660 in the
     * global scope).
     */
    uint32_t mode;
    /**
     * Non-zero: `group` is the group of a name this open creates (global scope).
     */
    int32_t has_group;
    /**
     * See `has_group`.
     */
    uint32_t group;
    /**
     * Non-zero: this process takes part in the network role of the server's directory (user
     * scope), as `mailslot listen` does: if no other process holds it, this one binds the
     * UDP port and delivers the LAN's mailslot writes to this host's mailslots until the
     * server closes. Settings come from the environment (`MAILSLOT_PORT`, ...; see the
     * README). Zero: local messages only (`mailslot serve` can hold the role instead).
     */
    int32_t network;
} ms_server_options;

/**
 * Where a message came from.
 */
typedef struct ms_source {
    /**
     * `MS_SOURCE_LOCAL` or `MS_SOURCE_NETWORK`.
     */
    uint32_t kind;
    /**
     * Local: the writer's process id, as the kernel reported it.
     */
    uint32_t pid;
    /**
     * Local: the writer's user id.
     */
    uint32_t uid;
    /**
     * Network: the sender's IPv4 address, in network order (`ip[0]` first).
     */
    uint8_t ip[4];
    /**
     * Network: the sender's UDP port.
     */
    uint16_t port;
    /**
     * Network: the suffix byte of the sender's NetBIOS name.
     */
    uint8_t suffix;
    /**
     * Network: the sender's NetBIOS name, without padding, NUL-terminated (untrusted bytes).
     */
    char netbios_name[16];
} ms_source;

/**
 * A message read by `ms_recv`; free it with `ms_message_free`.
 */
typedef struct ms_message {
    /**
     * The message's `len` bytes, followed by a NUL that is not part of it (so text can be
     * printed as it is); never NULL, even for a zero-length message.
     */
    uint8_t *data;
    /**
     * Its length in bytes (0 for a zero-length message).
     */
    size_t len;
    /**
     * Who wrote it.
     */
    struct ms_source source;
    /**
     * Messages this reader lost (it lagged past the capacity) just before this one.
     */
    uint64_t lost;
} ms_message;

/**
 * What `ms_recv_into` stored.
 */
typedef struct ms_received {
    /**
     * The message's length. After `MS_ERR_INSUFFICIENT_BUFFER`: the size of the message that
     * did not fit (it stays queued), so a buffer of that size reads it; 0 after other errors.
     */
    size_t len;
    /**
     * Who wrote it.
     */
    struct ms_source source;
    /**
     * Messages this reader lost (it lagged past the capacity) just before this one.
     */
    uint64_t lost;
} ms_received;

/**
 * What `ms_info` reports (Windows' `GetMailslotInfo`); nothing is consumed.
 */
typedef struct ms_slot_info {
    /**
     * The maximum message size the name was opened with (0: `MS_MAX_MESSAGE_SIZE`).
     */
    uint64_t max_message_size;
    /**
     * Size of the next message (0 for a zero-length one), `MS_NO_MESSAGE` when none waits.
     */
    uint64_t next_size;
    /**
     * Number of queued messages, zero-length ones included.
     */
    uint64_t count;
    /**
     * The read timeout in milliseconds (`MS_WAIT_FOREVER`: forever).
     */
    uint32_t read_timeout_ms;
} ms_slot_info;

/**
 * Options of `ms_writer_open`. All zero (or a NULL pointer): the user scope.
 */
typedef struct ms_writer_options {
    /**
     * `MS_SCOPE_USER` or `MS_SCOPE_GLOBAL`.
     */
    uint32_t scope;
    /**
     * With `MS_SCOPE_USER`: the runtime directory (NULL: the user's).
     */
    const char *dir;
} ms_writer_options;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Opens a server instance of the mailslot `name` (`NAME` or `\\.\mailslot\NAME`; names are
 * case-insensitive, up to 80 bytes, and may have backslash "directories"). `options` may be
 * NULL: all zero, Windows' `CreateMailslot(name, 0, 0, NULL)` (see `ms_server_options`).
 * On success stores the handle in `*server`; close it with `ms_close`. Closing the last
 * instance (or the death of its process) deletes the name and its unread messages.
 *
 * Errors: `MS_ERR_INVALID_NAME`; `MS_ERR_ALREADY_EXISTS` when the name is open and not
 * joinable; `MS_ERR_PERMISSION_DENIED`; `MS_ERR_INVALID_OPTION`; `MS_ERR_IO`.
 *
 * Thread-safe: any thread may open servers at any time.
 *
 * # Safety
 * `name` is a NUL-terminated string; `options` is NULL or points to an `ms_server_options`
 * whose `dir` is NULL or a NUL-terminated string; `server` points to writable storage.
 */
enum ms_error ms_server_open(const char *name,
                             const struct ms_server_options *options,
                             struct ms_server **server);

/**
 * Reads the next message whole, waiting as the read timeout says, into a new `ms_message`
 * stored in `*message` (free it with `ms_message_free`).
 *
 * Errors: `MS_ERR_TIMED_OUT` when none arrived in time (at once with a timeout of 0);
 * `MS_ERR_CORRUPTED` when damage written by another process was skipped.
 *
 * Not thread-safe per server: one thread at a time may use a given server (any thread, one
 * after another); different servers are independent.
 *
 * # Safety
 * `server` is a live handle from `ms_server_open` no other thread uses meanwhile; `message`
 * points to writable storage.
 */
enum ms_error ms_recv(struct ms_server *server, struct ms_message **message);

/**
 * Frees a message from `ms_recv` (NULL: nothing).
 *
 * Thread-safe: a message may be freed on any thread, once.
 *
 * # Safety
 * `message` is NULL or a message from `ms_recv` not freed yet.
 */
void ms_message_free(struct ms_message *message);

/**
 * Reads the next message whole into `buf` (`len` bytes), waiting as the read timeout says;
 * `received` (may be NULL) gets its length, source and loss count.
 *
 * Errors: `MS_ERR_INSUFFICIENT_BUFFER` when the next message is longer than `len`: it stays
 * queued and `received->len` says its size; `MS_ERR_TIMED_OUT`; `MS_ERR_CORRUPTED`.
 *
 * Not thread-safe per server (see `ms_recv`).
 *
 * # Safety
 * `server` as for `ms_recv`; `buf` is NULL with `len` 0, or points to `len` writable bytes;
 * `received` is NULL or writable.
 */
enum ms_error ms_recv_into(struct ms_server *server,
                           void *buf,
                           size_t len,
                           struct ms_received *received);

/**
 * Windows' `GetMailslotInfo`: the maximum message size, the next message's size
 * (`MS_NO_MESSAGE` when none), the number of queued messages and the read timeout, into
 * `*info`. Consumes nothing.
 *
 * Not thread-safe per server (see `ms_recv`).
 *
 * # Safety
 * `server` as for `ms_recv`; `info` is writable.
 */
enum ms_error ms_info(struct ms_server *server, struct ms_slot_info *info);

/**
 * Windows' `SetMailslotInfo`: the read timeout of later reads of this instance, in
 * milliseconds (0: return at once; `MS_WAIT_FOREVER`: wait until a message arrives).
 *
 * Not thread-safe per server (see `ms_recv`).
 *
 * # Safety
 * `server` as for `ms_recv`.
 */
enum ms_error ms_set_read_timeout(struct ms_server *server, uint32_t timeout_ms);

/**
 * A descriptor for `poll`/`epoll`/`select` that turns readable when a message may be
 * waiting (-1 with a NULL server). Like edge-triggered epoll: once it polls readable, read
 * with a timeout of 0 until `MS_ERR_TIMED_OUT`; only then is it re-armed. It belongs to the
 * server: do not close it or read from it.
 *
 * Not thread-safe per server (see `ms_recv`).
 *
 * # Safety
 * `server` is NULL or as for `ms_recv`.
 */
int ms_server_fd(struct ms_server *server);

/**
 * Closes a server instance (NULL: nothing). Closing the last instance deletes the name and
 * its unread messages; writers of it then fail with `MS_ERR_NOT_FOUND`.
 *
 * Not thread-safe per server: no other thread may use it meanwhile or after.
 *
 * # Safety
 * `server` is NULL or a live handle from `ms_server_open`, not used again.
 */
void ms_close(struct ms_server *server);

/**
 * Opens a writer of `path`: a local mailslot (`NAME`, `\\.\mailslot\NAME`), which must have
 * a server (`MS_ERR_NOT_FOUND` otherwise, as Windows' `ERROR_FILE_NOT_FOUND`), or a remote
 * one (`\\HOST\mailslot\NAME`: a NetBIOS name, DNS name or IPv4 address;
 * `\\WORKGROUP\mailslot\NAME`; `\\*\mailslot\NAME`: every host of our workgroup), which is
 * checked only for its form, as on Windows. `options` may be NULL (the user scope). Close it
 * with `ms_writer_close`. A local writer dies with the server it opened: after that server
 * closes, writes fail with `MS_ERR_NOT_FOUND`, even if a new server took the name.
 *
 * Remote writes use the network settings of the environment (`MAILSLOT_PORT`,
 * `MAILSLOT_WORKGROUP`, `MAILSLOT_BROADCAST`, ...; see the README).
 *
 * Thread-safe: any thread may open writers at any time.
 *
 * # Safety
 * `path` is a NUL-terminated string; `options` is NULL or points to an `ms_writer_options`
 * whose `dir` is NULL or NUL-terminated; `writer` points to writable storage.
 */
enum ms_error ms_writer_open(const char *path,
                             const struct ms_writer_options *options,
                             struct ms_writer **writer);

/**
 * Writes one message of `len` bytes (0 is a message too). Local: appended before the call
 * returns, never waiting for a reader (except with `MS_OVERFLOW_BLOCK`). Remote: success
 * means the datagram left this host; at most 424 bytes to a workgroup or `*`, and about as
 * much to one host (the limit depends on the name's length).
 *
 * Errors: `MS_ERR_NOT_FOUND` when the server closed; `MS_ERR_MESSAGE_TOO_LARGE` (nothing
 * queued or sent); `MS_ERR_QUEUE_FULL`; `MS_ERR_TIMED_OUT`; `MS_ERR_HOST_NOT_FOUND`;
 * `MS_ERR_NETWORK_UNAVAILABLE`.
 *
 * Not thread-safe per writer: one thread at a time may use a given writer.
 *
 * # Safety
 * `writer` is a live handle from `ms_writer_open` no other thread uses meanwhile; `data` is
 * NULL with `len` 0 or points to `len` readable bytes.
 */
enum ms_error ms_write(struct ms_writer *writer, const void *data, size_t len);

/**
 * How long a write waits for room in a name that blocks when full (`MS_OVERFLOW_BLOCK`), in
 * milliseconds (`MS_WAIT_FOREVER`, the default: as long as it takes); then
 * `MS_ERR_TIMED_OUT`. No effect on other writers.
 *
 * Not thread-safe per writer (see `ms_write`).
 *
 * # Safety
 * As for `ms_write`.
 */
enum ms_error ms_set_write_timeout(struct ms_writer *writer, uint32_t timeout_ms);

/**
 * Returns once everything written is in the mailslot (global scope: confirmed by the host
 * service, with its last error since the last flush); at once for other writers.
 *
 * Not thread-safe per writer (see `ms_write`).
 *
 * # Safety
 * As for `ms_write`.
 */
enum ms_error ms_writer_flush(struct ms_writer *writer);

/**
 * Closes a writer (NULL: nothing). The server and its queued messages are not affected.
 *
 * Not thread-safe per writer: no other thread may use it meanwhile or after.
 *
 * # Safety
 * `writer` is NULL or a live handle from `ms_writer_open`, not used again.
 */
void ms_writer_close(struct ms_writer *writer);

/**
 * One write to `path` (local in the user scope, or remote: see `ms_writer_open`), without
 * keeping a writer. A local name written to again is cheap (a few writers are kept).
 *
 * Errors: as for `ms_writer_open` and `ms_write`.
 *
 * Thread-safe.
 *
 * # Safety
 * `path` is a NUL-terminated string; `data` is NULL with `len` 0 or points to `len`
 * readable bytes.
 */
enum ms_error ms_write_to(const char *path, const void *data, size_t len);

/**
 * The fixed English text of an error code (a static string; "unknown error" for a value
 * that is no `ms_error`).
 *
 * Thread-safe.
 */
const char *ms_strerror(int error);

/**
 * The message of the last call on this thread that failed: what failed, on which mailslot,
 * and why (an empty string before any failure). Valid until this thread's next failing
 * call; copy it to keep it.
 *
 * Thread-safe: each thread has its own.
 */
const char *ms_last_error(void);

/**
 * `GetLastError()` of `<mailslot/win32.h>`: this thread's last Win32 error code (one per
 * thread for the whole program). Not for other use.
 *
 * Thread-safe: each thread has its own.
 */
uint32_t ms_win32_get_last_error(void);

/**
 * `SetLastError()` of `<mailslot/win32.h>`.
 *
 * Thread-safe: each thread has its own.
 */
void ms_win32_set_last_error(uint32_t code);

/**
 * `Sleep()` of `<mailslot/win32.h>`: sleeps `ms` milliseconds (`nanosleep` is hidden from
 * programs built with a strict `-std=c99`, and the Win32 header must build there too).
 *
 * Thread-safe.
 */
void ms_win32_sleep(uint32_t ms);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* MAILSLOT_H */
