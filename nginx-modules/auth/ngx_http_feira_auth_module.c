/*
 * feira_auth: directives, configuration, the access phase hook, the
 * $feira_user_id and $feira_user_role variables, the per-worker feed.
 */

#include "ngx_http_feira_auth_module.h"


static ngx_int_t ngx_http_feira_auth_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_feira_auth_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_feira_auth_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_auth_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_feira_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_feira_auth_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_auth_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_auth_login_limit(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_feira_auth_argon2(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_feira_auth_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_feira_auth_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_auth_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_feira_auth_endpoints[] = {
    { ngx_string("register"), NGX_FEIRA_AUTH_EP_REGISTER },
    { ngx_string("login"), NGX_FEIRA_AUTH_EP_LOGIN },
    { ngx_string("refresh"), NGX_FEIRA_AUTH_EP_REFRESH },
    { ngx_string("logout"), NGX_FEIRA_AUTH_EP_LOGOUT },
    { ngx_string("me"), NGX_FEIRA_AUTH_EP_ME },
    { ngx_string("jwks"), NGX_FEIRA_AUTH_EP_JWKS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_feira_auth_commands[] = {

    { ngx_string("feira_auth_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_feira_auth_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_algorithm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, algorithm),
      NULL },

    { ngx_string("feira_auth_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, secret_file),
      NULL },

    { ngx_string("feira_auth_private_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, private_key),
      NULL },

    { ngx_string("feira_auth_public_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, public_key),
      NULL },

    { ngx_string("feira_auth_kid"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, kid),
      NULL },

    { ngx_string("feira_auth_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, issuer),
      NULL },

    { ngx_string("feira_auth_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, audience),
      NULL },

    { ngx_string("feira_auth_access_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, access_ttl),
      NULL },

    { ngx_string("feira_auth_refresh_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, refresh_ttl),
      NULL },

    { ngx_string("feira_auth_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, leeway),
      NULL },

    { ngx_string("feira_auth_feed_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_main_conf_t, feed_timeout),
      NULL },

    { ngx_string("feira_auth_login_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_feira_auth_login_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_argon2"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_feira_auth_argon2,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_admin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_feira_auth_admin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_auth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_feira_auth_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_auth_query_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_auth_loc_conf_t, query_token),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_auth_module_ctx = {
    ngx_http_feira_auth_preconfiguration,  /* preconfiguration */
    ngx_http_feira_auth_postconfiguration, /* postconfiguration */

    ngx_http_feira_auth_create_main_conf,  /* create main configuration */
    ngx_http_feira_auth_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_auth_create_loc_conf,   /* create location configuration */
    ngx_http_feira_auth_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_feira_auth_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_auth_module_ctx,       /* module context */
    ngx_http_feira_auth_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_auth_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_auth_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_feira_auth_vars[] = {

    { ngx_string("feira_user_id"), NULL, ngx_http_feira_auth_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("feira_user_role"), NULL, ngx_http_feira_auth_variable,
      1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* the running configuration, for the worker's feed */
static ngx_http_feira_auth_main_conf_t  *ngx_http_feira_auth_running;


static ngx_int_t
ngx_http_feira_auth_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_feira_auth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_auth_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_feira_auth_access_handler;

    return NGX_OK;
}


static void *
ngx_http_feira_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_auth_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->shm_zone = NULL;
     *     amcf->algorithm, secret_file, private_key, public_key = { 0, NULL };
     *     amcf->kid, issuer, audience, admin_email = { 0, NULL };
     *     amcf->used = 0;
     *     amcf->endpoints = 0;
     */

    amcf->access_ttl = NGX_CONF_UNSET;
    amcf->refresh_ttl = NGX_CONF_UNSET;
    amcf->leeway = NGX_CONF_UNSET;
    amcf->feed_timeout = NGX_CONF_UNSET_MSEC;
    amcf->login_failures = NGX_CONF_UNSET_UINT;
    amcf->argon2_t = 0;

    return amcf;
}


static char *
ngx_http_feira_auth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_auth_main_conf_t  *amcf = conf;

    ngx_http_feira_main_conf_t  *fmcf;

    ngx_conf_init_value(amcf->access_ttl, 15 * 60);
    ngx_conf_init_value(amcf->refresh_ttl, 30 * 24 * 60 * 60);
    ngx_conf_init_value(amcf->leeway, 30);
    ngx_conf_init_msec_value(amcf->feed_timeout, 5000);

    if (amcf->login_failures == NGX_CONF_UNSET_UINT) {
        amcf->login_failures = 5;
        amcf->login_window = 15 * 60;
        amcf->login_lockout = 60;
    }

    if (amcf->argon2_t == 0) {
        /* OWASP's first recommendation for argon2id: 19 MiB, 2 passes */
        amcf->argon2_t = 2;
        amcf->argon2_m = 19456;
        amcf->argon2_p = 1;
    }

    if (amcf->issuer.len == 0) {
        ngx_str_set(&amcf->issuer, "feira");
    }

    if (amcf->audience.len == 0) {
        ngx_str_set(&amcf->audience, "feira-api");
    }

    if (!amcf->used) {
        return NGX_CONF_OK;
    }

    if (amcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_auth_require\" and "
                           "\"feira_auth_endpoint\" need a "
                           "\"feira_auth_zone\"");
        return NGX_CONF_ERROR;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->redis_host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "feira_auth needs \"feira_redis\": the deny list "
                           "lives there");
        return NGX_CONF_ERROR;
    }

    if (amcf->endpoints && fmcf->mongo_uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_auth_endpoint\" needs "
                           "\"feira_mongo_uri\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_feira_auth_load_keys(cf, amcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* the strings the JWT code takes are NUL-terminated by the parser */
    amcf->jwt.kid = amcf->kid.len ? (char *) amcf->kid.data : NULL;
    amcf->jwt.issuer = (char *) amcf->issuer.data;
    amcf->jwt.audience = (char *) amcf->audience.data;
    amcf->jwt.ttl = (long) amcf->access_ttl;
    amcf->jwt.leeway = (long) amcf->leeway;

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_auth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_auth_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_auth_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     alcf->endpoint = 0;
     */

    alcf->roles = NGX_CONF_UNSET_PTR;
    alcf->query_token = NGX_CONF_UNSET;

    return alcf;
}


static char *
ngx_http_feira_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_feira_auth_loc_conf_t  *prev = parent;
    ngx_http_feira_auth_loc_conf_t  *conf = child;

    ngx_conf_merge_ptr_value(conf->roles, prev->roles, NULL);
    ngx_conf_merge_value(conf->query_token, prev->query_token, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_auth_main_conf_t  *amcf = conf;

    void       *ctx;
    ssize_t     size;
    ngx_str_t  *value;

    if (amcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_feira_auth_zone_ctx(cf->pool);
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                           &ngx_http_feira_auth_module);
    if (amcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (amcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "feira_auth_zone \"%V\" is already defined",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->shm_zone->init = ngx_feira_auth_zone_init;
    amcf->shm_zone->data = ctx;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_auth_loc_conf_t  *alcf = conf;

    ngx_str_t                        *value;
    ngx_conf_enum_t                  *e;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_feira_auth_main_conf_t  *amcf;

    if (alcf->endpoint) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = ngx_http_feira_auth_endpoints; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            break;
        }
    }

    if (e->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown feira_auth_endpoint \"%V\", expected "
                           "register, login, refresh, logout, me or jwks",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->endpoint = e->value;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_feira_auth_module);
    amcf->used = 1;

    if (e->value != NGX_FEIRA_AUTH_EP_JWKS) {
        amcf->endpoints = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_feira_auth_endpoint_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_auth_loc_conf_t  *alcf = conf;

    ngx_str_t                        *value, *role;
    ngx_uint_t                        i;
    ngx_http_feira_auth_main_conf_t  *amcf;

    if (alcf->roles != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        alcf->roles = NULL;
        return NGX_CONF_OK;
    }

    alcf->roles = ngx_array_create(cf->pool, 3, sizeof(ngx_str_t));
    if (alcf->roles == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (!ngx_feira_jwt_role_valid((char *) value[i].data)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown role \"%V\" in feira_auth_require, "
                               "expected client, provider or admin",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        role = ngx_array_push(alcf->roles);
        if (role == NULL) {
            return NGX_CONF_ERROR;
        }

        *role = value[i];
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_feira_auth_module);
    amcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_login_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_auth_main_conf_t  *amcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (amcf->login_failures != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    amcf->login_window = ngx_parse_time(&value[2], 1);
    amcf->login_lockout = ngx_parse_time(&value[3], 1);

    if (n <= 0 || amcf->login_window == (time_t) NGX_ERROR
        || amcf->login_lockout == (time_t) NGX_ERROR
        || amcf->login_window <= 0 || amcf->login_lockout <= 0)
    {
        return "expects <failures> <window> <lockout>, "
               "such as \"5 15m 1m\"";
    }

    amcf->login_failures = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_argon2(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_auth_main_conf_t  *amcf = conf;

    ngx_int_t   t, m, p;
    ngx_str_t  *value;

    if (amcf->argon2_t) {
        return "is duplicate";
    }

    value = cf->args->elts;

    t = ngx_atoi(value[1].data, value[1].len);
    m = ngx_atoi(value[2].data, value[2].len);
    p = ngx_atoi(value[3].data, value[3].len);

    if (t < 1 || p < 1 || p > 16 || m < 8 * p || m > 4 * 1024 * 1024) {
        return "expects <passes> <memory in KiB> <lanes>, "
               "such as \"2 19456 1\"";
    }

    /* below OWASP's floor only when asked for, and said so */
    if (m * t < 19456 * 2) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "feira_auth_argon2 %i %i %i is below OWASP's "
                           "recommendation (2 19456 1)", t, m, p);
    }

    amcf->argon2_t = (uint32_t) t;
    amcf->argon2_m = (uint32_t) m;
    amcf->argon2_p = (uint32_t) p;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_auth_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_auth_main_conf_t  *amcf = conf;

    ssize_t      n;
    ngx_str_t   *value, name;
    ngx_file_t   file;
    u_char       buf[257];

    if (amcf->admin_email.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '@')
        == NULL)
    {
        return "expects <e-mail> <password file>";
    }

    amcf->admin_email.data = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (amcf->admin_email.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_strlow(amcf->admin_email.data, value[1].data, value[1].len);
    amcf->admin_email.data[value[1].len] = '\0';
    amcf->admin_email.len = value[1].len;

    name = value[2];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, buf, sizeof(buf) - 1, 0);
    ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    if (n < 10) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the admin password in \"%V\" must have at least "
                           "10 characters", &name);
        return NGX_CONF_ERROR;
    }

    amcf->admin_password.data = ngx_pnalloc(cf->pool, n + 1);
    if (amcf->admin_password.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(amcf->admin_password.data, buf, n);
    amcf->admin_password.data[n] = '\0';
    amcf->admin_password.len = n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t             *s;
    ngx_feira_identity_t  *id;

    id = ngx_feira_identity(r);

    if (id == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (data == 0) ? &id->id : &id->role;

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_feira_auth_init_process(ngx_cycle_t *cycle)
{
    ngx_http_feira_auth_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_auth_module);
    if (amcf == NULL || !amcf->used) {
        return NGX_OK;
    }

    ngx_http_feira_auth_running = amcf;

    if (ngx_feira_auth_feed_init(cycle, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_feira_auth_store_start(cycle, amcf);

    return NGX_OK;
}


static void
ngx_http_feira_auth_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_feira_auth_running) {
        ngx_feira_auth_feed_exit();
        ngx_http_feira_auth_running = NULL;
    }
}
