/* agent_setup.c - what a worker agent is set up from: the coordinator's URL and the
 * capabilities its hello announces (see agent.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/agent.h"

int drv_agent_parse_url(const char *url, drv_agent_url *out, drv_error *err)
{
    memset(out, 0, sizeof *out);
    if (!url || !*url)
        return drv_error_set(err, "coordinator URL: empty (expected ws://HOST:PORT)");
    static const struct {
        const char *prefix;
        bool tls;
        int port;
    } schemes[] = {{"ws://", false, 80},
                   {"wss://", true, 443},
                   {"http://", false, 80},
                   {"https://", true, 443}};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncmp(url, schemes[i].prefix, n) == 0) {
            p = url + n;
            out->tls = schemes[i].tls;
            out->port = schemes[i].port;
        }
    }
    if (!p)
        return drv_error_set(err,
                             "coordinator URL \"%s\": unknown scheme (expected ws://, wss://, "
                             "http:// or https://)",
                             url);
    if (strpbrk(p, "?#@"))
        return drv_error_set(err,
                             "coordinator URL \"%s\": a query, fragment or user name is not "
                             "allowed",
                             url);
    const char *host = p, *host_end;
    if (*p == '[') { /* [IPv6] */
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return drv_error_set(err, "coordinator URL \"%s\": '[' without ']'", url);
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return drv_error_set(err, "coordinator URL \"%s\": no host", url);
    if (hlen >= sizeof out->host)
        return drv_error_set(err, "coordinator URL \"%s\": host longer than %zu bytes", url,
                             sizeof out->host - 1);
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (*p == ':') {
        p++;
        long port = 0;
        const char *digits = p;
        while (*p >= '0' && *p <= '9' && port <= 65535)
            port = port * 10 + (*p++ - '0');
        if (p == digits || port < 1 || port > 65535 || (*p && *p != '/'))
            return drv_error_set(err, "coordinator URL \"%s\": port must be a number 1..65535",
                                 url);
        out->port = (int)port;
    } else if (*p && *p != '/') {
        return drv_error_set(err, "coordinator URL \"%s\": unexpected \"%s\" after the host", url,
                             p);
    }
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen + sizeof DRV_PROTOCOL_PATH > sizeof out->path)
        return drv_error_set(err, "coordinator URL \"%s\": path too long", url);
    memcpy(out->path, p, plen);
    memcpy(out->path + plen, DRV_PROTOCOL_PATH, sizeof DRV_PROTOCOL_PATH);
    return 0;
}

void drv_agent_caps_from_probe(const drv_probe_result *r, const drv_tag_table *tags,
                               drv_msg_caps *out)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    const drv_capabilities *c = &r->caps;
    out->cpu_cores = c->cpu_cores;
    out->memory_mb = c->memory_mb;
    out->gpu_count = c->gpu_count;
    out->gpu_memory_mb = c->gpu_memory_mb;
    if (c->cuda_cc) {
        drv_cuda_cc_format(c->cuda_cc, buf, sizeof buf);
        out->cuda_cc = drv_xstrdup(buf);
    }
    if (c->driver_version) {
        drv_version_format(c->driver_version, buf, sizeof buf);
        out->driver_version = drv_xstrdup(buf);
    }
    int n = drv_tag_count(tags), k = 0;
    out->tags = drv_xcalloc((size_t)n + 1, sizeof *out->tags);
    for (int id = 0; id < n; id++)
        if (drv_tagset_has(&c->tags, id))
            out->tags[k++] = drv_xstrdup(drv_tag_name(tags, id));
    if (r->os[0]) {
        out->os = drv_xstrdup(r->os);
        for (char *p = out->os; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    if (r->arch[0])
        out->arch = drv_xstrdup(r->arch);
}

void drv_agent_caps_clear(drv_msg_caps *caps)
{
    if (!caps)
        return;
    free(caps->cuda_cc);
    free(caps->driver_version);
    drv_strv_free(caps->tags);
    free(caps->os);
    free(caps->arch);
    memset(caps, 0, sizeof *caps);
}
