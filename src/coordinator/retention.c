/* retention.c - the coordinator's side of store retention (store.h, "retention"): on
 * the tick, one small step at a time, the store forgets finished runs and events older
 * than opt.retention_days (the metrics history has its own: sampler.c), and the output
 * tails of attempts older than opt.tails_retention_s, in runs still open too. A step is a few
 * index reads on the loop thread and deletions executed by the store's writer in the turn's commit;
 * the next step waits until that commit is durable (reads see committed data only). While there is
 * a backlog a step runs every BUSY_EVERY_S, else every IDLE_EVERY_S (or a tenth of the retention,
 * when that is shorter). */
#include "coordinator/coord.h"

#define BUSY_EVERY_S 0.1 /* up to 20,000 tests a second when behind, a third of the writer */
#define IDLE_EVERY_S 60.0
#define BATCH        2000 /* tests and events per step */
#define DAY_S        86400.0

double drv_retention_cutoff(const drv_coordinator *c, double now)
{
    return c->opt.retention_days > 0 ? now - c->opt.retention_days * DAY_S : 0;
}

/* How long output tails are kept (s); <= 0: for ever. */
static double tails_keep_s(const drv_coordinator *c)
{
    double t = c->opt.tails_retention_s;
    return t == 0 ? c->opt.retention_days * DAY_S : t;
}

void drv_retention_tick(drv_coordinator *c, double now)
{
    drv_retention *r = &c->retention;
    double keep = c->opt.retention_days > 0 ? c->opt.retention_days * DAY_S : 0;
    double tails = tails_keep_s(c);
    if ((keep <= 0 && tails <= 0) || now < r->next || r->wait_seq > c->durable_seq)
        return;
    drv_store_pruned p = {0};
    uint64_t tails_n = 0;
    drv_error err;
    int more = keep > 0 ? drv_store_prune_step(c->store, drv_retention_cutoff(c, now), BATCH,
                                               &r->run, &p, &err)
                        : 0;
    int more_tails = more < 0 || tails <= 0
                         ? 0
                         : drv_store_prune_tails_step(c->store, now - tails, BATCH, &tails_n, &err);
    if (more < 0 || more_tails < 0) {
        drv_coord_warn(c, "retention: %s (tried again in %.0f s)", err.msg, IDLE_EVERY_S);
        r->next = now + IDLE_EVERY_S;
        return;
    }
    more |= more_tails;
    r->tasks += p.tasks;
    r->runs += p.run_gone;
    r->events += p.events;
    r->tails += tails_n;
    bool removed = p.tasks || p.run_gone || p.events || tails_n;
    if (removed && drv_store_vacuum_step(c->store, &err) < 0)
        drv_coord_fatal(c, &err);
    if (removed) /* these writes are in the turn's commit: the next step waits for it */
        r->wait_seq = drv_store_handed(c->store) + 1;
    /* Idle: a tenth of the retention, at most IDLE_EVERY_S (a short one is for tests). */
    double idle = (keep > 0 && (tails <= 0 || keep < tails) ? keep : tails) / 10;
    if (idle > IDLE_EVERY_S)
        idle = IDLE_EVERY_S;
    if (idle < BUSY_EVERY_S)
        idle = BUSY_EVERY_S;
    r->next = now + (more ? BUSY_EVERY_S : idle);
    if (!more && (r->tasks || r->runs || r->events)) {
        drv_coord_log(c,
                      "retention: removed %llu runs (%llu tests) and %llu events older than %g"
                      " days",
                      (unsigned long long)r->runs, (unsigned long long)r->tasks,
                      (unsigned long long)r->events, c->opt.retention_days);
        r->tasks = r->runs = r->events = 0;
    }
    if (!more && r->tails) {
        drv_coord_log(c, "retention: removed the output of %llu attempts older than %g s",
                      (unsigned long long)r->tails, tails);
        r->tails = 0;
    }
}
