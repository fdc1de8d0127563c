/*
 * Creates a mailslot and reads it the Windows way: ask GetMailslotInfo how many messages wait
 * and how long the next one is, read each with a buffer of exactly that size, sleep a little
 * when nothing waits. Builds unchanged on Windows (<windows.h>) and on Linux
 * (<mailslot/win32.h>).
 *
 *   slot_reader NAME COUNT    reads COUNT messages of \\.\mailslot\NAME, then exits
 */
#ifdef _WIN32
#include <windows.h>
#else
#include <mailslot/win32.h>
#endif
#include <stdio.h>
#include <stdlib.h>

static HANDLE make_slot(LPCSTR path) {
    /* Any size, and reads that wait for a message: GetMailslotInfo decides when to read. */
    HANDLE slot = CreateMailslotA(path, 0, MAILSLOT_WAIT_FOREVER, NULL);
    if (slot == INVALID_HANDLE_VALUE) {
        printf("CreateMailslot failed: error %u\n", (unsigned)GetLastError());
    }
    return slot;
}

/* Reads every message that waits now; returns how many, or -1 on failure. */
static int read_waiting(HANDLE slot) {
    DWORD next_size, waiting, read_bytes;
    int got = 0;
    if (!GetMailslotInfo(slot, NULL, &next_size, &waiting, NULL)) {
        printf("GetMailslotInfo failed: error %u\n", (unsigned)GetLastError());
        return -1;
    }
    while (next_size != MAILSLOT_NO_MESSAGE) {
        /* One more byte, for the NUL that makes the message printable. */
        char *text = (char *)malloc(next_size + 1);
        if (text == NULL) return -1;
        if (!ReadFile(slot, text, next_size, &read_bytes, NULL)) {
            printf("ReadFile failed: error %u\n", (unsigned)GetLastError());
            free(text);
            return -1;
        }
        text[read_bytes] = '\0';
        printf("message (1 of %u waiting): %s\n", (unsigned)waiting, text);
        free(text);
        got++;
        if (!GetMailslotInfo(slot, NULL, &next_size, &waiting, NULL)) {
            printf("GetMailslotInfo failed: error %u\n", (unsigned)GetLastError());
            return -1;
        }
    }
    return got;
}

int main(int argc, char **argv) {
    char path[256];
    HANDLE slot;
    int wanted, got = 0;
    if (argc != 3) {
        printf("usage: slot_reader NAME COUNT\n");
        return 2;
    }
    snprintf(path, sizeof path, "\\\\.\\mailslot\\%s", argv[1]);
    wanted = atoi(argv[2]);
    slot = make_slot(path);
    if (slot == INVALID_HANDLE_VALUE) return 1;
    printf("ready\n");
    fflush(stdout);
    while (got < wanted) {
        int n = read_waiting(slot);
        if (n < 0) {
            CloseHandle(slot);
            return 1;
        }
        if (n == 0) Sleep(20);
        got += n;
        fflush(stdout);
    }
    CloseHandle(slot);
    return 0;
}
