/* options.c - the table-driven option parser of every `drover` command (cli.h, drv_opt):
 * each command lists its options once, with where each goes in its argument struct, its
 * kind, range and help (an option with a value of its own kind names its reader); the
 * connection options of the client commands are one more table here. Parsing, the
 * errors (each naming its option) and the usage lines all come from those tables. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The option of the table that arg names ("--x", "--x=V", or the alias "-L"), with its
 * inline value in *inline_value (NULL when none). */
static const drv_opt *find(const drv_opt *opts, size_t n, const char *arg,
                           const char **inline_value)
{
    *inline_value = NULL;
    for (size_t k = 0; k < n; k++) {
        const char *names[2] = {opts[k].name, opts[k].alias};
        for (int j = 0; j < 2; j++) {
            if (!names[j])
                continue;
            size_t len = strlen(names[j]);
            if (strncmp(arg, names[j], len) != 0)
                continue;
            if (arg[len] == '\0')
                return &opts[k];
            if (arg[len] == '=' && j == 0) {
                *inline_value = arg + len + 1;
                return &opts[k];
            }
        }
    }
    return NULL;
}

/* Stores value for o into args. Returns 0, or -1 after printing why. */
static int store(const char *cmd, const drv_opt *o, void *args, const char *value)
{
    char *at = (char *)args + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case DRV_OPT_FLAG:
        *(bool *)(void *)at = true;
        return 0;
    case DRV_OPT_STRING:
        *(const char **)(void *)at = value;
        return 0;
    case DRV_OPT_LIST: {
        drv_opt_list *l = (drv_opt_list *)(void *)at;
        if (l->n == DRV_OPT_LIST_MAX) {
            fprintf(stderr, "drover %s: %s given more than %d times\n", cmd, o->name,
                    DRV_OPT_LIST_MAX);
            return -1;
        }
        l->v[l->n++] = value;
        return 0;
    }
    case DRV_OPT_UINT: {
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || value[0] == '-' || errno != 0 || (double)v < o->min ||
            (double)v > o->max) {
            fprintf(stderr, "drover %s: %s: expected an integer %.0f..%.0f, got \"%s\"\n", cmd,
                    o->name, o->min, o->max, value);
            return -1;
        }
        *(uint64_t *)(void *)at = (uint64_t)v;
        return 0;
    }
    case DRV_OPT_DOUBLE: {
        double v = strtod(value, &end);
        if (!*value || *end || errno != 0 || !isfinite(v) || v < o->min || v > o->max) {
            fprintf(stderr, "drover %s: %s: expected a number %g..%g, got \"%s\"\n", cmd, o->name,
                    o->min, o->max, value);
            return -1;
        }
        *(double *)(void *)at = v;
        return 0;
    }
    case DRV_OPT_PARSE:
        return o->parse(cmd, o, value, at);
    }
    return -1;
}

int drv_opt_seconds(const char *cmd, const drv_opt *o, const char *value, void *at)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(x) || x <= 0 || (o->max > 0 && x > o->max)) {
        fprintf(stderr, "drover %s: %s: expected seconds > 0, got \"%s\"\n", cmd, o->name, value);
        return -1;
    }
    *(double *)at = x;
    return 0;
}

int drv_opt_seconds_or_never(const char *cmd, const drv_opt *o, const char *value, void *at)
{
    if (strcmp(value, "never") == 0) {
        *(double *)at = -1;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(x) || x <= 0 || (o->max > 0 && x > o->max)) {
        fprintf(stderr, "drover %s: %s: expected seconds > 0 or never, got \"%s\"\n", cmd, o->name,
                value);
        return -1;
    }
    *(double *)at = x;
    return 0;
}

int drv_opt_log_format(const char *cmd, const drv_opt *o, const char *value, void *at)
{
    if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0) {
        fprintf(stderr, "drover %s: %s: expected text or json, got \"%s\"\n", cmd, o->name, value);
        return -1;
    }
    *(bool *)at = strcmp(value, "json") == 0;
    return 0;
}

/* The connection options (drv_cli_conn), read by every command that passes a conn. */
#define CO(f) offsetof(drv_cli_conn, f)
static const drv_opt conn_opts[] = {
    {"--url", NULL, DRV_OPT_STRING, CO(url), 0, 0, "URL",
     "the coordinator (default: $DROVER_URL, else http://127.0.0.1:7070)", NULL},
    {"--token", NULL, DRV_OPT_STRING, CO(token), 0, 0, "T",
     "the client token (default: $DROVER_TOKEN)", NULL},
    {"--request-timeout", NULL, DRV_OPT_PARSE, CO(request_timeout_s), 0, 1e9, "S",
     "give up on one request after S seconds (default 60)", drv_opt_seconds},
    {"--ca", NULL, DRV_OPT_STRING, CO(ca_file), 0, 0, "FILE",
     "PEM certificate authority of an https:// coordinator ($DROVER_CA)", NULL},
};
#define N_CONN_OPTS (sizeof conn_opts / sizeof conn_opts[0])

int drv_opt_parse(const char *cmd, const drv_opt *opts, size_t n, void *args, drv_cli_conn *conn,
                  int argc, char **argv, int *rest)
{
    *rest = argc;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            *rest = i + 1;
            return -1;
        }
        const char *value;
        void *into = args;
        const drv_opt *o = find(opts, n, arg, &value);
        if (!o && conn) { /* the connection options of every client command */
            o = find(conn_opts, N_CONN_OPTS, arg, &value);
            into = conn;
        }
        if (!o) {
            if (arg[0] == '-' && arg[1] != '\0') {
                fprintf(stderr, "drover %s: unknown option \"%s\" (see drover %s --help)\n", cmd,
                        arg, cmd);
                return DRV_EXIT_USAGE;
            }
            *rest = i; /* the first word that is not an option */
            return -1;
        }
        /* a DRV_OPT_PARSE option without a value name is a switch its reader is told of */
        bool takes_value = o->kind != DRV_OPT_FLAG && (o->kind != DRV_OPT_PARSE || o->value);
        if (!takes_value && value) {
            fprintf(stderr, "drover %s: %s takes no value\n", cmd, o->name);
            return DRV_EXIT_USAGE;
        }
        if (takes_value && !value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "drover %s: %s needs a value (%s)\n", cmd, o->name,
                        o->value ? o->value : "VALUE");
                return DRV_EXIT_USAGE;
            }
            value = argv[++i];
        }
        if (store(cmd, o, into, value) < 0)
            return DRV_EXIT_USAGE;
    }
    return -1;
}

int drv_opt_parse_words(const char *cmd, const drv_opt *opts, size_t n, void *args,
                        drv_cli_conn *conn, int argc, char **argv, const char **words,
                        size_t max_words, size_t *n_words)
{
    *n_words = 0;
    int at = 0; /* argv[at] is taken as the command's name by drv_opt_parse */
    for (;;) {
        int rest;
        int code = drv_opt_parse(cmd, opts, n, args, conn, argc - at, argv + at, &rest);
        if (code >= 0)
            return code;
        at += rest;
        bool after_dashes = at > 0 && strcmp(argv[at - 1], "--") == 0;
        if (at >= argc)
            return -1;
        do {
            if (*n_words == max_words)
                return drv_cli_usage_error(cmd, "unexpected argument", argv[at]);
            words[(*n_words)++] = argv[at++];
        } while (after_dashes && at < argc);
        if (at >= argc)
            return -1;
        at--; /* the word just taken stands for the command's name of the next call */
    }
}

/* The usage lines' width, and where an option's help starts. */
#define USAGE_WIDTH   88
#define USAGE_HELP_AT 27

int drv_opt_parse_command(const char *cmd, const drv_opt *opts, size_t n, void *args,
                          drv_cli_conn *conn, int argc, char **argv, const char **words,
                          size_t max_words, size_t *n_words, int *command)
{
    *n_words = 0;
    *command = argc;
    int at = 0; /* argv[at] is taken as the command's name by drv_opt_parse */
    for (;;) {
        int rest;
        int code = drv_opt_parse(cmd, opts, n, args, conn, argc - at, argv + at, &rest);
        if (code >= 0)
            return code;
        int k = at + rest; /* the first word left */
        if (k > at + 1 && k <= argc && strcmp(argv[k - 1], "--") == 0) {
            *command = k; /* what follows "--" is a program's command line */
            return -1;
        }
        if (k >= argc)
            return -1;
        if (*n_words == max_words)
            return drv_cli_usage_error(cmd, "unexpected argument", argv[k]);
        words[(*n_words)++] = argv[k];
        at = k; /* the word just taken stands for the command's name of the next call */
    }
}

void drv_opt_usage(FILE *out, const drv_opt *opts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", opts[k].alias ? opts[k].alias : "",
                 opts[k].alias ? ", " : "", opts[k].name, opts[k].value ? " " : "",
                 opts[k].value ? opts[k].value : "");
        int col = fprintf(out, "  %-24s", left);
        if (col > USAGE_HELP_AT - 1) /* a long name: its help starts on the next line */
            col = fprintf(out, "\n%*s", USAGE_HELP_AT - 1, "") - 1;
        /* The help, word by word, wrapped under its own column. */
        const char *p = opts[k].help;
        while (*p) {
            size_t w = strcspn(p, " ");
            if (col + 1 + (int)w > USAGE_WIDTH && col > USAGE_HELP_AT)
                col = fprintf(out, "\n%*s", USAGE_HELP_AT - 1, "") - 1;
            col += fprintf(out, " %.*s", (int)w, p);
            p += w;
            while (*p == ' ')
                p++;
        }
        fputc('\n', out);
    }
}

void drv_opt_conn_usage(FILE *out)
{
    fprintf(out, "connection:\n");
    drv_opt_usage(out, conn_opts, N_CONN_OPTS);
}
