/*
 * Writes messages to a mailslot the Windows way: open it with CreateFile (OPEN_EXISTING, as
 * a client), one WriteFile per message, CloseHandle. Builds unchanged on Windows
 * (<windows.h>) and on Linux (<mailslot/win32.h>).
 *
 *   slot_writer PATH MESSAGE...   PATH is \\.\mailslot\NAME, \\HOST\mailslot\NAME,
 *                                 \\DOMAIN\mailslot\NAME or \\*\mailslot\NAME
 * Exit status 0, or 1 with "... failed: error N" (the Win32 error code) on stdout.
 */
#ifdef _WIN32
#include <windows.h>
#else
#include <mailslot/win32.h>
#endif
#include <stdio.h>
#include <string.h>

static BOOL write_slot(HANDLE slot, LPCSTR text) {
    DWORD written;
    if (!WriteFile(slot, text, (DWORD)lstrlenA(text), &written, NULL)) {
        printf("WriteFile failed: error %u\n", (unsigned)GetLastError());
        return FALSE;
    }
    printf("wrote %u bytes\n", (unsigned)written);
    return TRUE;
}

int main(int argc, char **argv) {
    HANDLE slot;
    int i;
    if (argc < 2) {
        printf("usage: slot_writer PATH MESSAGE...\n");
        return 2;
    }
    slot = CreateFileA(argv[1], GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    if (slot == INVALID_HANDLE_VALUE) {
        printf("CreateFile failed: error %u\n", (unsigned)GetLastError());
        return 1;
    }
    for (i = 2; i < argc; i++) {
        if (!write_slot(slot, argv[i])) {
            CloseHandle(slot);
            return 1;
        }
    }
    CloseHandle(slot);
    return 0;
}
