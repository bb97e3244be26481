/*
 * make bench, realtime: a WebSocket load client in C (epoll, one thread),
 * so that the client is not what is measured.  It opens N connections to
 * feira's /v1/ws (subscribing each to a channel) or to an nchan websocket
 * subscriber location, says "ready N" once all are subscribed, then reads
 * events: each carries "@T<unix ns>@" from its publisher, and the delay to
 * its arrival is recorded.  Commands on stdin: "stats" prints
 * "stats <count> <p50 us> <p99 us> <max us> <first ns> <last ns>
 * <events> <median span us>" and resets; end of input quits.  The span of
 * an event is from its publication to its last arrival, the time one
 * event takes to reach every subscriber.
 *
 *   wsbench -p port -n conns -m feira|nchan -t tokens [-c channel]
 *
 * tokens: lines "<access token> <user id>"; connection i uses line
 * i % lines.  feira subscribes to user:<id> (or -c <channel>); nchan
 * connects to /sub/<id> (or /sub/<channel>).
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define BUF_SIZE     65536
#define MAX_SAMPLES  (8 * 1024 * 1024)
#define IN_FLIGHT    256
#define EVENTS       16384


typedef struct {
    int        fd;
    int        state;          /* 0 connecting, 1 handshake, 2 open */
    int        ready;
    size_t     len;
    char      *buf;
    char      *token;
    char      *id;
} conn_t;


static conn_t    *conns;
static int        nconns, nready, nopen, mode_nchan, port, ep;
static char      *channel;
static uint32_t  *samples;
static size_t     nsamples;
static int64_t    first_ns, last_ns;
static char     **tokens, **ids;
static int        ntokens;

/* per event, by its publication time: the last arrival */
static int64_t    ev_sent[EVENTS], ev_last[EVENTS];
static size_t     nevents;


static int64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void
die(const char *what)
{
    perror(what);
    exit(1);
}


static void
send_all(int fd, const char *p, size_t len)
{
    ssize_t        n;
    struct pollfd  pfd;

    while (len) {
        n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EAGAIN) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            poll(&pfd, 1, 1000);
            continue;
        }

        if (n <= 0) {
            return;
        }

        p += n;
        len -= n;
    }
}


/* a masked client frame (the mask is zero: the payload stays readable) */

static void
send_frame(int fd, int opcode, const char *payload, size_t len)
{
    char    frame[256 + 14];
    size_t  h;

    frame[0] = (char) (0x80 | opcode);
    h = 2;

    if (len < 126) {
        frame[1] = (char) (0x80 | len);

    } else {
        frame[1] = (char) (0x80 | 126);
        frame[2] = (char) (len >> 8);
        frame[3] = (char) len;
        h = 4;
    }

    memset(frame + h, 0, 4);
    h += 4;

    if (len > 256) {
        return;
    }

    memcpy(frame + h, payload, len);
    send_all(fd, frame, h + len);
}


static void
start_connect(conn_t *c)
{
    int                 one;
    struct sockaddr_in  sin;
    struct epoll_event  ev;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        die("socket");
    }

    one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(c->fd, (struct sockaddr *) &sin, sizeof(sin)) < 0
        && errno != EINPROGRESS)
    {
        die("connect");
    }

    c->state = 0;

    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.ptr = c;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }

    nopen++;
}


static void
send_handshake(conn_t *c)
{
    char                req[4096];
    int                 n;
    struct epoll_event  ev;

    if (mode_nchan) {
        n = snprintf(req, sizeof(req),
                     "GET /sub/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     channel ? channel : c->id);

    } else {
        n = snprintf(req, sizeof(req),
                     "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", c->token);
    }

    send_all(c->fd, req, (size_t) n);
    c->state = 1;

    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}


static void
on_open(conn_t *c)
{
    char  msg[256];
    int   n;

    c->state = 2;

    if (mode_nchan) {
        /* nchan subscribes during the handshake */
        c->ready = 1;
        nready++;
        return;
    }

    if (channel) {
        n = snprintf(msg, sizeof(msg),
                     "{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);

    } else {
        n = snprintf(msg, sizeof(msg),
                     "{\"type\":\"subscribe\",\"channel\":\"user:%s\"}",
                     c->id);
    }

    send_frame(c->fd, 0x1, msg, (size_t) n);
}


static void
on_message(conn_t *c, int opcode, char *p, size_t len)
{
    char     *t, *end;
    int64_t   sent, now, d;

    if (opcode == 0x9) {
        send_frame(c->fd, 0xa, p, len);
        return;
    }

    if (opcode == 0x8) {
        fprintf(stderr, "wsbench: closed by the server\n");
        return;
    }

    if (opcode != 0x1) {
        return;
    }

    if (!c->ready && memmem(p, len, "\"subscribed\"", 12)) {
        c->ready = 1;
        nready++;
        return;
    }

    t = memmem(p, len, "@T", 2);
    if (t == NULL) {
        return;
    }

    sent = strtoll(t + 2, &end, 10);
    now = now_ns();
    d = (now - sent) / 1000;

    if (d < 0) {
        d = 0;
    }

    if (nsamples < MAX_SAMPLES) {
        samples[nsamples++] = (uint32_t) (d > 0xffffffff ? 0xffffffff : d);
    }

    if (first_ns == 0) {
        first_ns = now;
    }

    last_ns = now;

    /* open addressing on the publication time */
    for (size_t h = (size_t) sent % EVENTS, k = 0; k < EVENTS;
         h = (h + 1) % EVENTS, k++)
    {
        if (ev_sent[h] == sent) {
            ev_last[h] = now;
            break;
        }

        if (ev_sent[h] == 0) {
            if (nevents < EVENTS / 2) {
                ev_sent[h] = sent;
                ev_last[h] = now;
                nevents++;
            }
            break;
        }
    }
}


/* frames out of the buffer, as many as are whole */

static void
parse(conn_t *c)
{
    size_t    off, h, n;
    uint8_t  *b;

    off = 0;

    while (c->len - off >= 2) {
        b = (uint8_t *) c->buf + off;
        n = b[1] & 0x7f;
        h = 2;

        if (n == 126) {
            if (c->len - off < 4) {
                break;
            }

            n = ((size_t) b[2] << 8) | b[3];
            h = 4;

        } else if (n == 127) {
            if (c->len - off < 10) {
                break;
            }

            n = 0;

            for (int i = 2; i < 10; i++) {
                n = (n << 8) | b[i];
            }

            h = 10;
        }

        if (c->len - off < h + n) {
            break;
        }

        on_message(c, b[0] & 0x0f, (char *) b + h, n);
        off += h + n;
    }

    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}


static void
on_readable(conn_t *c)
{
    ssize_t  n;
    char    *end;

    for ( ;; ) {
        if (c->len == BUF_SIZE) {
            fprintf(stderr, "wsbench: frame too large\n");
            exit(1);
        }

        n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);

        if (n < 0 && errno == EAGAIN) {
            return;
        }

        if (n <= 0) {
            fprintf(stderr, "wsbench: connection lost\n");
            exit(1);
        }

        c->len += (size_t) n;

        if (c->state == 1) {
            end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (end == NULL) {
                continue;
            }

            if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "wsbench: handshake refused: %.*s\n",
                        (int) (end - c->buf), c->buf);
                exit(1);
            }

            end += 4;
            c->len -= (size_t) (end - c->buf);
            memmove(c->buf, end, c->len);
            on_open(c);
        }

        if (c->state == 2) {
            parse(c);
        }
    }
}


static int
cmp_u32(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


static void
stats(void)
{
    size_t     i, n;
    uint32_t   p50, p99, max, span;
    uint32_t  *spans;

    p50 = p99 = max = span = 0;

    if (nsamples) {
        qsort(samples, nsamples, sizeof(uint32_t), cmp_u32);
        p50 = samples[nsamples / 2];
        p99 = samples[(nsamples * 99) / 100];
        max = samples[nsamples - 1];
    }

    spans = malloc(EVENTS * sizeof(uint32_t));
    n = 0;

    for (i = 0; spans && i < EVENTS; i++) {
        if (ev_sent[i]) {
            spans[n++] = (uint32_t) ((ev_last[i] - ev_sent[i]) / 1000);
        }
    }

    if (n) {
        qsort(spans, n, sizeof(uint32_t), cmp_u32);
        span = spans[n / 2];
    }

    free(spans);

    printf("stats %zu %u %u %u %lld %lld %zu %u\n", nsamples, p50, p99, max,
           (long long) first_ns, (long long) last_ns, n, span);
    fflush(stdout);

    nsamples = 0;
    first_ns = last_ns = 0;
    memset(ev_sent, 0, sizeof(ev_sent));
    memset(ev_last, 0, sizeof(ev_last));
    nevents = 0;
}


static void
load_tokens(const char *path)
{
    FILE    *f;
    char     line[8192], *sp;
    int      cap;

    f = fopen(path, "r");
    if (f == NULL) {
        die(path);
    }

    cap = 1024;
    tokens = malloc(cap * sizeof(char *));
    ids = malloc(cap * sizeof(char *));

    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        sp = strchr(line, ' ');
        if (sp == NULL) {
            continue;
        }

        *sp = '\0';

        if (ntokens == cap) {
            cap *= 2;
            tokens = realloc(tokens, cap * sizeof(char *));
            ids = realloc(ids, cap * sizeof(char *));
        }

        tokens[ntokens] = strdup(line);
        ids[ntokens] = strdup(sp + 1);
        ntokens++;
    }

    fclose(f);

    if (ntokens == 0) {
        fprintf(stderr, "wsbench: no tokens in %s\n", path);
        exit(1);
    }
}


int
main(int argc, char **argv)
{
    int                 i, n, opt, started, said_ready, stdin_open;
    char                cmd[64];
    conn_t             *c;
    struct epoll_event  evs[512], sev;

    while ((opt = getopt(argc, argv, "p:n:m:t:c:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': nconns = atoi(optarg); break;
        case 'm': mode_nchan = strcmp(optarg, "nchan") == 0; break;
        case 't': load_tokens(optarg); break;
        case 'c': channel = optarg; break;
        default:
            fprintf(stderr, "usage: wsbench -p port -n conns -m feira|nchan "
                            "-t tokens [-c channel]\n");
            return 2;
        }
    }

    if (port == 0 || nconns == 0 || ntokens == 0) {
        fprintf(stderr, "wsbench: -p, -n and -t are required\n");
        return 2;
    }

    conns = calloc((size_t) nconns, sizeof(conn_t));
    samples = malloc(MAX_SAMPLES * sizeof(uint32_t));
    ep = epoll_create1(0);

    if (conns == NULL || samples == NULL || ep < 0) {
        die("setup");
    }

    for (i = 0; i < nconns; i++) {
        conns[i].token = tokens[i % ntokens];
        conns[i].id = ids[i % ntokens];
        conns[i].buf = malloc(BUF_SIZE);
        if (conns[i].buf == NULL) {
            die("malloc");
        }
    }

    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    sev.events = EPOLLIN;
    sev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);

    started = 0;
    said_ready = 0;
    stdin_open = 1;

    while (stdin_open) {

        /* a bounded number of handshakes in flight */
        while (started < nconns && started - nready < IN_FLIGHT) {
            start_connect(&conns[started++]);
        }

        if (!said_ready && nready == nconns) {
            printf("ready %d\n", nready);
            fflush(stdout);
            said_ready = 1;
        }

        n = epoll_wait(ep, evs, 512, 100);

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;

            if (c == NULL) {
                while (fgets(cmd, sizeof(cmd), stdin)) {
                    if (strncmp(cmd, "stats", 5) == 0) {
                        stats();
                    }
                }

                if (feof(stdin)) {
                    stdin_open = 0;
                }

                clearerr(stdin);
                continue;
            }

            if (c->state == 0) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    fprintf(stderr, "wsbench: connect failed\n");
                    return 1;
                }

                send_handshake(c);
                continue;
            }

            on_readable(c);
        }
    }

    return 0;
}
