/* run_follow.c - follows a run until it is done, printing a line per test as each one
 * becomes final (`drover ctest -v`): "passed   name (1.20 s, on w1)". */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "client/client.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int drv_cli_follow_run(struct drv_client *c, const char *cmd, uint64_t run_id, double timeout_s)
{
    double start = mono_s();
    uint8_t *seen = NULL; /* by position in the run's id-ordered list */
    size_t n_seen = 0;
    int code = DRV_EXIT_OK;
    for (;;) {
        drv_error err = {{0}};
        json_t *run = drv_client_run(c, run_id, &err);
        json_t *tests = run ? drv_client_run_tests(c, run_id, NULL, 0, &err) : NULL;
        if (!tests) {
            fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
            json_decref(run);
            code = drv_cli_request_failure_code(c);
            break;
        }
        size_t n = json_array_size(tests);
        if (n > n_seen) {
            seen = drv_xrealloc(seen, n);
            memset(seen + n_seen, 0, n - n_seen);
            n_seen = n;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *t = json_array_get(tests, i);
            const char *state = drv_api_string(t, "state");
            int s = state ? drv_task_state_parse(state) : -1;
            if (seen[i] || s < 0 || !drv_task_state_final((drv_task_state)s))
                continue;
            seen[i] = 1;
            char outcome[DRV_ERROR_MAX];
            drv_test_outcome_format(t, outcome, sizeof outcome);
            const char *worker = drv_api_string(t, "worker");
            printf("%-9s %s (%.2f s%s%s)%s%s\n", state, drv_api_string(t, "name"),
                   drv_api_number(t, "duration_s", 0), worker ? ", on " : "", worker ? worker : "",
                   s == DRV_TASK_PASSED ? "" : ": ", s == DRV_TASK_PASSED ? "" : outcome);
        }
        fflush(stdout);
        drv_run_counts rc;
        drv_run_counts_read(run, &rc);
        json_decref(run);
        json_decref(tests);
        if (rc.done)
            break;
        if (timeout_s > 0 && mono_s() - start >= timeout_s) {
            fprintf(stderr, "drover %s: run %llu not done after %.0f s (it goes on)\n", cmd,
                    (unsigned long long)run_id, timeout_s);
            code = DRV_EXIT_TIMEOUT;
            break;
        }
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(seen);
    return code;
}
