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
 * The coordinator reads them as the batch's output streams in (the worker's output
 * frames), and again from the finished frame's output tail (the plugin repeats the end
 * lines last, so a member whose streamed line was lost, beyond the worker's output cap,
 * is still found). Each member with an end line becomes, at once, a test of its own in
 * the batch's run: a final task (batch_of = the batch) with one attempt on the
 * batch's worker, its own duration and outcome, and the predictor learns its duration
 * under its own name. A member that started and has no end line crashed (or hung) the
 * process: it is recorded failed. A member that never started gets no result: whoever
 * submitted the batch runs it again. A batch all of whose members reported passes
 * (channel.c): the failures are its members'; one that left any without a result (it
 * crashed, timed out, or collected nothing) keeps its own outcome. A member submitted again in the
 * same run (a rerun of a failure) gets a new attempt on the same test, so a failure then a pass is
 * flaky as for any test, also when the coordinator restarted between the two. */
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

/* The oldest are forgotten beyond: a rerun then gets a new test. A run created before
 * this process started finds its failures in the store (drv_store_member_failed). */
#define FAILS_MAX 4096

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

static drv_member_fail *fail_add(drv_coordinator *c, int64_t run_id, uint64_t key, uint64_t id,
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
    c->member_fails[c->n_member_fails] = (drv_member_fail){run_id, key, id, attempts};
    return &c->member_fails[c->n_member_fails++];
}

/* One member's end as read from the batch's output. */
typedef struct member {
    const char *name;
    uint64_t key;
    bool started, ended;
    bool recorded; /* its result is stored (once: a later attempt of the batch keeps it) */
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

/* What a batch's member lines said so far, kept with the batch (drv_ctask.batch_live)
 * across its attempts. */
struct drv_batch_live {
    member *m;
    uint32_t *slot; /* member index + 1 by the hash of its name; 0: empty */
    size_t n, n_slots;
    char *line; /* a line begun in one output frame and not yet ended */
    size_t line_len;
};

#define LINE_MAX_BYTES (DRV_STRING_MAX + 512) /* a longer partial line is dropped */

static drv_batch_live *live_of(drv_ctask *ct)
{
    if (ct->batch_live)
        return ct->batch_live;
    drv_batch_live *b = drv_xcalloc(1, sizeof *b);
    char *const *names = ct->task.members;
    b->n = drv_strv_len(names);
    b->m = drv_xcalloc(b->n ? b->n : 1, sizeof *b->m);
    b->n_slots = 2 * b->n + 1;
    b->slot = drv_xcalloc(b->n_slots, sizeof *b->slot);
    for (size_t i = 0; i < b->n; i++) {
        b->m[i].name = names[i];
        b->m[i].key = drv_test_key(names[i]);
        size_t k = (size_t)(b->m[i].key % b->n_slots);
        while (b->slot[k])
            k = (k + 1) % b->n_slots;
        b->slot[k] = (uint32_t)i + 1;
    }
    ct->batch_live = b;
    return b;
}

static void mark_recorded(void *ctx, const char *name)
{
    drv_batch_live *b = ctx;
    member *x = find(b->m, b->slot, b->n_slots, name, strlen(name));
    if (x)
        x->recorded = true;
}

void drv_members_recovered(drv_coordinator *c, drv_ctask *ct)
{
    if (!ct->task.members)
        return;
    drv_error err;
    if (drv_store_batch_members(c->store, ct->run_id, ct->task.id, mark_recorded, live_of(ct),
                                &err) < 0)
        drv_coord_fatal(c, &err);
}

void drv_members_live_free(drv_ctask *ct)
{
    drv_batch_live *b = ct->batch_live;
    if (!b)
        return;
    free(b->m);
    free(b->slot);
    free(b->line);
    free(b);
    ct->batch_live = NULL;
}

/* Takes one line p[0..l) (after the marker). Returns the member it ended, or NULL. */
static member *take_line(drv_batch_live *b, const char *p, size_t l)
{
    if (l > 6 && strncmp(p, "start ", 6) == 0) {
        member *x = find(b->m, b->slot, b->n_slots, p + 6, l - 6);
        if (x)
            x->started = true;
        return NULL;
    }
    char outcome[16];
    double dur = 0;
    int used = 0;
    char head[64]; /* sscanf needs a terminated string: the outcome and the seconds */
    size_t hl = l < sizeof head - 1 ? l : sizeof head - 1;
    memcpy(head, p, hl);
    head[hl] = '\0';
    if (sscanf(head, "%15s %lf %n", outcome, &dur, &used) != 2 || used <= 0 || (size_t)used >= l)
        return NULL;
    const char *id = p + used;
    const char *tab = memchr(id, '\t', l - (size_t)used);
    size_t idl = tab ? (size_t)(tab - id) : l - (size_t)used;
    member *x = find(b->m, b->slot, b->n_slots, id, idl);
    if (!x || x->recorded)
        return NULL;
    x->started = x->ended = true;
    snprintf(x->outcome, sizeof x->outcome, "%s", outcome);
    x->duration_s = dur >= 0 ? dur : 0;
    x->msg = tab ? tab + 1 : NULL;
    x->msg_len = tab ? (size_t)(p + l - tab - 1) : 0;
    return x;
}

static const char mark[] = "@@drover@@ ";

/* Reads the marked lines of text into the members (the finished frame's tail). */
static void read_lines(drv_batch_live *b, const char *text)
{
    for (const char *p = text ? strstr(text, mark) : NULL; p; p = strstr(p, mark)) {
        p += sizeof mark - 1;
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        take_line(b, p, l);
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
    if (!f) { /* a failure of a run begun before a restart is in the store only */
        uint64_t old_id;
        uint32_t old_attempts;
        int got =
            drv_store_member_failed(c->store, batch->run_id, x->name, &old_id, &old_attempts, &err);
        if (got < 0)
            drv_coord_fatal(c, &err);
        if (got > 0)
            f = fail_add(c, batch->run_id, x->key, old_id, old_attempts);
    }
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

/* Stores member x's result (its end, or its crash when it has none), once. */
static void store_member(drv_coordinator *c, const drv_ctask *batch, drv_wref w, member *x,
                         bool timed_out, double now)
{
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    const char *worker = k ? k->name : NULL;
    char reason[DRV_STRING_MAX];
    if (!x->ended) {
        snprintf(x->outcome, sizeof x->outcome, "error");
        snprintf(reason, sizeof reason, "error: %s",
                 timed_out ? "the batch timed out while it ran"
                           : "crashed the batch's process (no result came back)");
    } else if (x->msg_len) {
        /* The message is the test's output: invalid UTF-8 becomes U+FFFD (as the API
         * shows output), so the reason stays a JSON string. */
        json_t *text = drv_json_text(x->msg, x->msg_len);
        snprintf(reason, sizeof reason, "%s: %s", x->outcome,
                 text && json_string_value(text) ? json_string_value(text) : "?");
        json_decref(text);
    } else {
        snprintf(reason, sizeof reason, "%s", x->outcome);
    }
    const char *colon = strchr(reason, ':');
    record(c, batch, worker, x, reason, colon ? colon + 2 : reason, now);
    x->recorded = true;
    x->msg = NULL; /* it pointed into a frame or tail that goes */
    x->msg_len = 0;
    if (x->ended && strcmp(x->outcome, "skipped") != 0)
        drv_balancer_learn_member(c->bal, w, x->name, batch->task.family, x->duration_s);
}

void drv_members_output(drv_coordinator *c, drv_ctask *ct, drv_wref w, const char *data, size_t len,
                        double now)
{
    if (!ct->task.members || ct->paired)
        return; /* a batch is never copied (placement.c); a paired one waits for its end */
    drv_batch_live *b = live_of(ct);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (b->line_len + take <= LINE_MAX_BYTES) {
            b->line = drv_xrealloc(b->line, b->line_len + take + 1);
            memcpy(b->line + b->line_len, data, take);
            b->line_len += take;
        } else {
            b->line_len = LINE_MAX_BYTES + 1; /* too long: dropped at its end */
        }
        if (!nl)
            return;
        if (b->line_len <= LINE_MAX_BYTES && b->line_len > sizeof mark - 1 &&
            memcmp(b->line, mark, sizeof mark - 1) == 0) {
            b->line[b->line_len] = '\0';
            member *x = take_line(b, b->line + sizeof mark - 1, b->line_len - (sizeof mark - 1));
            if (x)
                store_member(c, ct, w, x, false, now);
        }
        b->line_len = 0;
        data = nl + 1;
        len -= take + 1;
    }
}

bool drv_members_finished(drv_coordinator *c, drv_ctask *batch, drv_wref w,
                          const drv_store_result *res, double now)
{
    if (!batch->task.members)
        return false;
    drv_batch_live *b = live_of(batch);
    b->line_len = 0;
    read_lines(b, res->output_tail);
    bool all = b->n > 0;
    for (size_t i = 0; i < b->n; i++) {
        member *x = &b->m[i];
        all &= x->ended || x->recorded;
        if (!x->recorded && x->started) /* else: stored already, or never ran (rerun) */
            store_member(c, batch, w, x, res->timed_out, now);
    }
    /* The next attempt (the batch lost its worker) starts its members' lines afresh; a
     * member stored keeps its result. */
    for (size_t i = 0; i < b->n; i++)
        b->m[i].started = b->m[i].ended = false;
    return all;
}
