/* probe_browser.c - the browser part of the probe. A browser is found when one of its
 * executable names is on the search path, or else when one of its well-known install
 * paths holds an executable. Each browser found adds its tag and the web back-ends it
 * offers: chromium, chrome and edge give webgpu and webnn; firefox gives webgpu. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/probe.h"

typedef struct browser_kind {
    int tag;
    const char *names[5]; /* executable names looked up on the search path */
    bool webnn;           /* also offers webnn (every browser here offers webgpu) */
} browser_kind;

static const browser_kind kinds[] = {
    {DRV_TAG_CHROMIUM, {"chromium", "chromium-browser", NULL}, true},
    {DRV_TAG_CHROME, {"google-chrome", "google-chrome-stable", "chrome", NULL}, true},
    {DRV_TAG_FIREFOX, {"firefox", "firefox-esr", NULL}, false},
    {DRV_TAG_EDGE, {"microsoft-edge", "microsoft-edge-stable", "msedge", NULL}, true},
};

/* Well-known install paths, each with the browser it belongs to. */
typedef struct browser_path {
    int tag;
    const char *path;
} browser_path;

static const browser_path well_known[] = {
    {DRV_TAG_CHROMIUM, "/usr/bin/chromium"},
    {DRV_TAG_CHROMIUM, "/usr/lib/chromium/chromium"},
    {DRV_TAG_CHROMIUM, "/snap/bin/chromium"},
    {DRV_TAG_CHROMIUM, "/Applications/Chromium.app/Contents/MacOS/Chromium"},
    {DRV_TAG_CHROME, "/opt/google/chrome/chrome"},
    {DRV_TAG_CHROME, "/usr/bin/google-chrome"},
    {DRV_TAG_CHROME, "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"},
    {DRV_TAG_FIREFOX, "/usr/bin/firefox"},
    {DRV_TAG_FIREFOX, "/usr/lib/firefox/firefox"},
    {DRV_TAG_FIREFOX, "/usr/lib/firefox-esr/firefox-esr"},
    {DRV_TAG_FIREFOX, "/snap/bin/firefox"},
    {DRV_TAG_FIREFOX, "/Applications/Firefox.app/Contents/MacOS/firefox"},
    {DRV_TAG_EDGE, "/opt/microsoft/msedge/msedge"},
    {DRV_TAG_EDGE, "/usr/bin/microsoft-edge"},
    {DRV_TAG_EDGE, "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge"},
};

/* True when path is an executable regular file. */
static bool is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Records a browser of kind k found at path: its entry and its tags. */
static void found(drv_probe_result *r, const browser_kind *k, const char *path)
{
    if (r->n_browsers >= DRV_PROBE_BROWSERS_MAX)
        return;
    drv_browser_info *b = &r->browsers[r->n_browsers++];
    b->tag = k->tag;
    snprintf(b->path, sizeof b->path, "%s", path);
    drv_tagset_add(&r->caps.tags, k->tag);
    drv_tagset_add(&r->caps.tags, DRV_TAG_WEBGPU);
    if (k->webnn)
        drv_tagset_add(&r->caps.tags, DRV_TAG_WEBNN);
}

void drv_probe_browsers(drv_probe_result *out, const drv_probe_options *opt)
{
    static const drv_probe_options defaults;
    if (!opt)
        opt = &defaults;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const browser_kind *k = &kinds[i];
        char path[DRV_PROBE_PATH_MAX];
        bool hit = false;
        for (int n = 0; k->names[n] && !hit; n++)
            hit = drv_probe_which(opt->search_path, k->names[n], path, sizeof path);
        if (opt->browser_paths) {
            for (int p = 0; opt->browser_paths[p] && !hit; p++) {
                /* A caller's path belongs to the browser whose name its file name has. */
                const char *base = strrchr(opt->browser_paths[p], '/');
                base = base ? base + 1 : opt->browser_paths[p];
                bool mine = false;
                for (int n = 0; k->names[n]; n++)
                    mine = mine || strcmp(base, k->names[n]) == 0;
                if (mine && is_executable(opt->browser_paths[p])) {
                    snprintf(path, sizeof path, "%s", opt->browser_paths[p]);
                    hit = true;
                }
            }
        } else {
            for (size_t p = 0; p < sizeof well_known / sizeof well_known[0] && !hit; p++) {
                if (well_known[p].tag == k->tag && is_executable(well_known[p].path)) {
                    snprintf(path, sizeof path, "%s", well_known[p].path);
                    hit = true;
                }
            }
        }
        if (hit)
            found(out, k, path);
    }
}
