/* cmd_worker_probe.c - `drover worker --probe`: what this machine would offer as a
 * worker, as JSON on stdout (see src/worker/probe.h for where each figure comes from).
 *
 *   drover worker --probe [--label TAG]... [--slots N] [--compact]
 *
 * Exit codes: 0 printed, 1 the probe failed (memory unreadable), 2 a wrong command line
 * (unknown option, a label that is not a valid tag name, slots out of range). Running a
 * worker (connecting to a coordinator) is not implemented by this command yet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "worker/probe.h"

void drv_cmd_worker_probe_usage(FILE *out)
{
    fprintf(out,
            "usage: drover worker --probe [--label TAG]... [--slots N] [--compact]\n"
            "\n"
            "Probes this machine as a worker would and prints what it found as JSON: cores,\n"
            "memory, OS and architecture, GPUs (NVIDIA via nvidia-smi or /proc/driver/nvidia,\n"
            "AMD via rocm-smi or /sys/class/drm), browsers (chromium, chrome, firefox, edge),\n"
            "and the tags the worker would offer: cpu, cuda, rocm, the browsers, webgpu and\n"
            "webnn from the browsers, and the labels.\n"
            "\n"
            "  --probe        print the probe and exit (required for now)\n"
            "  --label TAG    add TAG (lower-case [a-z0-9._:/-]) to the worker's tags;\n"
            "                 repeatable, or comma-separated\n"
            "  --slots N      tests run at once (1..%d; default: one per core)\n"
            "  --compact      one line of JSON instead of indented\n",
            DRV_PROBE_SLOTS_MAX);
}

/* Parses a slot count 1..DRV_PROBE_SLOTS_MAX; -1 on anything else. */
static long parse_slots(const char *s)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > DRV_PROBE_SLOTS_MAX)
        return -1;
    return v;
}

int drv_cmd_worker_probe(int argc, char **argv)
{
    bool probe = false, compact = false;
    long slots = 0;
    /* The labels, split at commas; the vector and its strings are freed at the end. */
    size_t n_labels = 0;
    char **labels = drv_xcalloc(1, sizeof *labels);
    int rc = DRV_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--probe") == 0) {
            probe = true;
        } else if (strcmp(a, "--compact") == 0) {
            compact = true;
        } else if ((strcmp(a, "--label") == 0 || strcmp(a, "--slots") == 0) && i + 1 >= argc) {
            fprintf(stderr, "drover worker: %s needs a value\n", a);
            goto out;
        } else if (strcmp(a, "--slots") == 0) {
            slots = parse_slots(argv[++i]);
            if (slots < 0) {
                fprintf(stderr, "drover worker: --slots \"%s\": expected a number 1..%d\n", argv[i],
                        DRV_PROBE_SLOTS_MAX);
                goto out;
            }
        } else if (strcmp(a, "--label") == 0) {
            const char *list = argv[++i];
            /* "a,b" is two labels; an empty item is passed on so the probe names it. */
            for (const char *p = list;;) {
                size_t len = strcspn(p, ",");
                labels = drv_xrealloc(labels, (n_labels + 2) * sizeof *labels);
                labels[n_labels] = drv_xmalloc(len + 1);
                memcpy(labels[n_labels], p, len);
                labels[n_labels][len] = '\0';
                labels[++n_labels] = NULL;
                if (p[len] != ',')
                    break;
                p += len + 1;
            }
        } else {
            fprintf(stderr, "drover worker: unknown option \"%s\"\n", a);
            drv_cmd_worker_probe_usage(stderr);
            goto out;
        }
    }
    if (!probe) {
        fprintf(stderr, "drover worker: only --probe is available for now\n");
        drv_cmd_worker_probe_usage(stderr);
        goto out;
    }

    drv_tag_table *tags = drv_tag_table_new();
    drv_probe_options opt = {.labels = labels, .slots = (uint32_t)slots};
    drv_probe_result r;
    drv_error err = {{0}};
    if (drv_probe_run(&r, &opt, tags, &err) < 0) {
        fprintf(stderr, "drover worker: %s\n", err.msg);
        /* A bad label or slot count is the command line's fault; the rest the machine's. */
        rc = strncmp(err.msg, "label ", 6) == 0 || strncmp(err.msg, "slots", 5) == 0
                 ? DRV_EXIT_USAGE
                 : DRV_EXIT_FAILURE;
    } else {
        json_t *j = drv_probe_to_json(&r, tags);
        char *text = json_dumps(j, compact ? JSON_COMPACT : JSON_INDENT(2));
        json_decref(j);
        printf("%s\n", text ? text : "{}");
        free(text);
        rc = DRV_EXIT_OK;
    }
    drv_tag_table_free(tags);
out:
    for (size_t i = 0; i < n_labels; i++)
        free(labels[i]);
    free(labels);
    return rc;
}
