/* workload.c - the container the simulator replays: add, own, free. */
#include "sim/workload.h"

#include <stdlib.h>
#include <string.h>

void drv_workload_init(drv_workload *w)
{
    memset(w, 0, sizeof *w);
    w->tags = drv_tag_table_new();
}

void drv_workload_free(drv_workload *w)
{
    for (size_t i = 0; i < w->n_tests; i++) {
        free(w->tests[i].name);
        free(w->tests[i].model_id);
        free(w->tests[i].test_type);
    }
    free(w->tests);
    free(w->workers);
    drv_tag_table_free(w->tags);
    memset(w, 0, sizeof *w);
}

drv_sim_worker *drv_workload_add_worker(drv_workload *w, const drv_sim_worker *src)
{
    if (w->n_workers == w->cap_workers) {
        w->cap_workers = w->cap_workers ? w->cap_workers * 2 : 64;
        w->workers = drv_xrealloc(w->workers, w->cap_workers * sizeof *w->workers);
    }
    drv_sim_worker *d = &w->workers[w->n_workers++];
    *d = *src;
    return d;
}

drv_sim_test *drv_workload_add_test(drv_workload *w, const drv_sim_test *src)
{
    if (w->n_tests == w->cap_tests) {
        w->cap_tests = w->cap_tests ? w->cap_tests * 2 : 1024;
        w->tests = drv_xrealloc(w->tests, w->cap_tests * sizeof *w->tests);
    }
    drv_sim_test *d = &w->tests[w->n_tests++];
    *d = *src;
    d->name = src->name ? drv_xstrdup(src->name) : NULL;
    d->model_id = src->model_id ? drv_xstrdup(src->model_id) : NULL;
    d->test_type = src->test_type ? drv_xstrdup(src->test_type) : NULL;
    return d;
}
