/*
 * feira_chat: directives and configuration.  "feira_chat;" serves the
 * conversations of a request (".../{request_id}/messages[/read]",
 * ".../{request_id}/conversations") and, in every worker, the "chat",
 * "typing" and "read" messages of feira_realtime's WebSocket.
 */

#include "ngx_http_feira_chat_module.h"


#define NGX_FEIRA_CHAT_TEXT_MAX         4000
#define NGX_FEIRA_CHAT_TYPING_INTERVAL  2000
#define NGX_FEIRA_CHAT_ONLINE_WINDOW    60000


static void *ngx_http_feira_chat_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_chat_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_feira_chat_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_chat_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_chat(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_chat_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_chat_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_feira_chat_commands[] = {

    { ngx_string("feira_chat"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_chat,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_chat_topic"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_chat_main_conf_t, topic),
      NULL },

    { ngx_string("feira_chat_text_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_chat_main_conf_t, text_max),
      NULL },

    { ngx_string("feira_chat_typing_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_chat_main_conf_t, typing_interval),
      NULL },

    { ngx_string("feira_chat_online_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_chat_main_conf_t, online_window),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_chat_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_chat_create_main_conf,  /* create main configuration */
    ngx_http_feira_chat_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_chat_create_loc_conf,   /* create location configuration */
    ngx_http_feira_chat_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_feira_chat_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_chat_module_ctx,       /* module context */
    ngx_http_feira_chat_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_chat_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_chat_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_feira_chat_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_chat_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_chat_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->topic = { 0, NULL };
     *     cmcf->used = 0;
     */

    cmcf->text_max = NGX_CONF_UNSET_SIZE;
    cmcf->typing_interval = NGX_CONF_UNSET_MSEC;
    cmcf->online_window = NGX_CONF_UNSET_MSEC;

    return cmcf;
}


static char *
ngx_http_feira_chat_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_chat_main_conf_t  *cmcf = conf;

    u_char                      *p;
    ngx_uint_t                   i;
    ngx_http_feira_main_conf_t  *fmcf;

    if (cmcf->topic.data == NULL) {
        ngx_str_set(&cmcf->topic, NGX_FEIRA_CHAT_TOPIC);
    }

    /* Kafka's rule for topic names */
    for (i = 0; i < cmcf->topic.len; i++) {
        if (!isalnum(cmcf->topic.data[i]) && cmcf->topic.data[i] != '.'
            && cmcf->topic.data[i] != '_' && cmcf->topic.data[i] != '-')
        {
            break;
        }
    }

    if (cmcf->topic.len == 0 || cmcf->topic.len > 249
        || i != cmcf->topic.len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_chat_topic\" must be 1 to 249 of "
                           "A-Z a-z 0-9 . _ -");
        return NGX_CONF_ERROR;
    }

    /* produced with a C string */
    p = ngx_pnalloc(cf->pool, cmcf->topic.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(p, cmcf->topic.data, cmcf->topic.len + 1);
    cmcf->topic.data = p;

    ngx_conf_init_size_value(cmcf->text_max, NGX_FEIRA_CHAT_TEXT_MAX);
    ngx_conf_init_msec_value(cmcf->typing_interval,
                             NGX_FEIRA_CHAT_TYPING_INTERVAL);
    ngx_conf_init_msec_value(cmcf->online_window,
                             NGX_FEIRA_CHAT_ONLINE_WINDOW);

    /* 4 bytes a character at most: a text must fit in the body limit */
    if (cmcf->text_max < 1 || cmcf->text_max > NGX_FEIRA_CHAT_TEXT_LIMIT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_chat_text_max\" must be from 1 to %d",
                           NGX_FEIRA_CHAT_TEXT_LIMIT);
        return NGX_CONF_ERROR;
    }

    if (cmcf->typing_interval < 100 || cmcf->typing_interval > 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_chat_typing_interval\" must be from "
                           "100ms to 60s");
        return NGX_CONF_ERROR;
    }

    /* feira_realtime refreshes feira:online every presence interval */
    if (cmcf->online_window < 1000 || cmcf->online_window > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_chat_online_window\" must be from "
                           "1s to 1h");
        return NGX_CONF_ERROR;
    }

    if (!cmcf->used) {
        return NGX_CONF_OK;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->mongo_uri.len == 0 || fmcf->redis_host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_chat\" needs \"feira_mongo_uri\" and "
                           "\"feira_redis\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_chat_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_chat_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_chat_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    clcf->enabled = NGX_CONF_UNSET;

    return clcf;
}


static char *
ngx_http_feira_chat_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_chat_loc_conf_t  *conf = child;

    /* not inherited: the handler is the location's own */
    ngx_conf_init_value(conf->enabled, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_chat(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_chat_loc_conf_t  *lcf = conf;

    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_feira_chat_main_conf_t  *cmcf;

    if (lcf->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->enabled = 1;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_feira_chat_module);
    cmcf->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_feira_chat_handler;

    return NGX_CONF_OK;
}


/* the WebSocket types are served by the workers of a configured chat */

static ngx_int_t
ngx_http_feira_chat_init_process(ngx_cycle_t *cycle)
{
    ngx_http_feira_chat_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_chat_module);

    if (cmcf == NULL || !cmcf->used) {
        return NGX_OK;
    }

    ngx_feira_chat_oid_init();

    if (ngx_feira_wsmsg_register("chat", ngx_feira_chat_ws_message)
            != NGX_OK
        || ngx_feira_wsmsg_register("typing", ngx_feira_chat_ws_message)
           != NGX_OK
        || ngx_feira_wsmsg_register("read", ngx_feira_chat_ws_message)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "feira: chat: WebSocket types not registered");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_feira_chat_exit_process(ngx_cycle_t *cycle)
{
    ngx_feira_wsmsg_unregister(ngx_feira_chat_ws_message);
}


ngx_http_feira_chat_main_conf_t *
ngx_feira_chat_conf(void)
{
    return ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_feira_chat_module);
}
