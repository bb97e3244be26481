/*
 * Redis: hiredis's async API on the nginx event loop.
 *
 * The socket is wrapped in an ngx_connection_t whose read and write events
 * drive redisAsyncHandleRead() and redisAsyncHandleWrite().  A PING every
 * second tells whether the server is alive; a PING left unanswered beyond
 * the timeout drops the connection (failing its pending commands), and a
 * lost connection is re-established with a bounded exponential backoff.
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_REDIS_PING_INTERVAL  1000
#define NGX_FEIRA_REDIS_BACKOFF_MIN    100
#define NGX_FEIRA_REDIS_BACKOFF_MAX    1000


struct ngx_feira_redis_s {
    redisAsyncContext           *ac;
    ngx_connection_t            *conn;
    ngx_log_t                   *log;
    ngx_http_feira_main_conf_t  *fmcf;

    ngx_event_t                  reconnect;
    ngx_event_t                  ping;
    ngx_msec_t                   backoff;
    ngx_msec_t                   ping_sent;

    ngx_feira_redis_connect_pt   on_connect;
    void                        *data;

    unsigned                     subscriber:1;
    unsigned                     connected:1;
    unsigned                     ping_inflight:1;
    unsigned                     alive:1;
    unsigned                     closing:1;
};


static void ngx_feira_redis_connect(ngx_feira_redis_t *rc);
static void ngx_feira_redis_schedule(ngx_feira_redis_t *rc);
static void ngx_feira_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_feira_redis_ping_handler(ngx_event_t *ev);
static void ngx_feira_redis_ping_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_feira_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_feira_redis_read_handler(ngx_event_t *ev);
static void ngx_feira_redis_write_handler(ngx_event_t *ev);
static void ngx_feira_redis_add_read(void *privdata);
static void ngx_feira_redis_del_read(void *privdata);
static void ngx_feira_redis_add_write(void *privdata);
static void ngx_feira_redis_del_write(void *privdata);
static void ngx_feira_redis_cleanup(void *privdata);
static ngx_int_t ngx_feira_redis_attach(ngx_feira_redis_t *rc);


/* per-worker state: the connection for ordinary commands */
static ngx_feira_redis_t  *ngx_feira_redis_default;


ngx_int_t
ngx_feira_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf)
{
    if (fmcf->redis_host.len == 0) {
        return NGX_OK;
    }

    ngx_feira_redis_default = ngx_feira_redis_create(cycle, fmcf, NULL, NULL,
                                                     0);

    return ngx_feira_redis_default ? NGX_OK : NGX_ERROR;
}


void
ngx_feira_redis_exit_process(void)
{
    if (ngx_feira_redis_default) {
        ngx_feira_redis_destroy(ngx_feira_redis_default);
        ngx_feira_redis_default = NULL;
    }
}


ngx_feira_redis_t *
ngx_feira_redis_main(void)
{
    return ngx_feira_redis_default;
}


ngx_feira_redis_t *
ngx_feira_redis_create(ngx_cycle_t *cycle, ngx_http_feira_main_conf_t *fmcf,
    ngx_feira_redis_connect_pt on_connect, void *data, ngx_uint_t flags)
{
    ngx_feira_redis_t  *rc;

    rc = ngx_pcalloc(cycle->pool, sizeof(ngx_feira_redis_t));
    if (rc == NULL) {
        return NULL;
    }

    rc->log = cycle->log;
    rc->fmcf = fmcf;
    rc->on_connect = on_connect;
    rc->data = data;
    rc->backoff = NGX_FEIRA_REDIS_BACKOFF_MIN;
    rc->subscriber = (flags & NGX_FEIRA_REDIS_SUBSCRIBER) ? 1 : 0;

    rc->reconnect.handler = ngx_feira_redis_reconnect_handler;
    rc->reconnect.data = rc;
    rc->reconnect.log = cycle->log;
    rc->reconnect.cancelable = 1;

    rc->ping.handler = ngx_feira_redis_ping_handler;
    rc->ping.data = rc;
    rc->ping.log = cycle->log;
    rc->ping.cancelable = 1;

    ngx_feira_redis_connect(rc);

    if (!rc->subscriber) {
        ngx_add_timer(&rc->ping, NGX_FEIRA_REDIS_PING_INTERVAL);
    }

    return rc;
}


void
ngx_feira_redis_destroy(ngx_feira_redis_t *rc)
{
    rc->closing = 1;

    if (rc->reconnect.timer_set) {
        ngx_del_timer(&rc->reconnect);
    }

    if (rc->ping.timer_set) {
        ngx_del_timer(&rc->ping);
    }

    if (rc->ac) {
        /* pending callbacks run with a NULL reply, then cleanup */
        redisAsyncFree(rc->ac);
        rc->ac = NULL;
    }
}


/* a connection its user found dead: dropped, and re-established */

void
ngx_feira_redis_drop(ngx_feira_redis_t *rc)
{
    if (rc->ac == NULL || rc->closing) {
        return;
    }

    rc->alive = 0;

    /* fails the pending commands; the disconnect callback reconnects */
    redisAsyncFree(rc->ac);
}


ngx_int_t
ngx_feira_redis_is_up(ngx_feira_redis_t *rc)
{
    return rc != NULL && rc->connected && rc->alive;
}


ngx_int_t
ngx_feira_redis_command(ngx_feira_redis_t *rc, redisCallbackFn *fn,
    void *privdata, const char *format, ...)
{
    int      n;
    va_list  args;

    if (rc == NULL || !rc->connected || rc->ac == NULL) {
        return NGX_DECLINED;
    }

    va_start(args, format);
    n = redisvAsyncCommand(rc->ac, fn, privdata, format, args);
    va_end(args);

    return n == REDIS_OK ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_feira_redis_commandargv(ngx_feira_redis_t *rc, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    if (rc == NULL || !rc->connected || rc->ac == NULL) {
        return NGX_DECLINED;
    }

    if (redisAsyncCommandArgv(rc->ac, fn, privdata, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_feira_redis_connect(ngx_feira_redis_t *rc)
{
    char                        *host;
    redisAsyncContext           *ac;
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = rc->fmcf;

    /* the address was resolved at configuration time: no DNS here */
    host = (char *) fmcf->redis_host.data;

    if (fmcf->redis_port == 0) {
        ac = redisAsyncConnectUnix(host);

    } else {
        ac = redisAsyncConnect(host, (int) fmcf->redis_port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                      "feira: redis: cannot allocate a context");
        ngx_feira_redis_schedule(rc);
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                      "feira: redis: connect to %s failed: %s",
                      host, ac->errstr);
        redisAsyncFree(ac);
        ngx_feira_redis_schedule(rc);
        return;
    }

    rc->ac = ac;
    ac->data = rc;

    if (ngx_feira_redis_attach(rc) != NGX_OK) {
        rc->ac = NULL;
        redisAsyncFree(ac);
        ngx_feira_redis_schedule(rc);
        return;
    }

    redisAsyncSetConnectCallback(ac, ngx_feira_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_feira_redis_on_disconnect);

    /* the first write event completes the non-blocking connect */
    ngx_feira_redis_add_write(rc->conn);
}


static ngx_int_t
ngx_feira_redis_attach(ngx_feira_redis_t *rc)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(rc->ac->c.fd, rc->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = rc;
    c->read->handler = ngx_feira_redis_read_handler;
    c->write->handler = ngx_feira_redis_write_handler;
    c->read->log = rc->log;
    c->write->log = rc->log;

    rc->conn = c;

    rc->ac->ev.data = c;
    rc->ac->ev.addRead = ngx_feira_redis_add_read;
    rc->ac->ev.delRead = ngx_feira_redis_del_read;
    rc->ac->ev.addWrite = ngx_feira_redis_add_write;
    rc->ac->ev.delWrite = ngx_feira_redis_del_write;
    rc->ac->ev.cleanup = ngx_feira_redis_cleanup;

    return NGX_OK;
}


static void
ngx_feira_redis_schedule(ngx_feira_redis_t *rc)
{
    rc->connected = 0;
    rc->alive = 0;
    rc->ping_inflight = 0;

    if (rc->closing || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (!rc->reconnect.timer_set) {
        ngx_add_timer(&rc->reconnect, rc->backoff);
    }

    rc->backoff = ngx_min(rc->backoff * 2, NGX_FEIRA_REDIS_BACKOFF_MAX);
}


static void
ngx_feira_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_feira_redis_t  *rc = ev->data;

    if (rc->closing || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (rc->ac == NULL) {
        ngx_feira_stats_add(redis_reconnects, 1);
        ngx_feira_redis_connect(rc);
    }
}


static void
ngx_feira_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_feira_redis_t  *rc = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                      "feira: redis: connect failed: %s", ac->errstr);

        /* hiredis frees the context after this callback */
        rc->ac = NULL;
        ngx_feira_redis_schedule(rc);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, rc->log, 0, "feira: redis: connected");

    rc->connected = 1;
    rc->alive = 1;
    rc->backoff = NGX_FEIRA_REDIS_BACKOFF_MIN;

    if (rc->on_connect) {
        rc->on_connect(rc, rc->data);
    }
}


static void
ngx_feira_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_feira_redis_t  *rc = ac->data;

    if (!rc->closing) {
        ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                      "feira: redis: connection lost: %s",
                      ac->err ? ac->errstr : "closed");
    }

    rc->ac = NULL;
    ngx_feira_redis_schedule(rc);
}


static void
ngx_feira_redis_ping_handler(ngx_event_t *ev)
{
    ngx_feira_redis_t  *rc = ev->data;

    if (rc->closing || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (rc->connected && rc->ac) {

        if (rc->ping_inflight) {
            if (ngx_current_msec - rc->ping_sent >= rc->fmcf->redis_timeout) {
                ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                              "feira: redis: no answer in %M ms, reconnecting",
                              rc->fmcf->redis_timeout);
                rc->alive = 0;

                /* fails the pending commands and frees the context */
                redisAsyncFree(rc->ac);
            }

        } else if (redisAsyncCommand(rc->ac, ngx_feira_redis_ping_reply,
                                     NULL, "PING")
                   == REDIS_OK)
        {
            rc->ping_inflight = 1;
            rc->ping_sent = ngx_current_msec;
        }
    }

    ngx_add_timer(&rc->ping, NGX_FEIRA_REDIS_PING_INTERVAL);
}


static void
ngx_feira_redis_ping_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply         *rr = reply;
    ngx_feira_redis_t  *rc = ac->data;

    if (rc == NULL) {
        return;
    }

    rc->ping_inflight = 0;
    rc->alive = (rr != NULL && rr->type != REDIS_REPLY_ERROR);
}


static void
ngx_feira_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t   *c = ev->data;
    ngx_feira_redis_t  *rc = c->data;

    if (rc->ac) {
        redisAsyncHandleRead(rc->ac);
    }
}


static void
ngx_feira_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t   *c = ev->data;
    ngx_feira_redis_t  *rc = c->data;

    if (rc->ac) {
        redisAsyncHandleWrite(rc->ac);
    }
}


/*
 * hiredis reads once per call, so the events are level-triggered: data left
 * in the socket raises the event again.
 */

static void
ngx_feira_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "feira: redis: cannot add a read event");
        }
    }
}


static void
ngx_feira_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_feira_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "feira: redis: cannot add a write event");
        }
    }
}


static void
ngx_feira_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_feira_redis_cleanup(void *privdata)
{
    ngx_connection_t   *c = privdata;
    ngx_feira_redis_t  *rc = c->data;

    /* hiredis closes the socket itself, after this */

    ngx_feira_redis_del_read(c);
    ngx_feira_redis_del_write(c);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);

    rc->conn = NULL;
}
