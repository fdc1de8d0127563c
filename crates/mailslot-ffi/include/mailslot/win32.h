/*
 * <mailslot/win32.h>: the Win32 mailslot functions on Linux, on top of <mailslot/mailslot.h>.
 *
 * A program written for Windows' mailslots builds here by including <mailslot/win32.h>
 * instead of <windows.h> and linking with `pkg-config --cflags --libs mailslot`:
 *
 *   CreateMailslotA/W, GetMailslotInfo, SetMailslotInfo, CreateFileA/W (\\.\mailslot\NAME,
 *   \\HOST\mailslot\NAME, \\DOMAIN\mailslot\NAME, \\*\mailslot\NAME), ReadFile, WriteFile,
 *   CloseHandle, GetLastError, SetLastError, Sleep, lstrlenA/W, TEXT(), and the types and
 *   constants they use (HANDLE, DWORD, BOOL, LPCSTR, INVALID_HANDLE_VALUE,
 *   MAILSLOT_WAIT_FOREVER, MAILSLOT_NO_MESSAGE, ERROR_*...).
 *
 * Design: every function is `static inline` here, over the C API; nothing of Win32 is
 * exported from libmailslot (no symbol named ReadFile or CloseHandle can clash with another
 * library). The one piece of state, the last error, lives in the library
 * (ms_win32_get_last_error), so that it is one per thread for the whole program, as on
 * Windows, and not one per file that includes this header.
 *
 * Behaviour is Windows' where it is observable:
 * - CreateMailslot takes only \\.\mailslot\NAME (anything else: ERROR_INVALID_NAME 123; NULL:
 *   ERROR_PATH_NOT_FOUND 3); a second CreateMailslot of a name fails with
 *   ERROR_ALREADY_EXISTS 183; closing the last handle deletes the mailslot and its messages.
 * - CreateFile of a local name nobody serves fails with ERROR_FILE_NOT_FOUND 2; remote and
 *   broadcast names open without a check (failures show at WriteFile). A writer dies with the
 *   server it opened: later writes fail with ERROR_FILE_NOT_FOUND.
 * - ReadFile returns one whole message; with nothing queued it fails with ERROR_SEM_TIMEOUT
 *   121 after the read timeout (at once for 0; never for MAILSLOT_WAIT_FOREVER); a buffer
 *   smaller than the next message fails with ERROR_INSUFFICIENT_BUFFER 122 and the message
 *   stays queued; zero-length messages read as TRUE with 0 bytes.
 * - GetMailslotInfo: the maximum size as created, MAILSLOT_NO_MESSAGE or the next size (0 for
 *   a zero-length message), the count (zero-length messages included), the read timeout;
 *   every out-pointer may be NULL.
 * - WriteFile on a mailslot handle: ERROR_ACCESS_DENIED 5; ReadFile on a client handle:
 *   ERROR_INVALID_PARAMETER 87; an invalid handle: ERROR_INVALID_HANDLE 6.
 * - A remote write of more than 424 bytes to a workgroup or `*` fails with
 *   ERROR_BAD_NETPATH 53 (and a host that cannot be resolved too).
 *
 * Where Linux differs (documented choices):
 * - Messages are at most 1 MiB (a larger nMaxMessageSize, or 0, means 1 MiB; the value given
 *   is still what GetMailslotInfo reports). An oversized local write fails with
 *   ERROR_INVALID_PARAMETER 87 and queues nothing (Windows' code for it is not known).
 * - Names are those of <mailslot/mailslot.h>: up to 80 bytes, no '/', '..' or control
 *   characters (ERROR_INVALID_NAME otherwise).
 * - The mailslot namespace is the user's runtime directory ($MAILSLOT_DIR, else
 *   $XDG_RUNTIME_DIR/mailslot, else /dev/shm/mailslot-<uid>), not the whole machine.
 * - No overlapped I/O: ReadFile/WriteFile with an OVERLAPPED fail with ERROR_NOT_SUPPORTED 50
 *   (use GetMailslotFd with poll instead). GetMailslotInfo and SetMailslotInfo on a client
 *   handle fail (87 and 5). Security attributes are ignored (names are private to the user).
 * - The LAN: a mailslot receives network messages while some process holds the network role
 *   (`mailslot serve`, or CreateMailslotEx with MAILSLOT_FLAG_NETWORK); remote writes use the
 *   settings of the environment (MAILSLOT_PORT, MAILSLOT_WORKGROUP, MAILSLOT_BROADCAST...).
 * - WCHAR is wchar_t (UTF-32 here); the W functions convert names to UTF-8.
 *
 * Extension, shared names (Windows allows one reader per name; Linux need not):
 *   HANDLE CreateMailslotExA(LPCSTR name, DWORD nMaxMessageSize, DWORD lReadTimeout,
 *                            LPSECURITY_ATTRIBUTES sa, DWORD dwFlags);
 * with dwFlags a combination of
 *   MAILSLOT_FLAG_SHARED       several processes may create the name; every handle receives
 *                              every message, all in the same order;
 *   MAILSLOT_FLAG_DELIVER_ONE  (with SHARED) each message goes to exactly one handle;
 *   MAILSLOT_FLAG_NETWORK      this process takes part in the network role (receives the
 *                              LAN's mailslot writes for this host's mailslots).
 * CreateMailslotExA(name, max, timeout, sa, 0) is CreateMailslotA. GetMailslotFd(h) returns a
 * descriptor for poll/epoll that turns readable when a message may wait.
 *
 * Threads: as on Windows, any thread may call these functions, but a handle must not be used
 * by two threads at once (the C API's handles are not locked); GetLastError is per thread.
 */
#ifndef MAILSLOT_WIN32_H
#define MAILSLOT_WIN32_H

#if defined(_WIN32)
#include <windows.h>
#else

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <mailslot/mailslot.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Types -------------------------------------------------------------------------------- */

#define WINAPI
#define CONST const
typedef int BOOL;
typedef unsigned char BYTE;
typedef uint16_t WORD;
/* 32 bits, as on Windows (where it is an `unsigned long` of 32 bits): print it with %u. */
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef uintptr_t ULONG_PTR;
typedef void *HANDLE;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef BOOL *LPBOOL;
typedef DWORD *LPDWORD, *PDWORD;
typedef LONG *LPLONG;
typedef char CHAR;
typedef CHAR *LPSTR;
typedef const CHAR *LPCSTR;
typedef wchar_t WCHAR;
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;

#ifdef UNICODE
typedef WCHAR TCHAR;
#define TEXT(s) L##s
#else
typedef CHAR TCHAR;
#define TEXT(s) s
#endif
typedef TCHAR *LPTSTR;
typedef const TCHAR *LPCTSTR;

typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    DWORD Offset;
    DWORD OffsetHigh;
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

/* Constants ---------------------------------------------------------------------------- */

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)
#define MAILSLOT_WAIT_FOREVER ((DWORD)0xFFFFFFFF)
#define MAILSLOT_NO_MESSAGE ((DWORD)0xFFFFFFFF)

#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define FILE_SHARE_READ 0x00000001u
#define FILE_SHARE_WRITE 0x00000002u
#define FILE_SHARE_DELETE 0x00000004u
#define CREATE_NEW 1
#define CREATE_ALWAYS 2
#define OPEN_EXISTING 3
#define OPEN_ALWAYS 4
#define TRUNCATE_EXISTING 5
#define FILE_ATTRIBUTE_NORMAL 0x00000080u
#define FILE_FLAG_OVERLAPPED 0x40000000u

#define ERROR_SUCCESS 0u
#define ERROR_FILE_NOT_FOUND 2u
#define ERROR_PATH_NOT_FOUND 3u
#define ERROR_ACCESS_DENIED 5u
#define ERROR_INVALID_HANDLE 6u
#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_GEN_FAILURE 31u
#define ERROR_NOT_SUPPORTED 50u
#define ERROR_BAD_NETPATH 53u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_SEM_TIMEOUT 121u
#define ERROR_INSUFFICIENT_BUFFER 122u
#define ERROR_INVALID_NAME 123u
#define ERROR_ALREADY_EXISTS 183u
#define ERROR_SERVICE_NOT_ACTIVE 1062u
#define ERROR_NETWORK_UNREACHABLE 1231u
#define ERROR_INTERNAL_ERROR 1359u
#define ERROR_FILE_CORRUPT 1392u
#define ERROR_NOT_ENOUGH_QUOTA 1816u

/* The extension (see the top of this file). */
#define MAILSLOT_FLAG_SHARED 0x1u
#define MAILSLOT_FLAG_DELIVER_ONE 0x2u
#define MAILSLOT_FLAG_NETWORK 0x4u

/* Handles ------------------------------------------------------------------------------ */

/* What a HANDLE points to: a mailslot (server) or a client (writer). Private to this header. */
struct ms_win32_handle {
    uint32_t magic;
    /* A client of \\HOST\, \\DOMAIN\ or \\*\: too-large writes fail with ERROR_BAD_NETPATH. */
    int remote;
    ms_server *server;
    ms_writer *writer;
    /* nMaxMessageSize as created: GetMailslotInfo reports it back unchanged. */
    DWORD max_message_size;
};

#define MS_WIN32_MAGIC 0x4d534c54u /* "MSLT" */

static inline struct ms_win32_handle *ms_win32_handle_of(HANDLE h) {
    struct ms_win32_handle *handle = (struct ms_win32_handle *)h;
    if (h == NULL || h == INVALID_HANDLE_VALUE || handle->magic != MS_WIN32_MAGIC) {
        return NULL;
    }
    return handle;
}

static inline DWORD GetLastError(void) { return ms_win32_get_last_error(); }

static inline void SetLastError(DWORD code) { ms_win32_set_last_error(code); }

static inline void Sleep(DWORD milliseconds) { ms_win32_sleep(milliseconds); }

/* The Win32 code for a failure of the C API. */
static inline DWORD ms_win32_error_of(enum ms_error error, int remote) {
    switch (error) {
    case MS_OK: return ERROR_SUCCESS;
    case MS_ERR_INVALID_NAME: return ERROR_INVALID_NAME;
    case MS_ERR_ALREADY_EXISTS: return ERROR_ALREADY_EXISTS;
    case MS_ERR_NOT_FOUND: return ERROR_FILE_NOT_FOUND;
    case MS_ERR_PERMISSION_DENIED: return ERROR_ACCESS_DENIED;
    case MS_ERR_MESSAGE_TOO_LARGE: return remote ? ERROR_BAD_NETPATH : ERROR_INVALID_PARAMETER;
    case MS_ERR_INSUFFICIENT_BUFFER: return ERROR_INSUFFICIENT_BUFFER;
    case MS_ERR_TIMED_OUT: return ERROR_SEM_TIMEOUT;
    case MS_ERR_QUEUE_FULL: return ERROR_NOT_ENOUGH_QUOTA;
    case MS_ERR_NETWORK_UNAVAILABLE: return ERROR_NETWORK_UNREACHABLE;
    case MS_ERR_CORRUPTED: return ERROR_FILE_CORRUPT;
    case MS_ERR_INVALID_OPTION: return ERROR_INVALID_PARAMETER;
    case MS_ERR_SERVICE_UNAVAILABLE: return ERROR_SERVICE_NOT_ACTIVE;
    case MS_ERR_IO: return ERROR_GEN_FAILURE;
    case MS_ERR_INVALID_ARGUMENT: return ERROR_INVALID_PARAMETER;
    case MS_ERR_HOST_NOT_FOUND: return ERROR_BAD_NETPATH;
    case MS_ERR_UNSUPPORTED: return ERROR_NOT_SUPPORTED;
    case MS_ERR_INTERNAL: return ERROR_INTERNAL_ERROR;
    }
    return ERROR_GEN_FAILURE;
}

static inline BOOL ms_win32_fail(DWORD code) {
    SetLastError(code);
    return FALSE;
}

/* Whether `s` starts with `prefix`, ignoring ASCII case. */
static inline int ms_win32_starts_with(const char *s, const char *prefix) {
    for (; *prefix != '\0'; s++, prefix++) {
        char a = *s, b = *prefix;
        if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
        if (a != b) return 0;
    }
    return 1;
}

/* A wide string as UTF-8, malloc'ed (NULL if it is not Unicode or memory runs out). */
static inline char *ms_win32_utf8_of(LPCWSTR wide) {
    size_t n = wcslen(wide), i, o = 0;
    char *out = (char *)malloc(n * 4 + 1);
    if (out == NULL) return NULL;
    for (i = 0; i < n; i++) {
        uint32_t c = (uint32_t)wide[i];
        /* A UTF-16 pair, where wchar_t is 16 bits (-fshort-wchar). */
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && (uint32_t)wide[i + 1] >= 0xDC00 &&
            (uint32_t)wide[i + 1] <= 0xDFFF) {
            c = 0x10000 + ((c - 0xD800) << 10) + ((uint32_t)wide[i + 1] - 0xDC00);
            i++;
        }
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
            free(out);
            return NULL;
        }
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xE0 | (c >> 12));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (c >> 18));
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = '\0';
    return out;
}

/* Mailslots (servers) ------------------------------------------------------------------ */

/* CreateMailslotA with the extension's flags (see the top of this file). */
static inline HANDLE CreateMailslotExA(LPCSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                                       LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                       DWORD dwFlags) {
    ms_server_options options;
    struct ms_win32_handle *handle;
    enum ms_error error;
    (void)lpSecurityAttributes;
    if (lpName == NULL) {
        ms_win32_fail(ERROR_PATH_NOT_FOUND);
        return INVALID_HANDLE_VALUE;
    }
    /* Only \\.\mailslot\NAME creates a mailslot, as on Windows. */
    if (!ms_win32_starts_with(lpName, "\\\\.\\mailslot\\")) {
        ms_win32_fail(ERROR_INVALID_NAME);
        return INVALID_HANDLE_VALUE;
    }
    if (dwFlags & ~(MAILSLOT_FLAG_SHARED | MAILSLOT_FLAG_DELIVER_ONE | MAILSLOT_FLAG_NETWORK)) {
        ms_win32_fail(ERROR_INVALID_PARAMETER);
        return INVALID_HANDLE_VALUE;
    }
    memset(&options, 0, sizeof options);
    options.max_message_size =
        nMaxMessageSize > (DWORD)MS_MAX_MESSAGE_SIZE ? 0 : nMaxMessageSize;
    options.read_timeout_ms = lReadTimeout;
    options.shared = (dwFlags & (MAILSLOT_FLAG_SHARED | MAILSLOT_FLAG_DELIVER_ONE)) != 0;
    options.delivery = (dwFlags & MAILSLOT_FLAG_DELIVER_ONE) ? MS_DELIVERY_ONE : MS_DELIVERY_ALL;
    options.network = (dwFlags & MAILSLOT_FLAG_NETWORK) != 0;
    handle = (struct ms_win32_handle *)calloc(1, sizeof *handle);
    if (handle == NULL) {
        ms_win32_fail(ERROR_NOT_ENOUGH_MEMORY);
        return INVALID_HANDLE_VALUE;
    }
    error = ms_server_open(lpName, &options, &handle->server);
    if (error != MS_OK) {
        free(handle);
        ms_win32_fail(ms_win32_error_of(error, 0));
        return INVALID_HANDLE_VALUE;
    }
    handle->magic = MS_WIN32_MAGIC;
    handle->max_message_size = nMaxMessageSize;
    SetLastError(ERROR_SUCCESS);
    return handle;
}

static inline HANDLE CreateMailslotA(LPCSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                                     LPSECURITY_ATTRIBUTES lpSecurityAttributes) {
    return CreateMailslotExA(lpName, nMaxMessageSize, lReadTimeout, lpSecurityAttributes, 0);
}

static inline HANDLE CreateMailslotExW(LPCWSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                                       LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                       DWORD dwFlags) {
    char *name;
    HANDLE handle;
    if (lpName == NULL) {
        ms_win32_fail(ERROR_PATH_NOT_FOUND);
        return INVALID_HANDLE_VALUE;
    }
    name = ms_win32_utf8_of(lpName);
    if (name == NULL) {
        ms_win32_fail(ERROR_INVALID_NAME);
        return INVALID_HANDLE_VALUE;
    }
    handle = CreateMailslotExA(name, nMaxMessageSize, lReadTimeout, lpSecurityAttributes, dwFlags);
    free(name);
    return handle;
}

static inline HANDLE CreateMailslotW(LPCWSTR lpName, DWORD nMaxMessageSize, DWORD lReadTimeout,
                                     LPSECURITY_ATTRIBUTES lpSecurityAttributes) {
    return CreateMailslotExW(lpName, nMaxMessageSize, lReadTimeout, lpSecurityAttributes, 0);
}

static inline BOOL GetMailslotInfo(HANDLE hMailslot, LPDWORD lpMaxMessageSize,
                                   LPDWORD lpNextSize, LPDWORD lpMessageCount,
                                   LPDWORD lpReadTimeout) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hMailslot);
    ms_slot_info info;
    enum ms_error error;
    if (handle == NULL) return ms_win32_fail(ERROR_INVALID_HANDLE);
    if (handle->server == NULL) return ms_win32_fail(ERROR_INVALID_PARAMETER);
    error = ms_info(handle->server, &info);
    if (error != MS_OK) return ms_win32_fail(ms_win32_error_of(error, 0));
    if (lpMaxMessageSize != NULL) *lpMaxMessageSize = handle->max_message_size;
    if (lpNextSize != NULL) {
        *lpNextSize = info.next_size == MS_NO_MESSAGE ? MAILSLOT_NO_MESSAGE
                      : info.next_size >= MAILSLOT_NO_MESSAGE ? MAILSLOT_NO_MESSAGE - 1
                                                              : (DWORD)info.next_size;
    }
    if (lpMessageCount != NULL) {
        *lpMessageCount = info.count > 0xFFFFFFFFu ? 0xFFFFFFFFu : (DWORD)info.count;
    }
    if (lpReadTimeout != NULL) *lpReadTimeout = info.read_timeout_ms;
    SetLastError(ERROR_SUCCESS);
    return TRUE;
}

static inline BOOL SetMailslotInfo(HANDLE hMailslot, DWORD lReadTimeout) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hMailslot);
    enum ms_error error;
    if (handle == NULL) return ms_win32_fail(ERROR_INVALID_HANDLE);
    if (handle->server == NULL) return ms_win32_fail(ERROR_ACCESS_DENIED);
    error = ms_set_read_timeout(handle->server, lReadTimeout);
    if (error != MS_OK) return ms_win32_fail(ms_win32_error_of(error, 0));
    SetLastError(ERROR_SUCCESS);
    return TRUE;
}

/* Extension: a descriptor of a mailslot handle for poll/epoll (-1 for other handles); see
 * ms_server_fd. */
static inline int GetMailslotFd(HANDLE hMailslot) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hMailslot);
    if (handle == NULL || handle->server == NULL) {
        SetLastError(ERROR_INVALID_HANDLE);
        return -1;
    }
    return ms_server_fd(handle->server);
}

/* Clients (writers) -------------------------------------------------------------------- */

/* Opens a client of \\.\mailslot\NAME (which must exist), \\HOST\mailslot\NAME,
 * \\DOMAIN\mailslot\NAME or \\*\mailslot\NAME. Other paths (files) are not supported:
 * ERROR_INVALID_NAME. The access, share mode, disposition and flags are not checked. */
static inline HANDLE CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
                                 LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                 DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
                                 HANDLE hTemplateFile) {
    struct ms_win32_handle *handle;
    const char *rest;
    enum ms_error error;
    (void)dwDesiredAccess;
    (void)dwShareMode;
    (void)lpSecurityAttributes;
    (void)dwCreationDisposition;
    (void)dwFlagsAndAttributes;
    (void)hTemplateFile;
    if (lpFileName == NULL) {
        ms_win32_fail(ERROR_PATH_NOT_FOUND);
        return INVALID_HANDLE_VALUE;
    }
    /* \\X\mailslot\NAME: X is `.` (this host) or a host, a domain or `*`. */
    rest = lpFileName + 2;
    if (!ms_win32_starts_with(lpFileName, "\\\\") || *rest == '\0' || *rest == '\\' ||
        strchr(rest, '\\') == NULL ||
        !ms_win32_starts_with(strchr(rest, '\\'), "\\mailslot\\")) {
        ms_win32_fail(ERROR_INVALID_NAME);
        return INVALID_HANDLE_VALUE;
    }
    handle = (struct ms_win32_handle *)calloc(1, sizeof *handle);
    if (handle == NULL) {
        ms_win32_fail(ERROR_NOT_ENOUGH_MEMORY);
        return INVALID_HANDLE_VALUE;
    }
    handle->remote = !ms_win32_starts_with(lpFileName, "\\\\.\\");
    error = ms_writer_open(lpFileName, NULL, &handle->writer);
    if (error != MS_OK) {
        free(handle);
        ms_win32_fail(ms_win32_error_of(error, 0));
        return INVALID_HANDLE_VALUE;
    }
    handle->magic = MS_WIN32_MAGIC;
    SetLastError(ERROR_SUCCESS);
    return handle;
}

static inline HANDLE CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
                                 LPSECURITY_ATTRIBUTES lpSecurityAttributes,
                                 DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes,
                                 HANDLE hTemplateFile) {
    char *name;
    HANDLE handle;
    if (lpFileName == NULL) {
        ms_win32_fail(ERROR_PATH_NOT_FOUND);
        return INVALID_HANDLE_VALUE;
    }
    name = ms_win32_utf8_of(lpFileName);
    if (name == NULL) {
        ms_win32_fail(ERROR_INVALID_NAME);
        return INVALID_HANDLE_VALUE;
    }
    handle = CreateFileA(name, dwDesiredAccess, dwShareMode, lpSecurityAttributes,
                         dwCreationDisposition, dwFlagsAndAttributes, hTemplateFile);
    free(name);
    return handle;
}

/* Reading and writing ------------------------------------------------------------------ */

static inline BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead,
                            LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hFile);
    ms_received received;
    enum ms_error error;
    if (lpNumberOfBytesRead != NULL) *lpNumberOfBytesRead = 0;
    if (handle == NULL) return ms_win32_fail(ERROR_INVALID_HANDLE);
    if (handle->server == NULL) return ms_win32_fail(ERROR_INVALID_PARAMETER);
    if (lpOverlapped != NULL) return ms_win32_fail(ERROR_NOT_SUPPORTED);
    error = ms_recv_into(handle->server, lpBuffer, nNumberOfBytesToRead, &received);
    if (error != MS_OK) return ms_win32_fail(ms_win32_error_of(error, 0));
    if (lpNumberOfBytesRead != NULL) *lpNumberOfBytesRead = (DWORD)received.len;
    SetLastError(ERROR_SUCCESS);
    return TRUE;
}

static inline BOOL WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite,
                             LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hFile);
    enum ms_error error;
    if (lpNumberOfBytesWritten != NULL) *lpNumberOfBytesWritten = 0;
    if (handle == NULL) return ms_win32_fail(ERROR_INVALID_HANDLE);
    if (handle->writer == NULL) return ms_win32_fail(ERROR_ACCESS_DENIED);
    if (lpOverlapped != NULL) return ms_win32_fail(ERROR_NOT_SUPPORTED);
    error = ms_write(handle->writer, lpBuffer, nNumberOfBytesToWrite);
    if (error != MS_OK) return ms_win32_fail(ms_win32_error_of(error, handle->remote));
    if (lpNumberOfBytesWritten != NULL) *lpNumberOfBytesWritten = nNumberOfBytesToWrite;
    SetLastError(ERROR_SUCCESS);
    return TRUE;
}

/* Closes a mailslot (the last handle of a name deletes it and its messages) or a client. */
static inline BOOL CloseHandle(HANDLE hObject) {
    struct ms_win32_handle *handle = ms_win32_handle_of(hObject);
    if (handle == NULL) return ms_win32_fail(ERROR_INVALID_HANDLE);
    handle->magic = 0;
    ms_close(handle->server);
    ms_writer_close(handle->writer);
    free(handle);
    return TRUE;
}

/* Strings ------------------------------------------------------------------------------ */

static inline int lstrlenA(LPCSTR s) { return s == NULL ? 0 : (int)strlen(s); }

static inline int lstrlenW(LPCWSTR s) { return s == NULL ? 0 : (int)wcslen(s); }

#ifdef UNICODE
#define CreateMailslot CreateMailslotW
#define CreateMailslotEx CreateMailslotExW
#define CreateFile CreateFileW
#define lstrlen lstrlenW
#else
#define CreateMailslot CreateMailslotA
#define CreateMailslotEx CreateMailslotExA
#define CreateFile CreateFileA
#define lstrlen lstrlenA
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* _WIN32 */
#endif /* MAILSLOT_WIN32_H */
