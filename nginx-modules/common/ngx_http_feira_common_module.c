/*
 * The feira_* core directives and the per-worker life cycle of the shared
 * connections to MongoDB, Redis and Kafka.
 */

#include "ngx_feira_common.h"


static void *ngx_http_feira_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_feira_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_feira_mongo_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_kafka_brokers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_rt_history(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_feira_commands[] = {

    { ngx_string("feira_problem"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_feira_problem_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_mongo_uri"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_mongo_uri,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_kafka_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_kafka_brokers,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("feira_thread_nice"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, thread_nice),
      NULL },

    { ngx_string("feira_mongo_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, mongo_timeout),
      NULL },

    { ngx_string("feira_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("feira_kafka_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, kafka_timeout),
      NULL },

    { ngx_string("feira_kafka_outbox_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_main_conf_t, kafka_outbox_interval),
      NULL },

    { ngx_string("feira_rt_history"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_feira_rt_history,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_body_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_loc_conf_t, body_limit),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_common_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_create_main_conf,       /* create main configuration */
    ngx_http_feira_init_main_conf,         /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_create_loc_conf,        /* create location configuration */
    ngx_http_feira_merge_loc_conf          /* merge location configuration */
};


ngx_module_t  ngx_http_feira_common_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_common_module_ctx,     /* module context */
    ngx_http_feira_commands,               /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the main conf of the running cycle, for init_process and exit_process */
static ngx_http_feira_main_conf_t  *ngx_http_feira_running;


static void *
ngx_http_feira_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_main_conf_t));
    if (fmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     fmcf->mongo_uri = { 0, NULL };
     *     fmcf->redis_host = { 0, NULL };
     *     fmcf->kafka_brokers = { 0, NULL };
     *     fmcf->thread_pool_name = { 0, NULL };
     *     fmcf->thread_pool = NULL;
     */

    fmcf->redis_port = NGX_CONF_UNSET;
    fmcf->thread_nice = NGX_CONF_UNSET;
    fmcf->mongo_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->kafka_timeout = NGX_CONF_UNSET_MSEC;
    fmcf->kafka_outbox_interval = NGX_CONF_UNSET_MSEC;
    fmcf->rt_history_len = NGX_CONF_UNSET_UINT;
    fmcf->rt_history_ttl = NGX_CONF_UNSET;

    return fmcf;
}


static char *
ngx_http_feira_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_main_conf_t  *fmcf = conf;

    static ngx_str_t  default_pool = ngx_string("feira");

    ngx_conf_init_msec_value(fmcf->mongo_timeout, 2000);
    ngx_conf_init_msec_value(fmcf->redis_timeout, 2000);
    ngx_conf_init_msec_value(fmcf->kafka_timeout, 10000);
    ngx_conf_init_msec_value(fmcf->kafka_outbox_interval, 5000);
    ngx_conf_init_uint_value(fmcf->rt_history_len, 100);
    ngx_conf_init_value(fmcf->rt_history_ttl, 24 * 60 * 60);

    ngx_conf_init_value(fmcf->thread_nice, 19);

    if (fmcf->thread_nice < 0 || fmcf->thread_nice > 19) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_thread_nice\" must be 0 to 19");
        return NGX_CONF_ERROR;
    }

    if (fmcf->redis_port == NGX_CONF_UNSET) {
        fmcf->redis_port = 0;
    }

    if (fmcf->thread_pool_name.len == 0) {
        fmcf->thread_pool_name = default_pool;
    }

    /* blocking calls need a pool; nginx -t names it if it is undeclared */
    if (fmcf->mongo_uri.len || fmcf->kafka_brokers.len) {
        fmcf->thread_pool = ngx_thread_pool_add(cf, &fmcf->thread_pool_name);
        if (fmcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_loc_conf_t  *flcf;

    flcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_loc_conf_t));
    if (flcf == NULL) {
        return NULL;
    }

    flcf->body_limit = NGX_CONF_UNSET_SIZE;

    return flcf;
}


static char *
ngx_http_feira_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_feira_loc_conf_t  *prev = parent;
    ngx_http_feira_loc_conf_t  *conf = child;

    ngx_conf_merge_size_value(conf->body_limit, prev->body_limit,
                              NGX_FEIRA_DEFAULT_BODY_LIMIT);

    if (conf->body_limit == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_body_limit\" must be greater than 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_mongo_uri(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_main_conf_t  *fmcf = conf;

    const char    *db;
    ngx_str_t     *value;
    mongoc_uri_t  *uri;
    bson_error_t   error;

    if (fmcf->mongo_uri.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "must not be empty";
    }

    /* ngx_conf_t strings are NUL-terminated */
    uri = mongoc_uri_new_with_error((char *) value[1].data, &error);
    if (uri == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"feira_mongo_uri\" \"%V\": %s",
                           &value[1], error.message);
        return NGX_CONF_ERROR;
    }

    db = mongoc_uri_get_database(uri);

    if (db == NULL || *db == '\0') {
        db = "feira";
    }

    fmcf->mongo_db.len = ngx_strlen(db);
    fmcf->mongo_db.data = ngx_pnalloc(cf->pool, fmcf->mongo_db.len + 1);
    if (fmcf->mongo_db.data == NULL) {
        mongoc_uri_destroy(uri);
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(fmcf->mongo_db.data, (u_char *) db, fmcf->mongo_db.len + 1);

    mongoc_uri_destroy(uri);

    fmcf->mongo_uri = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_main_conf_t  *fmcf = conf;

    u_char     *p;
    size_t      len;
    ngx_str_t  *value;
    ngx_url_t   u;

    if (fmcf->redis_host.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.default_port = 6379;

    /* resolved here, once, so that no DNS lookup runs in a worker */
    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"feira_redis\" \"%V\": %s",
                           &value[1], u.err ? u.err : "bad address");
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_redis\" \"%V\" has no address",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

#if (NGX_HAVE_UNIX_DOMAIN)
    if (u.family == AF_UNIX) {
        len = u.host.len;
        p = ngx_pnalloc(cf->pool, len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(p, u.host.data, len + 1);

        fmcf->redis_host.data = p;
        fmcf->redis_host.len = len;
        fmcf->redis_port = 0;

        return NGX_CONF_OK;
    }
#endif

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                        NGX_SOCKADDR_STRLEN, 0);
    p[len] = '\0';

    fmcf->redis_host.data = p;
    fmcf->redis_host.len = len;
    fmcf->redis_port = u.port;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_kafka_brokers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_main_conf_t  *fmcf = conf;

    u_char     *p, *last, *comma;
    ngx_str_t  *value;
    ngx_url_t   u;

    if (fmcf->kafka_brokers.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = value[1].data;
    last = p + value[1].len;

    do {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url.data = p;
        u.url.len = comma - p;
        u.no_resolve = 1;

        /* librdkafka resolves names in its own threads */
        if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK
            || u.no_port || u.family == AF_UNIX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid broker \"%*s\" in "
                               "\"feira_kafka_brokers\", "
                               "expected host:port[,host:port...]",
                               comma - p, p);
            return NGX_CONF_ERROR;
        }

        p = comma + 1;

    } while (comma < last);

    fmcf->kafka_brokers = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_rt_history(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_main_conf_t  *fmcf = conf;

    time_t      ttl;
    ngx_int_t   n;
    ngx_str_t  *value;

    if (fmcf->rt_history_len != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    ttl = ngx_parse_time(&value[2], 1);

    if (n < 1 || n > 100000 || ttl == (time_t) NGX_ERROR || ttl < 1) {
        return "expects <events kept per channel> <time kept>, "
               "such as \"100 1d\"";
    }

    fmcf->rt_history_len = (ngx_uint_t) n;
    fmcf->rt_history_ttl = ttl;

    return NGX_CONF_OK;
}


ngx_feira_ctx_t *
ngx_feira_ctx(ngx_http_request_t *r)
{
    ngx_feira_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_common_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_feira_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_feira_common_module);
    }

    return ctx;
}


ngx_feira_identity_t *
ngx_feira_identity(ngx_http_request_t *r)
{
    ngx_feira_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_feira_common_module);

    return ctx ? ctx->identity : NULL;
}


static ngx_int_t
ngx_http_feira_init_process(ngx_cycle_t *cycle)
{
    ngx_http_feira_main_conf_t  *fmcf;

    /* the cache manager and loader need no connections */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    fmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_common_module);
    if (fmcf == NULL) {
        return NGX_OK;
    }

    ngx_http_feira_running = fmcf;

    if (ngx_feira_mongo_init_process(cycle, fmcf) != NGX_OK
        || ngx_feira_redis_init_process(cycle, fmcf) != NGX_OK
        || ngx_feira_kafka_init_process(cycle, fmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_feira_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_feira_running == NULL) {
        return;
    }

    ngx_feira_kafka_exit_process(cycle);
    ngx_feira_redis_exit_process();
    ngx_feira_mongo_exit_process();

    ngx_http_feira_running = NULL;
}
