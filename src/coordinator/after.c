/* after.c - the names a test runs after, turned into the balancer's references.
 *
 * At submission every test a test runs after is one of the same submission (checked by
 * drv_tasks_check), so the tests go to the balancer in the plan's order: each after the
 * tests it runs after, whose references are then known. After a restart (recovery.c),
 * a test's after names are resolved within its run: a live test gives its reference, a
 * final one its outcome (drv_after_resolve). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"
#include "core/predictor.h"

/* Makes tasks[i] a live test of the coordinator under reference ref (moved). */
static void take(drv_coordinator *c, int64_t ref, drv_task *t, int64_t run_id, double now)
{
    drv_coord_reserve_task(c, (drv_tref)ref);
    drv_ctask *ct = &c->tasks[ref];
    ct->task = *t; /* moved: the caller does not clear t */
    ct->run_id = run_id;
    ct->live = true;
    ct->unconfirmed = false;
    ct->attempt_open = false;
    drv_idmap_put(&c->by_id, ct->task.id, (uint32_t)ref);
    drv_sampler_queued(c, ct, now);
}

void drv_after_submit(drv_coordinator *c, drv_task *tasks, size_t n, int64_t run_id, double now)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = tasks[i].after != NULL;
    drv_tasks_plan plan = {0};
    drv_error err;
    if (any && drv_tasks_check(tasks, n, &plan, &err) < 0)
        any = false; /* drv_tasks_parse checked it: cannot happen; submit unordered */
    drv_tref *ref_of = NULL, *after = NULL;
    size_t cap_after = 0;
    if (plan.order)
        ref_of = drv_xmalloc(n * sizeof *ref_of);
    for (size_t k = 0; k < n; k++) {
        size_t i = plan.order ? plan.order[k] : k;
        size_t n_after = 0;
        uint32_t not_passed = 0;
        if (plan.order) {
            size_t want = plan.after_start[i + 1] - plan.after_start[i];
            if (want > cap_after) {
                cap_after = want;
                after = drv_xrealloc(after, cap_after * sizeof *after);
            }
            for (uint32_t e = plan.after_start[i]; e < plan.after_start[i + 1]; e++) {
                drv_tref d = ref_of[plan.after_of[e]];
                if (d == DRV_REF_NONE)
                    not_passed++; /* it failed at submission */
                else
                    after[n_after++] = d;
            }
        }
        if (tasks[i].disabled) { /* stored skipped; never runs */
            if (ref_of)
                ref_of[i] = DRV_REF_NONE;
            drv_store_task_update u = {.state = DRV_TASK_SKIPPED,
                                       .reason = "disabled: not run (it says so)",
                                       .finished_at = now};
            if (drv_store_task_update_state(c->store, tasks[i].id, &u, &err) < 0)
                drv_coord_fatal(c, &err);
            drv_task_clear(&tasks[i]);
            continue;
        }
        int64_t ref =
            drv_balancer_submit_after(c->bal, &tasks[i], after, n_after, not_passed, now, &err);
        if (ref_of)
            ref_of[i] = ref < 0 ? DRV_REF_NONE : (drv_tref)ref;
        if (ref < 0) {
            /* drv_tasks_parse checks what the balancer checks; should it ever refuse, the
             * test fails visibly instead of waiting for ever. */
            drv_store_task_update u = {
                .state = DRV_TASK_FAILED, .reason = err.msg, .finished_at = now};
            if (drv_store_task_update_state(c->store, tasks[i].id, &u, &err) < 0)
                drv_coord_fatal(c, &err);
            drv_task_clear(&tasks[i]);
            continue;
        }
        take(c, ref, &tasks[i], run_id, now);
    }
    free(after);
    free(ref_of);
    drv_tasks_plan_free(&plan);
}

void drv_after_reason(const drv_task *t, char *buf, size_t len)
{
    size_t off = 0;
    int k = snprintf(buf, len, "skipped: a test it runs after did not pass (after:");
    off = k > 0 && (size_t)k < len ? (size_t)k : len;
    for (size_t i = 0; t->after && t->after[i] && off + 1 < len; i++) {
        k = snprintf(buf + off, len - off, "%s %s", i ? "," : "", t->after[i]);
        off = k > 0 && (size_t)k < len - off ? off + (size_t)k : len;
    }
    if (off + 1 < len)
        snprintf(buf + off, len - off, ")");
}

/* ---- after a restart ---- */

typedef struct found {
    const char *name;
    bool seen;
    drv_task_state state;
} found;

static int find_exact(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    found *f = ctx;
    if (!f->seen && row->name && strcmp(row->name, f->name) == 0) {
        f->seen = true;
        f->state = row->state;
    }
    return 0;
}

/* The live test of run run_id named name, or DRV_REF_NONE. */
static drv_tref live_by_name(const drv_coordinator *c, int64_t run_id, const char *name)
{
    for (size_t t = 0; t < c->cap_tasks; t++) {
        const drv_ctask *ct = &c->tasks[t];
        if (ct->live && ct->run_id == run_id && ct->task.name && strcmp(ct->task.name, name) == 0)
            return (drv_tref)t;
    }
    return DRV_REF_NONE;
}

int drv_after_resolve(drv_coordinator *c, const drv_task *t, int64_t run_id,
                      bool (*pending)(void *ctx, int64_t run_id, const char *name), void *ctx,
                      drv_tref **after, size_t *n_after, uint32_t *not_passed, drv_error *err)
{
    size_t n = drv_strv_len(t->after);
    *after = n ? drv_xmalloc(n * sizeof **after) : NULL;
    *n_after = 0;
    *not_passed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = t->after[i];
        drv_tref d = live_by_name(c, run_id, name);
        if (d != DRV_REF_NONE) {
            (*after)[(*n_after)++] = d;
            continue;
        }
        if (pending && pending(ctx, run_id, name)) {
            free(*after);
            *after = NULL;
            return 1; /* not in the balancer yet: later */
        }
        found f = {.name = name};
        drv_store_filter flt = {.state = -1, .run_id = run_id, .name_prefix = name};
        if (drv_store_task_list(c->store, &flt, find_exact, &f, err) < 0) {
            free(*after);
            *after = NULL;
            return -1;
        }
        if (!f.seen || f.state != DRV_TASK_PASSED)
            (*not_passed)++;
    }
    return 0;
}
