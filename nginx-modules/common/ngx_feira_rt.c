/*
 * Real time in Redis, shared by every module: the per-channel history and
 * fan-out of events (one Lua script, so that an event is numbered, kept and
 * announced atomically), its replay from a sequence number, and the
 * providers' presence for matching.  Keys and scripts: docs/events.md.
 */

#include "ngx_feira_common.h"


/*
 * KEYS[1] the counter, KEYS[2] the history; ARGV[1] the pub/sub channel,
 * ARGV[2] the event, ARGV[3] the history length, ARGV[4] its TTL (s).
 */

static const char  ngx_feira_rt_publish_lua[] =
    "local seq = redis.call('INCR', KEYS[1])\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0',"
    " 'e', ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[4])\n"
    "redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[2])\n"
    "return seq\n";


/*
 * KEYS[1] the counter, KEYS[2] the history; ARGV[1] the last sequence
 * number seen (-1: none, only the current one is wanted), ARGV[2] the most
 * entries to return.  A `since` beyond the counter means the channel was
 * idle past its TTL and started again at 1: everything kept is replayed.
 */

static const char  ngx_feira_rt_replay_lua[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local since = tonumber(ARGV[1])\n"
    "if since < 0 then return {cur, {}} end\n"
    "if since > cur then since = 0 end\n"
    "return {cur, redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+',"
    " 'COUNT', ARGV[2])}\n";


/*
 * KEYS[1] feira:seen, KEYS[2] feira:offline; ARGV[1] the provider, ARGV[2]
 * 1 online, 0 offline, -1 read only; ARGV[3] now (unix ms).
 */

static const char  ngx_feira_presence_status_lua[] =
    "if ARGV[2] == '1' then\n"
    "  redis.call('SREM', KEYS[2], ARGV[1])\n"
    "  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])\n"
    "elseif ARGV[2] == '0' then\n"
    "  redis.call('SADD', KEYS[2], ARGV[1])\n"
    "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "end\n"
    "return {redis.call('SISMEMBER', KEYS[2], ARGV[1]),"
    " redis.call('ZSCORE', KEYS[1], ARGV[1])}\n";


typedef struct {
    ngx_feira_rt_publish_pt     handler;
    void                       *data;
} ngx_feira_rt_publish_t;


typedef struct {
    ngx_feira_rt_replay_pt      handler;
    void                       *data;
} ngx_feira_rt_replay_t;


typedef struct {
    ngx_feira_presence_pt       handler;
    void                       *data;
    ngx_uint_t                  pending;
    ngx_uint_t                  failed;
} ngx_feira_presence_op_t;


static ngx_http_feira_main_conf_t *ngx_feira_rt_conf(void);
static void ngx_feira_rt_publish_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_rt_replay_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static ngx_int_t ngx_feira_presence_zadd(const char *key, ngx_str_t *ids,
    ngx_uint_t n);
static void ngx_feira_presence_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static u_char *ngx_feira_rt_key(u_char *buf, size_t size, const char *prefix,
    ngx_str_t *channel, size_t *len);


static ngx_http_feira_main_conf_t *
ngx_feira_rt_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_feira_common_module);
}


ngx_int_t
ngx_feira_rt_channel_valid(ngx_str_t *channel)
{
    size_t  i;

    if (channel->len == 0 || channel->len > NGX_FEIRA_RT_CHANNEL_MAX) {
        return 0;
    }

    for (i = 0; i < channel->len; i++) {
        if (channel->data[i] <= ' ' || channel->data[i] >= 0x7f
            || channel->data[i] == '"' || channel->data[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_feira_rt_publish(ngx_str_t *channel, ngx_str_t *event,
    ngx_feira_rt_publish_pt handler, void *data)
{
    int                          argc;
    size_t                       argvlen[9];
    ngx_int_t                    rc;
    const char                  *argv[9];
    ngx_feira_redis_t           *main;
    ngx_feira_rt_publish_t      *op;
    ngx_http_feira_main_conf_t  *fmcf;
    u_char                       seq_key[NGX_FEIRA_RT_CHANNEL_MAX + 16];
    u_char                       hist_key[NGX_FEIRA_RT_CHANNEL_MAX + 16];
    u_char                       pub[NGX_FEIRA_RT_CHANNEL_MAX + 16];
    u_char                       maxlen[NGX_INT_T_LEN];
    u_char                       ttl[NGX_INT_T_LEN];

    if (!ngx_feira_rt_channel_valid(channel) || event->len == 0) {
        return NGX_ERROR;
    }

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    fmcf = ngx_feira_rt_conf();

    op = ngx_alloc(sizeof(ngx_feira_rt_publish_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = handler;
    op->data = data;

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_feira_rt_publish_lua;
    argvlen[1] = sizeof(ngx_feira_rt_publish_lua) - 1;
    argv[2] = "2";
    argvlen[2] = 1;
    argv[3] = (char *) ngx_feira_rt_key(seq_key, sizeof(seq_key),
                                        NGX_FEIRA_RT_SEQ_PREFIX, channel,
                                        &argvlen[3]);
    argv[4] = (char *) ngx_feira_rt_key(hist_key, sizeof(hist_key),
                                        NGX_FEIRA_RT_HISTORY_PREFIX, channel,
                                        &argvlen[4]);
    argv[5] = (char *) ngx_feira_rt_key(pub, sizeof(pub),
                                        NGX_FEIRA_RT_PUBSUB_PREFIX, channel,
                                        &argvlen[5]);
    argv[6] = (char *) event->data;
    argvlen[6] = event->len;
    argv[7] = (char *) maxlen;
    argvlen[7] = ngx_sprintf(maxlen, "%ui", fmcf->rt_history_len) - maxlen;
    argv[8] = (char *) ttl;
    argvlen[8] = ngx_sprintf(ttl, "%T", fmcf->rt_history_ttl) - ttl;
    argc = 9;

    rc = ngx_feira_redis_commandargv(main, ngx_feira_rt_publish_reply, op,
                                     argc, argv, argvlen);
    if (rc != NGX_OK) {
        ngx_free(op);
        return rc;
    }

    return NGX_OK;
}


static void
ngx_feira_rt_publish_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply              *rr = reply;
    ngx_feira_rt_publish_t  *op = privdata;

    if (rr == NULL || rr->type != REDIS_REPLY_INTEGER) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: rt: publish failed: %s",
                      rr && rr->type == REDIS_REPLY_ERROR
                      ? rr->str : "no answer");

        if (op->handler) {
            op->handler(op->data, NGX_ERROR, 0);
        }

    } else if (op->handler) {
        op->handler(op->data, NGX_OK, (int64_t) rr->integer);
    }

    ngx_free(op);
}


ngx_int_t
ngx_feira_rt_replay(ngx_str_t *channel, int64_t since, ngx_uint_t max,
    ngx_feira_rt_replay_pt handler, void *data)
{
    size_t                  argvlen[7];
    ngx_int_t               rc;
    const char             *argv[7];
    ngx_feira_redis_t      *main;
    ngx_feira_rt_replay_t  *op;
    u_char                  seq_key[NGX_FEIRA_RT_CHANNEL_MAX + 16];
    u_char                  hist_key[NGX_FEIRA_RT_CHANNEL_MAX + 16];
    u_char                  from[NGX_INT64_LEN + 1];
    u_char                  count[NGX_INT_T_LEN];

    if (!ngx_feira_rt_channel_valid(channel)) {
        return NGX_ERROR;
    }

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    op = ngx_alloc(sizeof(ngx_feira_rt_replay_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = handler;
    op->data = data;

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_feira_rt_replay_lua;
    argvlen[1] = sizeof(ngx_feira_rt_replay_lua) - 1;
    argv[2] = "2";
    argvlen[2] = 1;
    argv[3] = (char *) ngx_feira_rt_key(seq_key, sizeof(seq_key),
                                        NGX_FEIRA_RT_SEQ_PREFIX, channel,
                                        &argvlen[3]);
    argv[4] = (char *) ngx_feira_rt_key(hist_key, sizeof(hist_key),
                                        NGX_FEIRA_RT_HISTORY_PREFIX, channel,
                                        &argvlen[4]);
    argv[5] = (char *) from;
    argvlen[5] = ngx_sprintf(from, "%L", since) - from;
    argv[6] = (char *) count;
    argvlen[6] = ngx_sprintf(count, "%ui", max ? max : 1) - count;

    rc = ngx_feira_redis_commandargv(main, ngx_feira_rt_replay_reply, op, 7,
                                     argv, argvlen);
    if (rc != NGX_OK) {
        ngx_free(op);
        return rc;
    }

    return NGX_OK;
}


static void
ngx_feira_rt_replay_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply             *rr = reply;
    ngx_feira_rt_replay_t  *op = privdata;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2
        || rr->element[0]->type != REDIS_REPLY_INTEGER
        || rr->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: rt: replay failed: %s",
                      rr && rr->type == REDIS_REPLY_ERROR
                      ? rr->str : "no answer");

        op->handler(op->data, NGX_ERROR, 0, NULL);

    } else {
        op->handler(op->data, NGX_OK, (int64_t) rr->element[0]->integer,
                    rr->element[1]);
    }

    ngx_free(op);
}


ngx_int_t
ngx_feira_rt_entry(redisReply *entry, int64_t *seq, ngx_str_t *event)
{
    u_char      *p, *dash;
    ngx_int_t    n;
    redisReply  *id, *fields;

    /* [ "<seq>-0", [ "e", "<event>" ] ] */

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) {
        return NGX_ERROR;
    }

    id = entry->element[0];
    fields = entry->element[1];

    if (id->type != REDIS_REPLY_STRING || fields->type != REDIS_REPLY_ARRAY
        || fields->elements != 2
        || fields->element[1]->type != REDIS_REPLY_STRING)
    {
        return NGX_ERROR;
    }

    p = (u_char *) id->str;
    dash = ngx_strlchr(p, p + id->len, '-');

    if (dash == NULL) {
        return NGX_ERROR;
    }

    n = ngx_atoi(p, dash - p);
    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    *seq = (int64_t) n;
    event->data = (u_char *) fields->element[1]->str;
    event->len = fields->element[1]->len;

    return NGX_OK;
}


ngx_int_t
ngx_feira_rt_subject(ngx_str_t *pubsub, ngx_str_t *channel)
{
    size_t  len;

    len = sizeof(NGX_FEIRA_RT_PUBSUB_PREFIX) - 1;

    if (pubsub->len <= len
        || ngx_strncmp(pubsub->data, NGX_FEIRA_RT_PUBSUB_PREFIX, len) != 0)
    {
        return NGX_DECLINED;
    }

    channel->data = pubsub->data + len;
    channel->len = pubsub->len - len;

    return NGX_OK;
}


ngx_int_t
ngx_feira_rt_message(ngx_str_t *message, int64_t *seq, ngx_str_t *event)
{
    u_char     *sp;
    ngx_int_t   n;

    /* "<seq> <event>" */

    sp = ngx_strlchr(message->data, message->data + message->len, ' ');

    if (sp == NULL) {
        return NGX_ERROR;
    }

    n = ngx_atoi(message->data, sp - message->data);
    if (n == NGX_ERROR || n == 0) {
        return NGX_ERROR;
    }

    *seq = (int64_t) n;
    event->data = sp + 1;
    event->len = message->data + message->len - event->data;

    return event->len ? NGX_OK : NGX_ERROR;
}


/*
 * Presence: the position in the GEO set of every category the provider
 * offers, and the time it was last seen, both pipelined on the main
 * connection; the handler runs once, after the last reply.
 */

ngx_int_t
ngx_feira_presence_update(ngx_str_t *provider, ngx_str_t *categories,
    ngx_uint_t n, double lat, double lng, ngx_feira_presence_pt handler,
    void *data)
{
    size_t                    argvlen[5];
    ngx_uint_t                i;
    const char               *argv[5];
    ngx_feira_redis_t        *main;
    ngx_feira_presence_op_t  *op;
    u_char                    key[NGX_FEIRA_PRESENCE_CATEGORY_MAX + 16];
    u_char                    slng[32], slat[32], now[NGX_INT64_LEN];

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    op = ngx_alloc(sizeof(ngx_feira_presence_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->handler = handler;
    op->data = data;
    op->pending = 0;
    op->failed = 0;

    argv[0] = "GEOADD";
    argvlen[0] = 6;
    argv[2] = (char *) slng;
    argvlen[2] = ngx_sprintf(slng, "%.7f", lng) - slng;
    argv[3] = (char *) slat;
    argvlen[3] = ngx_sprintf(slat, "%.7f", lat) - slat;
    argv[4] = (char *) provider->data;
    argvlen[4] = provider->len;

    for (i = 0; i < n; i++) {
        if (categories[i].len == 0
            || categories[i].len > NGX_FEIRA_PRESENCE_CATEGORY_MAX)
        {
            continue;
        }

        argv[1] = (char *) key;
        argvlen[1] = ngx_sprintf(key, NGX_FEIRA_PRESENCE_GEO_PREFIX "%V",
                                 &categories[i])
                     - key;

        if (ngx_feira_redis_commandargv(main, ngx_feira_presence_reply, op, 5,
                                        argv, argvlen)
            != NGX_OK)
        {
            op->failed = 1;
            break;
        }

        op->pending++;
    }

    argv[0] = "ZADD";
    argvlen[0] = 4;
    argv[1] = NGX_FEIRA_PRESENCE_SEEN;
    argvlen[1] = sizeof(NGX_FEIRA_PRESENCE_SEEN) - 1;
    argv[2] = (char *) now;
    argvlen[2] = ngx_sprintf(now, "%L", ngx_feira_now_ms()) - now;
    argv[3] = (char *) provider->data;
    argvlen[3] = provider->len;

    if (!op->failed
        && ngx_feira_redis_commandargv(main, ngx_feira_presence_reply, op, 4,
                                       argv, argvlen)
           == NGX_OK)
    {
        op->pending++;
        return NGX_OK;
    }

    if (op->pending) {
        /* the replies still come; they report the failure */
        op->failed = 1;
        return NGX_OK;
    }

    ngx_free(op);

    return NGX_ERROR;
}


ngx_int_t
ngx_feira_presence_seen(ngx_str_t *providers, ngx_uint_t n)
{
    return ngx_feira_presence_zadd(NGX_FEIRA_PRESENCE_SEEN, providers, n);
}


/*
 * feira:online: every user with an open WebSocket, refreshed as feira:seen
 * is; read by feira_chat (recipient_online) with ZSCORE.
 */

ngx_int_t
ngx_feira_presence_online(ngx_str_t *users, ngx_uint_t n)
{
    return ngx_feira_presence_zadd(NGX_FEIRA_PRESENCE_ONLINE, users, n);
}


/* the user's last connection of this worker closed */

ngx_int_t
ngx_feira_presence_offline(ngx_str_t *user)
{
    ngx_feira_redis_t  *main;

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    return ngx_feira_redis_command(main, NULL, NULL, "ZREM %s %b",
                                   NGX_FEIRA_PRESENCE_ONLINE,
                                   user->data, user->len);
}


static ngx_int_t
ngx_feira_presence_zadd(const char *key, ngx_str_t *ids, ngx_uint_t n)
{
    int                 argc;
    size_t             *argvlen;
    int64_t             now;
    ngx_int_t           rc;
    ngx_uint_t          i;
    const char        **argv;
    ngx_feira_redis_t  *main;
    u_char              score[NGX_INT64_LEN];

    main = ngx_feira_redis_main();

    if (n == 0) {
        return NGX_OK;
    }

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    argv = ngx_alloc((2 + 2 * n) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((2 + 2 * n) * sizeof(size_t), ngx_cycle->log);

    if (argv == NULL || argvlen == NULL) {
        ngx_free(argv);
        ngx_free(argvlen);
        return NGX_ERROR;
    }

    now = ngx_feira_now_ms();

    argv[0] = "ZADD";
    argvlen[0] = 4;
    argv[1] = key;
    argvlen[1] = ngx_strlen(key);
    argc = 2;

    for (i = 0; i < n; i++) {
        argv[argc] = (char *) score;
        argvlen[argc] = ngx_sprintf(score, "%L", now) - score;
        argc++;
        argv[argc] = (char *) ids[i].data;
        argvlen[argc] = ids[i].len;
        argc++;
    }

    /* hiredis copies the arguments into its output buffer at once */
    rc = ngx_feira_redis_commandargv(main, NULL, NULL, argc, argv, argvlen);

    ngx_free(argv);
    ngx_free(argvlen);

    return rc;
}


ngx_int_t
ngx_feira_presence_status(ngx_str_t *provider, ngx_int_t online,
    redisCallbackFn *fn, void *privdata)
{
    size_t              argvlen[8];
    const char         *argv[8];
    ngx_feira_redis_t  *main;
    u_char              now[NGX_INT64_LEN];

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_feira_presence_status_lua;
    argvlen[1] = sizeof(ngx_feira_presence_status_lua) - 1;
    argv[2] = "2";
    argvlen[2] = 1;
    argv[3] = NGX_FEIRA_PRESENCE_SEEN;
    argvlen[3] = sizeof(NGX_FEIRA_PRESENCE_SEEN) - 1;
    argv[4] = NGX_FEIRA_PRESENCE_OFFLINE;
    argvlen[4] = sizeof(NGX_FEIRA_PRESENCE_OFFLINE) - 1;
    argv[5] = (char *) provider->data;
    argvlen[5] = provider->len;
    argv[6] = online > 0 ? "1" : (online == 0 ? "0" : "-1");
    argvlen[6] = ngx_strlen(argv[6]);
    argv[7] = (char *) now;
    argvlen[7] = ngx_sprintf(now, "%L", ngx_feira_now_ms()) - now;

    return ngx_feira_redis_commandargv(main, fn, privdata, 8, argv, argvlen);
}


static void
ngx_feira_presence_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply               *rr = reply;
    ngx_feira_presence_op_t  *op = privdata;

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        if (!op->failed) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: presence: update failed: %s",
                          rr ? rr->str : "no answer");
        }

        op->failed = 1;
    }

    if (--op->pending) {
        return;
    }

    if (op->handler) {
        op->handler(op->data, op->failed ? NGX_ERROR : NGX_OK);
    }

    ngx_free(op);
}


int64_t
ngx_feira_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + (int64_t) tp->msec;
}


static u_char *
ngx_feira_rt_key(u_char *buf, size_t size, const char *prefix,
    ngx_str_t *channel, size_t *len)
{
    *len = ngx_snprintf(buf, size, "%s%V", prefix, channel) - buf;

    return buf;
}
