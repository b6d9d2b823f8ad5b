/* listener.c - the coordinator's listening socket. It is ours, not libwebsockets': a
 * bind that fails (address in use, not an address of this machine, a host that does not
 * resolve) is an error at start with the reason, and running out of descriptors pauses
 * accepting for a moment (logged once per interval) instead of spinning on accept().
 * Each accepted connection is handed to libwebsockets (lws_adopt_socket_vhost). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordinator/coord.h"

#define ACCEPTS_PER_WAKE 64
#define PAUSE_MS         250  /* accepting pauses this long when out of descriptors */
#define REPORT_EVERY_S   10.0 /* and says so at most this often */
#define BACKLOG          4096 /* the kernel caps it at net.core.somaxconn */
#define FD_SPARE         16   /* descriptors kept for HTTP clients and the store's files */
#define FD_CEILING       (1 << 20)
#define DEFER_ACCEPT_S   10   /* TCP_DEFER_ACCEPT: wait this long for the first bytes */
#define PEEK_MAX         2048 /* bytes of a request line looked at */

long long drv_listener_raise_nofile(long long *before)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *before = -1;
        return -1;
    }
    *before = (long long)rl.rlim_cur;
    rlim_t want = rl.rlim_max;
    /* lws sizes its tables by the limit: an unlimited hard limit is capped. */
    if (want == RLIM_INFINITY || want > FD_CEILING)
        want = FD_CEILING;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return *before;
    }
    return (long long)rl.rlim_cur;
}

/* Binds and listens on one address; returns the socket or -1 with errno set. */
static int bind_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* A connection is accepted once its client has sent something (HTTP, WebSocket and
     * TLS clients all speak first): idle connections never reach libwebsockets, and
     * the request line can be looked at before it does (refuse_nul). */
    int defer = DEFER_ACCEPT_S;
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int drv_listener_open(drv_coordinator *c, drv_error *err)
{
    drv_listener *l = &c->listener;
    l->fd = -1;
    const char *host = c->listen_host;
    bool any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || host[0] == '\0';
    char port[16];
    snprintf(port, sizeof port, "%d", c->listen_port);
    struct addrinfo hints = {.ai_family = any ? AF_INET : AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (any ? AI_PASSIVE : 0)};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(any ? NULL : host, port, &hints, &res);
    if (g != 0)
        return drv_error_set(err, "cannot listen on %s:%d: host \"%s\" does not resolve: %s", host,
                             c->listen_port, host, gai_strerror(g));
    int first_errno = 0;
    char first_addr[NI_MAXHOST] = "";
    for (struct addrinfo *ai = res; ai && l->fd < 0; ai = ai->ai_next) {
        l->fd = bind_one(ai);
        if (l->fd < 0 && !first_errno) {
            first_errno = errno;
            if (getnameinfo(ai->ai_addr, ai->ai_addrlen, first_addr, sizeof first_addr, NULL, 0,
                            NI_NUMERICHOST) != 0)
                first_addr[0] = '\0';
        }
    }
    freeaddrinfo(res);
    if (l->fd < 0) {
        const char *why = first_errno == EADDRINUSE      ? "the port is in use by another process"
                          : first_errno == EADDRNOTAVAIL ? "not an address of this machine"
                          : first_errno == EACCES ? "permission denied (ports below 1024 need "
                                                    "privileges)"
                                                  : strerror(first_errno);
        return drv_error_set(err, "cannot listen on %s:%d%s%s%s: %s", host, c->listen_port,
                             first_addr[0] && strcmp(first_addr, host) != 0 ? " (" : "",
                             first_addr[0] && strcmp(first_addr, host) != 0 ? first_addr : "",
                             first_addr[0] && strcmp(first_addr, host) != 0 ? ")" : "", why);
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    c->port = c->listen_port;
    if (getsockname(l->fd, (struct sockaddr *)&sa, &sl) == 0) {
        if (sa.ss_family == AF_INET)
            c->port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        else if (sa.ss_family == AF_INET6)
            c->port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    return 0;
}

long long drv_listener_room(const drv_coordinator *c)
{
    const drv_listener *l = &c->listener;
    long long used = l->fd_used > 0 ? l->fd_used : 32;
    long long room = l->fd_limit - used - FD_SPARE;
    return room > 0 ? room : 0;
}

static void report(drv_coordinator *c, int e)
{
    drv_listener *l = &c->listener;
    l->refused++;
    double now = drv_coord_now();
    if (l->last_report > 0 && now - l->last_report < REPORT_EVERY_S)
        return;
    if (e == EMFILE || e == ENFILE)
        drv_coord_warn(c,
                       "out of file descriptors (%s, limit %lld, about %lld workers): not"
                       " accepting connections for %d ms at a time; %llu refused since the"
                       " last report (raise the hard limit: ulimit -Hn, LimitNOFILE=)",
                       e == EMFILE ? "this process" : "the whole system", l->fd_limit,
                       drv_listener_room(c), PAUSE_MS, (unsigned long long)l->refused);
    else
        drv_coord_warn(c,
                       "accept: %s: not accepting connections for %d ms at a time; %llu"
                       " refused since the last report",
                       strerror(e), PAUSE_MS, (unsigned long long)l->refused);
    l->last_report = now;
    l->refused = 0;
}

static void on_readable(uv_poll_t *p, int status, int events);

/* libwebsockets closes a connection whose request line decodes to a NUL byte ("%00")
 * without an answer. On a plain HTTP connection the request line is looked at first
 * (with MSG_PEEK: it stays for lws) and such a request gets a 400 naming the query
 * parameter. Returns true when fd was answered and closed. Best effort: a request line
 * not in the first bytes received is left to lws. Over HTTPS the bytes are TLS records
 * and the request exists only inside lws's SSL_read: such a connection is closed by lws
 * without an answer (docs/api.md says why nothing here can change that). */
static bool refuse_nul(int fd)
{
    char buf[PEEK_MAX + 1];
    ssize_t n = recv(fd, buf, PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *eol = strchr(buf, '\n');
    if (eol)
        *eol = '\0';
    char *q = strchr(buf, '?');
    char *nul = q ? strstr(q, "%00") : NULL;
    if (!nul)
        return false;
    /* The parameter: from the '?' or '&' before the %00 up to '='. */
    char *start = nul;
    while (start > q && start[-1] != '&' && start[-1] != '?')
        start--;
    size_t len = strcspn(start, "=& ");
    char name[64];
    size_t k = 0;
    for (size_t i = 0; i < len && k < sizeof name - 1; i++)
        if (start[i] > ' ' && start[i] < 127 && start[i] != '"' && start[i] != '\\')
            name[k++] = start[i];
    name[k] = '\0';
    char body[256], resp[512];
    int bl = snprintf(body, sizeof body,
                      "{\"error\":\"query parameter \\\"%s\\\": %%00 (a NUL byte) is not"
                      " allowed\",\"field\":\"%s\"}\n",
                      name, name);
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                      "content-length: %d\r\ncache-control: no-store\r\nconnection: close\r\n"
                      "\r\n%s",
                      bl, body);
    /* What was peeked is read first, so that closing does not reset the connection
     * before the client reads the answer. */
    if (recv(fd, buf, (size_t)n, MSG_DONTWAIT) < 0) {
        /* nothing to do: the answer is sent anyway */
    }
    if (send(fd, resp, (size_t)rl, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client went away */
    }
    shutdown(fd, SHUT_WR);
    close(fd);
    return true;
}

static void on_resume(uv_timer_t *t)
{
    drv_coordinator *c = t->data;
    if (c->stopping || c->listener.fd < 0)
        return;
    c->listener.paused = false;
    uv_poll_start(&c->listener.poll, UV_READABLE, on_readable);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    drv_coordinator *c = p->data;
    drv_listener *l = &c->listener;
    (void)events;
    if (status < 0 || c->stopping)
        return;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept(l->fd, NULL, NULL);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            /* Out of descriptors (or memory): the connection waits in the backlog. */
            uv_poll_stop(&l->poll);
            l->paused = true;
            uv_timer_start(&l->pause, on_resume, PAUSE_MS, 0);
            report(c, e);
            return;
        }
        int one = 1;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!c->tls_cert && refuse_nul(fd))
            continue;
        lws_adopt_socket_vhost(c->vhost, fd); /* on failure it closes fd */
    }
}

void drv_listener_start(drv_coordinator *c)
{
    drv_listener *l = &c->listener;
    uv_poll_init(c->loop, &l->poll, l->fd);
    l->poll.data = c;
    uv_timer_init(c->loop, &l->pause);
    l->pause.data = c;
    l->started = true;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

void drv_listener_close(drv_coordinator *c)
{
    drv_listener *l = &c->listener;
    if (l->started) {
        uv_close((uv_handle_t *)&l->poll, NULL);
        uv_close((uv_handle_t *)&l->pause, NULL);
        l->started = false;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
