/* step NAME SECONDS EXIT [TEXT]: appends "start NAME" to $DRV_CTEST_LOG, prints TEXT,
 * sleeps, appends "end NAME" and exits EXIT. The env test also checks its environment
 * and working directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void note(const char *what, const char *name)
{
    const char *path = getenv("DRV_CTEST_LOG");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%s %s\n", what, name);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    note("start", argv[1]);
    if (argc > 4)
        printf("%s\n", argv[4]);
    fflush(stdout);
    double s = atof(argv[2]);
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
    int code = atoi(argv[3]);
    if (strcmp(argv[1], "env") == 0) {
        const char *g = getenv("GREETING");
        if (!g || strcmp(g, "hello") != 0 || access("step.c", F_OK) != 0) {
            fprintf(stderr, "env: GREETING or the working directory is wrong\n");
            code = 1;
        }
    }
    note("end", argv[1]);
    return code;
}
