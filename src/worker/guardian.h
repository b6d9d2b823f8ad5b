/* guardian.h - no orphans: a test's process group dies with its worker.
 *
 * A test runs in its own session and process group (runner.h), so it does not die with
 * the worker by itself: after a kill -9 of the worker its processes would live on with
 * PPID 1. PR_SET_PDEATHSIG cannot be set for a child started with posix_spawn, and it
 * would reach only the group's first process anyway. So the worker starts a guardian
 * first: a small process of its own (forked before the worker opens anything), joined
 * to the worker by a pipe. The worker tells it the process group of every test it
 * starts and of every test that ended; when the pipe closes - the worker exited,
 * however it ended, kill -9 included - the guardian sends SIGKILL to every group still
 * listed and exits. It runs in a session and process group of its own, so a signal to
 * the worker's whole group (kill -9 -PGID) does not reach it, and it ignores SIGINT,
 * SIGTERM and SIGHUP: only the end of its worker ends it.
 *
 * What it cannot do: a test process that left its group (setsid, setpgid) is not
 * followed, and a kill -9 of the guardian itself leaves nothing behind to clean up. */
#ifndef DRV_WORKER_GUARDIAN_H
#define DRV_WORKER_GUARDIAN_H

#include "core/error.h"

typedef struct drv_guardian drv_guardian;

/* Forks the guardian and ignores SIGPIPE in the caller. Call before the worker opens sockets or
 * starts threads (the guardian closes every descriptor but its pipe). Returns it, or NULL with err
 * filled (pipe or fork failed). */
drv_guardian *drv_guardian_start(drv_error *err);

/* Process group pgid (> 0) runs a test now: told at once, with the ended groups held
 * back. NULL g is a no-op. */
void drv_guardian_watch(drv_guardian *g, int pgid);
/* Process group pgid (> 0) has ended: held back until the next drv_guardian_watch() or
 * drv_guardian_flush() (each wake-up of the guardian takes the CPU from the worker on a
 * busy machine, so a test's end and the next start share one). Until then the guardian
 * would still kill that group at the worker's death: call flush before waiting for
 * anything. NULL g is a no-op. */
void drv_guardian_forget(drv_guardian *g, int pgid);
/* Tells the guardian the ended groups held back. NULL g is a no-op. */
void drv_guardian_flush(drv_guardian *g);

/* Closes the pipe (the guardian kills what is still listed and exits), reaps the
 * guardian and frees g. NULL is a no-op. */
void drv_guardian_stop(drv_guardian *g);

#endif
