/*
 * Windows' observable mailslot behaviour through <mailslot/win32.h>, and the C API under it.
 * One process (plus a forked writer for the wait-forever read); every check prints a line
 * and a failure makes the exit status 1.
 *
 *   semantics PREFIX    (names are PREFIX-...: unique per test run)
 */
#define _POSIX_C_SOURCE 200809L
#include <mailslot/win32.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
static const char *prefix;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
            printf(__VA_ARGS__);                                                               \
            printf(" (last error %u; %s)\n", (unsigned)GetLastError(), ms_last_error());       \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static void path_of(char *out, size_t len, const char *name) {
    snprintf(out, len, "\\\\.\\mailslot\\%s-%s", prefix, name);
}

static HANDLE create(const char *name, DWORD max_size, DWORD timeout) {
    char path[256];
    path_of(path, sizeof path, name);
    return CreateMailslotA(path, max_size, timeout, NULL);
}

static HANDLE open_client(const char *name) {
    char path[256];
    path_of(path, sizeof path, name);
    return CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL, NULL);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static void timeouts(void) {
    char buf[64];
    DWORD got = 99, timeout;
    double start;
    pid_t child;
    int status;
    HANDLE slot = create("timeout", 0, 0);
    CHECK(slot != INVALID_HANDLE_VALUE, "create");
    /* Timeout 0, empty: FALSE with ERROR_SEM_TIMEOUT at once, 0 bytes. */
    CHECK(!ReadFile(slot, buf, sizeof buf, &got, NULL), "read of an empty mailslot");
    CHECK(GetLastError() == ERROR_SEM_TIMEOUT, "timeout 0 gives 121");
    CHECK(got == 0, "0 bytes read");
    got = 99;
    CHECK(!ReadFile(slot, NULL, 0, &got, NULL) && GetLastError() == ERROR_SEM_TIMEOUT && got == 0,
          "zero-length buffer, empty: 121");
    /* Timeout N: fails with 121 after about N ms (never sooner). */
    CHECK(SetMailslotInfo(slot, 300), "SetMailslotInfo 300");
    CHECK(GetMailslotInfo(slot, NULL, NULL, NULL, &timeout) && timeout == 300,
          "timeout reads back 300");
    start = now_ms();
    CHECK(!ReadFile(slot, buf, sizeof buf, &got, NULL) && GetLastError() == ERROR_SEM_TIMEOUT,
          "timeout 300 gives 121");
    CHECK(now_ms() - start >= 290, "waited %.0f ms of 300", now_ms() - start);
    /* Forever: a writer that comes later completes the read. */
    CHECK(SetMailslotInfo(slot, MAILSLOT_WAIT_FOREVER), "SetMailslotInfo forever");
    CHECK(GetMailslotInfo(slot, NULL, NULL, NULL, &timeout) && timeout == MAILSLOT_WAIT_FOREVER,
          "timeout reads back forever");
    fflush(stdout);
    child = fork();
    if (child == 0) {
        HANDLE client;
        DWORD written;
        Sleep(200);
        client = open_client("timeout");
        if (client == INVALID_HANDLE_VALUE || !WriteFile(client, "late", 4, &written, NULL)) {
            _exit(1);
        }
        CloseHandle(client);
        _exit(0);
    }
    CHECK(ReadFile(slot, buf, sizeof buf, &got, NULL), "read forever");
    CHECK(got == 4 && memcmp(buf, "late", 4) == 0, "got the late message");
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the writer process succeeded");
    CloseHandle(slot);
}

static void buffers_and_sizes(void) {
    char buf[64];
    DWORD got, written, next, count, max_size;
    HANDLE slot = create("buffer", 0, 0), client;
    CHECK(slot != INVALID_HANDLE_VALUE, "create");
    client = open_client("BUFFER"); /* names are case-insensitive */
    CHECK(client != INVALID_HANDLE_VALUE, "open the client with another case");
    /* Too small a buffer: 122, nothing read, the message stays queued. */
    CHECK(WriteFile(client, "hello", 5, &written, NULL) && written == 5, "write hello");
    got = 99;
    CHECK(!ReadFile(slot, buf, 2, &got, NULL), "read into 2 bytes");
    CHECK(GetLastError() == ERROR_INSUFFICIENT_BUFFER, "gives 122");
    CHECK(got == 0, "0 bytes read");
    CHECK(GetMailslotInfo(slot, NULL, &next, &count, NULL) && next == 5 && count == 1,
          "still queued: next %u count %u", (unsigned)next, (unsigned)count);
    CHECK(ReadFile(slot, buf, 5, &got, NULL) && got == 5 && memcmp(buf, "hello", 5) == 0,
          "read with the right size");
    /* Zero-length messages are messages. */
    CHECK(WriteFile(client, "", 0, &written, NULL) && written == 0, "write 0 bytes");
    CHECK(GetMailslotInfo(slot, NULL, &next, &count, NULL) && next == 0 && count == 1,
          "a zero-length message: next 0 count 1");
    got = 99;
    CHECK(ReadFile(slot, buf, sizeof buf, &got, NULL) && got == 0, "read it: TRUE, 0 bytes");
    CHECK(GetMailslotInfo(slot, NULL, &next, &count, NULL) && next == MAILSLOT_NO_MESSAGE &&
              count == 0,
          "empty again");
    CloseHandle(client);
    CloseHandle(slot);
    /* The creation values read back as given, -1 included. */
    slot = create("echo", MAILSLOT_WAIT_FOREVER, MAILSLOT_WAIT_FOREVER);
    CHECK(slot != INVALID_HANDLE_VALUE, "create with -1, -1");
    CHECK(GetMailslotInfo(slot, &max_size, NULL, NULL, &got) && max_size == 0xFFFFFFFFu &&
              got == MAILSLOT_WAIT_FOREVER,
          "max %u timeout %u", (unsigned)max_size, (unsigned)got);
    CHECK(GetMailslotInfo(slot, NULL, NULL, NULL, NULL), "all-NULL info");
    CloseHandle(slot);
    /* A size limit: a larger write queues nothing. */
    slot = create("limit", 4, 0);
    client = open_client("limit");
    CHECK(slot != INVALID_HANDLE_VALUE && client != INVALID_HANDLE_VALUE, "create with 4");
    CHECK(!WriteFile(client, "12345", 5, &written, NULL) &&
              GetLastError() == ERROR_INVALID_PARAMETER,
          "5 bytes into 4: refused");
    CHECK(WriteFile(client, "1234", 4, &written, NULL), "4 bytes fit");
    CHECK(GetMailslotInfo(slot, &max_size, &next, &count, NULL) && max_size == 4 && next == 4 &&
              count == 1,
          "only the 4 bytes are queued");
    CloseHandle(client);
    CloseHandle(slot);
}

static void names_and_handles(void) {
    char buf[8];
    DWORD n;
    char path[256];
    wchar_t wide[256];
    HANDLE slot = create("dup", 0, 0), again, client;
    CHECK(slot != INVALID_HANDLE_VALUE, "create");
    /* A second create of the name fails with 183 (Windows: one reader per name). */
    again = create("DUP", 0, 0);
    CHECK(again == INVALID_HANDLE_VALUE && GetLastError() == ERROR_ALREADY_EXISTS,
          "duplicate create gives 183");
    /* The server handle does not write; a client does not read. */
    CHECK(!WriteFile(slot, "x", 1, &n, NULL) && GetLastError() == ERROR_ACCESS_DENIED,
          "write to the server handle gives 5");
    client = open_client("dup");
    CHECK(client != INVALID_HANDLE_VALUE, "open a client");
    CHECK(!ReadFile(client, buf, sizeof buf, &n, NULL) && GetLastError() == ERROR_INVALID_PARAMETER,
          "read from a client gives 87");
    CHECK(!ReadFile(INVALID_HANDLE_VALUE, buf, sizeof buf, &n, NULL) &&
              GetLastError() == ERROR_INVALID_HANDLE && n == 0,
          "read of INVALID_HANDLE_VALUE gives 6");
    /* Closing the mailslot deletes it: its writer fails, and a new open finds nothing. */
    CHECK(CloseHandle(slot), "close the mailslot");
    CHECK(!WriteFile(client, "x", 1, &n, NULL) && GetLastError() == ERROR_FILE_NOT_FOUND,
          "write after the server closed gives 2");
    CloseHandle(client);
    CHECK(open_client("dup") == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_NOT_FOUND,
          "write with no reader: CreateFile gives 2");
    /* The name is free again at once. */
    slot = create("dup", 0, 0);
    CHECK(slot != INVALID_HANDLE_VALUE, "create again after close");
    CloseHandle(slot);
    /* Malformed names. */
    CHECK(CreateMailslotA("blah", 0, 0, NULL) == INVALID_HANDLE_VALUE &&
              GetLastError() == ERROR_INVALID_NAME,
          "a name outside \\\\.\\mailslot\\ gives 123");
    CHECK(CreateMailslotA(NULL, 0, 0, NULL) == INVALID_HANDLE_VALUE &&
              GetLastError() == ERROR_PATH_NOT_FOUND,
          "NULL gives 3");
    CHECK(CreateMailslotA("\\\\.\\mailslot\\a/b", 0, 0, NULL) == INVALID_HANDLE_VALUE &&
              GetLastError() == ERROR_INVALID_NAME,
          "'/' gives 123");
    CHECK(CreateFileA("/etc/passwd", GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL) ==
                  INVALID_HANDLE_VALUE &&
              GetLastError() == ERROR_INVALID_NAME,
          "a file path is not a mailslot");
    CHECK(!CloseHandle(INVALID_HANDLE_VALUE) && GetLastError() == ERROR_INVALID_HANDLE,
          "closing INVALID_HANDLE_VALUE gives 6");
    /* The W functions. */
    path_of(path, sizeof path, "wide");
    mbstowcs(wide, path, 256);
    slot = CreateMailslotW(wide, 0, 0, NULL);
    CHECK(slot != INVALID_HANDLE_VALUE, "CreateMailslotW");
    client = CreateFileW(wide, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    CHECK(client != INVALID_HANDLE_VALUE, "CreateFileW");
    CHECK(WriteFile(client, "w", 1, &n, NULL) && ReadFile(slot, buf, sizeof buf, &n, NULL) &&
              n == 1 && buf[0] == 'w',
          "W handles work");
    CloseHandle(client);
    CloseHandle(slot);
}

/* The C API under the Win32 one. */
static void c_api(void) {
    char name[128], buf[4];
    ms_server *server = NULL, *other = NULL;
    ms_server_options options;
    ms_message *message = NULL;
    ms_received received;
    ms_slot_info info;
    struct pollfd pfd;
    snprintf(name, sizeof name, "%s-capi", prefix);
    memset(&options, 0, sizeof options);
    options.read_timeout_ms = 0;
    CHECK(ms_server_open(name, &options, &server) == MS_OK, "ms_server_open");
    CHECK(ms_server_open(name, NULL, &other) == MS_ERR_ALREADY_EXISTS,
          "a second open of a private name");
    CHECK(other == NULL, "a failed open stores NULL");
    CHECK(strstr(ms_last_error(), name) != NULL, "the message names the mailslot: %s",
          ms_last_error());
    ms_close(server);
    snprintf(name, sizeof name, "%s-capi2", prefix);
    CHECK(ms_server_open(name, &options, &server) == MS_OK, "ms_server_open 2");
    pfd.fd = ms_server_fd(server);
    pfd.events = POLLIN;
    CHECK(pfd.fd >= 0, "a descriptor");
    CHECK(poll(&pfd, 1, 0) == 0, "not readable while empty");
    CHECK(ms_write_to(name, "hello", 5) == MS_OK, "ms_write_to");
    CHECK(poll(&pfd, 1, 10000) == 1 && (pfd.revents & POLLIN), "readable after a write");
    CHECK(ms_recv_into(server, buf, sizeof buf, &received) == MS_ERR_INSUFFICIENT_BUFFER,
          "4 bytes for 5");
    CHECK(received.len == 5, "received.len says the size: %zu", received.len);
    CHECK(ms_info(server, &info) == MS_OK && info.next_size == 5 && info.count == 1,
          "still queued");
    CHECK(ms_recv(server, &message) == MS_OK, "ms_recv");
    CHECK(message != NULL && message->len == 5 && strcmp((char *)message->data, "hello") == 0,
          "the whole message, NUL-terminated");
    CHECK(message != NULL && message->source.kind == MS_SOURCE_LOCAL &&
              message->source.pid == (uint32_t)getpid(),
          "from this process");
    ms_message_free(message);
    CHECK(ms_recv(server, &message) == MS_ERR_TIMED_OUT && message == NULL, "empty: timed out");
    CHECK(strcmp(ms_strerror(MS_ERR_TIMED_OUT), "timed out") == 0, "ms_strerror");
    CHECK(strcmp(ms_strerror(12345), "unknown error") == 0, "ms_strerror of no code");
    CHECK(ms_recv(NULL, &message) == MS_ERR_INVALID_ARGUMENT, "NULL server");
    CHECK(ms_write_to(NULL, "x", 1) == MS_ERR_INVALID_ARGUMENT, "NULL path");
    CHECK(ms_write_to(name, NULL, 1) == MS_ERR_INVALID_ARGUMENT, "NULL data");
    CHECK(ms_write_to(name, NULL, 0) == MS_OK, "NULL data of 0 bytes");
    CHECK(ms_info(server, &info) == MS_OK && info.next_size == 0 && info.count == 1,
          "a zero-length message");
    CHECK(ms_server_fd(NULL) == -1, "no descriptor for NULL");
    ms_close(server);
    ms_close(NULL);
    ms_message_free(NULL);
    ms_writer_close(NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        printf("usage: semantics PREFIX\n");
        return 2;
    }
    prefix = argv[1];
    timeouts();
    buffers_and_sizes();
    names_and_handles();
    c_api();
    printf("%s: %d failure(s)\n", failures == 0 ? "semantics: ok" : "semantics: FAILED",
           failures);
    return failures == 0 ? 0 : 1;
}
