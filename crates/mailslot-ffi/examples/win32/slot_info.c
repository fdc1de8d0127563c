/*
 * The info walk: what GetMailslotInfo reports as messages of 1, 2 and 0 bytes come and go.
 * Every step prints the next size and the count, and checks them against Windows' answers:
 *
 *   empty          NO_MESSAGE, 0     write ""       1, 3      read "bc"   0, 1
 *   write "a"      1, 1              read "a"       2, 2      read ""     NO_MESSAGE, 0
 *   write "bc"     1, 2
 *
 *   slot_info NAME    (uses \\.\mailslot\NAME; exit status 0 when every step matched)
 */
#ifdef _WIN32
#include <windows.h>
#else
#include <mailslot/win32.h>
#endif
#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect(HANDLE slot, const char *step, DWORD want_next, DWORD want_count) {
    DWORD max_size, next, count, timeout;
    if (!GetMailslotInfo(slot, &max_size, &next, &count, &timeout)) {
        printf("%-12s GetMailslotInfo failed: error %u\n", step, (unsigned)GetLastError());
        failures++;
        return;
    }
    printf("%-12s next %s%u count %u max %u timeout %u\n", step,
           next == MAILSLOT_NO_MESSAGE ? "NO_MESSAGE/" : "", (unsigned)next, (unsigned)count,
           (unsigned)max_size, (unsigned)timeout);
    if (next != want_next || count != want_count || max_size != 0 || timeout != 0) {
        printf("%-12s expected next %u count %u max 0 timeout 0\n", step, (unsigned)want_next,
               (unsigned)want_count);
        failures++;
    }
}

static void put(HANDLE client, const char *text) {
    DWORD written;
    if (!WriteFile(client, text, (DWORD)strlen(text), &written, NULL) ||
        written != strlen(text)) {
        printf("WriteFile failed: error %u\n", (unsigned)GetLastError());
        failures++;
    }
}

static void take(HANDLE slot, const char *want) {
    char buf[16];
    DWORD got;
    if (!ReadFile(slot, buf, sizeof buf, &got, NULL)) {
        printf("ReadFile failed: error %u\n", (unsigned)GetLastError());
        failures++;
        return;
    }
    if (got != strlen(want) || memcmp(buf, want, got) != 0) {
        printf("read %u bytes, expected \"%s\"\n", (unsigned)got, want);
        failures++;
    }
}

int main(int argc, char **argv) {
    char path[256];
    HANDLE slot, client;
    if (argc != 2) {
        printf("usage: slot_info NAME\n");
        return 2;
    }
    snprintf(path, sizeof path, "\\\\.\\mailslot\\%s", argv[1]);
    slot = CreateMailslotA(path, 0, 0, NULL);
    if (slot == INVALID_HANDLE_VALUE) {
        printf("CreateMailslot failed: error %u\n", (unsigned)GetLastError());
        return 1;
    }
    client = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, NULL);
    if (client == INVALID_HANDLE_VALUE) {
        printf("CreateFile failed: error %u\n", (unsigned)GetLastError());
        CloseHandle(slot);
        return 1;
    }
    expect(slot, "empty", MAILSLOT_NO_MESSAGE, 0);
    put(client, "a");
    expect(slot, "write \"a\"", 1, 1);
    put(client, "bc");
    expect(slot, "write \"bc\"", 1, 2);
    put(client, "");
    expect(slot, "write \"\"", 1, 3);
    take(slot, "a");
    expect(slot, "read \"a\"", 2, 2);
    take(slot, "bc");
    expect(slot, "read \"bc\"", 0, 1);
    take(slot, "");
    expect(slot, "read \"\"", MAILSLOT_NO_MESSAGE, 0);
    CloseHandle(client);
    CloseHandle(slot);
    printf("%s\n", failures == 0 ? "info walk: ok" : "info walk: FAILED");
    return failures == 0 ? 0 : 1;
}
