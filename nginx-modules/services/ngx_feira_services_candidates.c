/*
 * Matching: the providers of a category near a point (GEOSEARCH
 * WITHCOORD on feira_realtime's feira:geo:<category>), then, pipelined,
 * their last sign of life (ZMSCORE feira:seen), offline flag (SMISMEMBER
 * feira:offline), offering profile (HMGET feira:offer:<category>), offer
 * counters (HMGET feira:offers) and cached ratings (HMGET feira:rating).
 * The eligible ones without a cached rating get their users.rating_avg
 * from MongoDB (in the thread pool) before the ranking; cached ratings
 * older than feira_services_rating_ttl are used and refreshed aside, by
 * one job per worker at a time.  Then the score of
 * ngx_feira_services_score.c ranks them.
 */

#include "ngx_http_feira_services_module.h"


#define NGX_FEIRA_SVC_GEO_LAT_MAX  85.05112878   /* what Redis GEO holds */
#define NGX_FEIRA_SVC_PIPELINE     5


typedef struct ngx_feira_svc_cand_s  ngx_feira_svc_cand_t;


/* ratings to read from users, and what was read */
typedef struct {
    ngx_uint_t                    n;
    char                        (*ids)[25];
    double                       *rating;
    ngx_uint_t                    failed;
} ngx_feira_svc_ratings_t;

typedef struct {
    ngx_feira_svc_cand_t         *ctx;
    ngx_uint_t                    which;
} ngx_feira_svc_cand_cmd_t;


struct ngx_feira_svc_cand_s {
    ngx_http_request_t           *request;
    ngx_feira_svc_match_query_t  *q;
    ngx_http_feira_services_main_conf_t  *smcf;

    ngx_uint_t                    n;
    char                        (*ids)[25];
    double                       *lat;
    double                       *lng;
    int64_t                      *seen;        /* unix ms, -1: never */
    u_char                       *offline;
    ngx_feira_profile_t          *profiles;
    u_char                       *valid;
    double                       *rating;
    int64_t                      *rating_at;   /* unix s, -1: none */
    int64_t                      *received;
    int64_t                      *accepted;

    ngx_uint_t                   *eligible;    /* indexes */
    double                       *distance;
    ngx_uint_t                    neligible;
    ngx_uint_t                   *need;        /* ratings to read */
    ngx_uint_t                    nneed;
    ngx_feira_svc_ratings_t       read;
    ngx_uint_t                    db_failed;

    int64_t                       month;       /* YYYYMM, now */
    int64_t                       before;      /* the month before */

    ngx_uint_t                    pending;
    ngx_uint_t                    failed;
    ngx_feira_svc_cand_cmd_t      cmds[NGX_FEIRA_SVC_PIPELINE];
};


typedef struct {
    double                        score;
    double                        distance;
    ngx_uint_t                    index;
    ngx_feira_score_t             parts;
} ngx_feira_svc_ranked_t;


enum {
    NGX_FEIRA_SVC_CMD_SEEN = 0,
    NGX_FEIRA_SVC_CMD_OFFLINE,
    NGX_FEIRA_SVC_CMD_OFFER,
    NGX_FEIRA_SVC_CMD_OFFERS,
    NGX_FEIRA_SVC_CMD_RATING
};


static void ngx_feira_svc_geo_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static ngx_int_t ngx_feira_svc_details(ngx_feira_svc_cand_t *ctx);
static void ngx_feira_svc_details_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_svc_filter(ngx_feira_svc_cand_t *ctx);
static void ngx_feira_svc_refresh(ngx_feira_svc_cand_t *ctx, int64_t stale,
    ngx_uint_t nstale);
static void ngx_feira_svc_refresh_job(void *data);
static void ngx_feira_svc_refresh_done(ngx_http_request_t *r, void *data);
static void ngx_feira_svc_ratings_job(void *data);
static void ngx_feira_svc_ratings_done(ngx_http_request_t *r, void *data);
static void ngx_feira_svc_ratings_read(ngx_feira_svc_ratings_t *rt);
static void ngx_feira_svc_ratings_store(ngx_feira_svc_ratings_t *rt);
static void ngx_feira_svc_rank(ngx_feira_svc_cand_t *ctx);
static void ngx_feira_svc_match_end(ngx_feira_svc_cand_t *ctx,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n);
static int ngx_libc_cdecl ngx_feira_svc_ranked_cmp(const void *one,
    const void *two);


/* one refresh of stale ratings at a time, per worker */
static ngx_uint_t  ngx_feira_svc_refreshing;


/*
 * Answers through q->handler, always, once; NGX_OK once started, or
 * NGX_DECLINED if Redis is down (the handler has not run).
 */

ngx_int_t
ngx_feira_svc_match(ngx_http_request_t *r, ngx_feira_svc_match_query_t *q)
{
    char                  lat[32], lng[32], radius[32], count[32];
    const char           *argv[12];
    size_t                argvlen[12];
    ngx_uint_t            i;
    ngx_feira_redis_t    *rc;
    ngx_feira_svc_cand_t *ctx;
    u_char                key[sizeof(NGX_FEIRA_PRESENCE_GEO_PREFIX)
                              + NGX_FEIRA_SVC_SLUG_LEN];

    rc = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(rc)) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_feira_svc_cand_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->request = r;
    ctx->q = q;
    ctx->smcf = ngx_http_get_module_main_conf(r,
                                              ngx_http_feira_services_module);

    *ngx_snprintf(key, sizeof(key) - 1, "%s%V",
                  NGX_FEIRA_PRESENCE_GEO_PREFIX,
                  &q->category) = '\0';

    /*
     * GEO holds latitudes up to 85.05 degrees: nearer a pole the search
     * starts there; the distances are computed from the real point.
     */
    (void) snprintf(lat, sizeof(lat), "%.7f",
                    ngx_max(ngx_min(q->rq.lat, NGX_FEIRA_SVC_GEO_LAT_MAX),
                            -NGX_FEIRA_SVC_GEO_LAT_MAX));
    (void) snprintf(lng, sizeof(lng), "%.7f", q->rq.lng);
    (void) snprintf(radius, sizeof(radius), "%lu",
                    (unsigned long) ctx->smcf->max_radius);
    (void) snprintf(count, sizeof(count), "%lu",
                    (unsigned long) ctx->smcf->candidates);

    argv[0] = "GEOSEARCH";
    argv[1] = (char *) key;
    argv[2] = "FROMLONLAT";
    argv[3] = lng;
    argv[4] = lat;
    argv[5] = "BYRADIUS";
    argv[6] = radius;
    argv[7] = "km";
    argv[8] = "ASC";
    argv[9] = "COUNT";
    argv[10] = count;
    argv[11] = "WITHCOORD";

    for (i = 0; i < 12; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_feira_redis_commandargv(rc, ngx_feira_svc_geo_reply, ctx, 12,
                                    argv, argvlen)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_feira_svc_geo_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_feira_svc_cand_t  *ctx = privdata;

    size_t               i, n;
    redisReply          *rr = reply;
    redisReply          *item, *id, *pos;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY) {
        if (rr && rr->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "feira: services: GEOSEARCH: %s", rr->str);
        }

        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    n = rr->elements;

    if (n == 0) {
        ngx_feira_svc_match_end(ctx, NGX_OK, NULL, 0);
        return;
    }

    ctx->ids = ngx_palloc(r->pool, n * 25);
    ctx->lat = ngx_palloc(r->pool, n * sizeof(double));
    ctx->lng = ngx_palloc(r->pool, n * sizeof(double));
    ctx->seen = ngx_pcalloc(r->pool, n * sizeof(int64_t));
    ctx->offline = ngx_pcalloc(r->pool, n);
    ctx->eligible = ngx_palloc(r->pool, n * sizeof(ngx_uint_t));
    ctx->distance = ngx_palloc(r->pool, n * sizeof(double));
    ctx->profiles = ngx_palloc(r->pool, n * sizeof(ngx_feira_profile_t));
    ctx->valid = ngx_pcalloc(r->pool, n);
    ctx->rating = ngx_pcalloc(r->pool, n * sizeof(double));
    ctx->rating_at = ngx_palloc(r->pool, n * sizeof(int64_t));
    ctx->need = ngx_palloc(r->pool, n * sizeof(ngx_uint_t));
    ctx->received = ngx_pcalloc(r->pool, n * sizeof(int64_t));
    ctx->accepted = ngx_pcalloc(r->pool, n * sizeof(int64_t));

    if (ctx->ids == NULL || ctx->lat == NULL || ctx->lng == NULL
        || ctx->seen == NULL || ctx->profiles == NULL || ctx->valid == NULL
        || ctx->offline == NULL || ctx->eligible == NULL
        || ctx->distance == NULL
        || ctx->rating == NULL || ctx->rating_at == NULL
        || ctx->need == NULL || ctx->received == NULL
        || ctx->accepted == NULL)
    {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    /* [member (a provider id), [lng, lat]] */

    for (i = 0; i < n; i++) {
        item = rr->element[i];

        if (item->type != REDIS_REPLY_ARRAY || item->elements != 2) {
            continue;
        }

        id = item->element[0];
        pos = item->element[1];

        if (id->type != REDIS_REPLY_STRING || id->len != 24
            || pos->type != REDIS_REPLY_ARRAY || pos->elements != 2
            || pos->element[0]->type != REDIS_REPLY_STRING
            || pos->element[1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        ngx_memcpy(ctx->ids[ctx->n], id->str, 24);
        ctx->ids[ctx->n][24] = '\0';
        ctx->lng[ctx->n] = strtod(pos->element[0]->str, NULL);
        ctx->lat[ctx->n] = strtod(pos->element[1]->str, NULL);
        ctx->seen[ctx->n] = -1;
        ctx->rating_at[ctx->n] = -1;
        ctx->n++;
    }

    if (ctx->n == 0) {
        ngx_feira_svc_match_end(ctx, NGX_OK, NULL, 0);
        return;
    }

    if (ngx_feira_svc_details(ctx) != NGX_OK && ctx->pending == 0) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
    }
}


/* three commands over the same ids, pipelined */

static ngx_int_t
ngx_feira_svc_details(ngx_feira_svc_cand_t *ctx)
{
    size_t               *argvlen;
    ngx_uint_t            i, w;
    const char          **argv;
    ngx_feira_redis_t    *rc;
    ngx_http_request_t   *r;
    char                  month[8];
    u_char                offer[sizeof(NGX_FEIRA_SVC_KEY_OFFER)
                                + NGX_FEIRA_SVC_SLUG_LEN];

    static const char    *cmds[NGX_FEIRA_SVC_PIPELINE] = {
        "ZMSCORE", "SMISMEMBER", "HMGET", "HMGET", "HMGET"
    };
    static const char    *keys[NGX_FEIRA_SVC_PIPELINE] = {
        NGX_FEIRA_PRESENCE_SEEN, NGX_FEIRA_PRESENCE_OFFLINE, NULL,
        NGX_FEIRA_SVC_KEY_OFFERS, NGX_FEIRA_SVC_KEY_RATING
    };

    r = ctx->request;
    rc = ngx_feira_redis_main();

    argv = ngx_palloc(r->pool, (ctx->n + 2) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (ctx->n + 2) * sizeof(size_t));

    if (argv == NULL || argvlen == NULL) {
        return NGX_ERROR;
    }

    *ngx_snprintf(offer, sizeof(offer) - 1, "%s%V", NGX_FEIRA_SVC_KEY_OFFER,
                  &ctx->q->category) = '\0';

    ngx_feira_svc_month_key(ngx_time(), 0, month);
    ctx->month = ngx_atoi((u_char *) month, 6);
    ngx_feira_svc_month_key(ngx_time(), 1, month);
    ctx->before = ngx_atoi((u_char *) month, 6);

    for (i = 0; i < ctx->n; i++) {
        argv[i + 2] = ctx->ids[i];
        argvlen[i + 2] = 24;
    }

    /* hiredis copies the arguments: one argv serves every command */

    for (w = 0; w < NGX_FEIRA_SVC_PIPELINE; w++) {
        argv[0] = cmds[w];
        argvlen[0] = ngx_strlen(cmds[w]);
        argv[1] = keys[w] ? keys[w] : (char *) offer;
        argvlen[1] = ngx_strlen(argv[1]);

        ctx->cmds[w].ctx = ctx;
        ctx->cmds[w].which = w;

        if (ngx_feira_redis_commandargv(rc, ngx_feira_svc_details_reply,
                                        &ctx->cmds[w], (int) ctx->n + 2,
                                        argv, argvlen)
            != NGX_OK)
        {
            ctx->failed = 1;
            return NGX_ERROR;
        }

        ctx->pending++;
    }

    return NGX_OK;
}


static void
ngx_feira_svc_details_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    ngx_feira_svc_cand_cmd_t  *cmd = privdata;

    size_t                 i;
    redisReply            *rr = reply;
    redisReply            *e;
    ngx_feira_svc_cand_t  *ctx;

    ctx = cmd->ctx;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY
        || rr->elements != ctx->n)
    {
        if (rr && rr->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "feira: services: matching: %s", rr->str);
        }

        ctx->failed = 1;
        goto done;
    }

    for (i = 0; i < ctx->n; i++) {
        e = rr->element[i];

        if (cmd->which == NGX_FEIRA_SVC_CMD_OFFLINE) {
            ctx->offline[i] = (e->type == REDIS_REPLY_INTEGER
                               && e->integer != 0);
            continue;
        }

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }

        switch (cmd->which) {

        case NGX_FEIRA_SVC_CMD_SEEN:
            ctx->seen[i] = strtoll(e->str, NULL, 10);
            break;

        case NGX_FEIRA_SVC_CMD_RATING:
            /* "<rating_avg> <unix s read>" */
            if (sscanf(e->str, "%lf %" SCNd64, &ctx->rating[i],
                       &ctx->rating_at[i])
                != 2)
            {
                ctx->rating[i] = 0.0;
                ctx->rating_at[i] = -1;
            }

            break;

        case NGX_FEIRA_SVC_CMD_OFFER:
            ctx->valid[i] = (ngx_feira_profile_parse(e->str, e->len,
                                                     &ctx->profiles[i])
                             == 0);
            break;

        default: /* NGX_FEIRA_SVC_CMD_OFFERS */
            (void) ngx_feira_offers_parse(e->str, e->len, ctx->month,
                                          ctx->before, &ctx->received[i],
                                          &ctx->accepted[i]);
            break;
        }
    }

done:

    if (--ctx->pending) {
        return;
    }

    if (ctx->failed) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    ngx_feira_svc_filter(ctx);
}


/* online, with a valid offering that covers the request: then ratings */

static void
ngx_feira_svc_filter(ngx_feira_svc_cand_t *ctx)
{
    double      d;
    int64_t     cutoff, stale;
    ngx_uint_t  i, k, nstale;

    /* silent longer than the presence window, or switched off: out */
    cutoff = ngx_feira_now_ms() - (int64_t) ctx->smcf->presence_ttl * 1000;
    stale = (int64_t) ngx_time() - (int64_t) ctx->smcf->rating_ttl;
    nstale = 0;

    for (i = 0; i < ctx->n; i++) {
        if (ctx->seen[i] < cutoff || ctx->offline[i] || !ctx->valid[i]) {
            continue;
        }

        d = ngx_feira_haversine_km(ctx->q->rq.lat, ctx->q->rq.lng,
                                   ctx->lat[i], ctx->lng[i]);

        if (!ngx_feira_match_eligible(&ctx->q->rq, &ctx->profiles[i], d)) {
            continue;
        }

        ctx->distance[i] = d;
        ctx->eligible[ctx->neligible++] = i;

        /* none cached: read now; cached but old: used, refreshed aside */

        if (ctx->smcf->rating_ttl == 0 || ctx->rating_at[i] < 0) {
            ctx->need[ctx->nneed++] = i;

        } else if (ctx->rating_at[i] <= stale) {
            nstale++;
        }
    }

    if (ctx->neligible == 0) {
        ngx_feira_svc_match_end(ctx, NGX_OK, NULL, 0);
        return;
    }

    if (nstale) {
        ngx_feira_svc_refresh(ctx, stale, nstale);
    }

    if (ctx->nneed == 0) {
        ngx_feira_svc_rank(ctx);
        return;
    }

    ctx->read.n = ctx->nneed;
    ctx->read.ids = ngx_palloc(ctx->request->pool, ctx->nneed * 25);
    ctx->read.rating = ngx_pcalloc(ctx->request->pool,
                                   ctx->nneed * sizeof(double));

    if (ctx->read.ids == NULL || ctx->read.rating == NULL) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    for (k = 0; k < ctx->nneed; k++) {
        ngx_memcpy(ctx->read.ids[k], ctx->ids[ctx->need[k]], 25);
    }

    if (ngx_feira_thread_post(ctx->request, ngx_feira_svc_ratings_job,
                              ngx_feira_svc_ratings_done, ctx)
        != NGX_OK)
    {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
    }
}


/*
 * Stale cached ratings are refreshed by one job at a time per worker,
 * outside any request: concurrent rankings do not all scan users at once
 * when the cache ages.
 */

static void
ngx_feira_svc_refresh(ngx_feira_svc_cand_t *ctx, int64_t stale,
    ngx_uint_t nstale)
{
    u_char                   *p;
    ngx_uint_t                i, k;
    ngx_feira_svc_ratings_t  *rt;

    if (ngx_feira_svc_refreshing) {
        return;
    }

    p = ngx_alloc(sizeof(ngx_feira_svc_ratings_t)
                  + nstale * (25 + sizeof(double)), ngx_cycle->log);
    if (p == NULL) {
        return;
    }

    rt = (ngx_feira_svc_ratings_t *) p;
    rt->rating = (double *) (p + sizeof(ngx_feira_svc_ratings_t));
    rt->ids = (char (*)[25]) (p + sizeof(ngx_feira_svc_ratings_t)
                              + nstale * sizeof(double));
    rt->n = 0;
    rt->failed = 0;

    for (k = 0; k < ctx->neligible && rt->n < nstale; k++) {
        i = ctx->eligible[k];

        if (ctx->rating_at[i] >= 0 && ctx->rating_at[i] <= stale) {
            ngx_memcpy(rt->ids[rt->n], ctx->ids[i], 25);
            rt->rating[rt->n] = 0.0;
            rt->n++;
        }
    }

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_svc_refresh_job,
                                    ngx_feira_svc_refresh_done, rt)
        != NGX_OK)
    {
        ngx_free(rt);
        return;
    }

    ngx_feira_svc_refreshing = 1;
}


static void
ngx_feira_svc_refresh_job(void *data)
{
    ngx_feira_svc_ratings_read(data);
}


static void
ngx_feira_svc_refresh_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_ratings_t  *rt = data;

    if (!rt->failed) {
        ngx_feira_svc_ratings_store(rt);
    }

    ngx_free(rt);
    ngx_feira_svc_refreshing = 0;
}


static void
ngx_feira_svc_ratings_job(void *data)
{
    ngx_feira_svc_cand_t  *ctx = data;

    ngx_feira_svc_ratings_read(&ctx->read);
}


static void
ngx_feira_svc_ratings_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_cand_t  *ctx = data;

    ngx_uint_t  k;

    if (ctx->read.failed) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    for (k = 0; k < ctx->nneed; k++) {
        ctx->rating[ctx->need[k]] = ctx->read.rating[k];
    }

    ngx_feira_svc_ratings_store(&ctx->read);
    ngx_feira_svc_rank(ctx);
}


/* in a pool thread: users.rating_avg (kept by feira_users) of rt->ids */

static void
ngx_feira_svc_ratings_read(ngx_feira_svc_ratings_t *rt)
{
    bson_t               *filter, *opts, in, list;
    bson_iter_t           it;
    bson_oid_t            oid;
    ngx_uint_t            k;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_client_t      *client;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *users;
    char                  key[NGX_INT_T_LEN + 1], hex[25];

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        rt->failed = 1;
        return;
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");

    filter = bson_new();
    BSON_APPEND_DOCUMENT_BEGIN(filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &list);

    for (k = 0; k < rt->n; k++) {
        rt->rating[k] = 0.0;
        bson_oid_init_from_string(&oid, rt->ids[k]);
        (void) snprintf(key, sizeof(key), "%lu", (unsigned long) k);
        BSON_APPEND_OID(&list, key, &oid);
    }

    bson_append_array_end(&in, &list);
    bson_append_document_end(filter, &in);

    opts = BCON_NEW("projection", "{", "rating_avg", BCON_INT32(1), "}");

    cursor = mongoc_collection_find_with_opts(users, filter, opts, NULL);

    while (mongoc_cursor_next(cursor, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_to_string(bson_iter_oid(&it), hex);

        for (k = 0; k < rt->n; k++) {
            if (ngx_strcmp(rt->ids[k], hex) == 0) {
                rt->rating[k] = ngx_feira_svc_bson_double(doc, "rating_avg");
                break;
            }
        }
    }

    if (mongoc_cursor_error(cursor, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: services: matching ratings: %s",
                      error.message);
        rt->failed = 1;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/* on the event loop: the ratings just read, for the next rankings */

static void
ngx_feira_svc_ratings_store(ngx_feira_svc_ratings_t *rt)
{
    char         *values;
    size_t       *argvlen;
    ngx_uint_t    k, argc;
    const char  **argv;

    if (rt->n == 0) {
        return;
    }

    argv = ngx_alloc((2 + 2 * rt->n) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((2 + 2 * rt->n) * sizeof(size_t), ngx_cycle->log);
    values = ngx_alloc(rt->n * 48, ngx_cycle->log);

    if (argv == NULL || argvlen == NULL || values == NULL) {
        goto done;
    }

    argv[0] = "HSET";
    argvlen[0] = 4;
    argv[1] = NGX_FEIRA_SVC_KEY_RATING;
    argvlen[1] = sizeof(NGX_FEIRA_SVC_KEY_RATING) - 1;
    argc = 2;

    for (k = 0; k < rt->n; k++) {
        argv[argc] = rt->ids[k];
        argvlen[argc++] = 24;
        argv[argc] = values + k * 48;
        argvlen[argc++] = snprintf(values + k * 48, 48, "%.4f %" PRId64,
                                   rt->rating[k], (int64_t) ngx_time());
    }

    /* hiredis has copied the command when this returns */
    (void) ngx_feira_redis_commandargv(ngx_feira_redis_main(), NULL, NULL,
                                       (int) argc, argv, argvlen);

done:

    ngx_free(argv);
    ngx_free(argvlen);
    ngx_free(values);
}


static void
ngx_feira_svc_rank(ngx_feira_svc_cand_t *ctx)
{
    ngx_uint_t               i, k, limit;
    ngx_feira_svc_match_t   *items;
    ngx_feira_svc_ranked_t  *ranked;
    ngx_http_request_t      *r;

    r = ctx->request;

    ranked = ngx_palloc(r->pool,
                        ctx->neligible * sizeof(ngx_feira_svc_ranked_t));
    if (ranked == NULL) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    for (k = 0; k < ctx->neligible; k++) {
        i = ctx->eligible[k];

        ngx_feira_match_score(&ctx->q->rq, &ctx->profiles[i],
                              ctx->distance[i], ctx->rating[i],
                              ctx->received[i], ctx->accepted[i],
                              &ranked[k].parts);

        ranked[k].score = ranked[k].parts.score;
        ranked[k].distance = ctx->distance[i];
        ranked[k].index = i;
    }

    ngx_qsort(ranked, k, sizeof(ngx_feira_svc_ranked_t),
              ngx_feira_svc_ranked_cmp);

    limit = ngx_min(k, ctx->q->limit);

    items = ngx_palloc(r->pool, (limit + 1) * sizeof(ngx_feira_svc_match_t));
    if (items == NULL) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    for (k = 0; k < limit; k++) {
        i = ranked[k].index;

        ngx_memcpy(items[k].provider_id, ctx->ids[i], 25);
        items[k].profile = ctx->profiles[i];
        items[k].distance_km = ranked[k].distance;
        items[k].rating = ctx->rating[i];
        items[k].score = ranked[k].parts;
    }

    ngx_feira_svc_match_end(ctx, NGX_OK, items, limit);
}


/* best score first; then nearer; then the provider id, for a stable order */

static int ngx_libc_cdecl
ngx_feira_svc_ranked_cmp(const void *one, const void *two)
{
    const ngx_feira_svc_ranked_t  *a = one;
    const ngx_feira_svc_ranked_t  *b = two;

    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }

    if (a->distance != b->distance) {
        return a->distance < b->distance ? -1 : 1;
    }

    return a->index < b->index ? -1 : (a->index > b->index);
}


static void
ngx_feira_svc_match_end(ngx_feira_svc_cand_t *ctx, ngx_int_t rc,
    ngx_feira_svc_match_t *items, ngx_uint_t n)
{
    ngx_connection_t  *c;

    c = ctx->request->connection;

    ctx->q->handler(ctx->request, ctx->q->data, rc, items, n);

    ngx_http_run_posted_requests(c);
}
