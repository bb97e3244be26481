/*
 * The deny list across instances.  Redis keeps it in two sorted sets
 * (revoked token ids scored by expiry, users logged out everywhere scored
 * by time) and announces every addition on a pub/sub channel.  Each worker
 * subscribes, loads the sets after every (re)subscription, and publishes a
 * heartbeat every second: a feed silent longer than feira_auth_feed_timeout
 * makes protected locations fail closed.  A lost connection alone does
 * not: the list loaded last is trusted for that long, while the feed is
 * re-subscribed and the list loaded again.
 */

#include "ngx_http_feira_auth_module.h"


#define NGX_FEIRA_AUTH_HEARTBEAT  1000


typedef struct {
    ngx_feira_auth_deny_pt    handler;
    void                     *data;
    ngx_uint_t                pending;
    ngx_uint_t                failed;
} ngx_feira_auth_publish_t;


static void ngx_feira_auth_feed_connected(ngx_feira_redis_t *rc, void *data);
static void ngx_feira_auth_feed_message(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_auth_feed_apply(u_char *p, size_t len);
static void ngx_feira_auth_feed_load(void);
static void ngx_feira_auth_feed_loaded(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_auth_feed_heartbeat(ngx_event_t *ev);
static void ngx_feira_auth_feed_ignore(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_auth_publish_reply(redisAsyncContext *ac, void *reply,
    void *privdata);


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_feira_redis_t                *ngx_feira_auth_sub;
static ngx_http_feira_auth_main_conf_t  *ngx_feira_auth_amcf;
static ngx_event_t                       ngx_feira_auth_hb;
static ngx_msec_t                        ngx_feira_auth_last;
static ngx_uint_t                        ngx_feira_auth_subscribed;
static ngx_uint_t                        ngx_feira_auth_loaded;
static ngx_uint_t                        ngx_feira_auth_trusted;
static ngx_uint_t                        ngx_feira_auth_loading;


ngx_int_t
ngx_feira_auth_feed_init(ngx_cycle_t *cycle,
    ngx_http_feira_auth_main_conf_t *amcf)
{
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_common_module);

    ngx_feira_auth_amcf = amcf;
    ngx_feira_auth_subscribed = 0;
    ngx_feira_auth_loaded = 0;
    ngx_feira_auth_trusted = 0;
    ngx_feira_auth_loading = 0;

    ngx_feira_auth_sub = ngx_feira_redis_create(cycle, fmcf,
                                                ngx_feira_auth_feed_connected,
                                                NULL,
                                                NGX_FEIRA_REDIS_SUBSCRIBER);
    if (ngx_feira_auth_sub == NULL) {
        return NGX_ERROR;
    }

    ngx_feira_auth_hb.handler = ngx_feira_auth_feed_heartbeat;
    ngx_feira_auth_hb.log = cycle->log;
    ngx_feira_auth_hb.data = NULL;
    ngx_feira_auth_hb.cancelable = 1;

    ngx_add_timer(&ngx_feira_auth_hb, NGX_FEIRA_AUTH_HEARTBEAT);

    return NGX_OK;
}


void
ngx_feira_auth_feed_exit(void)
{
    if (ngx_feira_auth_hb.timer_set) {
        ngx_del_timer(&ngx_feira_auth_hb);
    }

    if (ngx_feira_auth_sub) {
        ngx_feira_redis_destroy(ngx_feira_auth_sub);
        ngx_feira_auth_sub = NULL;
    }
}


ngx_int_t
ngx_feira_auth_feed_ok(void)
{
    return ngx_feira_auth_trusted
           && ngx_current_msec - ngx_feira_auth_last
              <= ngx_feira_auth_amcf->feed_timeout;
}


static void
ngx_feira_auth_feed_connected(ngx_feira_redis_t *rc, void *data)
{
    ngx_feira_auth_subscribed = 0;
    ngx_feira_auth_loaded = 0;

    if (ngx_feira_redis_command(rc, ngx_feira_auth_feed_message, NULL,
                                "SUBSCRIBE %s", NGX_FEIRA_AUTH_CHANNEL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: auth: cannot subscribe to the deny list");
    }
}


static void
ngx_feira_auth_feed_message(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply  *rr = reply;
    redisReply  *kind, *payload;

    if (rr == NULL) {
        /* the connection is gone; it is re-established and re-subscribed */
        ngx_feira_auth_subscribed = 0;
        ngx_feira_auth_loaded = 0;
        return;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements < 3) {
        return;
    }

    kind = rr->element[0];
    payload = rr->element[2];

    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }

    ngx_feira_auth_last = ngx_current_msec;

    if (ngx_strcmp(kind->str, "subscribe") == 0) {
        ngx_feira_auth_subscribed = 1;

        /* subscribed first, then loaded: nothing falls in between */
        ngx_feira_auth_feed_load();
        return;
    }

    if (ngx_strcmp(kind->str, "message") == 0
        && payload->type == REDIS_REPLY_STRING)
    {
        ngx_feira_auth_feed_apply((u_char *) payload->str, payload->len);
    }
}


/* "h" (heartbeat), "j <jti> <exp>" or "u <user id> <not before>" */

static void
ngx_feira_auth_feed_apply(u_char *p, size_t len)
{
    u_char     *last, *key, *sp;
    size_t      key_len;
    time_t      value, expire;
    ngx_int_t   n;

    if (len < 5 || (p[0] != NGX_FEIRA_AUTH_DENY_TOKEN
                    && p[0] != NGX_FEIRA_AUTH_DENY_USERS) || p[1] != ' ')
    {
        return;
    }

    last = p + len;
    key = p + 2;

    sp = ngx_strlchr(key, last, ' ');
    if (sp == NULL) {
        return;
    }

    key_len = sp - key;

    n = ngx_atotm(sp + 1, last - sp - 1);
    if (n == NGX_ERROR) {
        return;
    }

    value = (time_t) n;

    if (p[0] == NGX_FEIRA_AUTH_DENY_TOKEN) {
        expire = value + ngx_feira_auth_amcf->leeway;

    } else {
        expire = value + ngx_feira_auth_amcf->access_ttl
                 + ngx_feira_auth_amcf->leeway;
    }

    ngx_feira_auth_deny_add(ngx_feira_auth_amcf->shm_zone, p[0], key,
                            key_len, value, expire);
}


static void
ngx_feira_auth_feed_load(void)
{
    time_t              now;
    ngx_feira_redis_t  *main;

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main) || ngx_feira_auth_loading) {
        /* retried by the heartbeat */
        return;
    }

    now = ngx_time();

    if (ngx_feira_redis_command(main, ngx_feira_auth_feed_loaded,
                                (void *) NGX_FEIRA_AUTH_DENY_TOKEN,
                                "ZRANGEBYSCORE %s %lld +inf WITHSCORES",
                                NGX_FEIRA_AUTH_DENY_JTI,
                                (long long) (now
                                             - ngx_feira_auth_amcf->leeway))
        != NGX_OK)
    {
        return;
    }

    ngx_feira_auth_loading++;

    if (ngx_feira_redis_command(main, ngx_feira_auth_feed_loaded,
                                (void *) NGX_FEIRA_AUTH_DENY_USERS,
                                "ZRANGEBYSCORE %s %lld +inf WITHSCORES",
                                NGX_FEIRA_AUTH_DENY_USER,
                                (long long) (now
                                             - ngx_feira_auth_amcf->access_ttl
                                             - ngx_feira_auth_amcf->leeway))
        == NGX_OK)
    {
        ngx_feira_auth_loading++;
    }
}


static void
ngx_feira_auth_feed_loaded(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    u_char       type;
    size_t       i;
    time_t       value, expire;
    redisReply  *rr = reply;
    redisReply  *member, *score;

    type = (u_char) (uintptr_t) privdata;

    ngx_feira_auth_loading--;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i + 1 < rr->elements; i += 2) {
        member = rr->element[i];
        score = rr->element[i + 1];

        if (member->type != REDIS_REPLY_STRING
            || score->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        value = (time_t) ngx_atotm((u_char *) score->str, score->len);
        if (value == NGX_ERROR) {
            continue;
        }

        expire = value + ngx_feira_auth_amcf->leeway;

        if (type == NGX_FEIRA_AUTH_DENY_USERS) {
            expire += ngx_feira_auth_amcf->access_ttl;
        }

        ngx_feira_auth_deny_add(ngx_feira_auth_amcf->shm_zone, type,
                                (u_char *) member->str, member->len, value,
                                expire);
    }

    if (type == NGX_FEIRA_AUTH_DENY_USERS && ngx_feira_auth_subscribed) {
        ngx_feira_auth_loaded = 1;
        ngx_feira_auth_trusted = 1;
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "feira: auth: deny list loaded, %uz users",
                      rr->elements / 2);
    }
}


static void
ngx_feira_auth_feed_heartbeat(ngx_event_t *ev)
{
    ngx_feira_redis_t  *main;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    main = ngx_feira_redis_main();

    if (ngx_feira_auth_subscribed && !ngx_feira_auth_loaded) {
        ngx_feira_auth_feed_load();
    }

    (void) ngx_feira_redis_command(main, ngx_feira_auth_feed_ignore, NULL,
                                   "PUBLISH %s h", NGX_FEIRA_AUTH_CHANNEL);

    ngx_add_timer(ev, NGX_FEIRA_AUTH_HEARTBEAT);
}


static void
ngx_feira_auth_feed_ignore(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    /* heartbeats are seen on the subscription, not here */
}


ngx_int_t
ngx_feira_auth_deny_publish(u_char type, const char *key, time_t value,
    ngx_feira_auth_deny_pt handler, void *data)
{
    time_t                     now, oldest;
    const char                *set;
    ngx_int_t                  rc;
    ngx_feira_redis_t         *main;
    ngx_feira_auth_publish_t  *pub;
    u_char                     msg[128];

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    pub = ngx_alloc(sizeof(ngx_feira_auth_publish_t), ngx_cycle->log);
    if (pub == NULL) {
        return NGX_ERROR;
    }

    pub->handler = handler;
    pub->data = data;
    pub->pending = 0;
    pub->failed = 0;

    now = ngx_time();

    if (type == NGX_FEIRA_AUTH_DENY_TOKEN) {
        set = NGX_FEIRA_AUTH_DENY_JTI;
        oldest = now - ngx_feira_auth_amcf->leeway;

    } else {
        set = NGX_FEIRA_AUTH_DENY_USER;
        oldest = now - ngx_feira_auth_amcf->access_ttl
                 - ngx_feira_auth_amcf->leeway;
    }

    /*
     * Pipelined: stored, the stale entries trimmed, then announced.  The
     * handler runs once, after the last reply; any failure fails it all.
     */

    rc = ngx_feira_redis_command(main, ngx_feira_auth_publish_reply, pub,
                                 "ZADD %s %lld %s", set, (long long) value,
                                 key);
    if (rc != NGX_OK) {
        ngx_free(pub);
        return NGX_ERROR;
    }

    pub->pending++;

    if (ngx_feira_redis_command(main, ngx_feira_auth_publish_reply, pub,
                                "ZREMRANGEBYSCORE %s -inf (%lld",
                                set, (long long) oldest)
        == NGX_OK)
    {
        pub->pending++;
    }

    /* the message is one argument: hiredis splits the format at spaces */
    *ngx_snprintf(msg, sizeof(msg) - 1, "%c %s %T", type, key, value) = '\0';

    if (ngx_feira_redis_command(main, ngx_feira_auth_publish_reply, pub,
                                "PUBLISH %s %s", NGX_FEIRA_AUTH_CHANNEL, msg)
        == NGX_OK)
    {
        pub->pending++;

    } else {
        pub->failed = 1;
    }

    return NGX_OK;
}


static void
ngx_feira_auth_publish_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                *rr = reply;
    ngx_feira_auth_publish_t  *pub = privdata;

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        pub->failed = 1;
    }

    if (--pub->pending) {
        return;
    }

    if (pub->handler) {
        pub->handler(pub->data, pub->failed ? NGX_ERROR : NGX_OK);
    }

    ngx_free(pub);
}
