/* cmd_top.c - `drover top`: the terminal dashboard.
 *
 *   drover top [--interval S] [--once] [connection options]
 *
 * Every interval it reads the REST API (status, the recent runs, the workers) and
 * redraws, with ncurses, the views `drover status` prints: the coordinator and its
 * counts with the rate of tests finishing, the runs not done (and the last one done),
 * the workers table with why each unhealthy worker is so. q quits; r redraws now.
 * --once prints one frame as plain text and exits (scripts, tests, terminals without
 * curses). A coordinator that stops answering is said on the screen; top keeps trying.
 *
 * Ownership: each frame's JSON answers and text are freed before the next. */
#include <curses.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "client/client.h"

#define RUNS_SHOWN 5

void drv_cmd_top_usage(FILE *out)
{
    fprintf(out, "usage: drover top [--interval S] [--once] [options]\n"
                 "\n"
                 "The terminal dashboard: the coordinator's counts and the rate of tests\n"
                 "finishing, the runs in progress, and the workers with their health and why,\n"
                 "redrawn every S seconds. q quits, r redraws now.\n"
                 "\n"
                 "  --interval S   seconds between redraws (default 1; 0.1..3600)\n"
                 "  --once         print one frame as text and exit (no terminal needed)\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 when quit (or printed), 1 when --once cannot reach the coordinator,\n"
                 "2 on a wrong command line.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the previous frame saw, for the rate. */
typedef struct top_state {
    bool have_prev;
    double prev_t;
    uint64_t prev_final;
} top_state;

/* Writes one frame into out. Returns 0, or -1 with err filled when the coordinator
 * could not be read (nothing written then). */
static int frame(drv_client *c, top_state *st, FILE *out, drv_error *err)
{
    json_t *status = drv_client_get(c, "/api/v1/status", err);
    if (!status)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/api/v1/runs?limit=%d", RUNS_SHOWN);
    json_t *runs = drv_client_get(c, path, err);
    json_t *workers = runs ? drv_client_get(c, "/api/v1/workers", err) : NULL;
    if (!runs || !workers) {
        json_decref(status);
        json_decref(runs);
        return -1;
    }
    drv_cli_show_overview(out, status, drv_client_url(c));

    /* The rate: tests that became final since the last frame, per second. */
    drv_run_counts all;
    drv_run_counts_read(status, &all);
    double t = now_s();
    if (st->have_prev && t > st->prev_t && all.final >= st->prev_final)
        fprintf(out, "finishing: %.1f tests/s\n",
                (double)(all.final - st->prev_final) / (t - st->prev_t));
    else
        fprintf(out, "finishing: -\n");
    st->have_prev = true;
    st->prev_t = t;
    st->prev_final = all.final;

    fprintf(out, "\n");
    const json_t *list = json_object_get(runs, "runs");
    size_t i, shown = 0;
    const json_t *run;
    json_array_foreach(list, i, run)
    {
        /* Every run not done, and the most recent one even when done. */
        if (i > 0 && json_is_true(json_object_get(run, "done")))
            continue;
        drv_cli_show_run(out, run);
        shown++;
    }
    if (shown == 0)
        fprintf(out, "no runs yet\n");
    fprintf(out, "\n");
    drv_cli_show_workers(out, workers);
    json_decref(status);
    json_decref(runs);
    json_decref(workers);
    return 0;
}

/* Draws text (lines) from the top of the screen, each cut to the screen's width, with
 * the title line reversed and a status line at the bottom. */
static void draw(const char *text, const char *bottom)
{
    erase();
    int rows = LINES, cols = COLS, y = 0;
    for (const char *p = text; *p && y < rows - 1;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (y == 0)
            attron(A_BOLD);
        mvaddnstr(y, 0, p, len < cols ? len : cols);
        if (y == 0)
            attroff(A_BOLD);
        y++;
        p += len + (nl ? 1 : 0);
    }
    attron(A_REVERSE);
    mvaddnstr(rows - 1, 0, bottom, cols);
    attroff(A_REVERSE);
    refresh();
}

static int run_curses(drv_client *c, double interval_s)
{
    if (!initscr()) {
        fprintf(stderr, "drover top: cannot start the terminal (TERM=%s); try --once\n",
                getenv("TERM") ? getenv("TERM") : "");
        return DRV_EXIT_FAILURE;
    }
    cbreak();
    noecho();
    curs_set(0);
    keypad(stdscr, TRUE);
    top_state st = {0};
    char bottom[DRV_ERROR_MAX + 128];
    for (;;) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        drv_error err = {{0}};
        int rc = mem ? frame(c, &st, mem, &err) : -1;
        if (mem)
            fclose(mem);
        time_t wall = time(NULL);
        char clock[16];
        strftime(clock, sizeof clock, "%H:%M:%S", localtime(&wall));
        if (rc == 0)
            snprintf(bottom, sizeof bottom, " %s  every %.1f s  q quit  r redraw", clock,
                     interval_s);
        else
            snprintf(bottom, sizeof bottom, " %s  %.400s (retrying)  q quit", clock,
                     mem ? err.msg : "out of memory");
        draw(rc == 0 && text ? text : "", bottom);
        free(text);
        timeout((int)(interval_s * 1000));
        int ch = getch();
        if (ch == 'q' || ch == 'Q')
            break;
    }
    endwin();
    return DRV_EXIT_OK;
}

int drv_cmd_top(int argc, char **argv)
{
    const char *cmd = "top";
    drv_cli_conn conn = {0};
    bool once = false;
    double interval_s = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc < 0)
            return DRV_EXIT_USAGE;
        if (rc > 0)
            continue;
        if ((rc = drv_cli_option(cmd, "--interval", argc, argv, &i, &v)) != 0) {
            if (rc < 0)
                return DRV_EXIT_USAGE;
            char *end = NULL;
            errno = 0;
            interval_s = strtod(v, &end);
            if (!*v || *end || errno || !isfinite(interval_s) || interval_s < 0.1 ||
                interval_s > 3600) {
                fprintf(stderr, "drover top: --interval: expected seconds 0.1..3600, got \"%s\"\n",
                        v);
                return DRV_EXIT_USAGE;
            }
        } else if (strcmp(a, "--once") == 0) {
            once = true;
        } else {
            fprintf(stderr, "drover top: unknown argument \"%s\" (see drover top --help)\n", a);
            return DRV_EXIT_USAGE;
        }
    }
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    int code;
    if (once) {
        top_state st = {0};
        drv_error err = {{0}};
        code = frame(c, &st, stdout, &err) == 0 ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
        if (code != DRV_EXIT_OK)
            fprintf(stderr, "drover top: %s\n", err.msg);
    } else {
        code = run_curses(c, interval_s);
    }
    drv_client_close(c);
    return code;
}
