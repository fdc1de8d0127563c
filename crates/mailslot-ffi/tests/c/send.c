/*
 * One write through the C API: ms_write_to(PATH, TEXT). Prints "sent" or the error's code and
 * message; exit status 0 or 1.
 *
 *   send PATH TEXT
 */
#include <mailslot/mailslot.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    ms_error error;
    if (argc != 3) {
        printf("usage: send PATH TEXT\n");
        return 2;
    }
    error = ms_write_to(argv[1], argv[2], strlen(argv[2]));
    if (error != MS_OK) {
        printf("ms_write_to failed: %d (%s): %s\n", (int)error, ms_strerror(error),
               ms_last_error());
        return 1;
    }
    printf("sent\n");
    return 0;
}
