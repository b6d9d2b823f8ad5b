/* guardian.c - the process that kills a dead worker's test groups (see guardian.h).
 *
 * The pipe carries one int per message: +pgid when a group starts, -pgid when it ended.
 * Ended groups are held back and written together with the next message (one write, one
 * wake-up of the guardian per test instead of two); writes of up to PIPE_BUF are atomic,
 * so the guardian's 4-byte reads never see half a message. The guardian keeps the live groups in a
 * small array (grown as needed) and, at end of file, kills each with SIGKILL. */
#define _GNU_SOURCE /* closefrom */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/guardian.h"

/* Messages held back by drv_guardian_forget() until the next write (at most this many). */
#define PENDING_MAX 16

struct drv_guardian {
    int fd;                   /* write end of the pipe */
    pid_t pid;                /* the guardian */
    int pending[PENDING_MAX]; /* ended groups not yet told (-pgid), oldest first */
    size_t n_pending;
};

/* The guardian's life: read until end of file, then kill what is listed. Never returns. */
static void guard(int fd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    size_t n = 0, cap = 64;
    int *groups = malloc(cap * sizeof *groups);
    int msg;
    for (;;) {
        ssize_t k = read(fd, &msg, sizeof msg);
        if (k < 0 && errno == EINTR)
            continue;
        if (k != (ssize_t)sizeof msg)
            break; /* end of file (the worker is gone) or a read error */
        if (msg > 0) {
            if (n == cap) {
                int *more = groups ? realloc(groups, 2 * cap * sizeof *groups) : NULL;
                if (!more)
                    continue; /* out of memory: this group is not guarded */
                groups = more;
                cap *= 2;
            }
            if (groups)
                groups[n++] = msg;
        } else {
            for (size_t i = 0; i < n; i++)
                if (groups[i] == -msg) {
                    groups[i] = groups[--n];
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++)
        kill(-groups[i], SIGKILL);
    _exit(0);
}

drv_guardian *drv_guardian_start(drv_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        drv_error_set(err, "guardian: pipe: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        drv_error_set(err, "guardian: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        /* A session and process group of its own: a kill -9 of the worker's whole group
         * (a supervisor's, a shell's kill -9 -PGID) must not take the guardian with it. */
        setsid();
        /* Only the read end stays open: nothing else of the worker is held here. */
        int fd = p[0];
        if (fd != 3) {
            dup2(fd, 3);
            fd = 3;
        }
        closefrom(4);
        guard(fd);
    }
    close(p[0]);
    /* A guardian that died must not take the worker with it (tests get every signal at
     * its default again: runner.h). */
    signal(SIGPIPE, SIG_IGN);
    drv_guardian *g = drv_xcalloc(1, sizeof *g);
    g->fd = p[1];
    g->pid = pid;
    return g;
}

/* Writes the pending messages in one write (at most PENDING_MAX * 4 bytes: below PIPE_BUF, so
 * atomic); a guardian that is gone is not written to again. */
static void flush_pending(drv_guardian *g)
{
    size_t len = g->n_pending * sizeof g->pending[0];
    g->n_pending = 0;
    if (g->fd < 0 || len == 0)
        return;
    ssize_t k;
    do
        k = write(g->fd, g->pending, len);
    while (k < 0 && errno == EINTR);
    if (k != (ssize_t)len) {
        close(g->fd);
        g->fd = -1;
    }
}

static void hold(drv_guardian *g, int msg)
{
    if (g->n_pending == PENDING_MAX)
        flush_pending(g);
    g->pending[g->n_pending++] = msg;
}

void drv_guardian_watch(drv_guardian *g, int pgid)
{
    if (!g || pgid <= 0)
        return;
    hold(g, pgid);
    flush_pending(g); /* a started group is guarded before the caller goes on */
}

void drv_guardian_forget(drv_guardian *g, int pgid)
{
    if (g && pgid > 0)
        hold(g, -pgid);
}

void drv_guardian_flush(drv_guardian *g)
{
    if (g)
        flush_pending(g);
}

void drv_guardian_stop(drv_guardian *g)
{
    if (!g)
        return;
    flush_pending(g);
    if (g->fd >= 0)
        close(g->fd);
    while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    free(g);
}
