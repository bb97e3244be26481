/*
 * Live location, whichever way it comes (WebSocket, TCP ingest, PUT
 * /v1/providers/me/location): rate-limited per provider across instances
 * (a Redis key with a TTL), stored in the presence index of each category
 * the provider offers, and relayed on the request:<id> channel of the
 * provider's active request (accepted or in_progress).  What the store
 * says about a provider is cached per worker for feira_realtime_lookup_cache.
 */

#include "ngx_http_feira_realtime_module.h"


#define NGX_FEIRA_RT_LIMIT_PREFIX   "feira:rl:loc:"
#define NGX_FEIRA_RT_CACHE_MAX      4096
#define NGX_FEIRA_RT_CATEGORIES     16


/* what the store says about a provider */
typedef struct {
    ngx_rbtree_node_t            node;        /* key: hash of the id */
    ngx_queue_t                  queue;       /* oldest last */
    u_char                       provider[24];
    ngx_msec_t                   expires;
    ngx_uint_t                   has_request;
    u_char                       request[24];
    ngx_uint_t                   ncategories;
    ngx_str_t                    categories[NGX_FEIRA_RT_CATEGORIES];
    u_char                       names[NGX_FEIRA_RT_CATEGORIES]
                                      [NGX_FEIRA_PRESENCE_CATEGORY_MAX];
} ngx_feira_rt_provider_t;


struct ngx_feira_rt_location_s {
    ngx_feira_rt_location_pt     handler;     /* NULL once cancelled */
    void                        *data;
    ngx_str_t                    provider;
    u_char                       id[24];
    double                       lat;
    double                       lng;
    int64_t                      at;
    ngx_uint_t                   pending;
    ngx_int_t                    rc;
};


/* the store lookup, in a pool thread */
typedef struct {
    ngx_feira_rt_location_t     *loc;
    ngx_feira_rt_provider_t      info;
    ngx_uint_t                   failed;
} ngx_feira_rt_lookup_t;


static void ngx_feira_rt_location_limited(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_feira_rt_location_job(void *data);
static void ngx_feira_rt_location_found(ngx_http_request_t *r, void *data);
static void ngx_feira_rt_location_store(ngx_feira_rt_location_t *loc,
    ngx_feira_rt_provider_t *info);
static void ngx_feira_rt_location_stored(void *data, ngx_int_t rc);
static void ngx_feira_rt_location_relayed(void *data, ngx_int_t rc,
    int64_t seq);
static void ngx_feira_rt_location_finish(ngx_feira_rt_location_t *loc,
    ngx_int_t rc);
static ngx_feira_rt_provider_t *ngx_feira_rt_cache_find(u_char *id);
static ngx_feira_rt_provider_t *ngx_feira_rt_cache_get(u_char *id);
static void ngx_feira_rt_cache_put(ngx_feira_rt_provider_t *info);
static void ngx_feira_rt_cache_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_feira_rt_location_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_rt_location_answer(void *data, ngx_int_t rc);


static const ngx_feira_field_t  ngx_feira_rt_location_fields[] = {
    { "lat", NGX_FEIRA_NUMBER, 1, 0, 0, -90, 90, NULL },
    { "lng", NGX_FEIRA_NUMBER, 1, 0, 0, -180, 180, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_http_feira_realtime_main_conf_t  *ngx_feira_rt_loc_conf;
static ngx_rbtree_t                          ngx_feira_rt_cache;
static ngx_rbtree_node_t                     ngx_feira_rt_cache_sentinel;
static ngx_queue_t                           ngx_feira_rt_cache_lru;
static ngx_uint_t                            ngx_feira_rt_cache_n;


ngx_int_t
ngx_feira_rt_location_init(ngx_cycle_t *cycle,
    ngx_http_feira_realtime_main_conf_t *rmcf)
{
    ngx_feira_rt_loc_conf = rmcf;

    ngx_rbtree_init(&ngx_feira_rt_cache, &ngx_feira_rt_cache_sentinel,
                    ngx_feira_rt_cache_insert);
    ngx_queue_init(&ngx_feira_rt_cache_lru);
    ngx_feira_rt_cache_n = 0;

    return NGX_OK;
}


void
ngx_feira_rt_location_exit(void)
{
    ngx_queue_t              *q;
    ngx_feira_rt_provider_t  *info;

    while (!ngx_queue_empty(&ngx_feira_rt_cache_lru)) {
        q = ngx_queue_head(&ngx_feira_rt_cache_lru);
        info = ngx_queue_data(q, ngx_feira_rt_provider_t, queue);
        ngx_queue_remove(q);
        ngx_rbtree_delete(&ngx_feira_rt_cache, &info->node);
        ngx_free(info);
    }

    ngx_feira_rt_cache_n = 0;
}


ngx_int_t
ngx_feira_rt_location_valid(double lat, double lng)
{
    /* NaN fails every comparison */
    return lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180;
}


ngx_int_t
ngx_feira_rt_location_submit(ngx_feira_rt_location_t **out,
    ngx_str_t *provider, double lat, double lng, int64_t at_ms,
    ngx_feira_rt_location_pt handler, void *data)
{
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_feira_redis_t        *main;
    ngx_feira_rt_location_t  *loc;
    u_char                    key[sizeof(NGX_FEIRA_RT_LIMIT_PREFIX) + 24];

    if (ngx_feira_rt_loc_conf == NULL || provider->len != 24
        || !ngx_feira_rt_location_valid(lat, lng))
    {
        return NGX_ERROR;
    }

    main = ngx_feira_redis_main();

    if (!ngx_feira_redis_is_up(main)) {
        return NGX_DECLINED;
    }

    loc = ngx_calloc(sizeof(ngx_feira_rt_location_t), ngx_cycle->log);
    if (loc == NULL) {
        return NGX_ERROR;
    }

    loc->handler = handler;
    loc->data = data;
    ngx_memcpy(loc->id, provider->data, 24);
    loc->provider.data = loc->id;
    loc->provider.len = 24;
    loc->lat = lat;
    loc->lng = lng;
    loc->at = at_ms ? at_ms : ngx_feira_now_ms();
    loc->rc = NGX_OK;

    p = ngx_sprintf(key, NGX_FEIRA_RT_LIMIT_PREFIX "%V", provider);
    *p = '\0';

    /* the limit holds across workers and instances: a key with a TTL */
    rc = ngx_feira_redis_command(main, ngx_feira_rt_location_limited, loc,
                                 "SET %s 1 PX %lu NX", key,
                                 (unsigned long) ngx_max(ngx_feira_rt_loc_conf
                                                         ->location_interval,
                                                         1));
    if (rc != NGX_OK) {
        ngx_free(loc);
        return NGX_DECLINED;
    }

    *out = loc;

    return NGX_OK;
}


void
ngx_feira_rt_location_cancel(ngx_feira_rt_location_t *loc)
{
    loc->handler = NULL;
}


static void
ngx_feira_rt_location_limited(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply               *rr = reply;
    ngx_feira_rt_location_t  *loc = privdata;

    ngx_feira_rt_lookup_t    *lk;
    ngx_feira_rt_provider_t  *info;

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        ngx_feira_rt_location_finish(loc, NGX_DECLINED);
        return;
    }

    if (rr->type == REDIS_REPLY_NIL) {
        ngx_feira_rt_location_finish(loc, NGX_BUSY);
        return;
    }

    info = ngx_feira_rt_cache_get(loc->id);

    if (info) {
        ngx_feira_rt_location_store(loc, info);
        return;
    }

    lk = ngx_calloc(sizeof(ngx_feira_rt_lookup_t), ngx_cycle->log);
    if (lk == NULL) {
        ngx_feira_rt_location_finish(loc, NGX_ERROR);
        return;
    }

    lk->loc = loc;
    ngx_memcpy(lk->info.provider, loc->id, 24);

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_rt_location_job,
                                    ngx_feira_rt_location_found, lk)
        != NGX_OK)
    {
        ngx_free(lk);
        ngx_feira_rt_location_finish(loc, NGX_DECLINED);
    }
}


/* a job: runs in a pool thread */

static void
ngx_feira_rt_location_job(void *data)
{
    ngx_feira_rt_lookup_t  *lk = data;

    size_t                  len;
    bson_t                 *filter, *opts;
    ngx_uint_t              i;
    bson_oid_t              oid;
    bson_iter_t             it;
    const char             *s;
    const bson_t           *doc;
    bson_error_t            error;
    mongoc_cursor_t        *cursor;
    mongoc_client_t        *client;
    mongoc_collection_t    *coll;
    char                    hex[25];

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        lk->failed = 1;
        return;
    }

    ngx_memcpy(hex, lk->info.provider, 24);
    hex[24] = '\0';
    bson_oid_init_from_string(&oid, hex);

    /* the active request: the location is relayed to its client */

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "requests");
    filter = BCON_NEW("provider_id", "{",
                          "$in", "[", BCON_OID(&oid), BCON_UTF8(hex), "]",
                      "}",
                      "status", "{",
                          "$in", "[", BCON_UTF8("accepted"),
                                      BCON_UTF8("in_progress"), "]",
                      "}");
    opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64(1));

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    if (mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, "_id")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_to_string(bson_iter_oid(&it), hex);
            ngx_memcpy(lk->info.request, hex, 24);
            lk->info.has_request = 1;
        }

    } else if (mongoc_cursor_error(cursor, &error)) {
        lk->failed = 1;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);

    /* the categories it offers: its GEO sets */

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "offerings");
    filter = BCON_NEW("provider_id", "{",
                          "$in", "[", BCON_OID(&oid), BCON_UTF8(hex), "]",
                      "}");
    opts = BCON_NEW("projection", "{", "category", BCON_INT32(1), "}",
                    "limit", BCON_INT64(64));

    ngx_memcpy(hex, lk->info.provider, 24);

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    while (mongoc_cursor_next(cursor, &doc)
           && lk->info.ncategories < NGX_FEIRA_RT_CATEGORIES)
    {
        if (!bson_iter_init_find(&it, doc, "category")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        s = bson_iter_utf8(&it, NULL);
        len = ngx_strlen(s);

        if (len == 0 || len > NGX_FEIRA_PRESENCE_CATEGORY_MAX) {
            continue;
        }

        for (i = 0; i < lk->info.ncategories; i++) {
            if (lk->info.categories[i].len == len
                && ngx_strncmp(lk->info.names[i], s, len) == 0)
            {
                break;
            }
        }

        if (i < lk->info.ncategories) {
            continue;
        }

        ngx_memcpy(lk->info.names[i], s, len);
        lk->info.categories[i].len = len;
        lk->info.ncategories++;
    }

    if (mongoc_cursor_error(cursor, &error)) {
        lk->failed = 1;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_rt_location_found(ngx_http_request_t *r, void *data)
{
    ngx_feira_rt_lookup_t  *lk = data;

    ngx_uint_t                i;
    ngx_feira_rt_location_t  *loc;

    loc = lk->loc;

    if (lk->failed) {
        ngx_free(lk);
        ngx_feira_rt_location_finish(loc, NGX_DECLINED);
        return;
    }

    for (i = 0; i < lk->info.ncategories; i++) {
        lk->info.categories[i].data = lk->info.names[i];
    }

    ngx_feira_rt_location_store(loc, &lk->info);
    ngx_feira_rt_cache_put(&lk->info);

    ngx_free(lk);
}


static void
ngx_feira_rt_location_store(ngx_feira_rt_location_t *loc,
    ngx_feira_rt_provider_t *info)
{
    char       *text;
    json_t     *event;
    ngx_int_t   rc;
    ngx_tm_t    tm;
    ngx_str_t   channel, ev;
    u_char      name[NGX_FEIRA_RT_CHANNEL_MAX];
    u_char      at[32];

    rc = ngx_feira_presence_update(&loc->provider, info->categories,
                                   info->ncategories, loc->lat, loc->lng,
                                   ngx_feira_rt_location_stored, loc);
    if (rc != NGX_OK) {
        ngx_feira_rt_location_finish(loc, NGX_DECLINED);
        return;
    }

    loc->pending++;

    if (!info->has_request) {
        return;
    }

    ngx_gmtime(loc->at / 1000, &tm);
    *ngx_sprintf(at, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                 tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                 tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec) = '\0';

    channel.data = name;
    channel.len = ngx_sprintf(name, "request:%*s", (size_t) 24,
                              info->request)
                  - name;

    event = json_pack("{s:s, s:s, s:{s:s%, s:s%, s:f, s:f, s:I}}",
                      "type", "provider.location",
                      "occurred_at", (char *) at,
                      "data",
                      "request_id", (char *) info->request, (size_t) 24,
                      "provider_id", (char *) loc->id, (size_t) 24,
                      "lat", loc->lat,
                      "lng", loc->lng,
                      "at", (json_int_t) loc->at);

    text = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);

    if (text == NULL) {
        loc->rc = NGX_ERROR;
        return;
    }

    ev.data = (u_char *) text;
    ev.len = ngx_strlen(text);

    rc = ngx_feira_rt_publish(&channel, &ev, ngx_feira_rt_location_relayed,
                              loc);
    free(text);

    if (rc != NGX_OK) {
        loc->rc = NGX_DECLINED;
        return;
    }

    loc->pending++;
}


static void
ngx_feira_rt_location_stored(void *data, ngx_int_t rc)
{
    ngx_feira_rt_location_t  *loc = data;

    if (rc != NGX_OK) {
        loc->rc = NGX_DECLINED;
    }

    if (--loc->pending == 0) {
        ngx_feira_rt_location_finish(loc, loc->rc);
    }
}


static void
ngx_feira_rt_location_relayed(void *data, ngx_int_t rc, int64_t seq)
{
    ngx_feira_rt_location_stored(data, rc);
}


static void
ngx_feira_rt_location_finish(ngx_feira_rt_location_t *loc, ngx_int_t rc)
{
    if (loc->handler) {
        loc->handler(loc->data, rc);
    }

    ngx_free(loc);
}


static ngx_feira_rt_provider_t *
ngx_feira_rt_cache_find(u_char *id)
{
    uint32_t                  hash;
    ngx_int_t                 rc;
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_feira_rt_provider_t  *info;

    hash = ngx_crc32_short(id, 24);
    node = ngx_feira_rt_cache.root;
    sentinel = ngx_feira_rt_cache.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        info = (ngx_feira_rt_provider_t *) node;
        rc = ngx_memcmp(id, info->provider, 24);

        if (rc == 0) {
            return info;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_feira_rt_provider_t *
ngx_feira_rt_cache_get(u_char *id)
{
    ngx_feira_rt_provider_t  *info;

    info = ngx_feira_rt_cache_find(id);

    if (info == NULL
        || (ngx_msec_int_t) (info->expires - ngx_current_msec) <= 0)
    {
        return NULL;
    }

    return info;
}


static void
ngx_feira_rt_cache_put(ngx_feira_rt_provider_t *found)
{
    ngx_uint_t                i;
    ngx_queue_t              *q;
    ngx_feira_rt_provider_t  *info;

    if (ngx_feira_rt_loc_conf->lookup_cache == 0) {
        return;
    }

    /* the provider's stale entry, or the oldest when the cache is full */

    info = ngx_feira_rt_cache_find(found->provider);

    if (info == NULL && ngx_feira_rt_cache_n >= NGX_FEIRA_RT_CACHE_MAX) {
        q = ngx_queue_last(&ngx_feira_rt_cache_lru);
        info = ngx_queue_data(q, ngx_feira_rt_provider_t, queue);
    }

    if (info) {
        ngx_queue_remove(&info->queue);
        ngx_rbtree_delete(&ngx_feira_rt_cache, &info->node);
        ngx_free(info);
        ngx_feira_rt_cache_n--;
    }

    info = ngx_alloc(sizeof(ngx_feira_rt_provider_t), ngx_cycle->log);
    if (info == NULL) {
        return;
    }

    ngx_memcpy(info, found, sizeof(ngx_feira_rt_provider_t));

    for (i = 0; i < info->ncategories; i++) {
        info->categories[i].data = info->names[i];
    }

    info->node.key = ngx_crc32_short(info->provider, 24);
    info->expires = ngx_current_msec + ngx_feira_rt_loc_conf->lookup_cache;

    ngx_rbtree_insert(&ngx_feira_rt_cache, &info->node);
    ngx_queue_insert_head(&ngx_feira_rt_cache_lru, &info->queue);
    ngx_feira_rt_cache_n++;
}


static void
ngx_feira_rt_cache_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t        **p;
    ngx_feira_rt_provider_t   *a, *b;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            a = (ngx_feira_rt_provider_t *) node;
            b = (ngx_feira_rt_provider_t *) temp;

            p = (ngx_memcmp(a->provider, b->provider, 24) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* PUT /v1/providers/me/location {lat, lng}: 204, 429 or 503 */

ngx_int_t
ngx_feira_rt_location_handler(ngx_http_request_t *r)
{
    ngx_feira_identity_t  *id;

    if (r->method != NGX_HTTP_PUT) {
        return ngx_feira_send_not_allowed(r, "PUT");
    }

    id = ngx_feira_identity(r);

    if (id == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: realtime: the location needs "
                      "\"feira_auth_require provider\"");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (id->role.len != 8 || ngx_strncmp(id->role.data, "provider", 8) != 0) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN,
                                      "only providers have a location",
                                      NULL);
    }

    return ngx_feira_read_json_body(r, ngx_feira_rt_location_body);
}


static void
ngx_feira_rt_location_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t                 rc;
    ngx_feira_errors_t        errs;
    ngx_feira_identity_t     *id;
    ngx_feira_rt_location_t  *loc;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_feira_rt_location_fields, &errs)
        != 0)
    {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                   "the location is invalid", &errs));
        return;
    }

    id = ngx_feira_identity(r);

    rc = ngx_feira_rt_location_submit(&loc, &id->id,
                             json_number_value(json_object_get(body, "lat")),
                             json_number_value(json_object_get(body, "lng")),
                             0, ngx_feira_rt_location_answer, r);
    if (rc != NGX_OK) {
        ngx_feira_rt_location_answer(r, rc);
    }

    /* the body handler's reference to the request is finalized there */
}


static void
ngx_feira_rt_location_answer(void *data, ngx_int_t rc)
{
    ngx_http_request_t  *r = data;

    if (rc == NGX_BUSY) {
        if (ngx_feira_add_header(r, "Retry-After", (u_char *) "1", 1)
            == NULL)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                   "one location per "
                                   "feira_realtime_location_interval",
                                   NULL));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the location could not be stored, "
                                   "try again", NULL));
        return;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    ngx_http_finalize_request(r, ngx_http_send_header(r));
}
