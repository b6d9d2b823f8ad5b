/* members.c - the results of a batch's member tests (py3, issue 13; docs/api.md
 * "Batches", docs/protocol.md "Member result lines").
 *
 * A batch is a test that names, in "members", the tests it runs in its one process (a
 * pytest batch: several node ids in one interpreter). Its process prints one line per
 * member as that member ends:
 *
 *   @@drover@@ start NAME
 *   @@drover@@ OUTCOME SECONDS NAME<TAB>MESSAGE
 *
 * When the batch's result comes in, each member with an end line becomes a test of its
 * own in the batch's run: a final task (batch_of = the batch) with one attempt on the
 * batch's worker, its own duration and outcome, and the predictor learns its duration
 * under its own name. A member that started and has no end line crashed (or hung) the
 * process: it is recorded failed. A member that never started gets no result: whoever
 * submitted the batch runs it again. A batch all of whose members reported passes
 * (channel.c): the failures are its members'; one that left any without a result (it
 * crashed, timed out, or collected nothing) keeps its own outcome. A member submitted again in the
 * same run (a rerun of a failure) gets a new attempt on the same test, so a failure then a pass is
 * flaky as for any test. */
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

/* A member that failed in a run: its later result in that run is one more attempt. */
typedef struct drv_member_fail {
    int64_t run_id;
    uint64_t key; /* drv_test_key of its name */
    uint64_t task_id;
    uint32_t attempts;
} drv_member_fail;

#define FAILS_MAX 4096 /* the oldest are forgotten beyond (a rerun then gets a new test) */

void drv_members_free(drv_coordinator *c)
{
    free(c->member_fails);
    c->member_fails = NULL;
    c->n_member_fails = c->cap_member_fails = 0;
}

static drv_member_fail *fail_find(drv_coordinator *c, int64_t run_id, uint64_t key)
{
    for (size_t i = 0; i < c->n_member_fails; i++)
        if (c->member_fails[i].key == key && c->member_fails[i].run_id == run_id)
            return &c->member_fails[i];
    return NULL;
}

static void fail_forget(drv_coordinator *c, drv_member_fail *f)
{
    *f = c->member_fails[--c->n_member_fails];
}

static void fail_add(drv_coordinator *c, int64_t run_id, uint64_t key, uint64_t id,
                     uint32_t attempts)
{
    if (c->n_member_fails == FAILS_MAX) {
        memmove(c->member_fails, c->member_fails + 1, (FAILS_MAX - 1) * sizeof *c->member_fails);
        c->n_member_fails--;
    }
    if (c->n_member_fails == c->cap_member_fails) {
        c->cap_member_fails = c->cap_member_fails ? c->cap_member_fails * 2 : 16;
        c->member_fails =
            drv_xrealloc(c->member_fails, c->cap_member_fails * sizeof *c->member_fails);
    }
    c->member_fails[c->n_member_fails++] = (drv_member_fail){run_id, key, id, attempts};
}

/* One member's end as read from the batch's output. */
typedef struct member {
    const char *name;
    uint64_t key;
    bool started, ended;
    char outcome[16];
    double duration_s;
    const char *msg; /* into the tail; msg_len bytes */
    size_t msg_len;
} member;

/* The member named name[0..len) of m[0..n), by a linear probe of the hash slots. */
static member *find(member *m, const uint32_t *slot, size_t n_slots, const char *name, size_t len)
{
    char buf[DRV_STRING_MAX + 1];
    if (len > DRV_STRING_MAX)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    uint64_t key = drv_test_key(buf);
    for (size_t i = (size_t)(key % n_slots);; i = (i + 1) % n_slots) {
        if (slot[i] == 0)
            return NULL;
        member *x = &m[slot[i] - 1];
        if (x->key == key && strcmp(x->name, buf) == 0)
            return x;
    }
}

/* Reads the marked lines of text into the members. */
static void read_lines(member *m, const uint32_t *slot, size_t n_slots, const char *text)
{
    static const char mark[] = "@@drover@@ ";
    for (const char *p = text ? strstr(text, mark) : NULL; p; p = strstr(p, mark)) {
        p += sizeof mark - 1;
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > 6 && strncmp(p, "start ", 6) == 0) {
            member *x = find(m, slot, n_slots, p + 6, l - 6);
            if (x)
                x->started = true;
        } else {
            char outcome[16];
            double dur = 0;
            int used = 0;
            if (sscanf(p, "%15s %lf %n", outcome, &dur, &used) == 2 && used > 0 &&
                (size_t)used < l) {
                const char *id = p + used;
                const char *tab = memchr(id, '\t', l - (size_t)used);
                size_t idl = tab ? (size_t)(tab - id) : l - (size_t)used;
                member *x = find(m, slot, n_slots, id, idl);
                if (x) {
                    x->started = x->ended = true;
                    snprintf(x->outcome, sizeof x->outcome, "%s", outcome);
                    x->duration_s = dur >= 0 ? dur : 0;
                    x->msg = tab ? tab + 1 : NULL;
                    x->msg_len = tab ? (size_t)(p + l - tab - 1) : 0;
                }
            }
        }
        p += l;
    }
}

/* The task state of a member's outcome, and whether that is its own failure. */
static drv_task_state outcome_state(const char *o, bool *failed)
{
    *failed = strcmp(o, "failed") == 0 || strcmp(o, "error") == 0;
    if (*failed)
        return DRV_TASK_FAILED;
    if (strcmp(o, "skipped") == 0 || strcmp(o, "xfailed") == 0)
        return DRV_TASK_SKIPPED;
    return DRV_TASK_PASSED;
}

/* Stores one member's result: a new test of the batch's run, or one more attempt of the
 * test a failed run of it left in that run. */
static void record(drv_coordinator *c, const drv_ctask *batch, const char *worker, member *x,
                   const char *reason, const char *message, double now)
{
    bool failed;
    drv_task_state state = outcome_state(x->outcome, &failed);
    drv_error err;
    drv_member_fail *f = fail_find(c, batch->run_id, x->key);
    uint64_t id;
    uint32_t attempt;
    if (f) {
        id = f->task_id;
        attempt = ++f->attempts;
        if (drv_store_task_batch_of(c->store, id, batch->task.id, &err) < 0)
            drv_coord_fatal(c, &err);
    } else {
        drv_task t;
        drv_task_init(&t);
        t.name = (char *)x->name; /* borrowed: not cleared */
        t.family = batch->task.family;
        t.test_type = batch->task.test_type;
        t.priority = batch->task.priority;
        t.state = state;
        t.attempts = 1;
        t.batch_of = batch->task.id;
        int64_t got = drv_store_task_insert(c->store, batch->run_id, &t, c->tags, now, &err);
        if (got < 0)
            drv_coord_fatal(c, &err);
        id = (uint64_t)got;
        attempt = 1;
    }
    drv_store_result r = {
        .finished_at = now,
        .exit_code = failed ? 1 : 0,
        .duration_s = x->duration_s,
        .output_tail = message, /* its own: the batch's output is the batch's */
    };
    if (drv_store_attempt_begin(c->store, id, attempt, worker, now - x->duration_s, &err) < 0 ||
        drv_store_attempt_started(c->store, id, attempt, now - x->duration_s, &err) < 0 ||
        drv_store_attempt_finish(c->store, id, attempt, &r, NULL, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_store_task_update u = {.state = state,
                               .attempts = attempt,
                               .worker = worker,
                               .reason = reason,
                               .finished_at = now,
                               .has_exit = true,
                               .exit_code = r.exit_code,
                               .duration_s = x->duration_s};
    if (drv_store_task_update_state(c->store, id, &u, &err) < 0)
        drv_coord_fatal(c, &err);
    if (f && !failed)
        fail_forget(c, f);
    else if (!f && failed)
        fail_add(c, batch->run_id, x->key, id, attempt);
}

bool drv_members_finished(drv_coordinator *c, const drv_ctask *batch, drv_wref w,
                          const drv_store_result *res, double now)
{
    char *const *names = batch->task.members;
    size_t n = drv_strv_len(names);
    if (n == 0)
        return false;
    bool all = true;
    member *m = drv_xcalloc(n, sizeof *m);
    size_t n_slots = 2 * n + 1;
    uint32_t *slot = drv_xcalloc(n_slots, sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        m[i].name = names[i];
        m[i].key = drv_test_key(names[i]);
        size_t k = (size_t)(m[i].key % n_slots);
        while (slot[k])
            k = (k + 1) % n_slots;
        slot[k] = (uint32_t)i + 1;
    }
    read_lines(m, slot, n_slots, res->output_tail);
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    const char *worker = k ? k->name : NULL;
    for (size_t i = 0; i < n; i++) {
        member *x = &m[i];
        all &= x->ended;
        if (!x->started)
            continue; /* never ran: its submitter runs it again */
        char reason[DRV_STRING_MAX];
        if (!x->ended) {
            snprintf(x->outcome, sizeof x->outcome, "error");
            snprintf(reason, sizeof reason, "error: %s",
                     res->timed_out ? "the batch timed out while it ran"
                                    : "crashed the batch's process (no result came back)");
        } else if (x->msg_len) {
            snprintf(reason, sizeof reason, "%s: %.*s", x->outcome, (int)x->msg_len, x->msg);
        } else {
            snprintf(reason, sizeof reason, "%s", x->outcome);
        }
        const char *colon = strchr(reason, ':');
        record(c, batch, worker, x, reason, colon ? colon + 2 : reason, now);
        if (x->ended && strcmp(x->outcome, "skipped") != 0)
            drv_balancer_learn_member(c->bal, w, x->name, batch->task.family, x->duration_s);
    }
    free(slot);
    free(m);
    return all;
}
