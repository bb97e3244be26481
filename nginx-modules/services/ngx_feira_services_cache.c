/*
 * Service requests in Redis, for reads: feira:request:<id> holds
 * "<rank> <the request as its client sees it>" for
 * feira_services_request_cache seconds (0: no cache).
 *
 * MongoDB stays the record: every change is made there first (the
 * transitions, with their claims), then written here before it is
 * answered or published.  A read finds the request here, or reads
 * MongoDB in the thread pool and fills the key.  The rank of the status
 * in ngx_feira_lifecycle_states[] is the version: every transition moves
 * forward in that list, and the script below never puts back a lower
 * rank, so a slow read that fills the key cannot hide a newer state.
 */

#include "ngx_http_feira_services_module.h"


typedef struct {
    ngx_feira_svc_cached_pt      handler;
    void                        *data;
} ngx_feira_svc_put_t;


static void ngx_feira_svc_cache_got(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_svc_cache_read(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static void ngx_feira_svc_cache_read_done(ngx_http_request_t *r,
    void *data);
static void ngx_feira_svc_cache_put_done(redisAsyncContext *ac, void *reply,
    void *privdata);


/* KEYS[1] the key; ARGV: rank, the request, seconds to keep it */
static const char  ngx_feira_svc_lua_cache_put[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local rank = tonumber(string.match(cur, '^(%d+) '))\n"
    "  if rank and rank > tonumber(ARGV[1]) then return 0 end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])\n"
    "return 1\n";


/*
 * Answers through "loaded", once, on the event loop; the caller returns
 * what this returns.
 */

ngx_int_t
ngx_feira_svc_request_load(ngx_http_request_t *r, ngx_feira_svc_job_t *job,
    ngx_feira_svc_loaded_pt loaded)
{
    ngx_int_t          rc;
    ngx_feira_redis_t *redis;
    u_char             key[sizeof(NGX_FEIRA_SVC_KEY_REQUEST)
                           + NGX_FEIRA_SVC_SLUG_LEN];

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    job->request = r;
    job->loaded = loaded;

    r->main->count++;

    redis = ngx_feira_redis_main();

    if (job->smcf->request_cache == 0 || !ngx_feira_redis_is_up(redis)) {
        ngx_feira_svc_cache_read(r, job);
        return NGX_DONE;
    }

    *ngx_snprintf(key, sizeof(key) - 1, "%s%s", NGX_FEIRA_SVC_KEY_REQUEST,
                  job->id) = '\0';

    if (ngx_feira_redis_command(redis, ngx_feira_svc_cache_got, job,
                                "GET %s", key)
        != NGX_OK)
    {
        ngx_feira_svc_cache_read(r, job);
    }

    return NGX_DONE;
}


static void
ngx_feira_svc_cache_got(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_feira_svc_job_t  *job = privdata;

    u_char              *p, *last;
    json_t              *view;
    redisReply          *rr = reply;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->request;
    c = r->connection;

    view = NULL;

    if (rr != NULL && rr->type == REDIS_REPLY_STRING) {
        p = (u_char *) rr->str;
        last = p + rr->len;

        p = ngx_strlchr(p, last, ' ');

        if (p != NULL) {
            p++;
            view = json_loadb((char *) p, last - p, 0, NULL);
        }

        if (view != NULL && !json_is_object(view)) {
            json_decref(view);
            view = NULL;
        }

        if (view == NULL) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "feira: services: the cached request %s is not "
                          "valid, read from MongoDB", job->id);
        }
    }

    if (view == NULL) {
        /* not cached, or Redis went away meanwhile */
        ngx_feira_svc_cache_read(r, job);

    } else {
        job->result = view;
        job->status = NGX_HTTP_OK;
        job->loaded(r, job);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_feira_svc_cache_read(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_feira_svc_post(r, ngx_feira_svc_request_load_job,
                       ngx_feira_svc_cache_read_done, job);
}


static void
ngx_feira_svc_cache_read_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_job_t  *job = data;

    if (job->status == NGX_HTTP_OK && job->result != NULL
        && job->smcf->request_cache)
    {
        job->cache = json_incref(job->result);
        ngx_feira_svc_cache_put(job, NULL, NULL);
    }

    job->loaded(r, job);
}


/*
 * job->cache, the request after a change or a read, into Redis; the
 * handler, if any, runs once, whether it was stored or not (maybe before
 * this returns).
 */

void
ngx_feira_svc_cache_put(ngx_feira_svc_job_t *job,
    ngx_feira_svc_cached_pt handler, void *data)
{
    int                   rank;
    char                 *text, rtext[NGX_INT_T_LEN + 1];
    char                  ttl[NGX_INT_T_LEN + 1];
    size_t                argvlen[7];
    ngx_uint_t            i;
    const char           *id, *status, *argv[7];
    ngx_feira_svc_put_t  *put;
    u_char                key[sizeof(NGX_FEIRA_SVC_KEY_REQUEST)
                              + NGX_FEIRA_SVC_SLUG_LEN];

    put = NULL;
    text = NULL;

    id = json_string_value(json_object_get(job->cache, "id"));
    status = json_string_value(json_object_get(job->cache, "status"));
    rank = status ? ngx_feira_lifecycle_rank(status) : -1;

    if (job->smcf->request_cache == 0 || id == NULL || rank < 0
        || ngx_strlen(id) > NGX_FEIRA_SVC_SLUG_LEN)
    {
        goto done;
    }

    text = json_dumps(job->cache, JSON_COMPACT|JSON_REAL_PRECISION(15));
    if (text == NULL) {
        goto done;
    }

    if (handler) {
        put = ngx_alloc(sizeof(ngx_feira_svc_put_t), ngx_cycle->log);
        if (put == NULL) {
            goto done;
        }

        put->handler = handler;
        put->data = data;
    }

    *ngx_snprintf(key, sizeof(key) - 1, "%s%s", NGX_FEIRA_SVC_KEY_REQUEST,
                  id) = '\0';
    *ngx_sprintf((u_char *) rtext, "%d", rank) = '\0';
    *ngx_sprintf((u_char *) ttl, "%T", job->smcf->request_cache) = '\0';

    argv[0] = "EVAL";
    argv[1] = ngx_feira_svc_lua_cache_put;
    argv[2] = "1";
    argv[3] = (char *) key;
    argv[4] = rtext;
    argv[5] = text;
    argv[6] = ttl;

    for (i = 0; i < 7; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_feira_redis_commandargv(ngx_feira_redis_main(),
                                    put ? ngx_feira_svc_cache_put_done : NULL,
                                    put, 7, argv, argvlen)
        == NGX_OK)
    {
        free(text);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "feira: services: request %s not cached, Redis is away",
                  id);

done:

    free(text);

    if (put) {
        ngx_free(put);
    }

    if (handler) {
        handler(data);
    }
}


static void
ngx_feira_svc_cache_put_done(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_feira_svc_put_t  *put = privdata;

    redisReply               *rr = reply;
    void                     *data;
    ngx_feira_svc_cached_pt   handler;

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: services: a request was not cached: %s",
                      rr ? rr->str : "Redis went away");
    }

    handler = put->handler;
    data = put->data;

    ngx_free(put);

    handler(data);
}
