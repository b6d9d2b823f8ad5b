/* proc_status.c - /proc/PID/status (proc_status.h). */
#include "sys/proc_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int drv_proc_memory_kb(int pid, long long *rss_kb, long long *hwm_kb)
{
    char path[64], line[256];
    *rss_kb = *hwm_kb = -1;
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = atoll(line + 6);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = atoll(line + 6);
    }
    fclose(f);
    return 0;
}
