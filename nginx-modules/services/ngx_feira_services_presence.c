/*
 * PUT /v1/providers/me/status over the common presence keys (positions
 * and signs of life are feira_realtime's: docs/events.md), the mirror of
 * the offerings that matching reads, and the offer counters.
 */

#include "ngx_http_feira_services_module.h"


static void ngx_feira_svc_status_body(ngx_http_request_t *r, json_t *body);
static ngx_int_t ngx_feira_svc_status(ngx_http_request_t *r,
    ngx_int_t online);
static void ngx_feira_svc_online_job(void *data);
static void ngx_feira_svc_online_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_feira_svc_script(ngx_http_request_t *r,
    const char *script, redisCallbackFn *fn, void *privdata,
    ngx_uint_t n, const char **args);
static void ngx_feira_svc_view_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_svc_mirror_reply(redisAsyncContext *ac, void *reply,
    void *privdata);


/*
 * The offering mirror matching reads: feira:offer:<category>, field the
 * provider id, value the offering's profile.  ARGV: provider, then
 * category and profile pairs ("" profile: deleted); with ARGV[2] "*" the
 * categories not listed after it are dropped (a full rebuild).
 */
static const char  ngx_feira_svc_lua_mirror[] =
    "local pid = ARGV[1]\n"
    "local keep = {}\n"
    "local first = 2\n"
    "if ARGV[2] == '*' then first = 3 end\n"
    "for i = first, #ARGV - 1, 2 do\n"
    "  keep[ARGV[i]] = true\n"
    "  if ARGV[i + 1] == '' then\n"
    "    redis.call('HDEL', 'feira:offer:' .. ARGV[i], pid)\n"
    "    redis.call('SREM', 'feira:offer-cats:' .. pid, ARGV[i])\n"
    "  else\n"
    "    redis.call('HSET', 'feira:offer:' .. ARGV[i], pid, ARGV[i + 1])\n"
    "    redis.call('SADD', 'feira:offer-cats:' .. pid, ARGV[i])\n"
    "  end\n"
    "end\n"
    "if first == 3 then\n"
    "  for _, c in ipairs(redis.call('SMEMBERS', 'feira:offer-cats:' .. pid))"
    " do\n"
    "    if not keep[c] then\n"
    "      redis.call('HDEL', 'feira:offer:' .. c, pid)\n"
    "      redis.call('SREM', 'feira:offer-cats:' .. pid, c)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return 1\n";


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
    ngx_feira_svc_job_t  *job;

    /* the location is the route: "location = /v1/providers/me/status" */

    job = ngx_feira_svc_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_strcmp(job->role, "provider") != 0) {
        return ngx_feira_svc_forbidden(r, "only providers have a presence");
    }

    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

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

    r->main->count++;

    rc = ngx_feira_svc_status(r, -1);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }

    return NGX_DONE;
}


static void
ngx_feira_svc_status_body(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t             rc;
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_validate_object(body, ngx_feira_svc_status_fields,
                                  &job->errs)
        != 0)
    {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    if (json_is_true(json_object_get(body, "online"))) {
        /* the offering mirror is rebuilt from MongoDB first */
        ngx_feira_svc_post(r, ngx_feira_svc_online_job,
                           ngx_feira_svc_online_done, job);
        return;
    }

    rc = ngx_feira_svc_status(r, 0);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the common presence keys (docs/events.md): set, then answered */

static ngx_int_t
ngx_feira_svc_status(ngx_http_request_t *r, ngx_int_t online)
{
    ngx_str_t             id;
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    id.data = (u_char *) job->user;
    id.len = ngx_strlen(job->user);

    if (ngx_feira_presence_status(&id, online, ngx_feira_svc_view_reply, r)
        == NGX_OK)
    {
        return NGX_OK;
    }

    return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "presence is unavailable, try again",
                                  NULL);
}


/*
 * A job, in the thread pool (posted by ngx_feira_svc_post(), which is
 * ngx_feira_thread_post()): the provider's offerings, for the mirror.  The
 * only MongoDB calls of this file; the rest is async Redis on the loop.
 */

static void
ngx_feira_svc_online_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter;
    json_t               *mirror;
    bson_oid_t            oid;
    const char           *category;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_client_t      *client;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *offerings;
    char                  profile[NGX_FEIRA_PROFILE_LEN];

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    offerings = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                             NGX_FEIRA_SVC_OFFERINGS_COLL);

    bson_oid_init_from_string(&oid, job->user);

    mirror = json_object();
    if (mirror == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
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

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    args = ngx_palloc(r->pool, (2 + 2 * json_object_size(job->mirror))
                               * sizeof(char *));
    if (args == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    args[0] = job->user;
    args[1] = "*";
    n = 2;

    json_object_foreach(job->mirror, key, v) {
        args[n++] = key;
        args[n++] = json_string_value(v);
    }

    /* the mirror first (fire and forget), then online: in this order */
    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_mirror, NULL, NULL, n,
                              args);
    if (rc == NGX_OK) {
        rc = ngx_feira_svc_status(r, 1);
    }

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
    const char  *args[3];

    args[0] = job->user;
    args[1] = job->category;
    args[2] = job->profile;

    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

    rc = ngx_feira_svc_script(r, ngx_feira_svc_lua_mirror,
                              ngx_feira_svc_mirror_reply, r, 3, args);
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


/*
 * {offline flag, last seen ms or nil} from ngx_feira_presence_status():
 * online is "not switched off and seen within feira_services_presence_ttl"
 */

static void
ngx_feira_svc_view_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    json_t                               *view;
    int64_t                               seen;
    ngx_int_t                             rc;
    redisReply                           *rr = reply;
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r = privdata;
    ngx_http_feira_services_main_conf_t  *smcf;
    char                                  at[32];

    c = r->connection;
    smcf = ngx_http_get_module_main_conf(r, ngx_http_feira_services_module);

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements < 1) {
        if (rr && rr->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "feira: services: presence script: %s", rr->str);
        }

        rc = ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "presence is unavailable, try again",
                                    NULL);
        goto done;
    }

    seen = -1;

    if (rr->elements > 1 && rr->element[1]->type == REDIS_REPLY_STRING) {
        seen = strtoll(rr->element[1]->str, NULL, 10);
    }

    view = json_pack("{s:b}", "online",
                     rr->element[0]->integer == 0 && seen >= 0
                     && seen >= ngx_feira_now_ms()
                                - (int64_t) smcf->presence_ttl * 1000);
    if (view == NULL || ngx_feira_json_cleanup_add(r->pool, view) != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    if (seen >= 0) {
        ngx_feira_rfc3339(seen, at, sizeof(at));
        json_object_set_new(view, "last_seen_at", json_string(at));
    }

    rc = ngx_feira_send_json(r, NGX_HTTP_OK, view);

done:

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
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
