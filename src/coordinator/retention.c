/* retention.c - the coordinator's side of store retention (store.h, "retention"): on
 * the tick, one small step at a time, the store forgets finished runs and events older
 * than opt.retention_days (the metrics history has its own: sampler.c). A step is a few
 * index reads on the loop thread and deletions executed by the store's writer in the turn's commit;
 * the next step waits until that commit is durable (reads see committed data only). While there is
 * a backlog a step runs every BUSY_EVERY_S, else every IDLE_EVERY_S (or a tenth of the retention,
 * when that is shorter). */
#include "coordinator/coord.h"

#define BUSY_EVERY_S 0.5
#define IDLE_EVERY_S 60.0
#define BATCH        2000 /* tests and events per step */
#define DAY_S        86400.0

double drv_retention_cutoff(const drv_coordinator *c, double now)
{
    return c->opt.retention_days > 0 ? now - c->opt.retention_days * DAY_S : 0;
}

void drv_retention_tick(drv_coordinator *c, double now)
{
    drv_retention *r = &c->retention;
    if (c->opt.retention_days <= 0 || now < r->next || r->wait_seq > c->durable_seq)
        return;
    double cutoff = drv_retention_cutoff(c, now);
    drv_store_pruned p;
    drv_error err;
    int more = drv_store_prune_step(c->store, cutoff, BATCH, &r->cursor, &p, &err);
    if (more < 0) {
        drv_coord_warn(c, "retention: %s (tried again in %.0f s)", err.msg, IDLE_EVERY_S);
        r->next = now + IDLE_EVERY_S;
        return;
    }
    r->tasks += p.tasks;
    r->runs += p.run_gone;
    r->events += p.events;
    bool removed = p.tasks || p.run_gone || p.events;
    if (removed && drv_store_vacuum_step(c->store, &err) < 0)
        drv_coord_fatal(c, &err);
    if (removed) /* these writes are in the turn's commit: the next step waits for it */
        r->wait_seq = drv_store_handed(c->store) + 1;
    /* Idle: a tenth of the retention, at most IDLE_EVERY_S (a short one is for tests). */
    double idle = c->opt.retention_days * DAY_S / 10;
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
}
