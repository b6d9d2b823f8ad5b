/* cmd_top.c - `drover top`: the terminal dashboard.
 *
 *   drover top [--interval S] [--once] [--sort KEY] [--filter TEXT] [connection options]
 *
 * Every interval it reads the REST API (status, the recent runs, one screen's page of
 * the workers, sorted and filtered by the coordinator with their totals, and the
 * anomalies where the coordinator detects them) and redraws with ncurses: a header with
 * the totals and a sparkline of tests finishing per second, the queue by priority, an
 * alerts line, the runs not done, and a table of the workers (load bars, thermal state,
 * score) that scrolls. Keys: s sort by the next column (S reverses), / filter, p or
 * space pause, arrows and PgUp/PgDn scroll, ? help, q quit. --once prints one frame as
 * plain text and exits (scripts, tests, terminals without curses); so does top when its
 * output is not a terminal. A coordinator that stops answering is said on the screen;
 * top keeps trying.
 *
 * Ownership: the latest answers live in top_state (replaced each frame, freed at the
 * end); each frame's text is freed before the next. */
#include <curses.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"

#define RUNS_SHOWN 5
#define SPARK_LEN  60 /* seconds of throughput in the sparkline */
#define FILTER_MAX 64
#define BAR_WIDTH  10
#define ALERTS_MAX 3

typedef struct top_args {
    double interval;
    bool once;
    uint64_t rows, offset;
    const char *sort, *filter;
} top_args;

#define T(f) offsetof(top_args, f)
static const drv_opt top_opts[] = {
    {"--interval", NULL, DRV_OPT_DOUBLE, T(interval), 0.1, 3600, "S",
     "seconds between redraws (default 1)", NULL},
    {"--once", NULL, DRV_OPT_FLAG, T(once), 0, 0, NULL,
     "print one frame as text and exit (also when stdout is not a terminal); it shows one "
     "page of workers:",
     NULL},
    {"--rows", NULL, DRV_OPT_UINT, T(rows), 1, 10000, "N", "workers on that page (default 50)",
     NULL},
    {"--offset", NULL, DRV_OPT_UINT, T(offset), 0, 2147483647, "N",
     "the page starts at the N+1th worker (default 0)", NULL},
    {"--sort", NULL, DRV_OPT_STRING, T(sort), 0, 0, "KEY",
     "sort the workers by name, health, thermal, load, score or finished (default name; "
     "-KEY reverses)",
     NULL},
    {"--filter", NULL, DRV_OPT_STRING, T(filter), 0, 0, "TEXT",
     "only workers whose name, health, thermal state or a tag hold every word of TEXT", NULL},
};
#define N_TOP_OPTS (sizeof top_opts / sizeof top_opts[0])

void drv_cmd_top_usage(FILE *out)
{
    fprintf(out, "usage: drover top [--interval S] [--once [--rows N] [--offset N]]\n"
                 "                  [--sort KEY] [--filter TEXT] [options]\n"
                 "\n"
                 "The terminal dashboard: the coordinator's totals and a sparkline of tests\n"
                 "finishing per second, the queue by priority, active anomalies, the runs in\n"
                 "progress, and the workers with load bars, thermal state and score, redrawn\n"
                 "every S seconds.\n"
                 "\n"
                 "keys: s sort by the next column (S: reverse)   / filter (Enter applies,\n"
                 "      Esc clears)   p or space pause   arrows, PgUp/PgDn, Home/End scroll\n"
                 "      r redraw now   ? help   q quit\n"
                 "\n");
    drv_opt_usage(out, top_opts, N_TOP_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when quit (or printed), 1 when --once cannot reach the coordinator,\n"
                 "2 on a wrong command line.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The columns the workers table sorts by, in the order s goes through them. */
static const char *const sort_keys[] = {"name", "health", "thermal", "load", "score", "finished"};
#define SORT_KEYS (sizeof sort_keys / sizeof sort_keys[0])

typedef struct top_state {
    /* the rate */
    bool have_prev;
    double prev_t;
    uint64_t prev_final;
    double spark[SPARK_LEN]; /* tests/s, oldest first */
    size_t n_spark;
    /* the view */
    unsigned sort;
    bool desc;
    char filter[FILTER_MAX + 1];
    int scroll;             /* first worker row shown: the page's offset */
    int page;               /* rows the page asks for: one screen (--once: --rows) */
    bool once;              /* printing one frame as text */
    int64_t matched, total; /* of the last page: workers the filter kept, all */
    bool paused, help;
    bool anomalies_missing; /* the coordinator answered 404: do not ask again */
} top_state;

/* ---- the workers table ---- */

/* A worker's score value, or -1 when the coordinator gives none. */
static double score_of(const json_t *w)
{
    const json_t *s = json_object_get(w, "score");
    if (json_is_object(s))
        s = json_object_get(s, "value");
    return json_is_number(s) ? json_number_value(s) : -1;
}

/* Writes a load bar "[####......]" for busy of slots into buf. */
static void load_bar(int64_t busy, int64_t slots, char *buf)
{
    int fill = slots > 0 ? (int)((busy * BAR_WIDTH + slots - 1) / slots) : 0;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    buf[0] = '[';
    for (int i = 0; i < BAR_WIDTH; i++)
        buf[1 + i] = i < fill ? '#' : '.';
    buf[BAR_WIDTH + 1] = ']';
    buf[BAR_WIDTH + 2] = '\0';
}

/* Writes the workers table (its header line, then one line per worker of the page the
 * coordinator answered, in its order: it sorted and filtered them) to out. Returns the
 * number of worker lines. */
static size_t workers_table(FILE *out, const json_t *ans)
{
    const json_t *workers = json_object_get(ans, "workers");
    size_t shown = json_array_size(workers);
    int width = 4;
    for (size_t i = 0; i < shown; i++) {
        const char *name = drv_api_string(json_array_get(workers, i), "name");
        if (name && (int)strlen(name) > width)
            width = (int)strlen(name);
    }
    fprintf(out, "%-*s  %-11s  %-8s  %5s  %-12s %5s  %5s  %8s  %s\n", width, "NAME", "HEALTH",
            "THERMAL", "SCORE", "LOAD", "BUSY", "RLOAD", "FINISHED", "TAGS");
    for (size_t i = 0; i < shown; i++) {
        const json_t *w = json_array_get(workers, i);
        const json_t *tags = json_object_get(json_object_get(w, "capabilities"), "tags");
        char bar[BAR_WIDTH + 3], busy[32], score[16], tagtext[256] = "";
        int64_t slots = drv_api_int(w, "slots", 0);
        int64_t held = drv_api_int(w, "running", 0) + drv_api_int(w, "assigned", 0);
        load_bar(held, slots, bar);
        snprintf(busy, sizeof busy, "%lld/%lld", (long long)held, (long long)slots);
        double s = score_of(w);
        snprintf(score, sizeof score, s >= 0 ? "%.0f" : "-", s);
        size_t off = 0, k;
        const json_t *tag;
        json_array_foreach(tags, k, tag)
        {
            int m = snprintf(tagtext + off, sizeof tagtext - off, "%s%s", k ? "," : "",
                             json_string_value(tag));
            if (m < 0 || (size_t)m >= sizeof tagtext - off)
                break;
            off += (size_t)m;
        }
        const char *health = drv_api_string(w, "health");
        const char *thermal = drv_api_string(w, "thermal");
        fprintf(out, "%-*s  %-11s  %-8s  %5s  %s %5s  %5.2f  %8lld  %s\n", width,
                drv_api_string(w, "name"), health ? health : "?", thermal ? thermal : "?", score,
                bar, busy, drv_api_number(w, "load", 0), (long long)drv_api_int(w, "finished", 0),
                tagtext);
    }
    return shown;
}

/* ---- the header ---- */

/* Writes the last samples as a sparkline of ASCII levels, scaled to their maximum. */
static void sparkline(const top_state *st, char *buf, size_t len)
{
    static const char levels[] = " .:-=+*#%@";
    double max = 0;
    for (size_t i = 0; i < st->n_spark; i++)
        max = st->spark[i] > max ? st->spark[i] : max;
    size_t k = 0;
    for (size_t i = 0; i < st->n_spark && k + 1 < len; i++)
        buf[k++] = max > 0 ? levels[(int)lround(st->spark[i] / max * 9)] : levels[0];
    buf[k] = '\0';
}

/* Prints the active anomalies (at most ALERTS_MAX, then how many more) on one line. */
static void alerts_line(FILE *out, const json_t *ans)
{
    const json_t *list = json_object_get(ans, "anomalies");
    size_t i, active = 0;
    const json_t *a;
    json_array_foreach(list, i, a)
    {
        active += json_is_true(json_object_get(a, "active"));
    }
    if (!ans) {
        fprintf(out, "alerts: - (no anomaly detection on this coordinator)\n");
        return;
    }
    if (!active) {
        fprintf(out, "alerts: none\n");
        return;
    }
    fprintf(out, "alerts: %zu active:", active);
    size_t shown = 0;
    json_array_foreach(list, i, a)
    {
        if (!json_is_true(json_object_get(a, "active")) || shown == ALERTS_MAX)
            continue;
        const char *sev = drv_api_string(a, "severity"), *summary = drv_api_string(a, "summary");
        fprintf(out, "%s [%s] %s", shown ? ";" : "", sev ? sev : "?",
                summary ? summary : drv_api_string(a, "kind"));
        shown++;
    }
    if (active > shown)
        fprintf(out, "; +%zu more", active - shown);
    fprintf(out, "\n");
}

/* The latest answers, kept so a paused screen can be redrawn (scrolled) as it was. */
typedef struct top_data {
    json_t *status, *runs, *workers, *anomalies; /* anomalies NULL: not detected there */
} top_data;

static void data_free(top_data *d)
{
    json_decref(d->status);
    json_decref(d->runs);
    json_decref(d->workers);
    json_decref(d->anomalies);
    memset(d, 0, sizeof *d);
}

#define ONCE_ROWS 50 /* --once: the page of workers printed unless --rows says */

/* Appends text to buf (at *off, len bytes) percent-encoded for a query string. */
static void query_escape(char *buf, size_t len, size_t *off, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)text; *p && *off + 4 < len; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            buf[(*off)++] = (char)*p;
        else {
            buf[(*off)++] = '%';
            buf[(*off)++] = hex[*p >> 4];
            buf[(*off)++] = hex[*p & 15];
        }
    }
    buf[*off] = '\0';
}

/* Reads one page of the workers (the coordinator sorts and filters them: GET
 * /api/v1/workers?sort=&dir=&filter=&offset=&limit=) into *out and st's totals; a scroll
 * past the end is pulled back to the last page. Returns 0, or -1 with err filled. */
static int fetch_workers(drv_client *c, top_state *st, json_t **out, drv_error *err)
{
    for (int pass = 0; pass < 2; pass++) {
        char path[64 + 3 * FILTER_MAX];
        int n = snprintf(path, sizeof path, "/api/v1/workers?sort=%s&dir=%s&offset=%d&limit=%d",
                         sort_keys[st->sort], st->desc ? "desc" : "asc", st->scroll,
                         st->page > 0 ? st->page : ONCE_ROWS);
        size_t off = (size_t)n;
        if (st->filter[0]) {
            snprintf(path + off, sizeof path - off, "&filter=");
            off += strlen("&filter=");
            query_escape(path, sizeof path, &off, st->filter);
        }
        json_t *w = drv_client_get(c, path, err);
        if (!w)
            return -1;
        st->matched = drv_api_int(w, "matched", 0);
        st->total = drv_api_int(w, "total", 0);
        int last = st->page > 0 && st->matched > st->page ? (int)(st->matched - st->page) : 0;
        if (pass == 0 && !st->once && st->scroll > last &&
            json_array_size(json_object_get(w, "workers")) <
                (size_t)(st->page > 0 ? st->page : 1)) {
            st->scroll = last; /* scrolled past the end: the last page instead */
            json_decref(w);
            continue;
        }
        if (st->scroll < 0)
            st->scroll = 0;
        json_decref(*out);
        *out = w;
        return 0;
    }
    return 0;
}

/* Reads the coordinator into d (replacing what it held) and adds a throughput sample.
 * Returns 0, or -1 with err filled (d unchanged). */
static int fetch(drv_client *c, top_state *st, top_data *d, drv_error *err)
{
    top_data n = {0};
    char path[64];
    snprintf(path, sizeof path, "/api/v1/runs?limit=%d", RUNS_SHOWN);
    if (!(n.status = drv_client_get(c, "/api/v1/status", err)) ||
        !(n.runs = drv_client_get(c, path, err)) || fetch_workers(c, st, &n.workers, err) < 0) {
        data_free(&n);
        return -1;
    }
    if (!st->anomalies_missing) {
        drv_error aerr;
        n.anomalies = drv_client_get(c, "/api/v1/anomalies", &aerr);
        st->anomalies_missing = !n.anomalies && drv_client_status(c) == 404;
    }
    data_free(d);
    *d = n;
    /* The rate: tests that became final since the last read, per second. */
    drv_run_counts all;
    drv_run_counts_read(d->status, &all);
    double t = now_s();
    if (st->have_prev && t > st->prev_t && all.final >= st->prev_final) {
        if (st->n_spark == SPARK_LEN) {
            memmove(st->spark, st->spark + 1, (SPARK_LEN - 1) * sizeof st->spark[0]);
            st->n_spark--;
        }
        st->spark[st->n_spark++] = (double)(all.final - st->prev_final) / (t - st->prev_t);
    }
    st->have_prev = true;
    st->prev_t = t;
    st->prev_final = all.final;
    return 0;
}

/* Writes one frame from d into out: the header lines, then the workers table. Sets
 * *table_at to the line of the table's header. */
static void frame(drv_client *c, const top_state *st, const top_data *d, FILE *out,
                  size_t *table_at)
{
    size_t lines = 0;
    char *head = NULL;
    size_t head_len = 0;
    FILE *h = open_memstream(&head, &head_len);
    if (!h)
        return;
    drv_cli_show_overview(h, d->status, drv_client_url(c));
    char spark[SPARK_LEN + 1];
    sparkline(st, spark, sizeof spark);
    if (st->n_spark)
        fprintf(h, "finishing: %.1f tests/s  [%s]\n", st->spark[st->n_spark - 1], spark);
    else
        fprintf(h, "finishing: -\n");
    const json_t *q = json_object_get(d->status, "queued_by_priority");
    drv_run_counts rc;
    drv_run_counts_read(d->status, &rc);
    if (q)
        fprintf(
            h,
            "queue: %llu queued: high %lld, normal %lld, low %lld; %llu assigned, %llu running\n",
            (unsigned long long)rc.by_state[DRV_TASK_QUEUED], (long long)drv_api_int(q, "high", 0),
            (long long)drv_api_int(q, "normal", 0), (long long)drv_api_int(q, "low", 0),
            (unsigned long long)rc.by_state[DRV_TASK_ASSIGNED],
            (unsigned long long)rc.by_state[DRV_TASK_RUNNING]);
    else
        fprintf(h, "queue: %llu queued, %llu assigned, %llu running\n",
                (unsigned long long)rc.by_state[DRV_TASK_QUEUED],
                (unsigned long long)rc.by_state[DRV_TASK_ASSIGNED],
                (unsigned long long)rc.by_state[DRV_TASK_RUNNING]);
    alerts_line(h, st->anomalies_missing ? NULL : d->anomalies);
    fprintf(h, "\n");
    const json_t *list = json_object_get(d->runs, "runs");
    size_t i, shown = 0;
    const json_t *run;
    json_array_foreach(list, i, run)
    {
        /* Every run not done, and the most recent one even when done. */
        if (i > 0 && json_is_true(json_object_get(run, "done")))
            continue;
        drv_cli_show_run(h, run);
        shown++;
    }
    if (shown == 0)
        fprintf(h, "no runs yet\n");
    fprintf(h, "\n");
    fclose(h);
    for (const char *p = head; p && *p; p++)
        lines += *p == '\n';
    fputs(head ? head : "", out);
    free(head);
    *table_at = lines;
    size_t rows = 0;
    if (st->total == 0)
        fprintf(out, "no workers have registered\n");
    else if (st->matched == 0)
        fprintf(out, "no worker matches the filter \"%s\" (of %lld)\n", st->filter,
                (long long)st->total);
    else
        rows = workers_table(out, d->workers);
    if (st->once && rows == 0 && st->matched > 0)
        fprintf(out, "no workers past --offset %d (of %lld)\n", st->scroll, (long long)st->matched);
    else if (st->once && (int64_t)rows < st->matched)
        fprintf(out,
                "workers %lld-%lld of %lld shown (--offset and --rows page them; --sort and "
                "--filter choose them)\n",
                (long long)(rows ? st->scroll + 1 : 0), (long long)(st->scroll + (int64_t)rows),
                (long long)st->matched);
}

/* ---- the terminal ---- */

static const char *const help_text[] = {
    "drover top: keys",
    "",
    "  s          sort the workers by the next column (name, health, thermal, load,",
    "             score, finished)",
    "  S          reverse the order",
    "  /          filter: type words (each must be in the name, health, thermal state",
    "             or a tag), Enter applies, Esc clears",
    "  p, space   pause (the screen stays as it is; scrolling still works)",
    "  arrows     scroll the workers one line; PgUp/PgDn a page; Home/End",
    "  r          read the coordinator now",
    "  ?          this help (any key closes it)",
    "  q          quit",
    NULL,
};

/* Draws text (the header, the table's column names at line table_at, then the page of
 * workers the coordinator answered from st->scroll), each line cut to the screen's
 * width; the bottom line reversed. Sets st->page to the rows the table has room for. */
static void draw(const char *text, size_t table_at, top_state *st, const char *bottom)
{
    erase();
    int rows = LINES, cols = COLS, y = 0;
    size_t line = 0;
    int room = rows - 1 - ((int)table_at + 1);
    st->page = room > 1 ? room : 1;
    for (const char *p = text; *p && y < rows - 1; line++, y++) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (y == 0 || line == table_at)
            attron(A_BOLD);
        mvaddnstr(y, 0, p, len < cols ? len : cols);
        if (y == 0 || line == table_at)
            attroff(A_BOLD);
        p += len + (nl ? 1 : 0);
    }
    if (st->help) {
        int top = 2, w = cols - 4 < 84 ? cols - 4 : 84;
        for (int k = 0; help_text[k] && top + k < rows - 1; k++) {
            mvhline(top + k, 2, ' ', w);
            mvaddnstr(top + k, 3, help_text[k], w - 2);
        }
    }
    attron(A_REVERSE);
    mvhline(rows - 1, 0, ' ', cols);
    mvaddnstr(rows - 1, 0, bottom, cols);
    attroff(A_REVERSE);
    refresh();
}

/* Reads the filter on the bottom line; Enter keeps it, Esc clears it. */
static void read_filter(top_state *st)
{
    char buf[FILTER_MAX + 1];
    snprintf(buf, sizeof buf, "%s", st->filter);
    size_t n = strlen(buf);
    timeout(-1);
    curs_set(1);
    for (;;) {
        attron(A_REVERSE);
        mvhline(LINES - 1, 0, ' ', COLS);
        mvprintw(LINES - 1, 0, " filter (Enter applies, Esc clears): %s", buf);
        attroff(A_REVERSE);
        refresh();
        int ch = getch();
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            snprintf(st->filter, sizeof st->filter, "%s", buf);
            break;
        }
        if (ch == 27) {
            st->filter[0] = '\0';
            break;
        }
        if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
            buf[--n] = '\0';
        else if (ch >= 32 && ch < 127 && n < FILTER_MAX) {
            buf[n++] = (char)ch;
            buf[n] = '\0';
        }
    }
    curs_set(0);
    st->scroll = 0;
}

static int run_curses(drv_client *c, double interval_s, top_state *st)
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
    set_escdelay(25);
    top_data d = {0};
    char bottom[DRV_ERROR_MAX + 256];
    char errmsg[DRV_ERROR_MAX] = "";
    bool have = false, view_changed = false;
    double next_read = 0;
    st->page = LINES > 2 ? LINES - 2 : 1; /* until the first frame says how many fit */
    for (;;) {
        double t = now_s();
        if (view_changed && st->paused && have) { /* paused: only the page moves */
            drv_error err = {{0}};
            if (fetch_workers(c, st, &d.workers, &err) < 0)
                snprintf(errmsg, sizeof errmsg, "%s", err.msg);
        } else if (view_changed) {
            next_read = 0;
        }
        view_changed = false;
        if (!st->paused && t >= next_read) {
            drv_error err = {{0}};
            if (fetch(c, st, &d, &err) == 0) {
                have = true;
                errmsg[0] = '\0';
            } else {
                snprintf(errmsg, sizeof errmsg, "%s", err.msg);
            }
            next_read = t + interval_s;
        }
        char *text = NULL;
        size_t len = 0, table_at = 0;
        FILE *mem = open_memstream(&text, &len);
        if (mem) {
            if (have)
                frame(c, st, &d, mem, &table_at);
            fclose(mem);
        }
        time_t wall = time(NULL);
        char clock[16];
        strftime(clock, sizeof clock, "%H:%M:%S", localtime(&wall));
        if (errmsg[0])
            snprintf(bottom, sizeof bottom, " %s  %.400s (retrying)  q quit", clock, errmsg);
        else
            snprintf(bottom, sizeof bottom,
                     " %s  %s  sort %s%s%s%s  rows %lld-%lld of %lld  s sort  / filter  p pause  "
                     "arrows scroll  ? help  q quit",
                     clock, st->paused ? "PAUSED" : "live", sort_keys[st->sort],
                     st->desc ? " (reversed)" : "", st->filter[0] ? "  filter: " : "", st->filter,
                     (long long)(st->matched ? st->scroll + 1 : 0),
                     (long long)(st->scroll +
                                 (int64_t)json_array_size(json_object_get(d.workers, "workers"))),
                     (long long)st->matched);
        draw(text ? text : "", table_at, st, bottom);
        free(text);
        double wait = st->paused ? 1.0 : next_read - now_s();
        timeout(wait > 0 ? (int)(wait * 1000) + 1 : 0);
        int ch = getch();
        if (ch == ERR)
            continue;
        if (st->help) { /* any key closes the help */
            st->help = false;
            if (ch != 'q' && ch != 'Q')
                continue;
        }
        int page = st->page, scroll = st->scroll;
        unsigned sort = st->sort;
        bool desc = st->desc;
        switch (ch) {
        case 'q':
        case 'Q':
            data_free(&d);
            endwin();
            return DRV_EXIT_OK;
        case 's':
            st->sort = (st->sort + 1) % SORT_KEYS;
            st->desc = strcmp(sort_keys[st->sort], "name") != 0 &&
                       strcmp(sort_keys[st->sort], "health") != 0;
            st->scroll = 0;
            break;
        case 'S':
            st->desc = !st->desc;
            st->scroll = 0;
            break;
        case '/':
            read_filter(st);
            break;
        case 'p':
        case ' ':
            st->paused = !st->paused;
            next_read = 0;
            break;
        case '?':
        case 'h':
            st->help = true;
            break;
        case 'r':
            next_read = 0;
            break;
        case KEY_DOWN:
        case 'j':
            st->scroll++;
            break;
        case KEY_UP:
        case 'k':
            st->scroll--;
            break;
        case KEY_NPAGE:
            st->scroll += page;
            break;
        case KEY_PPAGE:
            st->scroll -= page;
            break;
        case KEY_HOME:
            st->scroll = 0;
            break;
        case KEY_END:
            st->scroll = 1 << 30;
            break;
        default:
            break;
        }
        if (st->scroll < 0)
            st->scroll = 0;
        view_changed = st->scroll != scroll || st->sort != sort || st->desc != desc || ch == '/';
    }
}

int drv_cmd_top(int argc, char **argv)
{
    const char *cmd = "top";
    drv_cli_conn conn = {0};
    top_args o = {.interval = 1, .rows = ONCE_ROWS};
    top_state st = {0};
    int rest;
    int parsed = drv_opt_parse(cmd, top_opts, N_TOP_OPTS, &o, &conn, argc, argv, &rest);
    if (parsed >= 0)
        return parsed;
    if (rest < argc)
        return drv_cli_usage_error(cmd, "unexpected argument", argv[rest]);
    bool once = o.once;
    double interval_s = o.interval;
    int once_rows = (int)o.rows;
    st.scroll = (int)o.offset;
    const char *v = o.sort;
    if (v) {
        st.desc = v[0] == '-';
        const char *k = v + st.desc;
        unsigned found = SORT_KEYS;
        for (unsigned s = 0; s < SORT_KEYS; s++)
            if (strcmp(k, sort_keys[s]) == 0)
                found = s;
        if (found == SORT_KEYS)
            return drv_cli_usage_error(cmd,
                                       "--sort: expected name, health, thermal, load, score or "
                                       "finished (-KEY reverses), got",
                                       v);
        st.sort = found;
    }
    if ((v = o.filter) != NULL) {
        if (strlen(v) > FILTER_MAX)
            return drv_cli_usage_error(cmd, "--filter: longer than 64 characters", v);
        snprintf(st.filter, sizeof st.filter, "%s", v);
    }
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    int code;
    if (once || !isatty(STDOUT_FILENO)) {
        top_data d = {0};
        st.once = true;
        st.page = once_rows; /* one page, as the terminal asks for one screen */
        drv_error err = {{0}};
        size_t table_at = 0;
        code = fetch(c, &st, &d, &err) == 0 ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
        if (code == DRV_EXIT_OK)
            frame(c, &st, &d, stdout, &table_at);
        else
            fprintf(stderr, "drover top: %s\n", err.msg);
        data_free(&d);
    } else {
        code = run_curses(c, interval_s, &st);
    }
    drv_client_close(c);
    return code;
}
