/* test_probe.c - the worker's machine probe: the GPU tool and kernel-file parsers fed
 * with recorded outputs (tests/data/probe/), a fake /proc and /sys, GPU tools replaced by
 * stub scripts, browser detection on a fake PATH, labels and slots, the JSON, and the
 * real machine (which may have no GPU and no browser). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/probe.h"

/* The path of a file under tests/data/probe, in buf. */
static const char *data_path(const char *name, char *buf, size_t len)
{
    const char *src = getenv("DRV_SOURCE_DIR");
    snprintf(buf, len, "%s/tests/data/probe/%s", src ? src : ".", name);
    return buf;
}

/* The text of a file under tests/data/probe (the caller frees it). */
static char *data_text(const char *name)
{
    char path[512];
    char *text = drv_probe_read_text(data_path(name, path, sizeof path), 1 << 20);
    if (!text)
        fail_msg("cannot read %s (is DRV_SOURCE_DIR set?)", path);
    return text;
}

/* Writes text to dir/name with the given mode, creating dir/name's parents one level. */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[512];
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* Removes a temp tree (paths made by the tests only). */
static void remove_tree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static const char *const no_paths[] = {NULL};

static void test_parse_nvidia_smi_two_gpus(void **state)
{
    (void)state;
    char *csv = data_text("nvidia-smi-2gpu.csv");
    drv_gpu_info gpus[DRV_PROBE_GPUS_MAX];
    unsigned n = 0;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_parse_nvidia_smi(csv, gpus, DRV_PROBE_GPUS_MAX, &n, &err), 0);
    free(csv);
    assert_int_equal(n, 2);
    assert_string_equal(gpus[0].name, "NVIDIA GeForce RTX 3090");
    assert_int_equal(gpus[0].memory_mb, 24576);
    assert_int_equal(gpus[1].memory_mb, 10240);
    assert_int_equal(gpus[0].cuda_cc, 86);
    assert_string_equal(gpus[1].driver, "535.104.05");
    assert_int_equal(gpus[1].vendor, DRV_GPU_NVIDIA);

    /* Not available memory is kept as unknown (0). */
    csv = data_text("nvidia-smi-na.csv");
    n = 0;
    assert_int_equal(drv_probe_parse_nvidia_smi(csv, gpus, DRV_PROBE_GPUS_MAX, &n, &err), 0);
    free(csv);
    assert_int_equal(n, 2);
    assert_int_equal(gpus[0].cuda_cc, 80);
    assert_int_equal(gpus[1].memory_mb, 0);
    assert_int_equal(gpus[1].cuda_cc, 75);

    /* Only max GPUs are taken. */
    n = 0;
    assert_int_equal(drv_probe_parse_nvidia_smi("a, 1, 8.0, 1\nb, 2, 8.0, 1\n", gpus, 1, &n, &err),
                     0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(drv_probe_parse_nvidia_smi("", gpus, DRV_PROBE_GPUS_MAX, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_parse_nvidia_smi_errors(void **state)
{
    (void)state;
    static const struct {
        const char *csv, *msg;
    } rows[] = {
        {"NVIDIA A100, 40960\n", "line 1 \"NVIDIA A100, 40960\": expected 4"},
        {"ok, 1, 8.0, 1\nT4, lots, 7.5, 535\n", "line 2: memory.total \"lots\""},
        {"T4, 15360, 7.x, 535\n", "line 1: CUDA compute capability"},
        {"NVIDIA-SMI has failed because it couldn't communicate with the driver\n", "expected 4"},
        {NULL, "no output"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_gpu_info gpus[4];
        unsigned n = 0;
        drv_error err = {{0}};
        assert_int_equal(drv_probe_parse_nvidia_smi(rows[i].csv, gpus, 4, &n, &err), -1);
        if (!strstr(err.msg, rows[i].msg))
            fail_msg("row %zu: \"%s\" lacks \"%s\"", i, err.msg, rows[i].msg);
    }
}

static void test_parse_nvidia_proc(void **state)
{
    (void)state;
    char *info = data_text("proc/driver/nvidia/gpus/0000:01:00.0/information");
    char *version = data_text("proc/driver/nvidia/version");
    drv_gpu_info g;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_parse_nvidia_proc(info, version, &g, &err), 0);
    assert_string_equal(g.name, "NVIDIA GeForce RTX 3090");
    assert_string_equal(g.driver, "535.104.05");
    assert_int_equal(g.memory_mb, 0); /* the kernel's files do not say */
    assert_int_equal(g.cuda_cc, 0);
    /* The open kernel module words its version line differently. */
    const char *open_km = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  "
                          "Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC "
                          "2024\n";
    assert_int_equal(drv_probe_parse_nvidia_proc(info, open_km, &g, &err), 0);
    assert_string_equal(g.driver, "550.54.15");
    assert_int_equal(drv_probe_parse_nvidia_proc(info, NULL, &g, &err), 0);
    assert_string_equal(g.driver, "");
    free(info);
    free(version);
    assert_int_equal(drv_probe_parse_nvidia_proc("IRQ: 5\n", NULL, &g, &err), -1);
    assert_non_null(strstr(err.msg, "no \"Model:\" line"));
}

static void test_parse_rocm_smi(void **state)
{
    (void)state;
    char *json = data_text("rocm-smi.json");
    drv_gpu_info gpus[4];
    unsigned n = 0;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_parse_rocm_smi(json, gpus, 4, &n, &err), 0);
    free(json);
    assert_int_equal(n, 2); /* "system" is not a card */
    assert_string_equal(gpus[0].name, "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]");
    assert_int_equal(gpus[0].memory_mb, 16368);
    assert_string_equal(gpus[1].name, "Instinct MI210"); /* newer "Card Series" spelling */
    assert_int_equal(gpus[1].memory_mb, 65520);
    assert_int_equal(gpus[1].vendor, DRV_GPU_AMD);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"card0\": ", "invalid JSON"},
        {"[1]", "expected a JSON object"},
        {"{\"card0\": {\"VRAM Total Memory (B)\": \"16 GB\"}}", "card0: VRAM Total Memory (B)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 0;
        assert_int_equal(drv_probe_parse_rocm_smi(bad[i].json, gpus, 4, &n, &err), -1);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("row %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].msg);
    }
}

static void test_parse_meminfo(void **state)
{
    (void)state;
    uint64_t mb = 0;
    drv_error err = {{0}};
    char *text = data_text("proc/meminfo");
    assert_int_equal(drv_probe_parse_meminfo(text, &mb, &err), 0);
    free(text);
    assert_int_equal(mb, 64239);
    assert_int_equal(drv_probe_parse_meminfo("MemFree: 5 kB\n", &mb, &err), -1);
    assert_non_null(strstr(err.msg, "no MemTotal line"));
    assert_int_equal(drv_probe_parse_meminfo("MemTotal: lots\n", &mb, &err), -1);
    assert_non_null(strstr(err.msg, "\"MemTotal: lots\""));
    assert_int_equal(drv_probe_parse_meminfo(NULL, &mb, &err), -1);
}

/* A temp dir for a fake machine: empty bin/ (the search path), sys/. */
static void make_fake_root(char *dir)
{
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/bin", dir);
    assert_int_equal(mkdir(path, 0755), 0);
}

/* Adds an AMD card (or another vendor's) to the fake sysfs under dir. */
static void fake_card(const char *dir, int card, const char *vendor, const char *vram)
{
    char path[600];
    snprintf(path, sizeof path, "mkdir -p '%s/sys/class/drm/card%d/device'", dir, card);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof path, "%s/sys/class/drm/card%d/device", dir, card);
    write_file(path, "vendor", vendor, 0644);
    write_file(path, "device", "0x73bf\n", 0644);
    if (vram)
        write_file(path, "mem_info_vram_total", vram, 0644);
}

static void test_amd_from_fake_sysfs(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX";
    make_fake_root(dir);
    fake_card(dir, 0, "0x8086\n", NULL);            /* an Intel iGPU: not counted */
    fake_card(dir, 1, "0x1002\n", "17163091968\n"); /* 16368 MiB */
    fake_card(dir, 3, "0x1002\n", "8573157376\n");  /* 8176 MiB, after a gap */
    char bin[600], sys[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    snprintf(sys, sizeof sys, "%s/sys", dir);
    drv_probe_options opt = {.search_path = bin, .sys_root = sys, .proc_root = dir};
    drv_probe_result r;
    memset(&r, 0, sizeof r);
    drv_probe_gpus(&r, &opt);
    assert_int_equal(r.n_gpus, 2);
    assert_int_equal(r.gpus[0].vendor, DRV_GPU_AMD);
    assert_string_equal(r.gpus[0].name, "AMD GPU 0x73bf");
    assert_string_equal(r.gpus[0].source, "sysfs");
    assert_int_equal(r.caps.gpu_count, 2);
    assert_int_equal(r.caps.gpu_memory_mb, 8176); /* the smallest */
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_ROCM));
    assert_false(drv_tagset_has(&r.caps.tags, DRV_TAG_CUDA));
    assert_int_equal(r.caps.cuda_cc, 0);
    remove_tree(dir);
}

/* The whole probe on the recorded /proc (meminfo, NVIDIA kernel files), no tools. */
static void test_run_on_fake_proc(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX", proc[512];
    make_fake_root(dir);
    char bin[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    drv_probe_options opt = {.search_path = bin,
                             .proc_root = data_path("proc", proc, sizeof proc),
                             .sys_root = dir,
                             .browser_paths = no_paths};
    drv_tag_table *tags = drv_tag_table_new();
    drv_probe_result r;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_run(&r, &opt, tags, &err), 0);
    assert_int_equal(r.caps.memory_mb, 64239);
    assert_int_equal(r.caps.gpu_count, 2);
    assert_string_equal(r.gpus[0].name, "NVIDIA GeForce RTX 3090"); /* bus order */
    assert_string_equal(r.gpus[1].name, "NVIDIA RTX A4000");
    assert_string_equal(r.gpus[1].source, "/proc/driver/nvidia");
    assert_int_equal(r.caps.driver_version, 535104005);
    assert_int_equal(r.caps.gpu_memory_mb, 0); /* unknown without nvidia-smi */
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_CUDA));
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_CPU));
    assert_int_equal(drv_tagset_count(&r.caps.tags), 2);
    assert_int_equal(r.n_warnings, 0);

    /* --no-detect: the same machine with a browser on the path offers neither the GPUs
     * nor the browser, only cores, memory and its labels. */
    write_file(bin, "chromium", "#!/bin/sh\n", 0755);
    char *labels[] = {"webgpu", NULL};
    opt.labels = labels;
    opt.no_detect = true;
    assert_int_equal(drv_probe_run(&r, &opt, tags, &err), 0);
    assert_int_equal(r.caps.memory_mb, 64239);
    assert_int_equal(r.caps.gpu_count, 0);
    assert_int_equal(r.n_gpus, 0);
    assert_int_equal(r.n_browsers, 0);
    assert_false(drv_tagset_has(&r.caps.tags, DRV_TAG_CUDA));
    assert_false(drv_tagset_has(&r.caps.tags, DRV_TAG_CHROMIUM));
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_WEBGPU));
    assert_int_equal(drv_tagset_count(&r.caps.tags), 2); /* cpu, webgpu */
    opt.no_detect = false;
    assert_int_equal(drv_probe_run(&r, &opt, tags, &err), 0);
    assert_int_equal(r.n_browsers, 1);
    assert_int_equal(r.caps.gpu_count, 2);
    drv_tag_table_free(tags);
    remove_tree(dir);
}

/* GPU tools replaced by stub scripts on the search path: a working nvidia-smi wins over
 * the kernel's files; a failing one is a warning and the kernel's files are used. */
static void test_gpu_tools_stubbed(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX", proc[512], csv[512], json[512];
    make_fake_root(dir);
    char bin[600], script[1200];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    snprintf(script, sizeof script, "#!/bin/sh\ncat '%s'\n",
             data_path("nvidia-smi-2gpu.csv", csv, sizeof csv));
    write_file(bin, "nvidia-smi", script, 0755);
    snprintf(script, sizeof script, "#!/bin/sh\ncat '%s'\n",
             data_path("rocm-smi.json", json, sizeof json));
    write_file(bin, "rocm-smi", script, 0755);
    drv_probe_options opt = {
        .search_path = bin, .proc_root = data_path("proc", proc, sizeof proc), .sys_root = dir};
    drv_probe_result r;
    memset(&r, 0, sizeof r);
    drv_probe_gpus(&r, &opt);
    assert_int_equal(r.n_warnings, 0);
    assert_int_equal(r.n_gpus, 4);
    assert_string_equal(r.gpus[0].source, "nvidia-smi");
    assert_string_equal(r.gpus[2].source, "rocm-smi");
    assert_int_equal(r.caps.gpu_count, 4);
    assert_int_equal(r.caps.gpu_memory_mb, 10240);
    assert_int_equal(r.caps.cuda_cc, 86);
    assert_int_equal(r.caps.driver_version, 535104005);
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_CUDA));
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_ROCM));

    write_file(bin, "nvidia-smi", "#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n", 0755);
    unlink(strcat(strcpy(script, bin), "/rocm-smi"));
    memset(&r, 0, sizeof r);
    drv_probe_gpus(&r, &opt);
    assert_int_equal(r.n_warnings, 1);
    assert_non_null(strstr(r.warnings[0], "nvidia-smi: exited with status 9"));
    assert_int_equal(r.n_gpus, 2);
    assert_string_equal(r.gpus[0].source, "/proc/driver/nvidia");
    remove_tree(dir);
}

static void test_browsers_on_fake_path(void **state)
{
    (void)state;
    static const struct {
        const char *files[4]; /* executables put on the search path */
        bool chromium, chrome, firefox, edge, webgpu, webnn;
    } rows[] = {
        {{NULL}, false, false, false, false, false, false},
        {{"firefox", NULL}, false, false, true, false, true, false},
        {{"chromium", "firefox", NULL}, true, false, true, false, true, true},
        {{"chromium-browser", NULL}, true, false, false, false, true, true},
        {{"google-chrome", "msedge", NULL}, false, true, false, true, true, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char dir[] = "/tmp/drv_probe_XXXXXX";
        make_fake_root(dir);
        char bin[600];
        snprintf(bin, sizeof bin, "%s/bin", dir);
        for (int f = 0; rows[i].files[f]; f++)
            write_file(bin, rows[i].files[f], "#!/bin/sh\n", 0755);
        /* Not executable: does not count. */
        if (!rows[i].chrome)
            write_file(bin, "google-chrome", "#!/bin/sh\n", 0644);
        drv_probe_options opt = {.search_path = bin, .browser_paths = no_paths};
        drv_probe_result r;
        memset(&r, 0, sizeof r);
        drv_probe_browsers(&r, &opt);
        const drv_tagset *t = &r.caps.tags;
        if (drv_tagset_has(t, DRV_TAG_CHROMIUM) != rows[i].chromium ||
            drv_tagset_has(t, DRV_TAG_CHROME) != rows[i].chrome ||
            drv_tagset_has(t, DRV_TAG_FIREFOX) != rows[i].firefox ||
            drv_tagset_has(t, DRV_TAG_EDGE) != rows[i].edge ||
            drv_tagset_has(t, DRV_TAG_WEBGPU) != rows[i].webgpu ||
            drv_tagset_has(t, DRV_TAG_WEBNN) != rows[i].webnn)
            fail_msg("row %zu: wrong browser tags", i);
        assert_int_equal(r.n_browsers,
                         rows[i].chromium + rows[i].chrome + rows[i].firefox + rows[i].edge);
        if (r.n_browsers > 0)
            assert_memory_equal(r.browsers[0].path, bin, strlen(bin));
        remove_tree(dir);
    }
}

static void test_browser_well_known_paths(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX";
    make_fake_root(dir);
    char bin[600], edge[700], esr[700];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    write_file(dir, "msedge", "#!/bin/sh\n", 0755);
    write_file(dir, "firefox-esr", "#!/bin/sh\n", 0755);
    snprintf(edge, sizeof edge, "%s/msedge", dir);
    snprintf(esr, sizeof esr, "%s/firefox-esr", dir);
    const char *paths[] = {edge, esr, NULL};
    drv_probe_options opt = {.search_path = bin, .browser_paths = paths};
    drv_probe_result r;
    memset(&r, 0, sizeof r);
    drv_probe_browsers(&r, &opt);
    assert_int_equal(r.n_browsers, 2);
    assert_int_equal(r.browsers[0].tag, DRV_TAG_FIREFOX);
    assert_string_equal(r.browsers[0].path, esr);
    assert_int_equal(r.browsers[1].tag, DRV_TAG_EDGE);
    assert_string_equal(r.browsers[1].path, edge);
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_WEBNN)); /* from edge */
    remove_tree(dir);
}

static void test_labels_and_slots(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX";
    make_fake_root(dir);
    char bin[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    drv_tag_table *tags = drv_tag_table_new();
    char *good[] = {"zone-a", "gpu:a100", "openvino", NULL};
    drv_probe_options opt = {
        .labels = good, .slots = 3, .search_path = bin, .browser_paths = no_paths};
    drv_probe_result r;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_run(&r, &opt, tags, &err), 0);
    assert_int_equal(r.slots, 3);
    int zone = drv_tag_lookup(tags, "zone-a");
    assert_true(zone >= DRV_TAG_WELL_KNOWN_COUNT);
    assert_true(drv_tagset_has(&r.caps.tags, zone));
    assert_true(drv_tagset_has(&r.labels, zone));
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_OPENVINO)); /* declared by hand */
    assert_false(drv_tagset_has(&r.labels, DRV_TAG_CPU));

    static const struct {
        const char *label;
        const char *msg;
    } bad[] = {
        {"Zone A", "label \"Zone A\": "},
        {"", "label \"\": tag name is empty"},
        {"a,b", "label \"a,b\": "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *labels[] = {"ok-label", (char *)bad[i].label, NULL};
        drv_probe_options o2 = {.labels = labels, .search_path = bin, .browser_paths = no_paths};
        assert_int_equal(drv_probe_run(&r, &o2, tags, &err), -1);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("row %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].msg);
    }
    drv_probe_options o3 = {.slots = DRV_PROBE_SLOTS_MAX + 1, .search_path = bin};
    assert_int_equal(drv_probe_run(&r, &o3, tags, &err), -1);
    assert_non_null(strstr(err.msg, "slots: must be 1..4096, got 4097"));
    drv_probe_options o4 = {.proc_root = dir, .search_path = bin, .browser_paths = no_paths};
    assert_int_equal(drv_probe_run(&r, &o4, tags, &err), -1);
    assert_non_null(strstr(err.msg, "/meminfo: No such file"));
    drv_tag_table_free(tags);
    remove_tree(dir);
}

/* The machine the tests run on: it may have no GPU and no browser. */
static void test_real_machine(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_probe_result r;
    drv_error err = {{0}};
    assert_int_equal(drv_probe_run(&r, NULL, tags, &err), 0);
    assert_true(r.caps.cpu_cores >= 1);
    assert_true(r.caps.memory_mb > 0);
    assert_true(drv_tagset_has(&r.caps.tags, DRV_TAG_CPU));
    assert_int_equal(r.slots, r.caps.cpu_cores);
    assert_true(r.os[0] != '\0');
    assert_true(r.arch[0] != '\0');
    assert_int_equal(r.caps.gpu_count, r.n_gpus);
    assert_int_equal(drv_tagset_has(&r.caps.tags, DRV_TAG_WEBGPU), r.n_browsers > 0);

    json_t *j = drv_probe_to_json(&r, tags);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "cpu_cores")), r.caps.cpu_cores);
    assert_int_equal(json_integer_value(json_object_get(j, "memory_mb")), r.caps.memory_mb);
    assert_string_equal(json_string_value(json_object_get(j, "os")), r.os);
    json_t *jt = json_object_get(j, "tags");
    assert_true(json_is_array(jt));
    assert_string_equal(json_string_value(json_array_get(jt, 0)), "cpu");
    assert_int_equal(json_array_size(json_object_get(j, "gpus")), r.n_gpus);
    json_decref(j);
    drv_tag_table_free(tags);
}

/* The JSON of a known result: every field where a reader expects it. */
static void test_json_shape(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_probe_result r;
    memset(&r, 0, sizeof r);
    r.caps.cpu_cores = 16;
    r.caps.memory_mb = 64000;
    r.caps.gpu_count = 1;
    r.caps.gpu_memory_mb = 24576;
    r.caps.cuda_cc = 86;
    r.caps.driver_version = 535104005;
    r.slots = 4;
    snprintf(r.hostname, sizeof r.hostname, "gpu-box-1");
    r.n_gpus = 1;
    r.gpus[0] = (drv_gpu_info){DRV_GPU_NVIDIA, "NVIDIA GeForce RTX 3090", 24576, 86, "535.104.05",
                               "nvidia-smi"};
    r.n_browsers = 1;
    r.browsers[0].tag = DRV_TAG_CHROMIUM;
    snprintf(r.browsers[0].path, sizeof r.browsers[0].path, "/usr/bin/chromium");
    int zone = drv_tag_intern(tags, "zone-a", NULL);
    drv_tagset_add(&r.caps.tags, DRV_TAG_CPU);
    drv_tagset_add(&r.caps.tags, DRV_TAG_CUDA);
    drv_tagset_add(&r.caps.tags, zone);
    drv_tagset_add(&r.labels, zone);
    drv_probe_warn(&r, "rocm-smi: exited with status %d", 2);
    json_t *j = drv_probe_to_json(&r, tags);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    const char *want[] = {
        "\"hostname\":\"gpu-box-1\"",
        "\"cpu_cores\":16",
        "\"slots\":4",
        "\"gpu_memory_mb\":24576",
        "\"cuda_cc\":\"8.6\"",
        "\"driver_version\":\"535.104.5\"",
        "\"tags\":[\"cpu\",\"cuda\",\"zone-a\"]",
        "\"labels\":[\"zone-a\"]",
        ("\"gpus\":[{\"vendor\":\"nvidia\",\"name\":\"NVIDIA GeForce RTX "
         "3090\",\"memory_mb\":24576,"
         "\"cuda_cc\":\"8.6\",\"driver\":\"535.104.05\",\"source\":\"nvidia-smi\"}]"),
        "\"browsers\":[{\"name\":\"chromium\",\"path\":\"/usr/bin/chromium\"}]",
        "\"warnings\":[\"rocm-smi: exited with status 2\"]",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            fail_msg("%s lacks %s", text, want[i]);
    free(text);
    drv_tag_table_free(tags);
}

static void test_which(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_probe_XXXXXX";
    make_fake_root(dir);
    char bin[600], list[1400], buf[700];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    write_file(bin, "tool", "#!/bin/sh\n", 0755);
    write_file(dir, "tool", "#!/bin/sh\n", 0644); /* first on the path, not executable */
    snprintf(list, sizeof list, "::%s:%s", dir, bin);
    assert_true(drv_probe_which(list, "tool", buf, sizeof buf));
    assert_memory_equal(buf, bin, strlen(bin));
    assert_false(drv_probe_which(list, "nothing", buf, sizeof buf));
    assert_string_equal(buf, "");
    assert_false(drv_probe_which(list, "bin", buf, sizeof buf)); /* a directory */
    assert_false(drv_probe_which("", "tool", buf, sizeof buf));
    assert_false(drv_probe_which(list, "", buf, sizeof buf));
    remove_tree(dir);
}

/* ---- pressure (probe_pressure.c) over the fake trees of tests/data/pressure ---- */

static const char *pressure_root(const char *name, char *buf, size_t len)
{
    const char *src = getenv("DRV_SOURCE_DIR");
    snprintf(buf, len, "%s/tests/data/pressure/%s", src ? src : ".", name);
    return buf;
}

static void test_pressure_calm_hot_legacy(void **state)
{
    (void)state;
    char root[512];
    drv_pressure p;

    drv_pressure_read(pressure_root("calm", root, sizeof root), 8, &p);
    assert_true(fabs(p.cpu - 0.035) < 1e-9);
    assert_string_equal(p.cpu_source, "psi");
    assert_true(p.memory == 0);
    assert_true(fabs(p.temperature_c - 52.5) < 1e-9); /* the hotter of two zones */
    assert_true(fabs(p.freq_ratio - 0.75) < 1e-9);    /* mean of 1.0 and 0.5 */
    assert_true(p.has_throttles && p.throttles == 0);
    assert_false(p.gpu_throttled);

    drv_pressure_read(pressure_root("hot", root, sizeof root), 8, &p);
    assert_true(fabs(p.cpu - 0.9725) < 1e-9);
    assert_true(fabs(p.memory - 0.45) < 1e-9);
    assert_true(fabs(p.temperature_c - 91) < 1e-9); /* the broken -273 C zone is ignored */
    assert_true(fabs(p.freq_ratio - 0.4) < 1e-9);
    assert_true(p.has_throttles && p.throttles == 20);

    /* No PSI: the load average beyond the cores. 12 on 8 cores: (12 - 8) / 8. */
    drv_pressure_read(pressure_root("legacy", root, sizeof root), 8, &p);
    assert_true(fabs(p.cpu - 0.5) < 1e-9);
    assert_string_equal(p.cpu_source, "loadavg");
    assert_true(p.memory < 0 && p.temperature_c < 0 && p.freq_ratio < 0);
    assert_false(p.has_throttles);
    drv_pressure_read(pressure_root("legacy", root, sizeof root), 16, &p);
    assert_true(p.cpu == 0); /* 12 runnable on 16 cores is no pressure */

    /* Nothing there: everything unknown. */
    drv_pressure_read(pressure_root("no-such-tree", root, sizeof root), 8, &p);
    assert_true(p.cpu < 0 && p.memory < 0 && p.temperature_c < 0 && p.freq_ratio < 0);
    assert_null(p.cpu_source);
    drv_pressure_read(NULL, 2, NULL); /* no crash */
}

static void test_pressure_parse_psi(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double want;
    } rows[] = {
        {"some avg10=12.50 avg60=1.00 avg300=0.00 total=5\n", 0.125},
        {"some avg10=100.00 avg60=1 avg300=0 total=5\nfull avg10=99.00\n", 1},
        {"full avg10=50.00 avg60=1 avg300=0 total=5\nsome avg10=5.00 avg60=1\n", 0.05},
        {"full avg10=50.00 avg60=1 avg300=0 total=5\n", -1},
        {"some avg60=5.00\n", -1},
        {"some avg10=x\n", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double got = drv_pressure_parse_psi(rows[i].text);
        print_message("row %zu: %g\n", i, got);
        assert_true(fabs(got - rows[i].want) < 1e-9);
    }
    assert_true(drv_pressure_parse_psi(NULL) < 0);
}

static void test_pressure_parse_nvidia(void **state)
{
    (void)state;
    drv_error err = {{0}};
    drv_pressure p = {.temperature_c = 50};
    char path[512];
    char *calm = drv_probe_read_text(pressure_root("nvidia-smi-calm.csv", path, sizeof path), 4096);
    assert_non_null(calm);
    assert_int_equal(drv_pressure_parse_nvidia(calm, &p, &err), 0);
    assert_true(p.temperature_c == 72);
    assert_false(p.gpu_throttled); /* power capping at full load is normal */
    free(calm);
    char *hot = drv_probe_read_text(pressure_root("nvidia-smi-hot.csv", path, sizeof path), 4096);
    assert_non_null(hot);
    assert_int_equal(drv_pressure_parse_nvidia(hot, &p, &err), 0);
    assert_true(p.temperature_c == 88);
    assert_true(p.gpu_throttled); /* hardware thermal slowdown */
    free(hot);
    /* A CPU reading hotter than the GPUs is kept. */
    drv_pressure q = {.temperature_c = 95};
    assert_int_equal(drv_pressure_parse_nvidia("70, 0x0\n", &q, &err), 0);
    assert_true(q.temperature_c == 95);
    assert_int_equal(drv_pressure_parse_nvidia("70, 0x0, 3\n", &q, &err), -1);
    assert_non_null(strstr(err.msg, "line 1"));
    assert_int_equal(drv_pressure_parse_nvidia(NULL, &q, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_nvidia_smi_two_gpus),
        cmocka_unit_test(test_parse_nvidia_smi_errors),
        cmocka_unit_test(test_parse_nvidia_proc),
        cmocka_unit_test(test_parse_rocm_smi),
        cmocka_unit_test(test_parse_meminfo),
        cmocka_unit_test(test_amd_from_fake_sysfs),
        cmocka_unit_test(test_run_on_fake_proc),
        cmocka_unit_test(test_gpu_tools_stubbed),
        cmocka_unit_test(test_browsers_on_fake_path),
        cmocka_unit_test(test_browser_well_known_paths),
        cmocka_unit_test(test_labels_and_slots),
        cmocka_unit_test(test_real_machine),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_which),
        cmocka_unit_test(test_pressure_calm_hot_legacy),
        cmocka_unit_test(test_pressure_parse_psi),
        cmocka_unit_test(test_pressure_parse_nvidia),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
