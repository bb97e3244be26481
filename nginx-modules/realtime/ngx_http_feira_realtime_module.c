/*
 * feira_realtime: directives, configuration and the per-worker life cycle
 * of the WebSocket endpoint, the fan-out hub and the location pipeline.
 */

#include "ngx_http_feira_realtime_module.h"


static void *ngx_http_feira_realtime_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_realtime_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_feira_realtime_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_realtime_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_realtime(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_realtime_origins(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_feira_realtime_limit_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_feira_realtime_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_realtime_exit_process(ngx_cycle_t *cycle);


#define NGX_FEIRA_RT_EP_WS        1
#define NGX_FEIRA_RT_EP_LOCATION  2


static ngx_command_t  ngx_http_feira_realtime_commands[] = {

    { ngx_string("feira_realtime"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_realtime,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_FEIRA_RT_EP_WS },

    { ngx_string("feira_realtime_location"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_realtime,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      (void *) NGX_FEIRA_RT_EP_LOCATION },

    { ngx_string("feira_realtime_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_feira_realtime_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_realtime_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, max_message),
      NULL },

    { ngx_string("feira_realtime_send_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, send_queue),
      NULL },

    { ngx_string("feira_realtime_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, ping_interval),
      NULL },

    { ngx_string("feira_realtime_ping_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, ping_timeout),
      NULL },

    { ngx_string("feira_realtime_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, send_timeout),
      NULL },

    { ngx_string("feira_realtime_close_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, close_timeout),
      NULL },

    { ngx_string("feira_realtime_max_subscriptions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, max_subscriptions),
      NULL },

    { ngx_string("feira_realtime_auth_check"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_main_conf_t, auth_check),
      NULL },

    { ngx_string("feira_realtime_presence_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_main_conf_t, presence_interval),
      NULL },

    { ngx_string("feira_realtime_location_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_main_conf_t, location_interval),
      NULL },

    { ngx_string("feira_realtime_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_realtime_limit_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_realtime_per_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_loc_conf_t, per_address),
      NULL },

    { ngx_string("feira_realtime_lookup_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_realtime_main_conf_t, lookup_cache),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_realtime_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_realtime_create_main_conf,
                                           /* create main configuration */
    ngx_http_feira_realtime_init_main_conf,
                                           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_realtime_create_loc_conf,
                                           /* create location configuration */
    ngx_http_feira_realtime_merge_loc_conf
                                           /* merge location configuration */
};


ngx_module_t  ngx_http_feira_realtime_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_realtime_module_ctx,   /* module context */
    ngx_http_feira_realtime_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_realtime_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_realtime_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the running configuration, set in init_process */
static ngx_http_feira_realtime_main_conf_t  *ngx_http_feira_realtime_running;


static void *
ngx_http_feira_realtime_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_realtime_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_realtime_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->used = 0;
     */

    rmcf->auth_check = NGX_CONF_UNSET_MSEC;
    rmcf->presence_interval = NGX_CONF_UNSET_MSEC;
    rmcf->location_interval = NGX_CONF_UNSET_MSEC;
    rmcf->lookup_cache = NGX_CONF_UNSET_MSEC;

    return rmcf;
}


static char *
ngx_http_feira_realtime_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_realtime_main_conf_t  *rmcf = conf;

    ngx_http_feira_main_conf_t  *fmcf;

    ngx_conf_init_msec_value(rmcf->auth_check, 1000);
    ngx_conf_init_msec_value(rmcf->presence_interval, 20000);
    ngx_conf_init_msec_value(rmcf->location_interval, 1000);
    ngx_conf_init_msec_value(rmcf->lookup_cache, 5000);

    if (rmcf->auth_check == 0 || rmcf->presence_interval == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_realtime_auth_check\" and "
                           "\"feira_realtime_presence_interval\" must be "
                           "greater than 0");
        return NGX_CONF_ERROR;
    }

    if (!rmcf->used) {
        return NGX_CONF_OK;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->redis_host.len == 0 || fmcf->mongo_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "feira_realtime needs \"feira_redis\" (the "
                           "fan-out) and \"feira_mongo_uri\" (who may "
                           "subscribe)");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_realtime_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_realtime_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_realtime_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    rlcf->origins = NGX_CONF_UNSET_PTR;
    rlcf->max_message = NGX_CONF_UNSET_SIZE;
    rlcf->send_queue = NGX_CONF_UNSET_SIZE;
    rlcf->ping_interval = NGX_CONF_UNSET_MSEC;
    rlcf->ping_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->send_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->close_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->max_subscriptions = NGX_CONF_UNSET_UINT;
    rlcf->per_address = NGX_CONF_UNSET_UINT;

    return rlcf;
}


static char *
ngx_http_feira_realtime_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_realtime_loc_conf_t  *prev = parent;
    ngx_http_feira_realtime_loc_conf_t  *conf = child;

    ngx_http_feira_realtime_main_conf_t  *rmcf;

    ngx_conf_merge_ptr_value(conf->origins, prev->origins, NULL);
    ngx_conf_merge_size_value(conf->max_message, prev->max_message,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->send_queue, prev->send_queue,
                              256 * 1024);
    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              30000);
    ngx_conf_merge_msec_value(conf->ping_timeout, prev->ping_timeout, 10000);
    ngx_conf_merge_msec_value(conf->send_timeout, prev->send_timeout, 10000);
    ngx_conf_merge_msec_value(conf->close_timeout, prev->close_timeout,
                              5000);
    ngx_conf_merge_uint_value(conf->max_subscriptions,
                              prev->max_subscriptions, 32);
    ngx_conf_merge_uint_value(conf->per_address, prev->per_address, 0);

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_realtime_module);

    if (conf->per_address && rmcf->limit_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_realtime_per_address\" needs "
                           "\"feira_realtime_limit_zone\"");
        return NGX_CONF_ERROR;
    }

    if (conf->max_message == 0 || conf->send_queue < conf->max_message
        || conf->ping_interval == 0 || conf->ping_timeout == 0
        || conf->send_timeout == 0 || conf->close_timeout == 0
        || conf->max_subscriptions == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "feira_realtime: sizes, times and "
                           "\"feira_realtime_max_subscriptions\" must be "
                           "greater than 0, and "
                           "\"feira_realtime_send_queue\" at least "
                           "\"feira_realtime_max_message\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_realtime(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_feira_realtime_main_conf_t  *rmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    if ((uintptr_t) cmd->post == NGX_FEIRA_RT_EP_WS) {
        clcf->handler = ngx_feira_rt_ws_handler;

    } else {
        clcf->handler = ngx_feira_rt_location_handler;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_realtime_module);
    rmcf->used = 1;

    return NGX_CONF_OK;
}


/* scheme://host[:port], compared case-insensitively with Origin */

static char *
ngx_http_feira_realtime_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_realtime_loc_conf_t  *rlcf = conf;

    u_char      *p, *host;
    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (rlcf->origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    rlcf->origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_str_t));
    if (rlcf->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        p = value[i].data;

        if (ngx_strncasecmp(p, (u_char *) "http://", 7) == 0) {
            host = p + 7;

        } else if (ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
            host = p + 8;

        } else {
            host = NULL;
        }

        if (host == NULL || host == p + value[i].len
            || ngx_strlchr(host, p + value[i].len, '/') != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\" in "
                               "\"feira_realtime_origins\", expected "
                               "scheme://host[:port]", &value[i]);
            return NGX_CONF_ERROR;
        }

        origin = ngx_array_push(rlcf->origins);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_feira_rt_ready(void)
{
    return ngx_http_feira_realtime_running != NULL;
}


static ngx_int_t
ngx_http_feira_realtime_init_process(ngx_cycle_t *cycle)
{
    ngx_http_feira_realtime_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_realtime_module);
    if (rmcf == NULL || !rmcf->used) {
        return NGX_OK;
    }

    if (ngx_feira_rt_hub_init(cycle) != NGX_OK
        || ngx_feira_rt_access_init(cycle, rmcf) != NGX_OK
        || ngx_feira_rt_location_init(cycle, rmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_feira_realtime_running = rmcf;

    return NGX_OK;
}


static void
ngx_http_feira_realtime_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_feira_realtime_running == NULL) {
        return;
    }

    ngx_feira_rt_ws_shutdown();
    ngx_feira_rt_access_exit();
    ngx_feira_rt_location_exit();
    ngx_feira_rt_hub_exit();

    ngx_http_feira_realtime_running = NULL;
}


static char *
ngx_http_feira_realtime_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_realtime_main_conf_t  *rmcf = conf;

    ngx_str_t  *value;

    static ngx_str_t  name = ngx_string("feira_realtime_limit");

    if (rmcf->limit_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rmcf->limit_zone = ngx_feira_addr_limit_zone(cf, &name, &value[1],
                                      &ngx_http_feira_realtime_module);
    if (rmcf->limit_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
