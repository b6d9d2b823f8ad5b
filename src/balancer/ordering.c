/* ordering.c - tests that wait for others (after) and tests that exclude each other
 * (locks, exclusive); see balancer.h for what they mean.
 *
 * Only tests that use them pay: such a test gets an ordering record (b->orders, found
 * through b->order_of[tref]) and flags in its task record; every other test costs the
 * placement one flag test and one counter test.
 *
 * after: a waiting test is off the queue (TF_WAITING) and counts the tests it still
 * waits for. When one of those is final, the balancer's final decision appends its
 * dependents to the settled list; drv_balancer_place() first works through that list
 * (drv_order_settle), so a test that becomes ready is queued, and one to be skipped
 * becomes final with a decision of its own, which settles its own dependents in turn.
 *
 * locks: checked when the best queued test surfaces at placement. A test whose lock is
 * held is taken off the queue and parked on that lock (TF_PARKED); when the lock's last
 * holder leaves its worker, the tests parked on it go back to the queue with their key
 * and sequence (so in their old order) and compete again: a held lock costs each
 * waiter one park and one push, not a scan. A counted lock ("NAME#N", suite2) has N
 * slots: a test parks when all N are held, and every release that frees one wakes the
 * parked tests to compete again (the losers park again: a cap of N over M tests costs
 * O(M) per release, fine for a CTest-sized run).
 *
 * exclusive: an exclusive test is placed only when no test is assigned or running. Once
 * one has surfaced (excl_pending) or is held (excl_held), the gate is closed: every
 * other test that surfaces is parked behind it, and the fleet drains; the last release
 * queues the exclusive tests again, and when none is pending or held, the gate opens
 * and the parked tests are queued again.
 *
 * Parked and settled entries are links (reference + submission seq) checked when used:
 * a test cancelled or freed meanwhile (its record reused) is simply skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/engine.h"
#include "core/predictor.h"

/* ---- records ---- */

static drv_order_rec *rec_of(const drv_balancer *b, drv_tref t)
{
    if (!b->order_of || t >= b->n_tasks || b->order_of[t] == 0)
        return NULL;
    return &b->orders[b->order_of[t] - 1];
}

/* t's record, made on first need. */
static drv_order_rec *rec_get(drv_balancer *b, drv_tref t)
{
    drv_order_rec *r = rec_of(b, t);
    if (r)
        return r;
    if (!b->order_of)
        b->order_of = drv_xcalloc(b->cap_tasks, sizeof *b->order_of);
    uint32_t i;
    if (b->free_order) {
        i = b->free_order - 1;
        b->free_order = b->orders[i].next_free;
    } else {
        if (b->n_orders == b->cap_orders) {
            b->cap_orders = b->cap_orders ? b->cap_orders * 2 : 64;
            b->orders = drv_xrealloc(b->orders, (size_t)b->cap_orders * sizeof *b->orders);
        }
        i = b->n_orders++;
    }
    r = &b->orders[i];
    memset(r, 0, sizeof *r);
    b->order_of[t] = i + 1;
    b->tasks[t].flags |= TF_ORDERED;
    return r;
}

void drv_order_free(drv_balancer *b, drv_tref t)
{
    drv_order_rec *r = rec_of(b, t);
    if (!r)
        return;
    free(r->locks);
    free(r->dependents);
    uint32_t i = b->order_of[t] - 1;
    memset(r, 0, sizeof *r);
    r->next_free = b->free_order;
    b->free_order = i + 1;
    b->order_of[t] = 0;
}

void drv_order_destroy(drv_balancer *b)
{
    for (uint32_t i = 0; i < b->n_orders; i++) {
        free(b->orders[i].locks);
        free(b->orders[i].dependents);
    }
    for (uint32_t i = 0; i < b->n_locks; i++) {
        free(b->locks[i].name);
        free(b->locks[i].parked);
    }
    free(b->orders);
    free(b->order_of);
    free(b->locks);
    free(b->lock_index);
    free(b->settled);
    free(b->gate_parked);
    free(b->excl_parked);
}

static void link_push(drv_task_link **v, uint32_t *n, uint32_t *cap, drv_task_link l)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = drv_xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    (*v)[(*n)++] = l;
}

static drv_task_link link_of(const drv_balancer *b, drv_tref t)
{
    return (drv_task_link){.t = t, .seq = b->tasks[t].seq};
}

/* True when l still names the queued test it was made for, with flag set. */
static bool link_valid(const drv_balancer *b, drv_task_link l, uint8_t flag)
{
    return l.t < b->n_tasks && b->tasks[l.t].seq == l.seq &&
           b->tasks[l.t].state == DRV_TASK_QUEUED && (b->tasks[l.t].flags & flag);
}

/* ---- lock names ---- */

/* The id of the lock called name, interned on first use. */
static uint32_t lock_id(drv_balancer *b, const char *name)
{
    uint64_t h = drv_test_key(name);
    if (b->lock_index_cap) {
        for (uint32_t i = (uint32_t)h & (b->lock_index_cap - 1);;
             i = (i + 1) & (b->lock_index_cap - 1)) {
            uint32_t v = b->lock_index[i];
            if (v == 0)
                break;
            if (strcmp(b->locks[v - 1].name, name) == 0)
                return v - 1;
        }
    }
    if (b->n_locks == b->cap_locks) {
        b->cap_locks = b->cap_locks ? b->cap_locks * 2 : 16;
        b->locks = drv_xrealloc(b->locks, (size_t)b->cap_locks * sizeof *b->locks);
    }
    uint32_t id = b->n_locks++;
    memset(&b->locks[id], 0, sizeof b->locks[id]);
    b->locks[id].name = drv_xstrdup(name);
    if (2 * b->n_locks > b->lock_index_cap) { /* rebuild at twice the size */
        free(b->lock_index);
        b->lock_index_cap = b->lock_index_cap ? b->lock_index_cap * 2 : 32;
        b->lock_index = drv_xcalloc(b->lock_index_cap, sizeof *b->lock_index);
        for (uint32_t k = 0; k < b->n_locks; k++) {
            uint32_t i = (uint32_t)drv_test_key(b->locks[k].name) & (b->lock_index_cap - 1);
            while (b->lock_index[i])
                i = (i + 1) & (b->lock_index_cap - 1);
            b->lock_index[i] = k + 1;
        }
    } else {
        uint32_t i = (uint32_t)h & (b->lock_index_cap - 1);
        while (b->lock_index[i])
            i = (i + 1) & (b->lock_index_cap - 1);
        b->lock_index[i] = id + 1;
    }
    return id;
}

/* The lock a locks entry names, interned: "NAME#N" is lock NAME with N slots (N a
 * number 1..100000, set by the latest use); anything else is a lock of one slot. */
static uint32_t lock_of_entry(drv_balancer *b, const char *entry)
{
    const char *hash = strrchr(entry, '#');
    char *end = NULL;
    long n =
        hash && hash != entry && hash[1] >= '0' && hash[1] <= '9' ? strtol(hash + 1, &end, 10) : 0;
    if (!end || *end || n < 1 || n > 100000)
        return lock_id(b, entry);
    char name[272];
    snprintf(name, sizeof name, "%.*s", (int)(hash - entry), entry);
    uint32_t id = lock_id(b, name);
    b->locks[id].slots = (uint32_t)n;
    return id;
}

/* How many tests may hold lock l at once. */
static uint32_t lock_slots(const drv_lock *l)
{
    return l->slots ? l->slots : 1;
}

/* ---- submission ---- */

int drv_order_attach(drv_balancer *b, drv_tref t, const drv_task *task, const drv_tref *after,
                     size_t n_after, uint32_t after_not_passed, drv_error *err)
{
    bool locking = task->exclusive || (task->locks && task->locks[0]);
    if (!locking && n_after == 0 && after_not_passed == 0)
        return 0;
    for (size_t i = 0; i < n_after; i++) {
        drv_tref d = after[i];
        if (d >= b->n_tasks || d == t || b->tasks[d].state == TASK_FREE ||
            drv_task_state_final((drv_task_state)b->tasks[d].state))
            return drv_error_set(err, "test \"%s\": after[%zu]: reference %u is not a live test",
                                 task->name, i, d);
    }
    drv_order_rec *r = rec_get(b, t);
    r->run_anyway = task->run_anyway;
    r->exclusive = task->exclusive;
    if (locking) {
        b->tasks[t].flags |= TF_LOCKING;
        size_t n = drv_strv_len(task->locks);
        r->locks = n ? drv_xmalloc(n * sizeof *r->locks) : NULL;
        for (size_t i = 0; i < n; i++) {
            uint32_t id = lock_of_entry(b, task->locks[i]);
            bool seen = false;
            for (uint32_t k = 0; k < r->n_locks && !seen; k++)
                seen = r->locks[k] == id;
            if (!seen)
                r->locks[r->n_locks++] = id;
        }
    }
    drv_task_link me = link_of(b, t);
    for (size_t i = 0; i < n_after; i++) {
        drv_order_rec *d = rec_get(b, after[i]);
        r = rec_of(b, t); /* rec_get may have moved the records */
        link_push(&d->dependents, &d->n_dependents, &d->cap_dependents, me);
    }
    r->waiting_on = (uint32_t)n_after;
    r->not_passed = after_not_passed;
    if (n_after == 0 && after_not_passed > 0 && !r->run_anyway) {
        /* Everything it runs after is final already, and not all passed: it is skipped at
         * the next placement, through the settled list like any other. */
        r->waiting_on = 1;
        if (b->n_settled == b->cap_settled) {
            b->cap_settled = b->cap_settled ? b->cap_settled * 2 : 64;
            b->settled = drv_xrealloc(b->settled, (size_t)b->cap_settled * sizeof *b->settled);
        }
        b->settled[b->n_settled++] = (drv_settled){.dependent = me, .passed = true};
    }
    if (r->waiting_on > 0)
        b->tasks[t].flags |= TF_WAITING;
    return 0;
}

/* ---- waking parked tests ---- */

/* Queues again the still-parked tests of a list and empties it. */
static void wake(drv_balancer *b, drv_task_link *v, uint32_t *n)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (!link_valid(b, v[i], TF_PARKED))
            continue;
        drv_btask *r = &b->tasks[v[i].t];
        r->flags &= (uint8_t)~TF_PARKED;
        drv_queue_push(b->queue, r->shape,
                       (drv_queue_entry){.key = r->key, .seq = r->seq, .ref = v[i].t});
    }
    *n = 0;
}

/* Opens the gate when no exclusive test is pending or held. */
static void gate_check(drv_balancer *b)
{
    if (b->excl_held == 0 && b->excl_pending == 0 && b->n_gate_parked)
        wake(b, b->gate_parked, &b->n_gate_parked);
}

void drv_order_final(drv_balancer *b, drv_tref t, bool passed)
{
    drv_btask *tr = &b->tasks[t];
    if (tr->flags & TF_EXCL_PENDING) { /* cancelled, skipped or unschedulable while waiting */
        tr->flags &= (uint8_t)~TF_EXCL_PENDING;
        b->excl_pending--;
        gate_check(b);
    }
    drv_order_rec *r = rec_of(b, t);
    if (!r || r->n_dependents == 0)
        return;
    if (b->n_settled + r->n_dependents > b->cap_settled) {
        while (b->n_settled + r->n_dependents > b->cap_settled)
            b->cap_settled = b->cap_settled ? b->cap_settled * 2 : 64;
        b->settled = drv_xrealloc(b->settled, (size_t)b->cap_settled * sizeof *b->settled);
    }
    for (uint32_t i = 0; i < r->n_dependents; i++)
        b->settled[b->n_settled++] = (drv_settled){.dependent = r->dependents[i], .passed = passed};
    r->n_dependents = 0;
}

size_t drv_order_settle(drv_balancer *b, drv_decision *out, size_t max)
{
    size_t n = 0;
    while (b->settled_head < b->n_settled && n < max) {
        drv_settled s = b->settled[b->settled_head++];
        if (!link_valid(b, s.dependent, TF_WAITING))
            continue;
        drv_tref t = s.dependent.t;
        drv_btask *tr = &b->tasks[t];
        drv_order_rec *r = rec_of(b, t);
        if (!s.passed)
            r->not_passed++;
        if (--r->waiting_on > 0)
            continue;
        tr->flags &= (uint8_t)~TF_WAITING;
        if (r->not_passed > 0 && !r->run_anyway) {
            tr->state = DRV_TASK_SKIPPED;
            b->n_queued--;
            b->skipped++;
            /* Appends its own dependents to the list (which may move). */
            drv_engine_decision(b, &out[n++], DRV_D_FINAL, DRV_R_AFTER_NOT_PASSED, t, DRV_REF_NONE,
                                DRV_REF_NONE);
            drv_engine_free_task(b, t);
        } else {
            drv_queue_push(b->queue, tr->shape,
                           (drv_queue_entry){.key = tr->key, .seq = tr->seq, .ref = t});
        }
    }
    if (b->settled_head == b->n_settled)
        b->settled_head = b->n_settled = 0;
    return n;
}

/* ---- placement ---- */

static void park(drv_balancer *b, drv_tref t, drv_task_link **v, uint32_t *n, uint32_t *cap)
{
    b->tasks[t].flags |= TF_PARKED;
    link_push(v, n, cap, link_of(b, t));
}

bool drv_order_admit(drv_balancer *b, drv_tref t)
{
    drv_btask *tr = &b->tasks[t];
    const drv_order_rec *r = (tr->flags & TF_LOCKING) ? rec_of(b, t) : NULL;
    if (r && r->exclusive) {
        if (!(tr->flags & TF_EXCL_PENDING)) {
            tr->flags |= TF_EXCL_PENDING;
            b->excl_pending++;
        }
        if (b->n_assigned + b->n_running > 0) {
            park(b, t, &b->excl_parked, &b->n_excl_parked, &b->cap_excl_parked);
            return false;
        }
    } else if (b->excl_held || b->excl_pending) {
        park(b, t, &b->gate_parked, &b->n_gate_parked, &b->cap_gate_parked);
        return false;
    }
    for (uint32_t i = 0; r && i < r->n_locks; i++) {
        drv_lock *l = &b->locks[r->locks[i]];
        if (l->holders >= lock_slots(l)) {
            park(b, t, &l->parked, &l->n_parked, &l->cap_parked);
            return false;
        }
    }
    return true;
}

void drv_order_acquire(drv_balancer *b, drv_tref t)
{
    drv_btask *tr = &b->tasks[t];
    const drv_order_rec *r = rec_of(b, t);
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n_locks; i++)
        b->locks[r->locks[i]].holders++;
    if (r->exclusive) {
        b->excl_held++;
        if (tr->flags & TF_EXCL_PENDING) {
            tr->flags &= (uint8_t)~TF_EXCL_PENDING;
            b->excl_pending--;
        }
    }
}

void drv_order_release(drv_balancer *b, drv_tref t)
{
    const drv_order_rec *r = (b->tasks[t].flags & TF_LOCKING) ? rec_of(b, t) : NULL;
    for (uint32_t i = 0; r && i < r->n_locks; i++) {
        drv_lock *l = &b->locks[r->locks[i]];
        /* A slot is free: the parked tests compete again (those that lose park again). */
        if (--l->holders < lock_slots(l) && l->n_parked)
            wake(b, l->parked, &l->n_parked);
    }
    if (r && r->exclusive)
        b->excl_held--;
    if (b->n_excl_parked && b->n_assigned + b->n_running == 0)
        wake(b, b->excl_parked, &b->n_excl_parked);
    gate_check(b);
}

/* ---- explaining ---- */

void drv_order_explain(const drv_balancer *b, drv_tref t, char *buf, size_t len)
{
    const drv_btask *tr = &b->tasks[t];
    const drv_order_rec *r = rec_of(b, t);
    if ((tr->flags & TF_WAITING) && r) {
        snprintf(buf, len, "It runs after other tests: %u of them %s not finished yet%s.",
                 r->waiting_on, r->waiting_on == 1 ? "is" : "are",
                 r->not_passed ? (r->run_anyway ? " (one did not pass; it runs anyway)"
                                                : " (one did not pass: it will be skipped)")
                               : "");
        return;
    }
    if (r && r->exclusive) {
        snprintf(buf, len,
                 "It runs alone (exclusive) and waits for the %llu tests assigned or running to"
                 " finish.",
                 (unsigned long long)(b->n_assigned + b->n_running));
        return;
    }
    for (uint32_t i = 0; r && i < r->n_locks; i++) {
        const drv_lock *l = &b->locks[r->locks[i]];
        if (l->holders >= lock_slots(l)) {
            if (lock_slots(l) > 1)
                snprintf(buf, len, "It waits for lock \"%s\", whose %u slots other tests hold.",
                         l->name, lock_slots(l));
            else
                snprintf(buf, len, "It waits for lock \"%s\", which another test holds.", l->name);
            return;
        }
    }
    snprintf(buf, len,
             "It waits while a test that runs alone (exclusive) waits for the fleet to empty or"
             " runs.");
}
