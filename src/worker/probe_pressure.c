/* probe_pressure.c - what a worker measures for every heartbeat: CPU and memory
 * pressure, temperature, CPU clock and throttle counters (probe.h says where each comes
 * from). The coordinator's thermal state (core/thermal.h) turns them into admitted
 * slots; slot occupancy is not measured here, on purpose. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/probe.h"

#define FILE_MAX 4096 /* every file read here is a line or a few */

/* Reads the text of root + rel (root NULL or "" = "/"). The caller frees it; NULL when
 * absent. */
static char *read_under(const char *root, const char *rel)
{
    char path[DRV_PROBE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s%s", root ? root : "", rel) >= (int)sizeof path)
        return NULL;
    return drv_probe_read_text(path, FILE_MAX);
}

/* The first number of root + rel, or -1 when it is absent or not a number >= 0. */
static double number_under(const char *root, const char *rel)
{
    char *text = read_under(root, rel);
    if (!text)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    bool ok = end != text && errno == 0 && v >= 0;
    free(text);
    return ok ? v : -1;
}

double drv_pressure_parse_psi(const char *text)
{
    if (!text)
        return -1;
    const char *some = strstr(text, "some ");
    if (!some || (some != text && some[-1] != '\n'))
        return -1;
    const char *avg = strstr(some, "avg10=");
    const char *eol = strchr(some, '\n');
    if (!avg || (eol && avg > eol))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(avg + 6, &end);
    if (end == avg + 6 || errno != 0 || !(v >= 0))
        return -1;
    return v >= 100 ? 1 : v / 100;
}

/* Whether name is "cpuN" (a CPU directory, not cpufreq or cpuidle). */
static bool is_cpu_dir(const char *name)
{
    if (strncmp(name, "cpu", 3) != 0 || !name[3])
        return false;
    for (const char *c = name + 3; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

/* The hottest thermal zone, in Celsius; -1 when none reads. */
static double zones_max(const char *root)
{
    char dir[DRV_PROBE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sys/class/thermal", root);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    double hottest = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        char rel[DRV_PROBE_PATH_MAX];
        snprintf(rel, sizeof rel, "/sys/class/thermal/%.200s/temp", e->d_name);
        double milli = number_under(root, rel);
        double c = milli / 1000;
        if (milli > 0 && c < 200 && c > hottest)
            hottest = c;
    }
    closedir(d);
    return hottest;
}

/* Walks the CPUs: the mean clock ratio and the sum of throttle counters. */
static void cpus(const char *root, drv_pressure *out)
{
    char dir[DRV_PROBE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sys/devices/system/cpu", root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    double ratio_sum = 0;
    unsigned ratios = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_cpu_dir(e->d_name))
            continue;
        char rel[DRV_PROBE_PATH_MAX];
        snprintf(rel, sizeof rel, "/sys/devices/system/cpu/%.60s/cpufreq/scaling_cur_freq",
                 e->d_name);
        double cur = number_under(root, rel);
        snprintf(rel, sizeof rel, "/sys/devices/system/cpu/%.60s/cpufreq/cpuinfo_max_freq",
                 e->d_name);
        double max = number_under(root, rel);
        if (cur >= 0 && max > 0) {
            ratio_sum += cur >= max ? 1 : cur / max;
            ratios++;
        }
        static const char *const counters[] = {"core_throttle_count", "package_throttle_count"};
        for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
            snprintf(rel, sizeof rel, "/sys/devices/system/cpu/%.60s/thermal_throttle/%s",
                     e->d_name, counters[i]);
            double n = number_under(root, rel);
            if (n >= 0) {
                out->throttles += (uint64_t)n;
                out->has_throttles = true;
            }
        }
    }
    closedir(d);
    if (ratios)
        out->freq_ratio = ratio_sum / ratios;
}

void drv_pressure_read(const char *root, uint32_t cores, drv_pressure *out)
{
    if (!out)
        return;
    *out = (drv_pressure){.cpu = -1, .memory = -1, .temperature_c = -1, .freq_ratio = -1};
    if (!root || strcmp(root, "/") == 0)
        root = "";
    char *text = read_under(root, "/proc/pressure/cpu");
    out->cpu = drv_pressure_parse_psi(text);
    free(text);
    if (out->cpu >= 0) {
        out->cpu_source = "psi";
    } else {
        double load = number_under(root, "/proc/loadavg");
        if (load >= 0) {
            double per_core = cores ? cores : 1;
            double over = (load - per_core) / per_core;
            out->cpu = over < 0 ? 0 : over > 1 ? 1 : over;
            out->cpu_source = "loadavg";
        }
    }
    text = read_under(root, "/proc/pressure/memory");
    out->memory = drv_pressure_parse_psi(text);
    free(text);
    out->temperature_c = zones_max(root);
    cpus(root, out);
}

int drv_pressure_parse_nvidia(const char *csv, drv_pressure *p, drv_error *err)
{
    if (!csv || !p)
        return drv_error_set(err, "nvidia-smi: no output");
    const char *line = csv;
    unsigned lineno = 0;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        lineno++;
        char buf[256];
        if (len >= sizeof buf)
            return drv_error_set(err, "nvidia-smi: line %u is too long", lineno);
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol ? eol + 1 : line + len;
        char *start = buf;
        while (*start == ' ' || *start == '\t' || *start == '\r')
            start++;
        if (!*start)
            continue;
        char *comma = strchr(start, ',');
        if (!comma || strchr(comma + 1, ','))
            return drv_error_set(err, "nvidia-smi: line %u \"%s\": expected 2 fields", lineno,
                                 start);
        *comma = '\0';
        char *end;
        double temp = strtod(start, &end);
        if (end != start && temp > 0 && temp < 200 && temp > p->temperature_c)
            p->temperature_c = temp;
        const char *reasons = comma + 1;
        while (*reasons == ' ')
            reasons++;
        unsigned long long bits = strtoull(reasons, &end, 16);
        if (end != reasons && (bits & 0xe8ull))
            p->gpu_throttled = true;
    }
    return 0;
}
