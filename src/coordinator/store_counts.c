/* store_counts.c - counts by state of the runs this store created, kept in memory so a
 * run's summary is not a scan of its tasks: a dashboard or `drover wait` polling a run
 * of 100,000 tests made the coordinator count them all at every poll (a tenth of its
 * CPU in bench/e2e.sh). The store's own writes are the only way a task's state changes,
 * so it sees every change: an insert adds one to (run, state), an update moves one from
 * the task's previous state (remembered here, a byte per task inserted since the store
 * was opened) to the new one. The state counted is the one queries show
 * (DRV_STORE_TASKS_JOIN): a 'queued' row with an open attempt counts as assigned or
 * running, so the byte holds the row's state (low 4 bits) and whether the task has an
 * open attempt and which (DRV_STORE_OPEN_*, bits 4-5), kept by the attempt writes.
 *
 * Undo. Every change since the last commit is journaled; drv_store_mark_undo() replays
 * the journal back to the mark, and a rollback (asked for, or done by SQLite after an
 * error) replays all of it, so the counts always equal what the file holds for this
 * connection. A run whose tasks cannot all be followed (a task inserted with an explicit
 * id out of sequence) is dropped from the counts for good; its summary is then counted
 * by query, as a run created by an earlier process is.
 *
 * The whole store's counts by state are kept the same way (GET /api/v1/status, the
 * dashboard's snapshot every second and /metrics counted every row each time: a scan
 * of the whole file, 7 s a call with 36 million tests): counted once at open, then moved
 * by every write. A task that can still change is either inserted by this store or found
 * not final at start (drv_store_recover registers those, with their bytes, in a map); a
 * change to any other task (a final one, which the coordinator never writes again)
 * makes the counts unknown, and drv_store_count() counts by query from then on.
 *
 * Memory: 5 bytes per task inserted since the store was opened, 80 per run created, 16
 * per task found not final at start. */
#include <stdlib.h>
#include <string.h>

#include "coordinator/store_sqlite.h"
#include "core/idmap.h"

#define NO_RUN  UINT32_MAX       /* in run[]: no task inserted with this id */
#define RUNLESS (UINT32_MAX - 1) /* in run[]: a task without a run (or of no run counted) */
#define MAX_GAP (1u << 20)       /* ids skipped by an explicit id before the run is dropped */

typedef struct live_run {
    int64_t id;
    bool tracked;
    uint64_t by_state[DRV_TASK_STATE_COUNT];
} live_run;

enum { J_RUN, J_INSERT, J_UPDATE, J_OLDER };

#define ROW_STATE 0x0f
#define OPEN_BITS 4

/* The state a task with byte b is counted under. */
static int shown(uint8_t b)
{
    int open = b >> OPEN_BITS;
    if ((b & ROW_STATE) != DRV_TASK_QUEUED || open == DRV_STORE_OPEN_NONE)
        return b & ROW_STATE;
    return open == DRV_STORE_OPEN_ASSIGNED ? DRV_TASK_ASSIGNED : DRV_TASK_RUNNING;
}

typedef struct journal_entry {
    uint8_t kind, from, to; /* bytes as in drv_store_live.state */
    uint32_t run;           /* index into runs */
    int64_t id;             /* task id (J_INSERT, J_UPDATE) */
} journal_entry;

struct drv_store_live {
    live_run *runs; /* in id order: runs are created with increasing ids */
    size_t n_runs, cap_runs;
    int64_t first_id; /* id of the first task inserted (0: none yet) */
    uint8_t *state;   /* by id - first_id: row state | open attempt << OPEN_BITS */
    uint32_t *run;    /* by id - first_id: index into runs, RUNLESS or NO_RUN */
    size_t n, cap;
    drv_idmap older;                       /* tasks found not final at start: id -> byte */
    uint64_t totals[DRV_TASK_STATE_COUNT]; /* the whole store, as shown */
    bool totals_known;
    journal_entry *j; /* since the last commit */
    size_t n_j, cap_j;
    size_t *marks; /* journal lengths at the open marks, innermost last */
    size_t n_marks, cap_marks;
};

static drv_store_live *live(drv_store *s)
{
    if (!s->live)
        s->live = drv_xcalloc(1, sizeof *s->live);
    return s->live;
}

static void journal(drv_store_live *l, journal_entry e)
{
    if (l->n_j == l->cap_j) {
        l->cap_j = l->cap_j ? l->cap_j * 2 : 256;
        l->j = drv_xrealloc(l->j, l->cap_j * sizeof *l->j);
    }
    l->j[l->n_j++] = e;
}

/* The index of run id in l->runs, or NO_RUN. */
static uint32_t find_run(const drv_store_live *l, int64_t id)
{
    size_t lo = 0, hi = l->n_runs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->runs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n_runs && l->runs[lo].id == id ? (uint32_t)lo : NO_RUN;
}

void drv_store_live_run_created(drv_store *s, int64_t run_id)
{
    drv_store_live *l = live(s);
    if (l->n_runs && l->runs[l->n_runs - 1].id >= run_id)
        return; /* out of order (cannot happen with SQLite's rowids): leave it to queries */
    if (l->n_runs == l->cap_runs) {
        l->cap_runs = l->cap_runs ? l->cap_runs * 2 : 16;
        l->runs = drv_xrealloc(l->runs, l->cap_runs * sizeof *l->runs);
    }
    l->runs[l->n_runs] = (live_run){.id = run_id, .tracked = true};
    journal(l, (journal_entry){.kind = J_RUN, .run = (uint32_t)l->n_runs});
    l->n_runs++;
}

void drv_store_live_insert(drv_store *s, int64_t id, int64_t run_id, drv_task_state st)
{
    drv_store_live *l = live(s);
    uint32_t r = run_id ? find_run(l, run_id) : NO_RUN;
    if (!l->first_id)
        l->first_id = id;
    if (id < l->first_id || (uint64_t)(id - l->first_id) >= (uint64_t)l->n + MAX_GAP) {
        if (r != NO_RUN)
            l->runs[r].tracked = false; /* cannot be followed: queries count it */
        l->totals_known = false;        /* nor can the whole store's counts */
        return;
    }
    size_t k = (size_t)(id - l->first_id);
    if (k >= l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap <= k)
            cap *= 2;
        l->state = drv_xrealloc(l->state, cap);
        l->run = drv_xrealloc(l->run, cap * sizeof *l->run);
        l->cap = cap;
    }
    for (; l->n <= k; l->n++)
        l->run[l->n] = NO_RUN;
    l->totals[shown((uint8_t)st)]++;
    l->state[k] = (uint8_t)st;
    l->run[k] = r == NO_RUN ? RUNLESS : r;
    if (r != NO_RUN && l->runs[r].tracked)
        l->runs[r].by_state[st]++;
    journal(l, (journal_entry){.kind = J_INSERT, .to = (uint8_t)st, .run = r, .id = id});
}

/* The byte of a task found not final at start, or false. */
static bool older_byte(const drv_store_live *l, int64_t id, uint8_t *b)
{
    uint32_t v;
    if (id <= 0 || !drv_idmap_get(&l->older, (uint64_t)id, &v))
        return false;
    *b = (uint8_t)v;
    return true;
}

/* Sets task id's byte to what change makes of it (keep bits of the old one, or add). */
static void set_byte(drv_store *s, int64_t id, uint8_t keep, uint8_t add)
{
    drv_store_live *l = live(s);
    uint8_t from;
    bool mine = l->first_id && id >= l->first_id && (uint64_t)(id - l->first_id) < l->n &&
                l->run[id - l->first_id] != NO_RUN;
    if (!mine && !older_byte(l, id, &from)) {
        l->totals_known = false; /* a task the counts cannot follow */
        return;
    }
    if (!mine) {
        uint8_t to = (uint8_t)((from & keep) | add);
        l->totals[shown(from)]--;
        l->totals[shown(to)]++;
        drv_idmap_put(&l->older, (uint64_t)id, to);
        journal(l,
                (journal_entry){.kind = J_OLDER, .from = from, .to = to, .run = NO_RUN, .id = id});
        return;
    }
    size_t k = (size_t)(id - l->first_id);
    uint32_t r = l->run[k];
    from = l->state[k];
    uint8_t to = (uint8_t)((from & keep) | add);
    if (r < l->n_runs && l->runs[r].tracked) {
        l->runs[r].by_state[shown(from)]--;
        l->runs[r].by_state[shown(to)]++;
    }
    l->totals[shown(from)]--;
    l->totals[shown(to)]++;
    l->state[k] = to;
    journal(l, (journal_entry){.kind = J_UPDATE, .from = from, .to = to, .run = r, .id = id});
}

void drv_store_live_update(drv_store *s, int64_t id, drv_task_state st)
{
    set_byte(s, id, (uint8_t)~ROW_STATE, (uint8_t)st);
}

void drv_store_live_attempt(drv_store *s, int64_t id, int open, int only_if)
{
    drv_store_live *l = s->live;
    if (only_if != DRV_STORE_OPEN_ANY && l && l->first_id && id >= l->first_id &&
        (uint64_t)(id - l->first_id) < l->n &&
        l->state[id - l->first_id] >> OPEN_BITS != (uint8_t)only_if)
        return; /* the guarded write will not change the row either */
    set_byte(s, id, ROW_STATE, (uint8_t)(open << OPEN_BITS));
}

/* Undoes the journal back to length keep, newest first. */
static void replay(drv_store_live *l, size_t keep)
{
    while (l->n_j > keep) {
        journal_entry *e = &l->j[--l->n_j];
        live_run *r = e->run < l->n_runs ? &l->runs[e->run] : NULL;
        size_t k = (size_t)(e->id - l->first_id);
        switch (e->kind) {
        case J_RUN:
            l->n_runs = e->run; /* the newest run: it never existed */
            break;
        case J_INSERT:
            if (r && r->tracked)
                r->by_state[shown(e->to)]--;
            l->totals[shown(e->to)]--;
            l->run[k] = NO_RUN;
            while (l->n > 0 && l->run[l->n - 1] == NO_RUN)
                l->n--; /* SQLite gives the ids of rolled-back rows out again */
            if (l->n == 0)
                l->first_id = 0;
            break;
        case J_UPDATE:
            if (r && r->tracked) {
                r->by_state[shown(e->to)]--;
                r->by_state[shown(e->from)]++;
            }
            l->totals[shown(e->to)]--;
            l->totals[shown(e->from)]++;
            l->state[k] = e->from;
            break;
        case J_OLDER:
            l->totals[shown(e->to)]--;
            l->totals[shown(e->from)]++;
            drv_idmap_put(&l->older, (uint64_t)e->id, e->from);
            break;
        }
    }
}

void drv_store_live_commit(drv_store *s)
{
    if (s->live) {
        s->live->n_j = 0;
        s->live->n_marks = 0;
    }
}

void drv_store_live_rollback(drv_store *s)
{
    if (s->live) {
        replay(s->live, 0);
        s->live->n_marks = 0;
    }
}

void drv_store_live_mark(drv_store *s)
{
    drv_store_live *l = live(s);
    if (l->n_marks == l->cap_marks) {
        l->cap_marks = l->cap_marks ? l->cap_marks * 2 : 4;
        l->marks = drv_xrealloc(l->marks, l->cap_marks * sizeof *l->marks);
    }
    l->marks[l->n_marks++] = l->n_j;
}

void drv_store_live_mark_release(drv_store *s)
{
    if (s->live && s->live->n_marks)
        s->live->n_marks--;
}

void drv_store_live_mark_undo(drv_store *s)
{
    drv_store_live *l = s->live;
    if (l && l->n_marks)
        replay(l, l->marks[--l->n_marks]);
}

void drv_store_live_totals_init(drv_store *s, const drv_store_counts *c)
{
    drv_store_live *l = live(s);
    memcpy(l->totals, c->by_state, sizeof l->totals);
    l->totals_known = true;
}

void drv_store_live_recovered(drv_store *s, int64_t id, drv_task_state shown_state)
{
    drv_store_live *l = live(s);
    uint8_t b = (uint8_t)shown_state;
    if (shown_state == DRV_TASK_ASSIGNED)
        b = (uint8_t)(DRV_TASK_QUEUED | DRV_STORE_OPEN_ASSIGNED << OPEN_BITS);
    else if (shown_state == DRV_TASK_RUNNING)
        b = (uint8_t)(DRV_TASK_QUEUED | DRV_STORE_OPEN_RUNNING << OPEN_BITS);
    if (id > 0 && !(l->first_id && id >= l->first_id))
        drv_idmap_put(&l->older, (uint64_t)id, b);
}

bool drv_store_live_totals(drv_store *s, drv_store_counts *out)
{
    drv_store_live *l = s->live;
    if (!l || !l->totals_known)
        return false;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < DRV_TASK_STATE_COUNT; i++) {
        out->by_state[i] = l->totals[i];
        out->total += l->totals[i];
    }
    return true;
}

bool drv_store_live_counts(drv_store *s, int64_t run_id, drv_store_counts *out)
{
    drv_store_live *l = s->live;
    uint32_t r = l ? find_run(l, run_id) : NO_RUN;
    if (r == NO_RUN || !l->runs[r].tracked)
        return false;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < DRV_TASK_STATE_COUNT; i++) {
        out->by_state[i] = l->runs[r].by_state[i];
        out->total += out->by_state[i];
    }
    return true;
}

void drv_store_live_free(drv_store *s)
{
    drv_store_live *l = s->live;
    if (!l)
        return;
    free(l->runs);
    free(l->state);
    free(l->run);
    free(l->j);
    free(l->marks);
    drv_idmap_clear(&l->older);
    free(l);
    s->live = NULL;
}

void drv_store_live_pruned(drv_store *s, int64_t run_id, const uint64_t *by_state)
{
    drv_store_live *l = s->live;
    if (!l)
        return;
    for (int i = 0; i < DRV_TASK_STATE_COUNT; i++)
        l->totals[i] -= by_state[i] < l->totals[i] ? by_state[i] : l->totals[i];
    uint32_t r = run_id ? find_run(l, run_id) : NO_RUN;
    if (r != NO_RUN)
        l->runs[r].tracked = false; /* its summary is asked of SQLite, which has it no more */
}
