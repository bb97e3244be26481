/*
 * Provider presence in Redis: online or not, the live location in one GEO
 * set per category offered, the last sign of life, and the mirror of the
 * offerings and ratings that matching reads.  Each change is one Lua
 * script, so a reader never sees half of it.  Keys: docs/events.md.
 *
 * feira:pos repeats position and last sign of life of the online
 * providers as plain strings: one HMGET of it costs Redis a tenth of what
 * GEOSEARCH WITHCOORD plus ZMSCORE cost (doubles formatted per member).
 */

#include "ngx_http_feira_services_module.h"




static void ngx_feira_svc_status_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_svc_location_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_feira_svc_online_job(void *data);
static void ngx_feira_svc_online_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_feira_svc_script(ngx_http_request_t *r,
    const char *script, redisCallbackFn *fn, void *privdata,
    ngx_uint_t n, const char **args);
static void ngx_feira_svc_view_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_svc_mirror_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static json_t *ngx_feira_svc_view(redisReply *rr);


/* the provider as the API shows it: shared by every script below */
#define NGX_FEIRA_SVC_LUA_VIEW                                               \
    "local function view(pid, now, ttl)\n"                                   \
    "  local k = 'feira:provider:' .. pid\n"                                 \
    "  local h = redis.call('HMGET', k, 'online', 'lat', 'lng', 'loc_at',"   \
    "                       'cats')\n"                                       \
    "  local seen = redis.call('ZSCORE', 'feira:seen', pid)\n"               \
    "  local cats = h[5] or ''\n"                                            \
    "  local live = seen and tonumber(seen) >= now - ttl\n"                  \
    "  local m = h[1] == '1' and live and h[2] and cats ~= ''\n"             \
    "  return {h[1] == '1' and '1' or '0', m and '1' or '0', h[2] or '',\n"  \
    "          h[3] or '', h[4] or '', cats, seen or ''}\n"                  \
    "end\n"                                                                  \
    "local function geo(pid, cats, lng, lat)\n"                              \
    "  if math.abs(tonumber(lat)) > 85.05112878 then return end\n"           \
    "  for c in string.gmatch(cats, '%S+') do\n"                             \
    "    redis.call('GEOADD', 'feira:geo:' .. c, lng, lat, pid)\n"           \
    "  end\n"                                                                \
    "end\n"                                                                  \
    "local function ungeo(pid, cats)\n"                                      \
    "  for c in string.gmatch(cats, '%S+') do\n"                             \
    "    redis.call('ZREM', 'feira:geo:' .. c, pid)\n"                       \
    "  end\n"                                                                \
    "end\n"


/* ARGV: provider, now, ttl */
static const char  ngx_feira_svc_lua_status[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "return view(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))\n";


/* ARGV: provider, now, ttl */
static const char  ngx_feira_svc_lua_offline[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "local pid = ARGV[1]\n"
    "local k = 'feira:provider:' .. pid\n"
    "redis.call('HSET', k, 'online', '0')\n"
    "redis.call('ZREM', 'feira:seen', pid)\n"
    "redis.call('HDEL', 'feira:pos', pid)\n"
    "ungeo(pid, redis.call('HGET', k, 'cats') or '')\n"
    "return view(pid, tonumber(ARGV[2]), tonumber(ARGV[3]))\n";


/* ARGV: provider, now, ttl, rating, then category and profile pairs */
static const char  ngx_feira_svc_lua_online[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "local pid, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local k = 'feira:provider:' .. pid\n"
    "local old = redis.call('HGET', k, 'cats') or ''\n"
    "local keep, cats = {}, {}\n"
    "for i = 5, #ARGV - 1, 2 do\n"
    "  keep[ARGV[i]] = true\n"
    "  cats[#cats + 1] = ARGV[i]\n"
    "  redis.call('HSET', 'feira:offer:' .. ARGV[i], pid, ARGV[i + 1])\n"
    "end\n"
    "for c in string.gmatch(old, '%S+') do\n"
    "  if not keep[c] then\n"
    "    redis.call('HDEL', 'feira:offer:' .. c, pid)\n"
    "    redis.call('ZREM', 'feira:geo:' .. c, pid)\n"
    "  end\n"
    "end\n"
    "local list = table.concat(cats, ' ')\n"
    "redis.call('HSET', k, 'online', '1', 'cats', list, 'rating', ARGV[4])\n"
    "local h = redis.call('HMGET', k, 'lat', 'lng', 'loc_at')\n"
    "if h[1] and tonumber(h[3] or 0) >= now - ttl then\n"
    "  redis.call('ZADD', 'feira:seen', now, pid)\n"
    "  redis.call('HSET', 'feira:pos', pid, h[2] .. ' ' .. h[1] .. ' '"
    "             .. ARGV[2] .. ' ' .. ARGV[4])\n"
    "  geo(pid, list, h[2], h[1])\n"
    "end\n"
    "return view(pid, now, ttl)\n";


/* ARGV: provider, lng, lat, now, ttl */
static const char  ngx_feira_svc_lua_location[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "local pid = ARGV[1]\n"
    "local k = 'feira:provider:' .. pid\n"
    "redis.call('HSET', k, 'lat', ARGV[3], 'lng', ARGV[2],"
    "           'loc_at', ARGV[4])\n"
    "local on = redis.call('HMGET', k, 'online', 'rating')\n"
    "if on[1] == '1' then\n"
    "  redis.call('ZADD', 'feira:seen', ARGV[4], pid)\n"
    "  redis.call('HSET', 'feira:pos', pid, ARGV[2] .. ' ' .. ARGV[3]"
    "             .. ' ' .. ARGV[4] .. ' ' .. (on[2] or '0'))\n"
    "  geo(pid, redis.call('HGET', k, 'cats') or '', ARGV[2], ARGV[3])\n"
    "end\n"
    "return view(pid, tonumber(ARGV[4]), tonumber(ARGV[5]))\n";


/* ARGV: provider, category, profile ("" when deleted), now, ttl */
static const char  ngx_feira_svc_lua_offer[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "local pid, cat, prof = ARGV[1], ARGV[2], ARGV[3]\n"
    "local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local k = 'feira:provider:' .. pid\n"
    "local cats, found = {}, false\n"
    "for c in string.gmatch(redis.call('HGET', k, 'cats') or '', '%S+') do\n"
    "  if c == cat then found = true end\n"
    "  if c ~= cat or prof ~= '' then cats[#cats + 1] = c end\n"
    "end\n"
    "if prof == '' then\n"
    "  redis.call('HDEL', 'feira:offer:' .. cat, pid)\n"
    "  redis.call('ZREM', 'feira:geo:' .. cat, pid)\n"
    "else\n"
    "  if not found then cats[#cats + 1] = cat end\n"
    "  redis.call('HSET', 'feira:offer:' .. cat, pid, prof)\n"
    "  local h = redis.call('HMGET', k, 'online', 'lat', 'lng')\n"
    "  local seen = redis.call('ZSCORE', 'feira:seen', pid)\n"
    "  if h[1] == '1' and h[2] and seen and tonumber(seen) >= now - ttl\n"
    "  then\n"
    "    geo(pid, cat, h[3], h[2])\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', k, 'cats', table.concat(cats, ' '))\n"
    "return view(pid, now, ttl)\n";


/* ARGV: the oldest last sign of life kept; silent providers drop out */
static const char  ngx_feira_svc_lua_trim[] =
    NGX_FEIRA_SVC_LUA_VIEW
    "local stale = redis.call('ZRANGEBYSCORE', 'feira:seen', '-inf',"
    "                         '(' .. ARGV[1], 'LIMIT', 0, 1000)\n"
    "for _, pid in ipairs(stale) do\n"
    "  ungeo(pid, redis.call('HGET', 'feira:provider:' .. pid, 'cats')"
    "             or '')\n"
    "  redis.call('ZREM', 'feira:seen', pid)\n"
    "  redis.call('HDEL', 'feira:pos', pid)\n"
    "end\n"
    "return #stale\n";


/*
 * ARGV: the month (YYYYMM), "r" (offered) or "a" (accepted), provider ids.
 * feira:offers keeps this month and the one before it, latest first.
 */
static const char  ngx_feira_svc_lua_count[] =
    "local m, kind = ARGV[1], ARGV[2]\n"
    "for i = 3, #ARGV do\n"
    "  local f = {}\n"
    "  local v = redis.call('HGET', 'feira:offers', ARGV[i])\n"
    "  if v then for x in string.gmatch(v, '%S+') do f[#f + 1] = x end end\n"
    "  local m1, r1, a1 = f[1], tonumber(f[2] or 0), tonumber(f[3] or 0)\n"
    "  local m0, r0, a0 = f[4], tonumber(f[5] or 0), tonumber(f[6] or 0)\n"
    "  if m1 ~= m then\n"
    "    m0, r0, a0 = m1, r1, a1\n"
    "    m1, r1, a1 = m, 0, 0\n"
    "  end\n"
    "  if kind == 'r' then r1 = r1 + 1 else a1 = a1 + 1 end\n"
    "  local s = m1 .. ' ' .. r1 .. ' ' .. a1\n"
    "  if m0 then s = s .. ' ' .. m0 .. ' ' .. r0 .. ' ' .. a0 end\n"
    "  redis.call('HSET', 'feira:offers', ARGV[i], s)\n"
    "end\n"
    "return #ARGV - 2\n";


static const ngx_feira_field_t  ngx_feira_svc_status_fields[] = {
    { "online", NGX_FEIRA_BOOLEAN, 1, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


ngx_int_t
ngx_feira_svc_presence_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_str_t             name, sub;
    const char           *args[3];
    ngx_feira_svc_job_t  *job;
    char                  now[NGX_INT64_LEN + 1], ttl[NGX_INT64_LEN + 1];

    if (ngx_feira_svc_path(r, &name, &sub) != NGX_OK || sub.len) {
        return ngx_feira_svc_not_found(r);
    }

    job = ngx_feira_svc_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_strcmp(job->role, "provider") != 0) {
        return ngx_feira_svc_forbidden(r, "only providers have a presence");
    }

    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

    if (name.len == 6 && ngx_strncmp(name.data, "status", 6) == 0) {

        if (r->method == NGX_HTTP_PUT) {
            return ngx_feira_read_json_body(r, ngx_feira_svc_status_body);
        }

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_feira_send_not_allowed(r, "GET, HEAD, PUT");
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        *ngx_sprintf((u_char *) now, "%L", job->now) = '\0';
        *ngx_sprintf((u_char *) ttl, "%T", job->smcf->presence_ttl) = '\0';

        args[0] = job->user;
        args[1] = now;
        args[2] = ttl;

        r->main->count++;

        rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_status,
                                  ngx_feira_svc_view_reply, r, 3, args);
        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
        }

        return NGX_DONE;
    }

    if (name.len == 8 && ngx_strncmp(name.data, "location", 8) == 0) {

        if (r->method != NGX_HTTP_PUT) {
            return ngx_feira_send_not_allowed(r, "PUT");
        }

        return ngx_feira_read_json_body(r, ngx_feira_svc_location_body);
    }

    return ngx_feira_svc_not_found(r);
}


static void
ngx_feira_svc_status_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t             rc;
    const char           *args[3];
    ngx_feira_svc_job_t  *job;
    char                  now[NGX_INT64_LEN + 1], ttl[NGX_INT64_LEN + 1];

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_validate_object(body, ngx_feira_svc_status_fields,
                                  &job->errs)
        != 0)
    {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    if (json_is_true(json_object_get(body, "online"))) {
        /* the offerings and the rating come from MongoDB first */
        ngx_feira_svc_post(r, ngx_feira_svc_online_job,
                           ngx_feira_svc_online_done, job);
        return;
    }

    *ngx_sprintf((u_char *) now, "%L", job->now) = '\0';
    *ngx_sprintf((u_char *) ttl, "%T", job->smcf->presence_ttl) = '\0';

    args[0] = job->user;
    args[1] = now;
    args[2] = ttl;

    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_offline,
                              ngx_feira_svc_view_reply, r, 3, args);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_feira_svc_location_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t             rc;
    const char           *args[5];
    ngx_feira_svc_job_t  *job;
    char                  lat[32], lng[32];
    char                  now[NGX_INT64_LEN + 1], ttl[NGX_INT64_LEN + 1];

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_svc_latlng(body, NULL, &job->errs) != NGX_OK) {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    /* about a centimetre */
    (void) snprintf(lat, sizeof(lat), "%.7f",
                    json_number_value(json_object_get(body, "lat")));
    (void) snprintf(lng, sizeof(lng), "%.7f",
                    json_number_value(json_object_get(body, "lng")));

    *ngx_sprintf((u_char *) now, "%L", job->now) = '\0';
    *ngx_sprintf((u_char *) ttl, "%T", job->smcf->presence_ttl) = '\0';

    args[0] = job->user;
    args[1] = lng;
    args[2] = lat;
    args[3] = now;
    args[4] = ttl;

    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_location,
                              ngx_feira_svc_view_reply, r, 5, args);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


/* a job: the provider's offerings and rating, for the mirror */

static void
ngx_feira_svc_online_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter, *user;
    json_t               *mirror;
    bson_oid_t            oid;
    const char           *category;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_client_t      *client;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *users, *offerings;
    char                  profile[NGX_FEIRA_PROFILE_LEN];

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");
    offerings = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                             NGX_FEIRA_SVC_OFFERINGS_COLL);

    bson_oid_init_from_string(&oid, job->user);

    /* users.rating_avg is kept by feira_users; missing means none yet */
    filter = BCON_NEW("_id", BCON_OID(&oid));
    user = ngx_feira_svc_find_one(users, filter, &error);
    bson_destroy(filter);

    if (user == NULL && error.code) {
        ngx_feira_svc_unavailable(job, "find user", &error);
        goto done;
    }

    job->rating = user ? ngx_feira_svc_bson_double(user, "rating_avg") : 0.0;

    if (user) {
        bson_destroy(user);
    }

    mirror = json_object();
    if (mirror == NULL) {
        goto done;
    }

    filter = BCON_NEW("provider_id", BCON_OID(&oid));
    cursor = mongoc_collection_find_with_opts(offerings, filter, NULL, NULL);
    bson_destroy(filter);

    while (mongoc_cursor_next(cursor, &doc)) {
        category = ngx_feira_svc_bson_str(doc, "category");

        if (category == NULL
            || ngx_feira_svc_offering_profile(doc, profile, sizeof(profile))
               != NGX_OK)
        {
            continue;
        }

        json_object_set_new(mirror, category, json_string(profile));
    }

    if (mongoc_cursor_error(cursor, &error)) {
        ngx_feira_svc_unavailable(job, "find offerings", &error);
        json_decref(mirror);

    } else {
        job->mirror = mirror;
        job->status = NGX_HTTP_OK;
    }

    mongoc_cursor_destroy(cursor);

done:

    mongoc_collection_destroy(users);
    mongoc_collection_destroy(offerings);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_online_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_job_t  *job = data;

    json_t      *v;
    ngx_int_t    rc;
    ngx_uint_t   n;
    const char  *key, **args;
    char        *now, *ttl, *rating;

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    args = ngx_palloc(r->pool, (4 + 2 * json_object_size(job->mirror))
                               * sizeof(char *));
    now = ngx_pnalloc(r->pool, 3 * (NGX_INT64_LEN + 1) + 32);

    if (args == NULL || now == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ttl = now + NGX_INT64_LEN + 1;
    rating = ttl + NGX_INT64_LEN + 1;

    *ngx_sprintf((u_char *) now, "%L", job->now) = '\0';
    *ngx_sprintf((u_char *) ttl, "%T", job->smcf->presence_ttl) = '\0';
    (void) snprintf(rating, 32, "%.4f", job->rating);

    args[0] = job->user;
    args[1] = now;
    args[2] = ttl;
    args[3] = rating;
    n = 4;

    json_object_foreach(job->mirror, key, v) {
        args[n++] = key;
        args[n++] = json_string_value(v);
    }

    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_online,
                              ngx_feira_svc_view_reply, r, n, args);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * An offering changed in MongoDB (job->profile, "" once deleted): the same
 * in the mirror, then the answer prepared in the job.
 */

void
ngx_feira_svc_mirror_offer(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_int_t    rc;
    const char  *args[5];
    char         now[NGX_INT64_LEN + 1], ttl[NGX_INT64_LEN + 1];

    *ngx_sprintf((u_char *) now, "%L", job->now) = '\0';
    *ngx_sprintf((u_char *) ttl, "%T", job->smcf->presence_ttl) = '\0';

    args[0] = job->user;
    args[1] = job->category;
    args[2] = job->profile;
    args[3] = now;
    args[4] = ttl;

    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_offer,
                              ngx_feira_svc_mirror_reply, r, 5, args);
    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: services: the offering mirror of %s is stale "
                      "until the provider goes online again", job->user);
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
    }
}


static void
ngx_feira_svc_mirror_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply           *rr = reply;
    ngx_connection_t     *c;
    ngx_http_request_t   *r = privdata;
    ngx_feira_svc_job_t  *job;

    c = r->connection;
    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (rr == NULL || rr->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: services: offering mirror failed: %s",
                      rr ? rr->str : "no connection");
    }

    /* the request may be gone after this: not r->connection */
    ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
    ngx_http_run_posted_requests(c);
}


/* NGX_OK once queued (the callback then runs), or the status to answer */

static ngx_int_t
ngx_feira_svc_script(ngx_http_request_t *r, const char *script,
    redisCallbackFn *fn, void *privdata, ngx_uint_t n, const char **args)
{
    ngx_int_t     rc;
    ngx_uint_t    i;
    const char  **argv;
    size_t       *argvlen;

    argv = ngx_palloc(r->pool, (n + 3) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (n + 3) * sizeof(size_t));

    if (argv == NULL || argvlen == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "0";

    for (i = 0; i < n; i++) {
        argv[i + 3] = args[i];
    }

    for (i = 0; i < n + 3; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    rc = ngx_feira_redis_commandargv(ngx_feira_redis_main(), fn, privdata,
                                     (int) (n + 3), argv, argvlen);
    if (rc == NGX_OK) {
        return NGX_OK;
    }

    return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "presence is unavailable, try again",
                                  NULL);
}


static void
ngx_feira_svc_view_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    json_t              *view;
    ngx_int_t            rc;
    redisReply          *rr = reply;
    ngx_connection_t    *c;
    ngx_http_request_t  *r = privdata;

    c = r->connection;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY) {
        if (rr && rr->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "feira: services: presence script: %s", rr->str);
        }

        rc = ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "presence is unavailable, try again",
                                    NULL);
        goto done;
    }

    view = ngx_feira_svc_view(rr);

    if (view == NULL || ngx_feira_json_cleanup_add(r->pool, view) != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    rc = ngx_feira_send_json(r, NGX_HTTP_OK, view);

done:

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* {online, matchable, lat, lng, loc_at, cats, seen}, strings all */

static json_t *
ngx_feira_svc_view(redisReply *rr)
{
    char        *p, *save, buf[1024], at[32];
    json_t      *view, *cats, *loc;
    ngx_uint_t   i;

    if (rr->elements != 7) {
        return NULL;
    }

    for (i = 0; i < 7; i++) {
        if (rr->element[i]->type != REDIS_REPLY_STRING) {
            return NULL;
        }
    }

    cats = json_array();
    if (cats == NULL) {
        return NULL;
    }

    ngx_cpystrn((u_char *) buf, (u_char *) rr->element[5]->str, sizeof(buf));

    for (p = strtok_r(buf, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
        json_array_append_new(cats, json_string(p));
    }

    loc = json_null();

    if (rr->element[2]->len && rr->element[3]->len) {
        loc = json_pack("{s:f, s:f}",
                        "lat", strtod(rr->element[2]->str, NULL),
                        "lng", strtod(rr->element[3]->str, NULL));
    }

    view = json_pack("{s:b, s:b, s:o, s:o}",
                     "online", rr->element[0]->str[0] == '1',
                     "matchable", rr->element[1]->str[0] == '1',
                     "categories", cats,
                     "location", loc);
    if (view == NULL) {
        return NULL;
    }

    if (rr->element[4]->len
        && ngx_feira_format_rfc3339(strtoll(rr->element[4]->str, NULL, 10),
                                    at, sizeof(at)))
    {
        json_object_set_new(view, "location_at", json_string(at));
    }

    if (rr->element[6]->len
        && ngx_feira_format_rfc3339(strtoll(rr->element[6]->str, NULL, 10),
                                    at, sizeof(at)))
    {
        json_object_set_new(view, "last_seen_at", json_string(at));
    }

    return view;
}


/* the sweep: providers silent longer than the presence ttl drop out */

void
ngx_feira_svc_presence_trim(ngx_http_feira_services_main_conf_t *smcf)
{
    size_t       argvlen[4];
    const char  *argv[4];
    char         cutoff[NGX_INT64_LEN + 1];

    *ngx_sprintf((u_char *) cutoff, "%T", ngx_time() - smcf->presence_ttl)
        = '\0';

    argv[0] = "EVAL";
    argv[1] = ngx_feira_svc_lua_trim;
    argv[2] = "0";
    argv[3] = cutoff;

    argvlen[0] = 4;
    argvlen[1] = sizeof(ngx_feira_svc_lua_trim) - 1;
    argvlen[2] = 1;
    argvlen[3] = ngx_strlen(cutoff);

    (void) ngx_feira_redis_commandargv(ngx_feira_redis_main(), NULL, NULL,
                                       4, argv, argvlen);
}


/*
 * Offers made ("r") and accepted ("a"), per provider and calendar month
 * (UTC): the acceptance part of the score reads this month and the one
 * before.  Fire and forget: a lost count only nudges a score.
 */

void
ngx_feira_svc_count_offers(const char *kind, char (*ids)[25], ngx_uint_t n)
{
    size_t              *argvlen;
    ngx_uint_t           i;
    const char         **argv;
    ngx_feira_redis_t   *rc;
    char                 month[8];

    rc = ngx_feira_redis_main();

    if (n == 0 || !ngx_feira_redis_is_up(rc)) {
        return;
    }

    argv = ngx_alloc((n + 5) * sizeof(char *), ngx_cycle->log);
    argvlen = ngx_alloc((n + 5) * sizeof(size_t), ngx_cycle->log);

    if (argv == NULL || argvlen == NULL) {
        ngx_free(argv);
        ngx_free(argvlen);
        return;
    }

    ngx_feira_svc_month_key(ngx_time(), 0, month);

    argv[0] = "EVAL";
    argv[1] = ngx_feira_svc_lua_count;
    argv[2] = "0";
    argv[3] = month;
    argv[4] = kind;

    for (i = 0; i < n; i++) {
        argv[i + 5] = ids[i];
    }

    for (i = 0; i < n + 5; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    /* hiredis has copied the command when this returns */
    (void) ngx_feira_redis_commandargv(rc, NULL, NULL, (int) (n + 5), argv,
                                       argvlen);

    ngx_free(argv);
    ngx_free(argvlen);
}


/* "YYYYMM" of the month of t, or of the month before it */

void
ngx_feira_svc_month_key(time_t t, int back, char *buf)
{
    int        y, m;
    struct tm  tm;

    ngx_libc_gmtime(t, &tm);

    y = tm.tm_year + 1900;
    m = tm.tm_mon + 1 - back;

    if (m < 1) {
        m += 12;
        y--;
    }

    *ngx_sprintf((u_char *) buf, "%04d%02d", y, m) = '\0';
}
