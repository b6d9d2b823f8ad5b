/* status_views.c - the views of a coordinator's answers that `drover status`, `drover
 * wait` and `drover top` print (cli.h): the overview, a run, the workers table, a run's
 * counts in words, output lines, spans and times. Each writes to the FILE it is given and
 * frees nothing it did not make. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "client/client.h"

void drv_cli_format_counts(const drv_run_counts *rc, char *buf, size_t len)
{
    static const drv_task_state order[] = {
        DRV_TASK_PASSED,        DRV_TASK_FAILED,    DRV_TASK_TIMED_OUT,
        DRV_TASK_UNSCHEDULABLE, DRV_TASK_CANCELLED, DRV_TASK_SKIPPED,
        DRV_TASK_QUEUED,        DRV_TASK_ASSIGNED,  DRV_TASK_RUNNING};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof order / sizeof order[0] && off < len; k++) {
        uint64_t n = rc->by_state[order[k]];
        if (!n)
            continue;
        char word[32];
        snprintf(word, sizeof word, "%s", drv_task_state_name(order[k]));
        for (char *p = word; *p; p++)
            if (*p == '_')
                *p = ' ';
        int w = snprintf(buf + off, len - off, "%s%llu %s", off ? ", " : "", (unsigned long long)n,
                         word);
        if (w > 0)
            off += (size_t)w;
    }
    if (!off)
        snprintf(buf, len, "no tests");
}

void drv_cli_print_output(FILE *out, const char *text, size_t max_lines)
{
    const char *p = drv_text_last_lines(text, max_lines);
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "      | %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

void drv_cli_format_span(double s, char *buf, size_t len)
{
    if (s < 60)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 3600)
        snprintf(buf, len, "%d min %d s", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, len, "%lld h %d min", (long long)(s / 3600), (int)fmod(s / 60, 60));
}

void drv_cli_format_time(double t, char *buf, size_t len)
{
    time_t secs = (time_t)t;
    struct tm tm;
    if (!(t > 0) || !gmtime_r(&secs, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "?");
}

/* `drover status`: the coordinator's overview. */
int drv_cli_show_overview(FILE *out, const json_t *s, const char *url)
{
    char span[64], counts[512];
    drv_cli_format_span(drv_api_number(s, "uptime_s", 0), span, sizeof span);
    const char *version = drv_api_string(s, "version");
    const char *store = drv_api_string(s, "store");
    fprintf(out, "coordinator %s: drover %s, up %s%s%s\n", url, version ? version : "?", span,
            store ? ", store " : "", store ? store : "");
    const char *policy = drv_api_string(s, "policy");
    if (policy)
        fprintf(out, "policy: %s\n", policy);
    drv_run_counts rc;
    drv_run_counts_read(s, &rc);
    int64_t total = drv_api_int(s, "total", (int64_t)rc.submitted);
    drv_cli_format_counts(&rc, counts, sizeof counts);
    fprintf(out, "tests: %lld%s%s%s\n", (long long)total, total ? " (" : "", total ? counts : "",
            total ? ")" : "");
    const json_t *w = json_object_get(s, "workers");
    fprintf(out, "workers: connected %lld, lost %lld, quarantined %lld\n",
            (long long)drv_api_int(w, "connected", 0), (long long)drv_api_int(w, "lost", 0),
            (long long)drv_api_int(w, "quarantined", 0));
    return DRV_EXIT_OK;
}

/* `drover status RUN`. */
int drv_cli_show_run(FILE *out, const json_t *run)
{
    drv_run_counts rc;
    drv_run_counts_read(run, &rc);
    char counts[512], created[64];
    drv_cli_format_counts(&rc, counts, sizeof counts);
    drv_cli_format_time(drv_api_number(run, "created_at", 0), created, sizeof created);
    const char *name = drv_api_string(run, "name");
    fprintf(out, "run %lld%s%s%s, submitted %s: %llu test%s: %s\n",
            (long long)drv_api_int(run, "id", 0), name ? " (" : "", name ? name : "",
            name ? ")" : "", created, (unsigned long long)rc.submitted,
            rc.submitted == 1 ? "" : "s", counts);
    double progress =
        drv_api_number(run, "progress", rc.submitted ? (double)rc.final / (double)rc.submitted : 0);
    fprintf(out, "%s: %.0f%% of the tests are final%s\n", rc.done ? "done" : "not done",
            progress * 100,
            rc.done ? (drv_run_counts_all_passed(&rc) ? ", all passed" : ", not all passed") : "");
    return DRV_EXIT_OK;
}

/* Writes a worker's tags comma-separated into buf. */
static void format_tags(const json_t *w, char *buf, size_t len)
{
    const json_t *tags = json_object_get(json_object_get(w, "capabilities"), "tags");
    size_t off = 0, i;
    const json_t *tag;
    buf[0] = '\0';
    json_array_foreach(tags, i, tag)
    {
        if (off >= len)
            break;
        int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", json_string_value(tag));
        if (n > 0)
            off += (size_t)n;
    }
}

/* `drover status --workers`: a table, then why each unhealthy worker is so. */
int drv_cli_show_workers(FILE *out, const json_t *ans)
{
    const json_t *workers = json_object_get(ans, "workers");
    size_t n = json_array_size(workers), i;
    const json_t *w;
    if (n == 0) {
        fprintf(out, "no workers have registered\n");
        return DRV_EXIT_OK;
    }
    int width = 4;
    json_array_foreach(workers, i, w)
    {
        const char *name = drv_api_string(w, "name");
        if (name && (int)strlen(name) > width)
            width = (int)strlen(name);
    }
    fprintf(out, "%-*s  %-11s  %-8s  %5s  %7s  %5s  %s\n", width, "NAME", "HEALTH", "THERMAL",
            "SLOTS", "RUNNING", "LOAD", "TAGS");
    json_array_foreach(workers, i, w)
    {
        char tags[1024];
        format_tags(w, tags, sizeof tags);
        const char *health = drv_api_string(w, "health");
        const char *thermal = drv_api_string(w, "thermal");
        fprintf(out, "%-*s  %-11s  %-8s  %5lld  %7lld  %5.2f  %s\n", width,
                drv_api_string(w, "name"), health ? health : "?", thermal ? thermal : "?",
                (long long)drv_api_int(w, "slots", 0),
                (long long)(drv_api_int(w, "running", 0) + drv_api_int(w, "assigned", 0)),
                drv_api_number(w, "load", 0), tags);
    }
    json_array_foreach(workers, i, w)
    {
        const char *reason = drv_api_string(w, "health_reason");
        if (reason)
            fprintf(out, "%s: %s: %s\n", drv_api_string(w, "name"), drv_api_string(w, "health"),
                    reason);
        const char *thermal = drv_api_string(w, "thermal_reason");
        if (thermal)
            fprintf(out, "%s: thermal: %s\n", drv_api_string(w, "name"), thermal);
    }
    return DRV_EXIT_OK;
}
