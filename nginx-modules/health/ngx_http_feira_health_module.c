/*
 * /healthz (the process serves) and /readyz (MongoDB, Redis and Kafka
 * answer): "location = /readyz { feira_readyz; }".
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_READY_ERRLEN  128


typedef struct {
    ngx_uint_t   pending;
    ngx_int_t    mongo_rc;
    ngx_int_t    kafka_rc;
    int          kafka_timeout;
    char         mongo_err[NGX_FEIRA_READY_ERRLEN];
    char         kafka_err[NGX_FEIRA_READY_ERRLEN];
} ngx_http_feira_ready_ctx_t;


static char *ngx_http_feira_healthz(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_readyz(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_healthz_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_readyz_handler(ngx_http_request_t *r);
static void ngx_http_feira_ready_mongo_job(void *data);
static void ngx_http_feira_ready_kafka_job(void *data);
static void ngx_http_feira_ready_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_http_feira_ready_reply(ngx_http_request_t *r,
    ngx_http_feira_ready_ctx_t *ctx);


static ngx_command_t  ngx_http_feira_health_commands[] = {

    { ngx_string("feira_healthz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_healthz,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_readyz"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_readyz,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_health_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_feira_health_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_health_module_ctx,     /* module context */
    ngx_http_feira_health_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_feira_healthz(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_feira_healthz_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_readyz(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_feira_readyz_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_healthz_handler(ngx_http_request_t *r)
{
    json_t     *body;
    ngx_int_t   rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    body = json_pack("{s:s, s:I}", "status", "ok", "pid", (json_int_t) ngx_pid);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_feira_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


static ngx_int_t
ngx_http_feira_readyz_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_feira_ready_ctx_t  *ctx;
    ngx_http_feira_main_conf_t  *fmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    fmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_common_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_feira_ready_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->mongo_rc = NGX_DECLINED;
    ctx->kafka_rc = NGX_DECLINED;
    ctx->kafka_timeout = (int) ngx_min(fmcf->kafka_timeout, 1000);

    /* each check blocks in its own pool thread; both run at once */

    if (ngx_feira_mongo_configured()) {
        ctx->mongo_rc = NGX_ERROR;
        ngx_cpystrn((u_char *) ctx->mongo_err, (u_char *) "not checked",
                    NGX_FEIRA_READY_ERRLEN);

        if (ngx_feira_thread_post(r, ngx_http_feira_ready_mongo_job,
                                  ngx_http_feira_ready_done, ctx)
            == NGX_OK)
        {
            ctx->pending++;
        }
    }

    if (ngx_feira_kafka_configured()) {
        ctx->kafka_rc = NGX_ERROR;
        ngx_cpystrn((u_char *) ctx->kafka_err, (u_char *) "not checked",
                    NGX_FEIRA_READY_ERRLEN);

        if (ngx_feira_thread_post(r, ngx_http_feira_ready_kafka_job,
                                  ngx_http_feira_ready_done, ctx)
            == NGX_OK)
        {
            ctx->pending++;
        }
    }

    if (ctx->pending == 0) {
        return ngx_http_feira_ready_reply(r, ctx);
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_feira_ready_mongo_job(void *data)
{
    ngx_http_feira_ready_ctx_t  *ctx = data;

    ctx->mongo_rc = ngx_feira_mongo_ping(ctx->mongo_err,
                                         NGX_FEIRA_READY_ERRLEN);
}


static void
ngx_http_feira_ready_kafka_job(void *data)
{
    ngx_http_feira_ready_ctx_t  *ctx = data;

    ctx->kafka_rc = ngx_feira_kafka_ping(ctx->kafka_err,
                                         NGX_FEIRA_READY_ERRLEN,
                                         ctx->kafka_timeout);
}


static void
ngx_http_feira_ready_done(ngx_http_request_t *r, void *data)
{
    ngx_http_feira_ready_ctx_t  *ctx = data;

    if (--ctx->pending) {
        return;
    }

    ngx_http_finalize_request(r, ngx_http_feira_ready_reply(r, ctx));
}


static ngx_int_t
ngx_http_feira_ready_reply(ngx_http_request_t *r,
    ngx_http_feira_ready_ctx_t *ctx)
{
    u_char              *p, *last;
    json_t              *body, *checks;
    ngx_int_t            rc;
    ngx_uint_t           i;
    ngx_feira_redis_t   *redis;
    ngx_feira_errors_t   errs;
    u_char               detail[128];

    const char          *name[3];
    ngx_int_t            state[3];

    name[0] = "mongo";
    state[0] = ctx->mongo_rc;

    redis = ngx_feira_redis_main();
    name[1] = "redis";
    state[1] = redis ? (ngx_feira_redis_is_up(redis) ? NGX_OK : NGX_ERROR)
                     : NGX_DECLINED;

    name[2] = "kafka";
    state[2] = ctx->kafka_rc;

    if (ctx->mongo_rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: readyz: mongo: %s", ctx->mongo_err);
    }

    if (ctx->kafka_rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: readyz: kafka: %s", ctx->kafka_err);
    }

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    p = detail;
    last = detail + sizeof(detail) - 1;

    checks = json_object();
    if (checks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < 3; i++) {
        if (state[i] == NGX_DECLINED) {
            continue;
        }

        json_object_set_new(checks, name[i],
                            json_string(state[i] == NGX_OK ? "up" : "down"));

        if (state[i] != NGX_OK) {
            ngx_feira_errors_add(&errs, name[i], "down");
            p = ngx_slprintf(p, last, "%s%s", p == detail ? "down: " : ", ",
                             name[i]);
        }
    }

    *p = '\0';

    if (errs.n) {
        json_decref(checks);
        return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      (char *) detail, &errs);
    }

    body = json_pack("{s:s, s:o}", "status", "ready", "checks", checks);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_feira_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}
