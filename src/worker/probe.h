/* probe.h - what a worker finds out about its machine before it registers.
 *
 * drv_probe_run() fills a drv_capabilities (the numbers and tags the balancer matches
 * tests against) plus what a person reading `drover worker --probe` wants to see: OS,
 * architecture, host name, every GPU found, every browser found, and warnings about
 * sources that were present but unusable (a GPU tool that failed, for example).
 *
 * Where each figure comes from:
 *   cores    sched_getaffinity() (the CPUs this process may run on), capped by the cgroup
 *            v2 cpu.max quota when one is set; sysconf(_SC_NPROCESSORS_ONLN) as fallback.
 *   memory   MemTotal of PROC/meminfo, capped by the cgroup v2 memory.max when one is set.
 *   OS/arch  uname(); host name from gethostname().
 *   NVIDIA   `nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version
 *            --format=csv,noheader,nounits` when nvidia-smi is on the search path; else
 *            PROC/driver/nvidia/gpus/STAR/information (names) and PROC/driver/nvidia/version
 *            (driver), which give neither memory nor compute capability (both stay 0).
 *   AMD      `rocm-smi --showproductname --showmeminfo vram --json` when rocm-smi is on the
 *            search path; else every SYS/class/drm/cardN whose device/vendor is 0x1002,
 *            memory from device/mem_info_vram_total.
 *   browsers executables on the search path or at well-known install paths (below).
 *
 * Tags: "cpu" always; "cuda" when an NVIDIA GPU was found, "rocm" when an AMD GPU was
 * found; one tag per browser found (chromium, chrome, firefox, edge); the browser
 * back-ends they make available: chromium, chrome and edge give "webgpu" and "webnn",
 * firefox gives "webgpu"; then every label the user gave (--label). A label may name a
 * back-end the probe cannot detect (mps, openvino, qnn) to declare it by hand.
 *
 * Numbers across several GPUs: gpu_memory_mb is the smallest GPU's memory (0 when any
 * GPU's memory is unknown), cuda_cc the lowest compute capability among NVIDIA GPUs,
 * driver_version the NVIDIA driver's (drv_version_parse() form); 0 when unknown.
 *
 * Everything here is plain data in fixed-size arrays: a drv_probe_result owns nothing
 * and needs no freeing. */
#ifndef DRV_WORKER_PROBE_H
#define DRV_WORKER_PROBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/requirements.h"
#include "core/tags.h"

#define DRV_PROBE_GPUS_MAX     16
#define DRV_PROBE_BROWSERS_MAX 8
#define DRV_PROBE_WARNINGS_MAX 8
#define DRV_PROBE_PATH_MAX     512
#define DRV_PROBE_SLOTS_MAX    4096
/* A GPU tool that has not answered after this long is killed and counted as failed. */
#define DRV_PROBE_TOOL_TIMEOUT_S 10

typedef enum drv_gpu_vendor {
    DRV_GPU_NVIDIA = 0,
    DRV_GPU_AMD,
} drv_gpu_vendor;

typedef struct drv_gpu_info {
    drv_gpu_vendor vendor;
    char name[128];     /* "NVIDIA GeForce RTX 3090"; "" when unknown */
    uint64_t memory_mb; /* 0 when unknown */
    uint32_t cuda_cc;   /* x10 (86 = 8.6); 0 for AMD or when unknown */
    char driver[32];    /* driver version as reported ("535.104.05"); "" when unknown */
    const char *source; /* static string: "nvidia-smi", "/proc/driver/nvidia", "rocm-smi",
                           "sysfs" */
} drv_gpu_info;

typedef struct drv_browser_info {
    int tag;                       /* DRV_TAG_CHROMIUM, _CHROME, _FIREFOX or _EDGE */
    char path[DRV_PROBE_PATH_MAX]; /* the executable found */
} drv_browser_info;

typedef struct drv_probe_result {
    drv_capabilities caps;
    uint32_t slots; /* tests run at once: --slots, else one per core */
    char os[64];    /* uname sysname: "Linux" */
    char os_release[128];
    char arch[64]; /* uname machine: "x86_64", "aarch64" */
    char hostname[256];
    unsigned n_gpus;
    drv_gpu_info gpus[DRV_PROBE_GPUS_MAX];
    unsigned n_browsers;
    drv_browser_info browsers[DRV_PROBE_BROWSERS_MAX];
    drv_tagset labels; /* the tags that came from labels */
    unsigned n_warnings;
    char warnings[DRV_PROBE_WARNINGS_MAX][256];
} drv_probe_result;

/* What the caller can change; a zeroed struct (or NULL) means "probe this machine". The
 * roots and the search path exist so that tests can point the probe at a fake tree. */
typedef struct drv_probe_options {
    char *const *labels;     /* NULL-terminated tag names to add; may be NULL */
    uint32_t slots;          /* 0 = one per core; else 1..DRV_PROBE_SLOTS_MAX */
    const char *proc_root;   /* NULL = "/proc" */
    const char *sys_root;    /* NULL = "/sys" */
    const char *search_path; /* colon-separated dirs; NULL = $PATH (or "/usr/bin:/bin") */
    /* NULL-terminated absolute paths checked for browsers after the search path, each
     * counted for the browser one of whose executable names is its file name
     * (".../firefox-esr" is firefox); NULL = the built-in list (Debian, Ubuntu snap,
     * Google, Microsoft, Mozilla, macOS install paths). Tests pass an empty list. */
    const char *const *browser_paths;
    /* Offer no GPU and no browser found on the machine: only cores, memory and the
     * labels (`drover worker --no-detect`: hiding a device, tests on any machine). */
    bool no_detect;
} drv_probe_options;

/* Probes the machine as described at the top of this file and fills *out (cleared
 * first). Labels are interned into tags. Returns 0, or -1 with err filled when a label
 * is not a valid tag name ("label \"Zone A\": tag \"Zone A\": invalid character ..."),
 * slots is out of range, or the memory size cannot be read; a GPU source or browser that
 * cannot be used is not an error: it is left out and, when it existed but failed,
 * noted in out->warnings. */
int drv_probe_run(drv_probe_result *out, const drv_probe_options *opt, drv_tag_table *tags,
                  drv_error *err);

/* The JSON `drover worker --probe` prints: host facts, capabilities, gpus, browsers,
 * tag names, labels and warnings. Returns a new reference (the caller decrefs). */
json_t *drv_probe_to_json(const drv_probe_result *r, const drv_tag_table *tags);

/* ---- the pieces, exposed so that tests can feed recorded outputs ---- */

/* Parses the MemTotal line of a /proc/meminfo text into MiB. Returns -1 with err filled
 * when text is NULL or has no valid MemTotal line. */
int drv_probe_parse_meminfo(const char *text, uint64_t *mb, drv_error *err);

/* Parses the output of `nvidia-smi --query-gpu=name,memory.total,compute_cap,
 * driver_version --format=csv,noheader,nounits` (one GPU a line: "NVIDIA A100, 40960,
 * 8.0, 535.104.05"), appending up to max - *n GPUs to gpus. Empty text gives no GPUs.
 * A line that is not 4 fields, or whose memory is not a number, gives -1 with err
 * naming the line; "[N/A]" memory or compute capability is kept as 0 (unknown). */
int drv_probe_parse_nvidia_smi(const char *csv, drv_gpu_info *gpus, unsigned max, unsigned *n,
                               drv_error *err);

/* Parses one PROC/driver/nvidia/gpus/BUS/information file ("Model: \t NVIDIA ...") into
 * gpu (vendor NVIDIA, name from Model, memory and compute capability 0). version_text
 * (PROC/driver/nvidia/version, may be NULL) gives the driver version: the first dotted
 * number of its "NVRM version:" line. Returns -1 with err when there is no Model line. */
int drv_probe_parse_nvidia_proc(const char *information, const char *version_text,
                                drv_gpu_info *gpu, drv_error *err);

/* Parses the JSON of `rocm-smi --showproductname --showmeminfo vram --json`: one object
 * per "cardN" key with "Card series" (or "Card Series", else "Card model") and
 * "VRAM Total Memory (B)" (a string or number of bytes); other keys ("system") are
 * skipped. Appends up to max - *n GPUs. Returns -1 with err on invalid JSON or a
 * card whose memory is not a number. */
int drv_probe_parse_rocm_smi(const char *json, drv_gpu_info *gpus, unsigned max, unsigned *n,
                             drv_error *err);

/* Finds the GPUs of the machine (see the top of this file) and records them, their
 * tags and their numbers in out. Never fails: unusable sources become warnings. */
void drv_probe_gpus(drv_probe_result *out, const drv_probe_options *opt);

/* Finds the browsers of the machine and records them and their tags in out. */
void drv_probe_browsers(drv_probe_result *out, const drv_probe_options *opt);

/* Looks for an executable regular file called name in the colon-separated search_path
 * (NULL = $PATH, or "/usr/bin:/bin" when unset; empty entries are skipped). Writes its
 * path into buf and returns true, or returns false (buf then holds ""). */
bool drv_probe_which(const char *search_path, const char *name, char *buf, size_t len);

/* Reads the text file at path (at most max bytes) into a new NUL-terminated buffer the
 * caller frees. Returns NULL (errno set) when it cannot be opened or read. */
char *drv_probe_read_text(const char *path, size_t max);

/* ---- pressure: what a worker measures for every heartbeat (probe_pressure.c) ----
 *
 * Where each figure comes from (ROOT is the root passed, "/" normally; tests point it
 * at a fake tree):
 *   cpu          ROOT/proc/pressure/cpu "some avg10" / 100 (the share of the last 10 s
 *                in which some task waited for a CPU); without PSI, the 1-minute load
 *                average of ROOT/proc/loadavg beyond the cores, (load - cores) / cores,
 *                clamped to 0..1.
 *   memory       ROOT/proc/pressure/memory "some avg10" / 100; unknown without PSI.
 *   temperature  the hottest ROOT/sys/class/thermal/thermal_zone*\/temp (millidegrees;
 *                readings <= 0 or >= 200 C are ignored as broken sensors), and the GPUs'
 *                (drv_pressure_read_gpus).
 *   freq_ratio   the mean over ROOT/sys/devices/system/cpu/cpuN/cpufreq of
 *                scaling_cur_freq / cpuinfo_max_freq.
 *   throttles    the sum of ROOT/sys/devices/system/cpu/cpuN/thermal_throttle/
 *                {core,package}_throttle_count: the caller compares it with the last
 *                reading (a rise is throttling).
 * Every figure is < 0 (throttles: has_throttles false) when its source is absent. */
typedef struct drv_pressure {
    double cpu;             /* 0..1, < 0 unknown */
    const char *cpu_source; /* static: "psi", "loadavg"; NULL when unknown */
    double memory;          /* 0..1, < 0 unknown */
    double temperature_c;   /* < 0 unknown */
    double freq_ratio;      /* 0..1, < 0 unknown */
    uint64_t throttles;     /* CPU thermal throttle events so far */
    bool has_throttles;
    bool gpu_throttled; /* a GPU slows down for heat or power (drv_pressure_read_gpus) */
} drv_pressure;

/* Measures under root (NULL or "" = "/"); cores (>= 1) is what the load average is
 * compared with. Never fails: what cannot be read stays unknown. */
void drv_pressure_read(const char *root, uint32_t cores, drv_pressure *out);

/* The "some avg10" of a PSI file's text as a share 0..1, or -1 when text is NULL or has
 * no valid "some avg10=" figure. */
double drv_pressure_parse_psi(const char *text);

/* Parses `nvidia-smi --query-gpu=temperature.gpu,clocks_throttle_reasons.active
 * --format=csv,noheader,nounits` ("72, 0x0000000000000004" a line): raises
 * p->temperature_c to the hottest GPU and sets p->gpu_throttled when a GPU's active
 * reasons include a hardware slowdown, a thermal slowdown (software or hardware) or a
 * power brake (0x8, 0x20, 0x40, 0x80; power capping 0x4 is normal at full load).
 * "[N/A]" fields are skipped. Returns -1 with err naming the line when a line is not
 * two fields. */
int drv_pressure_parse_nvidia(const char *csv, drv_pressure *p, drv_error *err);

/* The arguments of that query after the program's path (drv_pressure_read_gpus, and the
 * worker's asynchronous query in agent.c). */
#define DRV_PRESSURE_NVIDIA_ARGS                                                                   \
    "--query-gpu=temperature.gpu,clocks_throttle_reasons.active", "--format=csv,noheader,nounits"

/* Runs the query above when nvidia-smi is on search_path (NULL = $PATH) and applies it
 * to p, blocking for up to DRV_PROBE_TOOL_TIMEOUT_S (the worker's event loop does not
 * call it: agent.c runs the query asynchronously). Returns 0, or -1 with err when the tool is
 * absent, fails or answers nonsense. */
int drv_pressure_read_gpus(const char *search_path, drv_pressure *p, drv_error *err);

/* Appends a warning to r (printf-style); warnings past DRV_PROBE_WARNINGS_MAX are
 * dropped. */
void drv_probe_warn(drv_probe_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
