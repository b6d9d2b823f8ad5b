/* probe_gpu.c - the GPU part of the probe: NVIDIA through nvidia-smi or
 * /proc/driver/nvidia, AMD through rocm-smi or /sys/class/drm. The parsers take text,
 * so tests feed them recorded outputs (tests/data/probe/); drv_probe_gpus() finds the
 * text on the machine. A GPU tool runs as a plain child process (argv, no shell) with
 * its stdout captured and a time limit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker/probe.h"

#define TOOL_OUTPUT_MAX (256u * 1024u)
#define TEXT_MAX        (64u * 1024u)

extern char **environ;

/* ---- parsers ----------------------------------------------------------------------- */

/* Copies s[0..n) into buf without leading and trailing blanks (always NUL-terminated). */
static void copy_trimmed(char *buf, size_t len, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    snprintf(buf, len, "%.*s", (int)n, s);
}

/* True when s is a value nvidia-smi prints for "not available": "[N/A]", "N/A",
 * "[Not Supported]". */
static bool not_available(const char *s)
{
    return strstr(s, "N/A") != NULL || strstr(s, "Not Supported") != NULL || !*s;
}

/* Parses a whole decimal number (no sign, no junk); false otherwise. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

int drv_probe_parse_nvidia_smi(const char *csv, drv_gpu_info *gpus, unsigned max, unsigned *n,
                               drv_error *err)
{
    if (!csv)
        return drv_error_set(err, "nvidia-smi: no output");
    unsigned lineno = 0;
    for (const char *line = csv; *line;) {
        const char *start = line, *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        char text[512];
        copy_trimmed(text, sizeof text, line, len);
        line = nl ? nl + 1 : line + len;
        if (!text[0])
            continue;
        /* The last three fields are numbers; the name is everything before them (a
         * name with a comma in it stays whole). */
        char *f[3];
        int k = 0;
        for (char *p = text + strlen(text); p > text && k < 3; p--) {
            if (p[-1] == ',') {
                p[-1] = '\0';
                f[2 - k] = p;
                k++;
            }
        }
        if (k < 3 || !text[0])
            return drv_error_set(err,
                                 "nvidia-smi line %u \"%.*s\": expected 4 comma-separated fields "
                                 "(name, memory.total, compute_cap, driver_version)",
                                 lineno, (int)len, start);
        if (*n >= max)
            return 0;
        drv_gpu_info g;
        memset(&g, 0, sizeof g);
        g.vendor = DRV_GPU_NVIDIA;
        g.source = "nvidia-smi";
        char field[128];
        copy_trimmed(g.name, sizeof g.name, text, strlen(text));
        copy_trimmed(field, sizeof field, f[0], strlen(f[0]));
        if (!not_available(field) && !parse_u64(field, &g.memory_mb))
            return drv_error_set(err, "nvidia-smi line %u: memory.total \"%s\" is not a number",
                                 lineno, field);
        copy_trimmed(field, sizeof field, f[1], strlen(f[1]));
        if (!not_available(field) && drv_cuda_cc_parse(field, &g.cuda_cc, err) < 0)
            return drv_error_prefix(err, "nvidia-smi line %u", lineno);
        copy_trimmed(field, sizeof field, f[2], strlen(f[2]));
        if (!not_available(field))
            snprintf(g.driver, sizeof g.driver, "%.*s", (int)sizeof g.driver - 1, field);
        gpus[(*n)++] = g;
    }
    return 0;
}

/* Finds the first dotted number ("535.104.05") in the first line of s that starts with
 * prefix, into buf; "" when there is none. */
static void first_dotted_number(const char *s, const char *prefix, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *line = s ? strstr(s, prefix) : NULL;
    if (!line)
        return;
    const char *end = strchr(line, '\n');
    if (!end)
        end = line + strlen(line);
    for (const char *p = line + strlen(prefix); p < end; p++) {
        if (*p < '0' || *p > '9' || (p > line && p[-1] != ' ' && p[-1] != '\t'))
            continue;
        size_t k = strspn(p, "0123456789.");
        bool ends = p + k == end || p[k] == ' ' || p[k] == '\t';
        if (ends && memchr(p, '.', k) && p[k - 1] != '.') {
            snprintf(buf, len, "%.*s", (int)k, p);
            return;
        }
    }
}

int drv_probe_parse_nvidia_proc(const char *information, const char *version_text,
                                drv_gpu_info *gpu, drv_error *err)
{
    memset(gpu, 0, sizeof *gpu);
    gpu->vendor = DRV_GPU_NVIDIA;
    gpu->source = "/proc/driver/nvidia";
    const char *model = information ? strstr(information, "Model:") : NULL;
    if (!model || (model != information && model[-1] != '\n'))
        return drv_error_set(err, "/proc/driver/nvidia information: no \"Model:\" line");
    model += 6;
    copy_trimmed(gpu->name, sizeof gpu->name, model, strcspn(model, "\n"));
    first_dotted_number(version_text, "NVRM version:", gpu->driver, sizeof gpu->driver);
    return 0;
}

/* The value of key in obj, comparing keys without regard to case; NULL if absent. */
static json_t *get_nocase(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

int drv_probe_parse_rocm_smi(const char *json, drv_gpu_info *gpus, unsigned max, unsigned *n,
                             drv_error *err)
{
    json_error_t jerr;
    json_t *root = json ? json_loads(json, 0, &jerr) : NULL;
    if (!root)
        return drv_error_set(err, "rocm-smi: invalid JSON: %s (line %d)",
                             json ? jerr.text : "no output", json ? jerr.line : 0);
    if (!json_is_object(root)) {
        json_decref(root);
        return drv_error_set(err, "rocm-smi: expected a JSON object of cards");
    }
    /* Keys in card order (card0, card1, ...): jansson keeps insertion order. */
    const char *key;
    json_t *card;
    int rc = 0;
    json_object_foreach(root, key, card)
    {
        if (strncmp(key, "card", 4) != 0 || !json_is_object(card))
            continue;
        if (*n >= max)
            break;
        drv_gpu_info g;
        memset(&g, 0, sizeof g);
        g.vendor = DRV_GPU_AMD;
        g.source = "rocm-smi";
        json_t *name = get_nocase(card, "Card series");
        if (!json_is_string(name))
            name = get_nocase(card, "Card model");
        if (json_is_string(name))
            snprintf(g.name, sizeof g.name, "%s", json_string_value(name));
        json_t *mem = get_nocase(card, "VRAM Total Memory (B)");
        uint64_t bytes = 0;
        if (json_is_integer(mem) && json_integer_value(mem) >= 0)
            bytes = (uint64_t)json_integer_value(mem);
        else if (json_is_string(mem) && !parse_u64(json_string_value(mem), &bytes)) {
            rc = drv_error_set(err, "rocm-smi: %s: VRAM Total Memory (B) \"%s\" is not a number",
                               key, json_string_value(mem));
            break;
        }
        g.memory_mb = bytes / (1024 * 1024);
        gpus[(*n)++] = g;
    }
    json_decref(root);
    return rc;
}

/* ---- running a GPU tool ------------------------------------------------------------ */

/* Seconds on the monotonic clock. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv (argv[0] an absolute path, no shell) with stdout captured and stderr
 * discarded, for at most DRV_PROBE_TOOL_TIMEOUT_S. Returns its output (the caller frees
 * it) when it exits 0, else NULL with err saying why. */
static char *run_tool(char *const argv[], drv_error *err)
{
    int fds[2];
    if (pipe(fds) != 0) {
        drv_error_set(err, "%s: cannot create a pipe: %s", argv[0], strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        drv_error_set(err, "%s: cannot run: %s", argv[0], strerror(rc));
        return NULL;
    }
    /* Owned here until returned. */
    size_t cap = 4096, n = 0;
    char *buf = drv_xmalloc(cap);
    double deadline = mono_s() + DRV_PROBE_TOOL_TIMEOUT_S;
    bool timed_out = false;
    for (;;) {
        double left = deadline - mono_s();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        if (n + 1 >= cap) {
            if (cap >= TOOL_OUTPUT_MAX)
                break; /* enough: the rest is not read */
            cap *= 2;
            buf = drv_xrealloc(buf, cap);
        }
        ssize_t k = read(fds[0], buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        free(buf);
        drv_error_set(err, "%s: no answer after %d s, killed", argv[0], DRV_PROBE_TOOL_TIMEOUT_S);
        return NULL;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(buf);
        if (WIFSIGNALED(status))
            drv_error_set(err, "%s: killed by signal %d", argv[0], WTERMSIG(status));
        else
            drv_error_set(err, "%s: exited with status %d", argv[0], WEXITSTATUS(status));
        return NULL;
    }
    return buf;
}

/* ---- finding the GPUs ---------------------------------------------------------------- */

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* NVIDIA from PROC/driver/nvidia/gpus/STAR/information (sorted by bus id). */
static void nvidia_from_proc(drv_probe_result *r, const char *proc)
{
    char dir[DRV_PROBE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/driver/nvidia/gpus", proc);
    DIR *d = opendir(dir);
    if (!d)
        return;
    char *names[DRV_PROBE_GPUS_MAX]; /* owned here */
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < DRV_PROBE_GPUS_MAX)
        if (e->d_name[0] != '.')
            names[count++] = drv_xstrdup(e->d_name);
    closedir(d);
    qsort(names, count, sizeof names[0], compare_names);
    char path[DRV_PROBE_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/driver/nvidia/version", proc);
    char *version = drv_probe_read_text(path, TEXT_MAX);
    for (size_t i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s/information", dir, names[i]);
        char *info = drv_probe_read_text(path, TEXT_MAX);
        drv_gpu_info g;
        drv_error err = {{0}};
        if (!info)
            drv_probe_warn(r, "%s: cannot read: %s", path, strerror(errno));
        else if (drv_probe_parse_nvidia_proc(info, version, &g, &err) < 0)
            drv_probe_warn(r, "%s: %s", path, err.msg);
        else if (r->n_gpus < DRV_PROBE_GPUS_MAX)
            r->gpus[r->n_gpus++] = g;
        free(info);
        free(names[i]);
    }
    free(version);
}

/* AMD from SYS/class/drm/cardN/device (N = 0..63), vendor 0x1002. */
static void amd_from_sysfs(drv_probe_result *r, const char *sys)
{
    for (int card = 0; card < 64 && r->n_gpus < DRV_PROBE_GPUS_MAX; card++) {
        char dev[DRV_PROBE_PATH_MAX], path[DRV_PROBE_PATH_MAX + 64];
        snprintf(dev, sizeof dev, "%s/class/drm/card%d/device", sys, card);
        snprintf(path, sizeof path, "%s/vendor", dev);
        char *vendor = drv_probe_read_text(path, 64);
        bool amd = vendor && strncmp(vendor, "0x1002", 6) == 0;
        free(vendor);
        if (!amd)
            continue;
        drv_gpu_info g;
        memset(&g, 0, sizeof g);
        g.vendor = DRV_GPU_AMD;
        g.source = "sysfs";
        snprintf(path, sizeof path, "%s/mem_info_vram_total", dev);
        char *mem = drv_probe_read_text(path, 64);
        uint64_t bytes = 0;
        if (mem) {
            mem[strcspn(mem, "\n")] = '\0';
            if (!parse_u64(mem, &bytes))
                drv_probe_warn(r, "%s: \"%s\" is not a number of bytes", path, mem);
        }
        free(mem);
        g.memory_mb = bytes / (1024 * 1024);
        snprintf(path, sizeof path, "%s/product_name", dev);
        char *name = drv_probe_read_text(path, 256);
        if (!name || !name[0] || name[0] == '\n') {
            free(name);
            snprintf(path, sizeof path, "%s/device", dev);
            name = drv_probe_read_text(path, 64);
            if (name)
                name[strcspn(name, "\n")] = '\0';
            snprintf(g.name, sizeof g.name, "AMD GPU %s", name ? name : "");
        } else {
            copy_trimmed(g.name, sizeof g.name, name, strcspn(name, "\n"));
        }
        free(name);
        r->gpus[r->n_gpus++] = g;
    }
}

/* Runs tool (found on the search path) with args; parses its output with parse. Returns
 * true when the tool was found and its output parsed; a tool that was found but failed
 * becomes a warning. */
static bool from_tool(drv_probe_result *r, const drv_probe_options *opt, const char *tool,
                      const char *const *args,
                      int (*parse)(const char *, drv_gpu_info *, unsigned, unsigned *, drv_error *))
{
    char exe[DRV_PROBE_PATH_MAX];
    if (!drv_probe_which(opt->search_path, tool, exe, sizeof exe))
        return false;
    char *argv[8];
    int k = 0;
    argv[k++] = exe;
    for (int i = 0; args[i] && k < 7; i++)
        argv[k++] = (char *)args[i];
    argv[k] = NULL;
    drv_error err = {{0}};
    char *text = run_tool(argv, &err);
    if (!text) {
        drv_probe_warn(r, "%s (falling back to the kernel's files)", err.msg);
        return false;
    }
    unsigned n = r->n_gpus;
    int rc = parse(text, r->gpus, DRV_PROBE_GPUS_MAX, &n, &err);
    free(text);
    if (rc < 0) {
        drv_probe_warn(r, "%s (falling back to the kernel's files)", err.msg);
        return false;
    }
    r->n_gpus = n;
    return true;
}

void drv_probe_gpus(drv_probe_result *out, const drv_probe_options *opt)
{
    static const drv_probe_options defaults;
    if (!opt)
        opt = &defaults;
    const char *proc = opt->proc_root ? opt->proc_root : "/proc";
    const char *sys = opt->sys_root ? opt->sys_root : "/sys";
    static const char *const nvidia_args[] = {
        "--query-gpu=name,memory.total,compute_cap,driver_version", "--format=csv,noheader,nounits",
        NULL};
    static const char *const rocm_args[] = {"--showproductname", "--showmeminfo", "vram", "--json",
                                            NULL};
    if (!from_tool(out, opt, "nvidia-smi", nvidia_args, drv_probe_parse_nvidia_smi))
        nvidia_from_proc(out, proc);
    if (!from_tool(out, opt, "rocm-smi", rocm_args, drv_probe_parse_rocm_smi))
        amd_from_sysfs(out, sys);

    drv_capabilities *c = &out->caps;
    c->gpu_count = out->n_gpus;
    bool first_nvidia = true;
    for (unsigned i = 0; i < out->n_gpus; i++) {
        const drv_gpu_info *g = &out->gpus[i];
        if (i == 0 || g->memory_mb < c->gpu_memory_mb)
            c->gpu_memory_mb = g->memory_mb;
        if (g->vendor == DRV_GPU_AMD) {
            drv_tagset_add(&c->tags, DRV_TAG_ROCM);
            continue;
        }
        drv_tagset_add(&c->tags, DRV_TAG_CUDA);
        if (first_nvidia || g->cuda_cc < c->cuda_cc)
            c->cuda_cc = g->cuda_cc;
        if (first_nvidia && g->driver[0]) {
            drv_error err = {{0}};
            if (drv_version_parse(g->driver, &c->driver_version, &err) < 0)
                drv_probe_warn(out, "NVIDIA driver version: %s", err.msg);
        }
        first_nvidia = false;
    }
}

int drv_pressure_read_gpus(const char *search_path, drv_pressure *p, drv_error *err)
{
    char exe[DRV_PROBE_PATH_MAX];
    if (!drv_probe_which(search_path, "nvidia-smi", exe, sizeof exe))
        return drv_error_set(err, "nvidia-smi: not on the search path");
    char *argv[] = {exe, DRV_PRESSURE_NVIDIA_ARGS, NULL};
    char *text = run_tool(argv, err);
    if (!text)
        return -1;
    int rc = drv_pressure_parse_nvidia(text, p, err);
    free(text);
    return rc;
}
