/*
 * feira_metrics: requests and latencies per route recorded in a shared
 * zone at the log phase, and "location = /metrics { feira_metrics; }".
 */

#include "ngx_http_feira_metrics.h"


#define NGX_HTTP_FEIRA_METRICS_OFF  ((ngx_uint_t) -1)


typedef struct {
    ngx_str_t                         module;
    ngx_str_t                         route;
    ngx_flag_t                        enable;
    ngx_uint_t                        index;
} ngx_http_feira_metrics_loc_conf_t;


static ngx_int_t ngx_http_feira_metrics_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_feira_metrics_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_feira_metrics_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_feira_metrics_first_location(
    ngx_http_request_t *r);
static void *ngx_http_feira_metrics_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_metrics_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_feira_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_metrics_buckets(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_feira_metrics_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_metrics_add_route(ngx_conf_t *cf,
    ngx_http_feira_metrics_main_conf_t *mmcf, ngx_str_t *module,
    ngx_str_t *route);
static ngx_int_t ngx_http_feira_metrics_escape(ngx_pool_t *pool,
    ngx_str_t *dst, ngx_str_t *src);
static ngx_int_t ngx_http_feira_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_feira_metrics_node_t *ngx_http_feira_metrics_node(
    ngx_http_feira_metrics_main_conf_t *mmcf,
    ngx_http_feira_metrics_route_t *route);
static ngx_int_t ngx_http_feira_metrics_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_metrics_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_metrics_exit_process(ngx_cycle_t *cycle);


/* the default buckets of feira_http_request_duration_seconds, in ms */
static ngx_msec_t  ngx_http_feira_metrics_default_buckets[] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};


static ngx_command_t  ngx_http_feira_metrics_commands[] = {

    { ngx_string("feira_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_feira_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_metrics_buckets"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_feira_metrics_buckets,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_metrics_module"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_metrics_loc_conf_t, module),
      NULL },

    { ngx_string("feira_metrics_route"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_metrics_route,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_metrics_module_ctx = {
    ngx_http_feira_metrics_add_variables,  /* preconfiguration */
    ngx_http_feira_metrics_init,           /* postconfiguration */

    ngx_http_feira_metrics_create_main_conf, /* create main configuration */
    ngx_http_feira_metrics_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_metrics_create_loc_conf, /* create location configuration */
    ngx_http_feira_metrics_merge_loc_conf  /* merge location configuration */
};


ngx_module_t  ngx_http_feira_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_metrics_module_ctx,    /* module context */
    ngx_http_feira_metrics_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_metrics_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_metrics_exit_process,   /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* per-worker state: this worker's slot in the zone */
static ngx_feira_stats_t  *ngx_http_feira_metrics_slot;


static void *
ngx_http_feira_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->shm_zone = NULL;
     *     mmcf->shpool = NULL;
     *     mmcf->sh = NULL;
     *     mmcf->buckets = NULL;
     */

    if (ngx_array_init(&mmcf->routes, cf->pool, 16,
                       sizeof(ngx_http_feira_metrics_route_t))
        != NGX_OK)
    {
        return NULL;
    }

    return mmcf;
}


static char *
ngx_http_feira_metrics_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_metrics_main_conf_t  *mmcf = conf;

    ngx_uint_t   i, n;
    ngx_msec_t  *b;

    if (mmcf->buckets) {
        return NGX_CONF_OK;
    }

    n = sizeof(ngx_http_feira_metrics_default_buckets) / sizeof(ngx_msec_t);

    mmcf->buckets = ngx_array_create(cf->pool, n, sizeof(ngx_msec_t));
    if (mmcf->buckets == NULL) {
        return NGX_CONF_ERROR;
    }

    b = ngx_array_push_n(mmcf->buckets, n);
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        b[i] = ngx_http_feira_metrics_default_buckets[i];
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_metrics_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_metrics_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->module = { 0, NULL };
     *     mlcf->route = { 0, NULL };
     */

    mlcf->enable = NGX_CONF_UNSET;
    mlcf->index = NGX_HTTP_FEIRA_METRICS_OFF;

    return mlcf;
}


static char *
ngx_http_feira_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_metrics_loc_conf_t  *prev = parent;
    ngx_http_feira_metrics_loc_conf_t  *conf = child;

    ngx_int_t                            index;
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    static ngx_str_t  unnamed = ngx_string("(server)");

    ngx_conf_merge_str_value(conf->module, prev->module, "nginx");
    ngx_conf_merge_value(conf->enable, prev->enable, 1);

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_metrics_module);

    if (mmcf->shm_zone == NULL || !conf->enable) {
        conf->index = NGX_HTTP_FEIRA_METRICS_OFF;
        return NGX_CONF_OK;
    }

    if (conf->route.data == NULL) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf->noname && prev->route.data) {
            /* "if" and "limit_except" count for their location */
            conf->route = prev->route;

        } else {
            conf->route = clcf->name.len ? clcf->name : unnamed;
        }
    }

    index = ngx_http_feira_metrics_add_route(cf, mmcf, &conf->module,
                                             &conf->route);
    if (index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    conf->index = (ngx_uint_t) index;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_metrics_add_route(ngx_conf_t *cf,
    ngx_http_feira_metrics_main_conf_t *mmcf, ngx_str_t *module,
    ngx_str_t *route)
{
    ngx_str_t                        m, p;
    ngx_uint_t                       i;
    ngx_http_feira_metrics_route_t  *rt;

    if (ngx_http_feira_metrics_escape(cf->pool, &m, module) != NGX_OK
        || ngx_http_feira_metrics_escape(cf->pool, &p, route) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* locations that share a route name share its counters */

    rt = mmcf->routes.elts;

    for (i = 0; i < mmcf->routes.nelts; i++) {
        if (rt[i].module.len == m.len && rt[i].route.len == p.len
            && ngx_strncmp(rt[i].module.data, m.data, m.len) == 0
            && ngx_strncmp(rt[i].route.data, p.data, p.len) == 0)
        {
            return i;
        }
    }

    rt = ngx_array_push(&mmcf->routes);
    if (rt == NULL) {
        return NGX_ERROR;
    }

    rt->module = m;
    rt->route = p;
    rt->node = NULL;

    return mmcf->routes.nelts - 1;
}


/* label values of the text format: \ " and newline are escaped */

static ngx_int_t
ngx_http_feira_metrics_escape(ngx_pool_t *pool, ngx_str_t *dst,
    ngx_str_t *src)
{
    u_char      *p;
    ngx_uint_t   i, n;

    n = 0;

    for (i = 0; i < src->len; i++) {
        if (src->data[i] == '\\' || src->data[i] == '"'
            || src->data[i] == '\n')
        {
            n++;
        }
    }

    p = ngx_pnalloc(pool, src->len + n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst->data = p;

    for (i = 0; i < src->len; i++) {
        switch (src->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = src->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = src->data[i];
        }
    }

    dst->len = p - dst->data;

    return NGX_OK;
}


static char *
ngx_http_feira_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_metrics_main_conf_t  *mmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (mmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"feira_metrics_zone\" size \"%V\"",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    /* the worker slots alone take some 30k */
    if (size < (ssize_t) (64 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_metrics_zone\" \"%V\" is too small, "
                           "at least %uzk", &value[2],
                           64 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    mmcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                           &ngx_http_feira_metrics_module);
    if (mmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &value[1]);
        return NGX_CONF_ERROR;
    }

    mmcf->shm_zone->init = ngx_http_feira_metrics_init_zone;
    mmcf->shm_zone->data = mmcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_metrics_buckets(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_metrics_main_conf_t  *mmcf = conf;

    ngx_int_t    ms;
    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_msec_t  *b, prev;

    if (mmcf->buckets) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 1 > NGX_HTTP_FEIRA_METRICS_MAX_BUCKETS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_metrics_buckets\" takes at most %d "
                           "bounds", NGX_HTTP_FEIRA_METRICS_MAX_BUCKETS);
        return NGX_CONF_ERROR;
    }

    mmcf->buckets = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_msec_t));
    if (mmcf->buckets == NULL) {
        return NGX_CONF_ERROR;
    }

    prev = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        /* seconds, to the millisecond that request times are measured in */
        ms = ngx_atofp(value[i].data, value[i].len, 3);

        if (ms == NGX_ERROR || ms == 0 || (ngx_msec_t) ms <= prev) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"feira_metrics_buckets\" bound "
                               "\"%V\": bounds are seconds, greater than 0, "
                               "increasing, in steps of 0.001", &value[i]);
            return NGX_CONF_ERROR;
        }

        b = ngx_array_push(mmcf->buckets);
        if (b == NULL) {
            return NGX_CONF_ERROR;
        }

        *b = (ngx_msec_t) ms;
        prev = *b;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_metrics_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_metrics_loc_conf_t  *mlcf = conf;

    ngx_str_t  *value;

    if (mlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mlcf->enable = 0;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        return "must not be empty";
    }

    mlcf->enable = 1;
    mlcf->route = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_metrics_module);

    /* the zone is declared at the http level, before the servers */
    if (mmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_metrics\" needs a \"feira_metrics_zone\" "
                           "declared before it in the http block");
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_feira_metrics_handler;

    return NGX_CONF_OK;
}


/*
 * The location a request was routed to, kept across internal redirects
 * (error_page, rewrite ... last): a request answered 404 by its own
 * location and then by the problem page is counted for the first one.
 * A variable, because r->variables outlives a redirect and r->ctx does
 * not; only this module reads it.
 */

static ngx_str_t  ngx_http_feira_metrics_var = ngx_string("feira_metrics_loc");
static ngx_int_t  ngx_http_feira_metrics_var_index = NGX_ERROR;


static ngx_int_t
ngx_http_feira_metrics_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_feira_metrics_var,
                                NGX_HTTP_VAR_NOHASH);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_feira_metrics_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_metrics_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    ngx_http_feira_metrics_var_index =
        ngx_http_get_variable_index(cf, &ngx_http_feira_metrics_var);
    if (ngx_http_feira_metrics_var_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* before the rewrite module's handler: "return" runs there */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_feira_metrics_first_location;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_feira_metrics_log_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_metrics_first_location(ngx_http_request_t *r)
{
    ngx_http_variable_value_t  *v;

    v = &r->variables[ngx_http_feira_metrics_var_index];

    if (!v->valid) {
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        v->len = 0;
        v->data = (u_char *) ngx_http_get_module_loc_conf(r,
                                                ngx_http_feira_metrics_module);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_feira_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_feira_metrics_main_conf_t  *omcf = data;

    size_t                               len;
    ngx_uint_t                           i;
    ngx_slab_pool_t                     *shpool;
    ngx_http_feira_metrics_route_t      *rt;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    mmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    mmcf->shpool = shpool;

    if (omcf) {
        /* a reload: the zone and its counters are kept */
        mmcf->sh = omcf->sh;

    } else if (shm_zone->shm.exists) {
        mmcf->sh = shpool->data;

    } else {
        mmcf->sh = ngx_slab_calloc(shpool,
                                   sizeof(ngx_http_feira_metrics_shctx_t));
        if (mmcf->sh == NULL) {
            return NGX_ERROR;
        }

        ngx_queue_init(&mmcf->sh->routes);
        shpool->data = mmcf->sh;

        len = sizeof(" in feira_metrics_zone \"\"") + shm_zone->shm.name.len;

        shpool->log_ctx = ngx_slab_alloc(shpool, len);
        if (shpool->log_ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(shpool->log_ctx, " in feira_metrics_zone \"%V\"%Z",
                    &shm_zone->shm.name);
    }

    rt = mmcf->routes.elts;

    for (i = 0; i < mmcf->routes.nelts; i++) {
        rt[i].node = ngx_http_feira_metrics_node(mmcf, &rt[i]);
        if (rt[i].node == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "feira_metrics_zone \"%V\" is too small for %ui "
                          "routes", &shm_zone->shm.name,
                          mmcf->routes.nelts);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The node of a route: the one of the running configuration if its name
 * and buckets are the same, or a new one.  Only the master allocates, at
 * configuration time; workers never do.
 */

static ngx_http_feira_metrics_node_t *
ngx_http_feira_metrics_node(ngx_http_feira_metrics_main_conf_t *mmcf,
    ngx_http_feira_metrics_route_t *route)
{
    u_char                         *name, *p;
    size_t                          len, size;
    uint32_t                        key;
    ngx_uint_t                      nbuckets;
    ngx_queue_t                    *q;
    ngx_http_feira_metrics_node_t  *node;

    nbuckets = mmcf->buckets->nelts;

    /* the identity of a node: module, route and bucket bounds */

    len = route->module.len + 1 + route->route.len + 1
          + nbuckets * sizeof(ngx_msec_t);

    name = ngx_alloc(len, ngx_cycle->log);
    if (name == NULL) {
        return NULL;
    }

    p = ngx_cpymem(name, route->module.data, route->module.len);
    *p++ = '\0';
    p = ngx_cpymem(p, route->route.data, route->route.len);
    *p++ = '\0';
    ngx_memcpy(p, mmcf->buckets->elts, nbuckets * sizeof(ngx_msec_t));

    key = ngx_crc32_short(name, len);

    ngx_shmtx_lock(&mmcf->shpool->mutex);

    for (q = ngx_queue_head(&mmcf->sh->routes);
         q != ngx_queue_sentinel(&mmcf->sh->routes);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_feira_metrics_node_t, queue);
        p = (u_char *) &node->buckets[node->nbuckets + 1];

        if (node->key == key && node->nbuckets == nbuckets
            && node->name_len == len && ngx_memcmp(p, name, len) == 0)
        {
            goto done;
        }
    }

    size = offsetof(ngx_http_feira_metrics_node_t, buckets)
           + (nbuckets + 1) * sizeof(ngx_atomic_t) + len;

    node = ngx_slab_calloc_locked(mmcf->shpool, size);
    if (node == NULL) {
        goto done;
    }

    node->key = key;
    node->nbuckets = nbuckets;
    node->name_len = len;
    ngx_memcpy((u_char *) &node->buckets[nbuckets + 1], name, len);

    ngx_queue_insert_tail(&mmcf->sh->routes, &node->queue);

done:

    ngx_shmtx_unlock(&mmcf->shpool->mutex);

    ngx_free(name);

    return node;
}


/* the hot path: three atomic additions, no lock */

static ngx_int_t
ngx_http_feira_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                           i, status, n;
    ngx_time_t                          *tp;
    ngx_msec_t                          *bounds;
    ngx_msec_int_t                       ms;
    ngx_http_feira_metrics_node_t       *node;
    ngx_http_feira_metrics_route_t      *rt;
    ngx_http_feira_metrics_loc_conf_t   *mlcf;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_metrics_module);

    /* the first location of the request, before any internal redirect */
    if (r->variables[ngx_http_feira_metrics_var_index].valid
        && r->variables[ngx_http_feira_metrics_var_index].data)
    {
        mlcf = (ngx_http_feira_metrics_loc_conf_t *)
                   r->variables[ngx_http_feira_metrics_var_index].data;
    }

    if (mlcf->index == NGX_HTTP_FEIRA_METRICS_OFF) {
        return NGX_OK;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_metrics_module);

    rt = mmcf->routes.elts;
    node = rt[mlcf->index].node;

    if (node == NULL) {
        return NGX_OK;
    }

    /* the status that the access log writes */

    if (r->err_status) {
        status = r->err_status;

    } else {
        status = r->headers_out.status;
    }

    /* no response at all (HTTP/0.9, nothing read): not counted */
    if (status < 100 || status > 599) {
        return NGX_OK;
    }

    tp = ngx_timeofday();

    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    bounds = mmcf->buckets->elts;
    n = mmcf->buckets->nelts;

    for (i = 0; i < n; i++) {
        if ((ngx_msec_t) ms <= bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&node->status[status / 100 - 1], 1);
    (void) ngx_atomic_fetch_add(&node->buckets[i], 1);
    (void) ngx_atomic_fetch_add(&node->msec, ms);

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_buf_t                           *b;
    ngx_chain_t                          out;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    static ngx_str_t  type =
                 ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_metrics_module);

    if (ngx_http_feira_metrics_render(r, mmcf, &b) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_feira_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_pid_t                            pid;
    ngx_feira_stats_t                   *s;
    ngx_http_feira_metrics_main_conf_t  *mmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_metrics_module);
    if (mmcf == NULL || mmcf->sh == NULL) {
        return NGX_OK;
    }

    /*
     * A free slot, or the slot of a worker that died without giving it
     * back.  Its counters are kept and go on growing: their sum over the
     * slots never goes down.  Its gauges are this worker's from now on.
     */

    for (i = 0; i < NGX_HTTP_FEIRA_METRICS_SLOTS; i++) {
        s = &mmcf->sh->workers[i];
        pid = (ngx_pid_t) s->pid;

        if (pid != 0
            && (pid == ngx_pid || kill(pid, 0) == 0 || ngx_errno != ESRCH))
        {
            continue;
        }

        if (!ngx_atomic_cmp_set(&s->pid, (ngx_atomic_uint_t) pid,
                                (ngx_atomic_uint_t) ngx_pid))
        {
            continue;
        }

        s->kafka_queue = 0;
        s->jobs_queued = 0;
        s->jobs_running = 0;
        s->ws_connections = 0;

        ngx_http_feira_metrics_slot = s;
        ngx_feira_stats_attach(s);

        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                  "feira_metrics: no free worker slot of %d, this worker's "
                  "counters are not exported", NGX_HTTP_FEIRA_METRICS_SLOTS);

    return NGX_OK;
}


static void
ngx_http_feira_metrics_exit_process(ngx_cycle_t *cycle)
{
    ngx_feira_stats_t  *s;

    s = ngx_http_feira_metrics_slot;

    if (s == NULL) {
        return;
    }

    ngx_feira_stats_attach(NULL);
    ngx_http_feira_metrics_slot = NULL;

    s->kafka_queue = 0;
    s->jobs_queued = 0;
    s->jobs_running = 0;
    s->ws_connections = 0;

    ngx_memory_barrier();

    s->pid = 0;
}
