/* task.c - task states, and the lifetime (init, clear, deep copy) of a drv_task. */
#include "core/task.h"

#include <stdlib.h>
#include <string.h>

static const char *const state_names[DRV_TASK_STATE_COUNT] = {
    [DRV_TASK_QUEUED] = "queued",       [DRV_TASK_ASSIGNED] = "assigned",
    [DRV_TASK_RUNNING] = "running",     [DRV_TASK_PASSED] = "passed",
    [DRV_TASK_FAILED] = "failed",       [DRV_TASK_TIMED_OUT] = "timed_out",
    [DRV_TASK_CANCELLED] = "cancelled", [DRV_TASK_UNSCHEDULABLE] = "unschedulable",
    [DRV_TASK_SKIPPED] = "skipped",
};

/* Returns the lower-case name of s ("timed_out"), or "?" for a value out of range. */
const char *drv_task_state_name(drv_task_state s)
{
    if ((int)s < 0 || s >= DRV_TASK_STATE_COUNT)
        return "?";
    return state_names[s];
}

/* Returns the state named name (exact, lower-case), or -1 for NULL or an unknown name. */
int drv_task_state_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < DRV_TASK_STATE_COUNT; i++)
        if (strcmp(state_names[i], name) == 0)
            return i;
    return -1;
}

/* Makes t an empty queued task: no strings, default priority, no requirements,
 * unknown family. Does not free anything t held before (see drv_task_clear). */
void drv_task_init(drv_task *t)
{
    memset(t, 0, sizeof *t);
    drv_requirements_init(&t->req);
    t->priority = DRV_PRIORITY_DEFAULT;
    t->state = DRV_TASK_QUEUED;
}

/* Frees every string and vector t owns and makes it empty again (drv_task_init). */
void drv_task_clear(drv_task *t)
{
    free(t->name);
    drv_strv_free(t->argv);
    drv_strv_free(t->env);
    free(t->cwd);
    free(t->model_id);
    free(t->test_type);
    drv_strv_free(t->labels);
    drv_strv_free(t->after);
    drv_strv_free(t->locks);
    drv_strv_free(t->members);
    drv_task_init(t);
}

static char *dup_or_null(const char *s)
{
    return s ? drv_xstrdup(s) : NULL;
}

/* Makes dst a deep copy of src: dst's old contents are freed first; afterwards dst
 * owns its own copies of every string and vector. dst == src is a no-op. */
void drv_task_copy(drv_task *dst, const drv_task *src)
{
    if (dst == src)
        return;
    drv_task_clear(dst);
    *dst = *src;
    dst->name = dup_or_null(src->name);
    dst->argv = drv_strv_dup(src->argv);
    dst->env = drv_strv_dup(src->env);
    dst->cwd = dup_or_null(src->cwd);
    dst->model_id = dup_or_null(src->model_id);
    dst->test_type = dup_or_null(src->test_type);
    dst->labels = drv_strv_dup(src->labels);
    dst->after = drv_strv_dup(src->after);
    dst->locks = drv_strv_dup(src->locks);
    dst->members = drv_strv_dup(src->members);
}

/* Returns a deep copy of the NULL-terminated vector v, owned by the caller (free it
 * with drv_strv_free); NULL gives NULL, an empty vector gives a new empty vector. */
char **drv_strv_dup(char *const *v)
{
    if (!v)
        return NULL;
    size_t n = drv_strv_len(v);
    char **out = drv_xmalloc((n + 1) * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = drv_xstrdup(v[i]);
    out[n] = NULL;
    return out;
}

/* Frees v and every string in it; NULL is a no-op. */
void drv_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* Returns the number of strings before the terminating NULL; 0 for NULL. */
size_t drv_strv_len(char *const *v)
{
    size_t n = 0;
    if (v)
        while (v[n])
            n++;
    return n;
}

void drv_task_apply_retry_alias(drv_task *t)
{
    t->reruns = drv_task_reruns(t);
    t->retry_on_failure = false;
}

uint32_t drv_task_reruns(const drv_task *t)
{
    return t->reruns ? t->reruns : t->retry_on_failure ? t->max_retries : 0;
}
