/*
 * feira_services: directives, configuration, the content handler of the
 * "feira_services" locations and what their handlers share.
 */

#include "ngx_http_feira_services_module.h"


static void *ngx_http_feira_services_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_services_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_feira_services_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_services_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_services(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_services_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_services_init_process(ngx_cycle_t *cycle);
static void ngx_http_feira_services_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_feira_svc_send_problem(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static void ngx_feira_svc_nested_field(ngx_feira_errors_t *errs,
    const char *prefix, const char *field, const char *message);


static ngx_conf_enum_t  ngx_http_feira_services_kinds[] = {
    { ngx_string("categories"), NGX_FEIRA_SVC_CATEGORIES },
    { ngx_string("offerings"), NGX_FEIRA_SVC_OFFERINGS },
    { ngx_string("presence"), NGX_FEIRA_SVC_PRESENCE },
    { ngx_string("requests"), NGX_FEIRA_SVC_REQUESTS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_feira_services_commands[] = {

    { ngx_string("feira_services"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_services,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_services_presence_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, presence_ttl),
      NULL },

    { ngx_string("feira_services_request_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, request_ttl),
      NULL },

    { ngx_string("feira_services_sweep_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, sweep_interval),
      NULL },

    { ngx_string("feira_services_relay_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, relay_after),
      NULL },

    { ngx_string("feira_services_offer_top"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, offer_top),
      NULL },

    { ngx_string("feira_services_max_radius"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, max_radius),
      NULL },

    { ngx_string("feira_services_rating_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, rating_ttl),
      NULL },

    { ngx_string("feira_services_request_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, request_cache),
      NULL },

    { ngx_string("feira_services_match_candidates"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_services_main_conf_t, candidates),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_services_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_services_create_main_conf,
                                           /* create main configuration */
    ngx_http_feira_services_init_main_conf,
                                           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_services_create_loc_conf,
                                           /* create location configuration */
    ngx_http_feira_services_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_feira_services_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_services_module_ctx,   /* module context */
    ngx_http_feira_services_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_feira_services_init_process,  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_feira_services_exit_process,  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_feira_services_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_services_main_conf_t  *smcf;

    smcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_services_main_conf_t));
    if (smcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     smcf->used = 0;
     *     smcf->requests = 0;
     */

    smcf->presence_ttl = NGX_CONF_UNSET;
    smcf->request_ttl = NGX_CONF_UNSET;
    smcf->rating_ttl = NGX_CONF_UNSET;
    smcf->request_cache = NGX_CONF_UNSET;
    smcf->relay_after = NGX_CONF_UNSET;
    smcf->sweep_interval = NGX_CONF_UNSET_MSEC;
    smcf->offer_top = NGX_CONF_UNSET_UINT;
    smcf->max_radius = NGX_CONF_UNSET_UINT;
    smcf->candidates = NGX_CONF_UNSET_UINT;

    return smcf;
}


static char *
ngx_http_feira_services_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_services_main_conf_t  *smcf = conf;

    ngx_http_feira_main_conf_t  *fmcf;

    ngx_conf_init_value(smcf->presence_ttl, 60);
    ngx_conf_init_value(smcf->request_ttl, 3600);
    ngx_conf_init_value(smcf->rating_ttl, 60);
    ngx_conf_init_value(smcf->request_cache, 300);
    ngx_conf_init_value(smcf->relay_after, 30);
    ngx_conf_init_msec_value(smcf->sweep_interval, 10000);
    ngx_conf_init_uint_value(smcf->offer_top, 5);
    ngx_conf_init_uint_value(smcf->max_radius, 100);
    ngx_conf_init_uint_value(smcf->candidates, 2000);

    if (smcf->presence_ttl < 1 || smcf->request_ttl < 1
        || smcf->relay_after < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services_presence_ttl\", "
                           "\"feira_services_request_ttl\" and "
                           "\"feira_services_relay_after\" must be at "
                           "least 1s");
        return NGX_CONF_ERROR;
    }

    if (smcf->sweep_interval < 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services_sweep_interval\" must be at "
                           "least 100ms");
        return NGX_CONF_ERROR;
    }

    if (smcf->offer_top > NGX_FEIRA_SVC_MAX_OFFERED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services_offer_top\" must be 0..%d",
                           NGX_FEIRA_SVC_MAX_OFFERED);
        return NGX_CONF_ERROR;
    }

    if (smcf->max_radius < 1 || smcf->max_radius > 20000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services_max_radius\" must be 1..20000 "
                           "(km)");
        return NGX_CONF_ERROR;
    }

    if (smcf->candidates < 1 || smcf->candidates > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services_match_candidates\" must be "
                           "1..100000");
        return NGX_CONF_ERROR;
    }

    if (!smcf->used) {
        return NGX_CONF_OK;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->mongo_uri.len == 0 || fmcf->redis_host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services\" needs \"feira_mongo_uri\" "
                           "and \"feira_redis\"");
        return NGX_CONF_ERROR;
    }

    if (smcf->requests && fmcf->kafka_brokers.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services requests\" needs "
                           "\"feira_kafka_brokers\": every transition is "
                           "published");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_services_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_services_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_services_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     slcf->kind = 0;
     */

    return slcf;
}


static char *
ngx_http_feira_services_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    /* the kind belongs to the location that names it, never inherited */
    return NGX_CONF_OK;
}


static char *
ngx_http_feira_services(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_feira_services_loc_conf_t  *slcf = conf;

    ngx_str_t                            *value;
    ngx_conf_enum_t                      *e;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_feira_services_main_conf_t  *smcf;

    if (slcf->kind) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = ngx_http_feira_services_kinds; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            break;
        }
    }

    if (e->name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown feira_services \"%V\", expected "
                           "categories, offerings, presence or requests",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

#if (NGX_PCRE)
    if (clcf->regex) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_services\" belongs in a prefix or exact "
                           "location: the id is read after its name");
        return NGX_CONF_ERROR;
    }
#endif

    slcf->kind = e->value;
    clcf->handler = ngx_http_feira_services_handler;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_services_module);
    smcf->used = 1;

    if (e->value == NGX_FEIRA_SVC_REQUESTS) {
        smcf->requests = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_services_handler(ngx_http_request_t *r)
{
    ngx_http_feira_services_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_services_module);

    switch (slcf->kind) {

    case NGX_FEIRA_SVC_CATEGORIES:
        return ngx_feira_svc_categories_handler(r);

    case NGX_FEIRA_SVC_OFFERINGS:
        return ngx_feira_svc_offerings_handler(r);

    case NGX_FEIRA_SVC_PRESENCE:
        return ngx_feira_svc_presence_handler(r);

    case NGX_FEIRA_SVC_REQUESTS:
        return ngx_feira_svc_requests_handler(r);

    default:
        return NGX_DECLINED;
    }
}


static ngx_int_t
ngx_http_feira_services_init_process(ngx_cycle_t *cycle)
{
    ngx_http_feira_services_main_conf_t  *smcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    smcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_services_module);
    if (smcf == NULL || !smcf->used) {
        return NGX_OK;
    }

    return ngx_feira_svc_sweep_init(cycle, smcf);
}


static void
ngx_http_feira_services_exit_process(ngx_cycle_t *cycle)
{
    ngx_feira_svc_sweep_exit();
}


/* a job with the caller and the time filled in */

ngx_feira_svc_job_t *
ngx_feira_svc_job(ngx_http_request_t *r)
{
    ngx_feira_svc_job_t   *job;
    ngx_feira_identity_t  *id;

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_svc_job_t));
    if (job == NULL) {
        return NULL;
    }

    job->smcf = ngx_http_get_module_main_conf(r,
                                              ngx_http_feira_services_module);
    job->now = (int64_t) ngx_time();
    job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    id = ngx_feira_identity(r);

    if (id != NULL && id->id.len < sizeof(job->user)
        && id->role.len < sizeof(job->role))
    {
        ngx_memcpy(job->user, id->id.data, id->id.len);
        ngx_memcpy(job->role, id->role.data, id->role.len);
    }

    return job;
}


/*
 * What follows the location's name: "" (the collection), "/<id>" or
 * "/<id>/<sub>"; NGX_DECLINED for anything else (404).
 */

ngx_int_t
ngx_feira_svc_path(ngx_http_request_t *r, ngx_str_t *id, ngx_str_t *sub)
{
    u_char                    *p, *last, *slash;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_str_null(id);
    ngx_str_null(sub);

    if (r->uri.len < clcf->name.len
        || ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) != 0)
    {
        return NGX_DECLINED;
    }

    p = r->uri.data + clcf->name.len;
    last = r->uri.data + r->uri.len;

    /* "/v1/requests" and "/v1/providers/me/" alike */
    if (p < last && *p == '/') {
        p++;

    } else if (p < last && (clcf->name.len == 0
                            || clcf->name.data[clcf->name.len - 1] != '/'))
    {
        return NGX_DECLINED;
    }

    if (p == last) {
        return NGX_OK;
    }

    slash = ngx_strlchr(p, last, '/');

    if (slash == NULL) {
        id->data = p;
        id->len = last - p;
        return NGX_OK;
    }

    id->data = p;
    id->len = slash - p;

    sub->data = slash + 1;
    sub->len = last - slash - 1;

    if (id->len == 0 || sub->len == 0
        || ngx_strlchr(sub->data, last, '/') != NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* ?limit=1..100 (default 20) and ?cursor=, as every list of the API */

ngx_int_t
ngx_feira_svc_list_args(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_int_t  n;
    ngx_str_t  value;

    job->limit = NGX_FEIRA_SVC_DEFAULT_LIMIT;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n < 1 || n > NGX_FEIRA_SVC_MAX_LIMIT) {
            ngx_feira_errors_add(&job->errs, "limit", "must be 1..100");
            return NGX_ERROR;
        }

        job->limit = (ngx_uint_t) n;
    }

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &value) == NGX_OK) {
        if (value.len == 0 || value.len >= sizeof(job->cursor)) {
            ngx_feira_errors_add(&job->errs, "cursor", "is invalid");
            return NGX_ERROR;
        }

        ngx_memcpy(job->cursor, value.data, value.len);
    }

    return NGX_OK;
}


void
ngx_feira_svc_post(ngx_http_request_t *r, ngx_feira_job_pt fn,
    ngx_feira_done_pt done, ngx_feira_svc_job_t *job)
{
    if (ngx_feira_thread_post(r, fn, done, job) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy, try again", NULL));
    }
}


/* a job for a request without a body: the caller returns what this does */

ngx_int_t
ngx_feira_svc_run(ngx_http_request_t *r, ngx_feira_job_pt fn,
    ngx_feira_done_pt done, ngx_feira_svc_job_t *job)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;

    ngx_feira_svc_post(r, fn, done, job);

    return NGX_DONE;
}


/* a job for a request with a JSON body, handed to "handler" once read */

ngx_int_t
ngx_feira_svc_read(ngx_http_request_t *r, ngx_feira_body_pt handler,
    ngx_feira_svc_job_t *job)
{
    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

    return ngx_feira_read_json_body(r, handler);
}


ngx_int_t
ngx_feira_svc_not_found(ngx_http_request_t *r)
{
    return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND, "no such resource",
                                  NULL);
}


ngx_int_t
ngx_feira_svc_forbidden(ngx_http_request_t *r, const char *detail)
{
    return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN, detail, NULL);
}


/* the done handler of jobs whose answer is simply their result */

void
ngx_feira_svc_done(ngx_http_request_t *r, void *data)
{
    ngx_http_finalize_request(r, ngx_feira_svc_reply(r, data));
}


/* what a job allocated outside the pool goes with the request */

ngx_int_t
ngx_feira_svc_adopt(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    if (job->adopted) {
        return NGX_OK;
    }

    job->adopted = 1;

    if (job->result) {
        if (ngx_feira_json_cleanup_add(r->pool, job->result) != NGX_OK) {
            job->result = NULL;
            return NGX_ERROR;
        }
    }

    if (job->mirror) {
        if (ngx_feira_json_cleanup_add(r->pool, job->mirror) != NGX_OK) {
            job->mirror = NULL;
            return NGX_ERROR;
        }
    }

    if (job->cache) {
        if (ngx_feira_json_cleanup_add(r->pool, job->cache) != NGX_OK) {
            job->cache = NULL;
            return NGX_ERROR;
        }
    }

    for (i = 0; i < job->nevents; i++) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = free;
        cln->data = job->events[i];
    }

    return NGX_OK;
}


ngx_int_t
ngx_feira_svc_reply(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_int_t  rc;

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (job->status >= NGX_HTTP_BAD_REQUEST) {
        return ngx_feira_svc_send_problem(r, job);
    }

    if (job->status == NGX_HTTP_NO_CONTENT || job->result == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        return ngx_http_send_header(r);
    }

    return ngx_feira_send_json(r, job->status, job->result);
}


static ngx_int_t
ngx_feira_svc_send_problem(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    json_t     *extra;
    ngx_int_t   rc;

    if (job->status != NGX_HTTP_CONFLICT || job->current[0] == '\0') {
        return ngx_feira_send_problem(r, job->status, job->detail,
                                      job->errs.n ? &job->errs : NULL);
    }

    /*
     * An illegal transition says where the request stands: "status" is
     * the HTTP status in a problem (RFC 9457), so the request's own is
     * "current_status", and "request": {"id", "status"}
     */
    extra = json_pack("{s:s, s:{s:s, s:s}}", "current_status", job->current,
                      "request", "id", job->id, "status", job->current);
    if (extra == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_feira_send_problem_ext(r, job->status, job->detail,
                                    job->errs.n ? &job->errs : NULL, extra);

    json_decref(extra);

    return rc;
}


void
ngx_feira_svc_invalid(ngx_http_request_t *r, ngx_feira_errors_t *errs)
{
    ngx_http_finalize_request(r, ngx_feira_send_problem(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "the request is invalid", errs));
}


/* category slugs: they become parts of Redis keys, so a strict alphabet */

ngx_int_t
ngx_feira_svc_valid_slug(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_FEIRA_SVC_SLUG_LEN || s[0] == '-') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* {"amount": <integer minor units, >= 0>, "currency": "BRL"} */

ngx_int_t
ngx_feira_svc_money(json_t *v, const char *name, ngx_feira_errors_t *errs)
{
    size_t               i, before;
    const char          *c;
    ngx_feira_errors_t   inner;

    static const ngx_feira_field_t  fields[] = {
        { "amount", NGX_FEIRA_INTEGER, 1, 0, 0, 0, 1e12, NULL },
        { "currency", NGX_FEIRA_STRING, 1, 3, 3, 0, -1, NULL },
        { NULL, 0, 0, 0, 0, 0, 0, NULL }
    };

    before = errs->n;

    ngx_memzero(&inner, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(v, fields, &inner) != 0) {
        for (i = 0; i < inner.n; i++) {
            ngx_feira_svc_nested_field(errs, name, inner.items[i].field,
                                       inner.items[i].message);
        }

        return NGX_ERROR;
    }

    c = json_string_value(json_object_get(v, "currency"));

    for (i = 0; i < 3; i++) {
        if (c[i] < 'A' || c[i] > 'Z') {
            ngx_feira_svc_nested_field(errs, name, "currency",
                                       "must be an ISO 4217 code, "
                                       "such as BRL");
            break;
        }
    }

    return errs->n == before ? NGX_OK : NGX_ERROR;
}


/* {"lat": -90..90, "lng": -180..180} and, under "location", "address" */

ngx_int_t
ngx_feira_svc_latlng(json_t *obj, const char *prefix,
    ngx_feira_errors_t *errs)
{
    size_t                    i;
    ngx_feira_errors_t        inner;
    const ngx_feira_field_t  *fields;

    static const ngx_feira_field_t  plain[] = {
        { "lat", NGX_FEIRA_NUMBER, 1, 0, 0, -90, 90, NULL },
        { "lng", NGX_FEIRA_NUMBER, 1, 0, 0, -180, 180, NULL },
        { NULL, 0, 0, 0, 0, 0, 0, NULL }
    };

    static const ngx_feira_field_t  with_address[] = {
        { "lat", NGX_FEIRA_NUMBER, 1, 0, 0, -90, 90, NULL },
        { "lng", NGX_FEIRA_NUMBER, 1, 0, 0, -180, 180, NULL },
        { "address", NGX_FEIRA_STRING, 0, 1, 200, 0, -1, NULL },
        { NULL, 0, 0, 0, 0, 0, 0, NULL }
    };

    fields = prefix ? with_address : plain;

    ngx_memzero(&inner, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(obj, fields, &inner) == 0) {
        return NGX_OK;
    }

    for (i = 0; i < inner.n; i++) {
        ngx_feira_svc_nested_field(errs, prefix, inner.items[i].field,
                                   inner.items[i].message);
    }

    return NGX_ERROR;
}


static void
ngx_feira_svc_nested_field(ngx_feira_errors_t *errs, const char *prefix,
    const char *field, const char *message)
{
    char  name[64];

    if (prefix == NULL) {
        ngx_feira_errors_add(errs, field, message);
        return;
    }

    /* the name is copied by ngx_feira_errors_add() */
    ngx_snprintf((u_char *) name, sizeof(name) - 1, "%s%s%s%Z", prefix,
                 field[0] ? "." : "", field);
    name[sizeof(name) - 1] = '\0';

    ngx_feira_errors_add(errs, name, message);
}
