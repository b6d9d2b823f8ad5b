/* web.c - the dashboard page (web/dashboard.html, .js, .css, uPlot), served at / and
 * /dashboard as one self-contained HTML response.
 *
 * The files are embedded at build time (cmake/embed_files.cmake): the page works with
 * no network beyond the coordinator, and a binary carries its own dashboard. The page
 * holds no data: it reads the REST API with the token the user gives it, so serving it
 * needs no token. It is composed once, on the first request, by putting the scripts and
 * styles where the template's markers are; c->dashboard owns it until the coordinator
 * is freed. */
#include <string.h>

#include "coordinator/coord.h"

/* The template's markers, each replaced by one embedded file. */
static const struct {
    const char *marker;
    const unsigned char *data;
    const size_t *len;
} parts[] = {
    {"/*UPLOT_CSS*/", drv_web_uplot_css, &drv_web_uplot_css_len},
    {"/*APP_CSS*/", drv_web_dashboard_css, &drv_web_dashboard_css_len},
    {"/*UPLOT_JS*/", drv_web_uplot_js, &drv_web_uplot_js_len},
    {"/*APP_JS*/", drv_web_dashboard_js, &drv_web_dashboard_js_len},
};

/* Builds the page: the template with every marker replaced. */
static void compose(drv_coordinator *c)
{
    const char *tpl = (const char *)drv_web_dashboard_html;
    size_t total = drv_web_dashboard_html_len;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        total += *parts[i].len;
    char *page = drv_xmalloc(total + 1), *out = page;
    const char *p = tpl;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const char *at = strstr(p, parts[i].marker);
        if (!at) /* the build embeds the template as it is in web/: a marker is missing */
            continue;
        memcpy(out, p, (size_t)(at - p));
        out += at - p;
        memcpy(out, parts[i].data, *parts[i].len);
        out += *parts[i].len;
        p = at + strlen(parts[i].marker);
    }
    size_t rest = strlen(p);
    memcpy(out, p, rest);
    out += rest;
    c->dashboard_len = (size_t)(out - page);
    c->dashboard = page;
}

bool drv_web_handle(drv_coordinator *c, drv_hsession *h)
{
    if (strcmp(h->path, "/") != 0 && strcmp(h->path, "/dashboard") != 0)
        return false;
    if (h->method != DRV_HTTP_GET) {
        drv_api_error(h, 405, "the dashboard is read with GET", NULL);
        return true;
    }
    if (!c->dashboard)
        compose(c);
    drv_api_respond_text(h, 200, "text/html; charset=utf-8", c->dashboard, c->dashboard_len);
    return true;
}
