/*
 * feira_users: directives and configuration.  "feira_users;" serves the
 * profiles under a prefix location, "feira_users_reviews;" the reviews of
 * a request (".../{request_id}/reviews").
 */

#include "ngx_http_feira_users_module.h"


#define NGX_FEIRA_USERS_COMMENT_MAX   1000
#define NGX_FEIRA_USERS_DEVICES_MAX   10


static void *ngx_http_feira_users_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_users_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_feira_users_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_users_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_users(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_users_reviews(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_feira_users_commands[] = {

    { ngx_string("feira_users"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_users,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_users_reviews"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_users_reviews,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_users_comment_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_users_loc_conf_t, comment_max),
      NULL },

    { ngx_string("feira_users_devices_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_users_loc_conf_t, devices_max),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_users_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_users_create_main_conf, /* create main configuration */
    ngx_http_feira_users_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_users_create_loc_conf,  /* create location configuration */
    ngx_http_feira_users_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_feira_users_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_users_module_ctx,      /* module context */
    ngx_http_feira_users_commands,         /* module directives */
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


static void *
ngx_http_feira_users_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_users_main_conf_t  *umcf;

    umcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_users_main_conf_t));
    if (umcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     umcf->used = 0;
     */

    return umcf;
}


static char *
ngx_http_feira_users_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_users_main_conf_t  *umcf = conf;

    ngx_http_feira_main_conf_t  *fmcf;

    if (!umcf->used) {
        return NGX_CONF_OK;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->mongo_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_users\" and \"feira_users_reviews\" "
                           "need \"feira_mongo_uri\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_users_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_users_loc_conf_t  *ulcf;

    ulcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_users_loc_conf_t));
    if (ulcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     ulcf->endpoint = 0;
     *     ulcf->prefix = { 0, NULL };
     */

    ulcf->comment_max = NGX_CONF_UNSET_UINT;
    ulcf->devices_max = NGX_CONF_UNSET_UINT;

    return ulcf;
}


static char *
ngx_http_feira_users_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_users_loc_conf_t  *prev = parent;
    ngx_http_feira_users_loc_conf_t  *conf = child;

    ngx_conf_merge_uint_value(conf->comment_max, prev->comment_max,
                              NGX_FEIRA_USERS_COMMENT_MAX);
    ngx_conf_merge_uint_value(conf->devices_max, prev->devices_max,
                              NGX_FEIRA_USERS_DEVICES_MAX);

    /* a review must fit in a body of the default limit */
    if (conf->comment_max < 1 || conf->comment_max > 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_users_comment_max\" must be "
                           "from 1 to 10000");
        return NGX_CONF_ERROR;
    }

    /* GET .../devices answers them all in one page */
    if (conf->devices_max < 1 || conf->devices_max > NGX_FEIRA_PAGE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_users_devices_max\" must be "
                           "from 1 to 100");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The resources are parsed after the location's own prefix, which is
 * configuration: "location /v1/users/ { feira_users; }" or any other.
 */

static char *
ngx_http_feira_users(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_users_loc_conf_t  *ulcf = conf;

    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_feira_users_main_conf_t  *umcf;

    if (ulcf->endpoint) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->exact_match || clcf->named || clcf->noname
#if (NGX_PCRE)
        || clcf->regex
#endif
        || clcf->name.len == 0 || clcf->name.data[clcf->name.len - 1] != '/')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_users\" must be in a prefix location "
                           "that ends with \"/\", such as "
                           "\"location /v1/users/\"");
        return NGX_CONF_ERROR;
    }

    ulcf->endpoint = NGX_FEIRA_USERS_EP_USERS;
    ulcf->prefix = clcf->name;

    umcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_users_module);
    umcf->used = 1;

    clcf->handler = ngx_feira_users_handler;

    return NGX_CONF_OK;
}


/* the request id is the segment before the last one of the path */

static char *
ngx_http_feira_users_reviews(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_users_loc_conf_t  *ulcf = conf;

    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_feira_users_main_conf_t  *umcf;

    if (ulcf->endpoint) {
        return "is duplicate";
    }

    ulcf->endpoint = NGX_FEIRA_USERS_EP_REVIEWS;

    umcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_users_module);
    umcf->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_feira_users_reviews_handler;

    return NGX_CONF_OK;
}
