/* store.c - the store's per-test cost on the coordinator's hot path, in the order the
 * coordinator writes: insert (submission), attempt begin (dispatch),
 * attempt finish + task update (result), with one commit per BATCH tests as a loop turn
 * groups them. Prints microseconds per test for each step; then the metrics history's
 * writes at 1,000 workers (see samples()). Asserts nothing.
 *
 * Usage: store [N (default 50000)] [BATCH (default 1000)] [FILE (default a temp file)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(int rc, const drv_error *err)
{
    if (rc < 0) {
        fprintf(stderr, "bench/store: %s\n", err->msg);
        exit(1);
    }
}

/* The metrics history's writes as the sampler makes them with 1,000 workers: each
 * second one row per series (41 fleet series, 1,000 per worker, one class) and one
 * commit; then the minute's pruning (three deletes per series). Executed at once here,
 * as the coordinator's writer thread executes them. */
static void samples(drv_store *s)
{
    enum { SERIES = 1042, SECONDS = 120 };
    drv_error err;
    double t0 = now_s();
    for (int id = 1; id <= SERIES; id++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", id);
        check(drv_store_series_add(s, id, "worker_utilization", name, &err), &err);
    }
    check(drv_store_commit(s, &err), &err);
    double t1 = now_s();
    for (int sec = 0; sec < SECONDS; sec++) {
        for (int id = 1; id <= SERIES; id++)
            check(drv_store_sample_append(s, id, 1, 1000000 + sec, id * 0.001, &err), &err);
        check(drv_store_commit(s, &err), &err);
    }
    double t2 = now_s();
    for (int id = 1; id <= SERIES; id++)
        for (int r = 0; r < 3; r++)
            check(drv_store_sample_prune(s, id,
                                         r == 0   ? 1
                                         : r == 1 ? 60
                                                  : 600,
                                         1000000 + 60, &err),
                  &err);
    check(drv_store_commit(s, &err), &err);
    double t3 = now_s();
    printf("bench/store: metrics history, %d series: %.2f us per sample row, %.1f ms per "
           "second of sampling, %.1f ms per minute's pruning (series registered in %.1f ms)\n",
           SERIES, (t2 - t1) * 1e6 / ((double)SERIES * SECONDS), (t2 - t1) * 1e3 / SECONDS,
           (t3 - t2) * 1e3, (t1 - t0) * 1e3);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50000;
    int batch = argc > 2 ? atoi(argv[2]) : 1000;
    char path[256];
    if (argc > 3)
        snprintf(path, sizeof path, "%s", argv[3]);
    else
        snprintf(path, sizeof path, "/tmp/drover-bench-store.%d.db", (int)getpid());
    drv_error err;
    drv_store *s = drv_store_open(path, &err);
    if (!s) {
        fprintf(stderr, "bench/store: %s\n", err.msg);
        return 1;
    }
    drv_tag_table *tags = drv_tag_table_new();
    int64_t run = drv_store_run_create(s, "bench", 1, &err);
    check((int)run, &err);
    uint64_t *ids = malloc((size_t)n * sizeof *ids);
    double t[6] = {0};
    char name[64];
    char *args[] = {"true", NULL};
    for (int b = 0; b < n; b += batch) {
        int e = b + batch < n ? b + batch : n;
        double t0 = now_s();
        for (int i = b; i < e; i++) {
            drv_task task;
            drv_task_init(&task);
            snprintf(name, sizeof name, "bench-t%d", i);
            task.name = name;
            task.argv = args;
            int64_t id = drv_store_task_insert(s, run, &task, tags, 2, &err);
            check((int)id, &err);
            ids[i] = (uint64_t)id;
        }
        double t1 = now_s();
        check(drv_store_commit(s, &err), &err);
        double t2 = now_s();
        for (int i = b; i < e; i++) {
            /* As the coordinator does: the attempt row only (the task's row is written
             * when the test is requeued or final). */
            check(drv_store_attempt_begin(s, ids[i], 1, "w1", 3, &err), &err);
        }
        double t3 = now_s();
        check(drv_store_commit(s, &err), &err);
        double t4 = now_s();
        for (int i = b; i < e; i++) {
            drv_store_result r = {.finished_at = 4, .duration_s = 0.001};
            check(drv_store_attempt_finish(s, ids[i], 1, &r, NULL, &err), &err);
            drv_store_task_update u = {.state = DRV_TASK_PASSED,
                                       .attempts = 1,
                                       .worker = "w1",
                                       .reason = "exited 0",
                                       .finished_at = 4,
                                       .has_exit = true,
                                       .duration_s = 0.001};
            check(drv_store_task_update_state(s, ids[i], &u, &err), &err);
        }
        double t5 = now_s();
        check(drv_store_commit(s, &err), &err);
        double t6 = now_s();
        t[0] += t1 - t0;
        t[1] += t3 - t2;
        t[2] += t5 - t4;
        t[3] += (t2 - t1) + (t4 - t3) + (t6 - t5);
    }
    double per = 1e6 / n;
    printf("bench/store: %d tests, commit every %d: insert %.2f us, dispatch %.2f us, result "
           "%.2f us, commits %.2f us; total %.2f us/test\n",
           n, batch, t[0] * per, t[1] * per, t[2] * per, t[3] * per,
           (t[0] + t[1] + t[2] + t[3]) * per);
    samples(s);
    drv_store_close(s);
    drv_tag_table_free(tags);
    free(ids);
    if (argc <= 3) {
        unlink(path);
        char side[300];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
    return 0;
}
