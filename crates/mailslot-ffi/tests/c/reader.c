/*
 * A test reader through <mailslot/win32.h> and its extension: creates \\.\mailslot\NAME with
 * the given flags, prints "ready", then reads COUNT messages (each within 120 s: a hang
 * guard for loaded machines, not a bound) and prints each as "got: TEXT".
 *
 *   reader NAME COUNT [shared] [network]
 */
#include <mailslot/win32.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    char path[256], buf[1024];
    DWORD flags = 0, got;
    HANDLE slot;
    int i, count;
    if (argc < 3) {
        printf("usage: reader NAME COUNT [shared] [network]\n");
        return 2;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "shared") == 0) flags |= MAILSLOT_FLAG_SHARED;
        if (strcmp(argv[i], "network") == 0) flags |= MAILSLOT_FLAG_NETWORK;
    }
    snprintf(path, sizeof path, "\\\\.\\mailslot\\%s", argv[1]);
    count = atoi(argv[2]);
    slot = CreateMailslotExA(path, 0, 120000, NULL, flags);
    if (slot == INVALID_HANDLE_VALUE) {
        printf("CreateMailslotEx failed: error %u: %s\n", (unsigned)GetLastError(),
               ms_last_error());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (i = 0; i < count; i++) {
        if (!ReadFile(slot, buf, sizeof buf - 1, &got, NULL)) {
            printf("ReadFile failed: error %u: %s\n", (unsigned)GetLastError(), ms_last_error());
            CloseHandle(slot);
            return 1;
        }
        buf[got] = '\0';
        printf("got: %s\n", buf);
        fflush(stdout);
    }
    CloseHandle(slot);
    return 0;
}
