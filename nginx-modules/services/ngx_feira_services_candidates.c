/*
 * Matching over Redis: the online providers of a category near a point
 * (GEOSEARCH, members only), then, pipelined, their position, last sign of
 * life and rating (feira:pos), offering profile (feira:offer:<category>)
 * and offer counters (feira:offers); eligibility and the score are
 * computed here with ngx_feira_services_matching.c.  No MongoDB on this
 * path; three HMGETs because every reply element is an allocation.
 */

#include "ngx_http_feira_services_module.h"


#define NGX_FEIRA_SVC_GEO_LAT_MAX  85.05112878   /* what Redis GEO holds */
#define NGX_FEIRA_SVC_PIPELINE     3


typedef struct ngx_feira_svc_cand_s  ngx_feira_svc_cand_t;

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
    time_t                       *seen;
    ngx_feira_profile_t          *profiles;
    u_char                       *valid;
    double                       *rating;
    int64_t                      *received;
    int64_t                      *accepted;

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
    NGX_FEIRA_SVC_CMD_POS = 0,
    NGX_FEIRA_SVC_CMD_OFFER,
    NGX_FEIRA_SVC_CMD_OFFERS
};


static void ngx_feira_svc_geo_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static ngx_int_t ngx_feira_svc_details(ngx_feira_svc_cand_t *ctx);
static void ngx_feira_svc_details_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_svc_rank(ngx_feira_svc_cand_t *ctx);
static void ngx_feira_svc_match_end(ngx_feira_svc_cand_t *ctx,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n);
static int ngx_libc_cdecl ngx_feira_svc_ranked_cmp(const void *one,
    const void *two);


/*
 * Answers through q->handler, always, once; NGX_OK once started, or
 * NGX_DECLINED if Redis is down (the handler has not run).
 */

ngx_int_t
ngx_feira_svc_match(ngx_http_request_t *r, ngx_feira_svc_match_query_t *q)
{
    char                  lat[32], lng[32], radius[32], count[32];
    const char           *argv[11];
    size_t                argvlen[11];
    ngx_uint_t            i;
    ngx_feira_redis_t    *rc;
    ngx_feira_svc_cand_t *ctx;
    u_char                key[sizeof(NGX_FEIRA_SVC_KEY_GEO)
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

    *ngx_snprintf(key, sizeof(key) - 1, "%s%V", NGX_FEIRA_SVC_KEY_GEO,
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

    for (i = 0; i < 11; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_feira_redis_commandargv(rc, ngx_feira_svc_geo_reply, ctx, 11,
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
    redisReply          *item;
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
    ctx->seen = ngx_pcalloc(r->pool, n * sizeof(time_t));
    ctx->profiles = ngx_palloc(r->pool, n * sizeof(ngx_feira_profile_t));
    ctx->valid = ngx_pcalloc(r->pool, n);
    ctx->rating = ngx_pcalloc(r->pool, n * sizeof(double));
    ctx->received = ngx_pcalloc(r->pool, n * sizeof(int64_t));
    ctx->accepted = ngx_pcalloc(r->pool, n * sizeof(int64_t));

    if (ctx->ids == NULL || ctx->lat == NULL || ctx->lng == NULL
        || ctx->seen == NULL || ctx->profiles == NULL || ctx->valid == NULL
        || ctx->rating == NULL || ctx->received == NULL
        || ctx->accepted == NULL)
    {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    /* the members are provider ids */

    for (i = 0; i < n; i++) {
        item = rr->element[i];

        if (item->type != REDIS_REPLY_STRING || item->len != 24) {
            continue;
        }

        ngx_memcpy(ctx->ids[ctx->n], item->str, 24);
        ctx->ids[ctx->n][24] = '\0';
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

    static const char    *keys[NGX_FEIRA_SVC_PIPELINE] = {
        NGX_FEIRA_SVC_KEY_POS, NULL, NGX_FEIRA_SVC_KEY_OFFERS
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

    argv[0] = "HMGET";
    argvlen[0] = 5;

    /* hiredis copies the arguments: one argv serves every command */

    for (w = 0; w < NGX_FEIRA_SVC_PIPELINE; w++) {
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
    int64_t                seen;
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

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }

        switch (cmd->which) {

        case NGX_FEIRA_SVC_CMD_POS:
            if (ngx_feira_pos_parse(e->str, e->len, &ctx->lng[i],
                                    &ctx->lat[i], &seen, &ctx->rating[i])
                == 0)
            {
                ctx->seen[i] = (time_t) seen;
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

    ngx_feira_svc_rank(ctx);
}


static void
ngx_feira_svc_rank(ngx_feira_svc_cand_t *ctx)
{
    time_t                   cutoff;
    double                   d;
    ngx_uint_t               i, k, limit;
    ngx_feira_svc_match_t   *items;
    ngx_feira_svc_ranked_t  *ranked;
    ngx_http_request_t      *r;

    r = ctx->request;

    ranked = ngx_palloc(r->pool, ctx->n * sizeof(ngx_feira_svc_ranked_t));
    if (ranked == NULL) {
        ngx_feira_svc_match_end(ctx, NGX_ERROR, NULL, 0);
        return;
    }

    /* silent longer than the presence ttl: out, trimmed or not yet */
    cutoff = ngx_time() - ctx->smcf->presence_ttl;

    k = 0;

    for (i = 0; i < ctx->n; i++) {
        if (ctx->seen[i] < cutoff || !ctx->valid[i]) {
            continue;
        }

        d = ngx_feira_haversine_km(ctx->q->rq.lat, ctx->q->rq.lng,
                                   ctx->lat[i], ctx->lng[i]);

        if (!ngx_feira_match_eligible(&ctx->q->rq, &ctx->profiles[i], d)) {
            continue;
        }

        ngx_feira_match_score(&ctx->q->rq, &ctx->profiles[i], d,
                              ctx->rating[i], ctx->received[i],
                              ctx->accepted[i], &ranked[k].parts);

        ranked[k].score = ranked[k].parts.score;
        ranked[k].distance = d;
        ranked[k].index = i;
        k++;
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
