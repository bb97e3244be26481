/*
 * A tiny HTTP/1.0 server in its own thread for /healthz and /metrics.  One
 * connection at a time with short timeouts is enough for probes and
 * scrapes, and it never touches the main loop's state except the metrics,
 * which have their own lock.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fw_http.h"
#include "fw_log.h"
#include "fw_metrics.h"


static int        fw_http_fd = -1;
static int        fw_http_pipe[2] = { -1, -1 };
static int        fw_http_bound_port;
static pthread_t  fw_http_thread;


static void *fw_http_loop(void *arg);
static void fw_http_serve(int c);
static void fw_http_reply(int c, const char *status, const char *type,
    const char *body, size_t len);


int
fw_http_start(const char *listen_addr)
{
    int                 one, port;
    char                host[64];
    const char         *colon;
    socklen_t           sl;
    struct sockaddr_in  sin;

    colon = strrchr(listen_addr, ':');
    if (colon == NULL || (size_t) (colon - listen_addr) >= sizeof(host)) {
        fw_log_error("listen address \"%s\": expected host:port", listen_addr);
        return -1;
    }

    memcpy(host, listen_addr, colon - listen_addr);
    host[colon - listen_addr] = '\0';
    port = atoi(colon + 1);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);

    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || port < 0
        || port > 65535)
    {
        fw_log_error("listen address \"%s\": expected IPv4:port",
                     listen_addr);
        return -1;
    }

    fw_http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fw_http_fd == -1) {
        fw_log_error("socket: %s", strerror(errno));
        return -1;
    }

    one = 1;
    setsockopt(fw_http_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    if (bind(fw_http_fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(fw_http_fd, 16) == -1)
    {
        fw_log_error("cannot listen on %s: %s", listen_addr, strerror(errno));
        close(fw_http_fd);
        fw_http_fd = -1;
        return -1;
    }

    sl = sizeof(sin);
    getsockname(fw_http_fd, (struct sockaddr *) &sin, &sl);
    fw_http_bound_port = ntohs(sin.sin_port);

    if (pipe(fw_http_pipe) == -1) {
        fw_log_error("pipe: %s", strerror(errno));
        return -1;
    }

    if (pthread_create(&fw_http_thread, NULL, fw_http_loop, NULL) != 0) {
        fw_log_error("cannot start the HTTP thread");
        return -1;
    }

    fw_log_info("serving /healthz and /metrics on %s:%d", host,
                fw_http_bound_port);

    return 0;
}


int
fw_http_port(void)
{
    return fw_http_bound_port;
}


void
fw_http_stop(void)
{
    if (fw_http_fd == -1) {
        return;
    }

    if (write(fw_http_pipe[1], "x", 1) != 1) {
        fw_log_warn("cannot wake the HTTP thread");
    }

    pthread_join(fw_http_thread, NULL);

    close(fw_http_fd);
    close(fw_http_pipe[0]);
    close(fw_http_pipe[1]);
    fw_http_fd = -1;
}


static void *
fw_http_loop(void *arg)
{
    int            c;
    struct pollfd  pfd[2];

    (void) arg;

    pfd[0].fd = fw_http_fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = fw_http_pipe[0];
    pfd[1].events = POLLIN;

    for ( ;; ) {
        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }

        if (pfd[1].revents) {
            break;
        }

        if (pfd[0].revents & POLLIN) {
            c = accept4(fw_http_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c == -1) {
                continue;
            }

            fw_http_serve(c);
            close(c);
        }
    }

    return NULL;
}


static void
fw_http_serve(int c)
{
    char            req[4096], body[128], *metrics;
    size_t          len, mlen;
    ssize_t         n;
    struct timeval  tv;

    tv.tv_sec = 2;
    tv.tv_usec = 0;
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    len = 0;

    while (len < sizeof(req) - 1) {
        n = recv(c, req + len, sizeof(req) - 1 - len, 0);
        if (n <= 0) {
            return;
        }

        len += n;
        req[len] = '\0';

        if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL) {
            break;
        }
    }

    req[len] = '\0';

    if (strncmp(req, "GET /healthz ", 13) == 0
        || strncmp(req, "GET /healthz?", 13) == 0)
    {
        /* alive: 200; "ready" says whether the group assigned it yet */
        n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"ready\":%s,\"pid\":%d}\n",
                     fw_metrics_is_ready() ? "true" : "false",
                     (int) getpid());
        fw_http_reply(c, "200 OK", "application/json", body, n);
        return;
    }

    if (strncmp(req, "GET /metrics ", 13) == 0
        || strncmp(req, "GET /metrics?", 13) == 0)
    {
        metrics = fw_metrics_render(&mlen);
        if (metrics == NULL) {
            fw_http_reply(c, "500 Internal Server Error", "text/plain",
                          "out of memory\n", 14);
            return;
        }

        fw_http_reply(c, "200 OK", "text/plain; version=0.0.4", metrics, mlen);
        free(metrics);
        return;
    }

    if (strncmp(req, "GET ", 4) != 0) {
        fw_http_reply(c, "405 Method Not Allowed", "text/plain",
                      "method not allowed\n", 19);
        return;
    }

    fw_http_reply(c, "404 Not Found", "text/plain", "not found\n", 10);
}


static void
fw_http_reply(int c, const char *status, const char *type, const char *body,
    size_t len)
{
    int      n;
    char     head[256];
    ssize_t  w;
    size_t   off;

    n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 status, type, len);

    if (send(c, head, n, MSG_NOSIGNAL) != n) {
        return;
    }

    for (off = 0; off < len; off += w) {
        w = send(c, body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            return;
        }
    }
}
