/* fuzz_swf - libFuzzer target: the Standard Workload Format reader (sim/workload.h),
 * with an Alea .machines file when the input holds the line "%%MACHINES%%" (what follows
 * it is that file). The reader takes paths: the input is written to two files in the
 * temporary directory first. Read strictly and leniently, any input must give a
 * workload or an error naming the file, never crash, leak or read out of bounds; when
 * the strict read succeeds the lenient one reads the same tests, and every test kept
 * has a finite arrival and a finite, non-negative duration. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char swf_path[256], machines_path[256];

/* Creates the two files once per process (removed at exit). */
static void remove_files(void)
{
    unlink(swf_path);
    unlink(machines_path);
}

static void make_files(void)
{
    if (swf_path[0])
        return;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(swf_path, sizeof swf_path, "%s/fuzz_swf_XXXXXX", dir);
    snprintf(machines_path, sizeof machines_path, "%s/fuzz_swf_m_XXXXXX", dir);
    int a = mkstemp(swf_path), b = mkstemp(machines_path);
    if (a < 0 || b < 0)
        abort();
    close(a);
    close(b);
    atexit(remove_files);
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

/* Reads the SWF file; returns the number of tests or -1 (error checked). */
static long read_swf(const char *machines, bool strict)
{
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {.strict = strict, .max_tests = 1000};
    drv_error err = {{0}};
    long n = -1;
    if (drv_trace_swf_read(swf_path, machines, &w, &opt, &err) < 0) {
        if (!err.msg[0] || strnlen(err.msg, sizeof err.msg) >= sizeof err.msg)
            abort();
    } else {
        n = (long)w.n_tests;
        for (size_t i = 0; i < w.n_tests; i++)
            if (!isfinite(w.tests[i].arrival_s) || !isfinite(w.tests[i].duration_s) ||
                w.tests[i].duration_s < 0)
                abort();
    }
    drv_workload_free(&w);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_files();
    static const char mark[] = "%%MACHINES%%\n";
    const uint8_t *split = NULL;
    for (size_t i = 0; i + sizeof mark - 1 <= size; i++)
        if (memcmp(data + i, mark, sizeof mark - 1) == 0) {
            split = data + i;
            break;
        }
    size_t swf_len = split ? (size_t)(split - data) : size;
    write_file(swf_path, data, swf_len);
    if (split)
        write_file(machines_path, split + sizeof mark - 1, size - swf_len - (sizeof mark - 1));
    const char *machines = split ? machines_path : NULL;
    long strict = read_swf(machines, true);
    long lenient = read_swf(machines, false);
    if (strict >= 0 && lenient != strict) /* no bad line: both read the same */
        abort();
    return 0;
}
