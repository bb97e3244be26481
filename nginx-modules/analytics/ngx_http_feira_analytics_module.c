/*
 * feira_analytics: what the analytics worker aggregated, per day.
 *
 *     location ~ ^/v1/providers/(?P<feira_provider>[^/]+)/dashboard$ {
 *         feira_auth_require;
 *         feira_analytics_dashboard  $feira_provider;
 *     }
 *     location = /v1/admin/reports/summary {
 *         feira_auth_require  admin;
 *         feira_analytics_summary;
 *     }
 *
 * GET ?from=YYYY-MM-DD&to=YYYY-MM-DD (default: the last 30 days, UTC), at
 * most feira_analytics_max_days days; JSON, or CSV with Accept: text/csv.
 * A dashboard is for its provider and admins; the summary for admins.
 */

#include "ngx_http_feira_analytics_module.h"


typedef struct {
    ngx_http_complex_value_t  *provider;
    ngx_flag_t                 summary;
    ngx_int_t                  max_days;
} ngx_http_feira_analytics_loc_conf_t;


static void *ngx_http_feira_analytics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_analytics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_feira_analytics_dashboard(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_feira_analytics_summary(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_feira_analytics_check(ngx_conf_t *cf);
static ngx_int_t ngx_http_feira_analytics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_analytics_range(ngx_http_request_t *r,
    ngx_http_feira_analytics_loc_conf_t *alcf,
    ngx_feira_analytics_job_t *job, ngx_feira_errors_t *errs);
static ngx_uint_t ngx_http_feira_analytics_wants_csv(ngx_http_request_t *r);
static void ngx_http_feira_analytics_done(ngx_http_request_t *r,
    void *data);
static ngx_int_t ngx_http_feira_analytics_send_csv(ngx_http_request_t *r,
    ngx_feira_analytics_job_t *job);
static void ngx_http_feira_analytics_free(void *data);


static ngx_conf_num_bounds_t  ngx_http_feira_analytics_days_bounds = {
    ngx_conf_check_num_bounds, 1, 3660
};


static ngx_command_t  ngx_http_feira_analytics_commands[] = {

    { ngx_string("feira_analytics_dashboard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_analytics_dashboard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_analytics_summary"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_analytics_summary,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_analytics_max_days"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_feira_analytics_loc_conf_t, max_days),
      &ngx_http_feira_analytics_days_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_analytics_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_analytics_create_loc_conf, /* create location conf */
    ngx_http_feira_analytics_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_feira_analytics_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_analytics_module_ctx,  /* module context */
    ngx_http_feira_analytics_commands,     /* module directives */
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


static ngx_str_t  ngx_http_feira_csv_type =
    ngx_string("text/csv; charset=utf-8");


static void *
ngx_http_feira_analytics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_analytics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_analytics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->provider = NULL;
     *     conf->summary = 0;
     */

    conf->max_days = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_feira_analytics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_analytics_loc_conf_t  *prev = parent;
    ngx_http_feira_analytics_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->max_days, prev->max_days, 366);

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_analytics_check(ngx_conf_t *cf)
{
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->mongo_uri.len == 0) {
        return "needs \"feira_mongo_uri\"";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_feira_analytics_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_feira_analytics_dashboard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_analytics_loc_conf_t  *alcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (alcf->provider != NULL || alcf->summary) {
        return "is duplicate";
    }

    value = cf->args->elts;

    alcf->provider = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (alcf->provider == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = alcf->provider;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_feira_analytics_check(cf);
}


static char *
ngx_http_feira_analytics_summary(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_analytics_loc_conf_t  *alcf = conf;

    if (alcf->provider != NULL || alcf->summary) {
        return "is duplicate";
    }

    alcf->summary = 1;

    return ngx_http_feira_analytics_check(cf);
}


static ngx_int_t
ngx_http_feira_analytics_handler(ngx_http_request_t *r)
{
    ngx_int_t                             rc;
    ngx_str_t                             id;
    ngx_feira_errors_t                    errs;
    ngx_pool_cleanup_t                   *cln;
    ngx_feira_identity_t                 *who;
    ngx_feira_analytics_job_t            *job;
    ngx_http_feira_analytics_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_analytics_module);

    who = ngx_feira_identity(r);
    if (who == NULL) {
        /* feira_auth_require belongs in front of this location */
        return ngx_feira_send_problem(r, NGX_HTTP_UNAUTHORIZED,
                                      "a bearer token is required", NULL);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_analytics_job_t));
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the CSV text is malloc()ed by the job */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_feira_analytics_free;
    cln->data = job;

    job->summary = alcf->summary;

    if (who->role.len != 5 || ngx_strncmp(who->role.data, "admin", 5) != 0)
    {
        if (alcf->summary) {
            return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN,
                                          "admins only", NULL);
        }
    }

    if (!alcf->summary) {
        if (ngx_http_complex_value(r, alcf->provider, &id) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (!ngx_feira_is_object_id((char *) id.data, id.len)) {
            return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                          "no such provider", NULL);
        }

        ngx_strlow((u_char *) job->provider, id.data, 24);

        if ((who->role.len != 5
             || ngx_strncmp(who->role.data, "admin", 5) != 0)
            && (who->id.len != 24
                || ngx_strncasecmp(who->id.data, (u_char *) job->provider,
                                   24) != 0))
        {
            return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN,
                                "only the provider and admins see this "
                                "dashboard", NULL);
        }
    }

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_http_feira_analytics_range(r, alcf, job, &errs) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (errs.n) {
        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid query", &errs);
    }

    job->csv = ngx_http_feira_analytics_wants_csv(r);

    if (ngx_feira_thread_post(r, alcf->summary
                                 ? ngx_feira_analytics_summary_job
                                 : ngx_feira_analytics_dashboard_job,
                              ngx_http_feira_analytics_done, job)
        != NGX_OK)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the server is busy", NULL);
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_feira_analytics_free(void *data)
{
    ngx_feira_analytics_job_t  *job = data;

    free(job->text);
    job->text = NULL;
}


/* ?from= and ?to=; errors into errs */

static ngx_int_t
ngx_http_feira_analytics_range(ngx_http_request_t *r,
    ngx_http_feira_analytics_loc_conf_t *alcf,
    ngx_feira_analytics_job_t *job, ngx_feira_errors_t *errs)
{
    time_t      from, to, today;
    ngx_str_t   v;
    ngx_uint_t  has_from, has_to, bad;

    today = ngx_time() - ngx_time() % 86400;
    from = 0;
    to = today;
    bad = 0;

    has_from = (ngx_http_arg(r, (u_char *) "from", 4, &v) == NGX_OK);

    if (has_from && ngx_feira_analytics_date(v.data, v.len, &from) != NGX_OK)
    {
        ngx_feira_errors_add(errs, "from", "must be a date, YYYY-MM-DD");
        bad = 1;
    }

    has_to = (ngx_http_arg(r, (u_char *) "to", 2, &v) == NGX_OK);

    if (has_to && ngx_feira_analytics_date(v.data, v.len, &to) != NGX_OK) {
        ngx_feira_errors_add(errs, "to", "must be a date, YYYY-MM-DD");
        bad = 1;
    }

    if (bad) {
        return NGX_OK;
    }

    if (!has_from) {
        from = to - (NGX_FEIRA_ANALYTICS_DEFAULT_DAYS - 1) * 86400;

        if ((to - from) / 86400 + 1 > alcf->max_days) {
            from = to - (alcf->max_days - 1) * 86400;
        }

        if (from < 0) {
            from = 0;
        }
    }

    if (from > to) {
        ngx_feira_errors_add(errs, "from", "must not be after to");
        return NGX_OK;
    }

    if ((to - from) / 86400 + 1 > alcf->max_days) {
        ngx_feira_errors_add(errs, "to", "the range is too long "
                             "(feira_analytics_max_days)");
        return NGX_OK;
    }

    job->from_t = from;
    job->to_t = to;
    ngx_feira_analytics_day_str(from, job->from);
    ngx_feira_analytics_day_str(to, job->to);

    return NGX_OK;
}


/* Accept: naming text/csv asks for CSV */

static ngx_uint_t
ngx_http_feira_analytics_wants_csv(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == 6
            && ngx_strncasecmp(h[i].key.data, (u_char *) "accept", 6) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "text/csv", 8 - 1)
               != NULL)
        {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_feira_analytics_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_analytics_job_t  *job = data;

    if (job->result
        && ngx_feira_json_cleanup_add(r->pool, job->result) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK || job->result == NULL) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the analytics are unavailable", NULL));
        return;
    }

    if (ngx_feira_add_header(r, "Vary", (u_char *) "Accept", 6) == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->csv) {
        ngx_http_finalize_request(r,
                                  ngx_http_feira_analytics_send_csv(r, job));
        return;
    }

    ngx_http_finalize_request(r, ngx_feira_send_json(r, NGX_HTTP_OK,
                                                     job->result));
}


static ngx_int_t
ngx_http_feira_analytics_send_csv(ngx_http_request_t *r,
    ngx_feira_analytics_job_t *job)
{
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_chain_t   out;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the text lives until the pool's cleanup frees it */
    b->pos = (u_char *) job->text;
    b->last = b->pos + job->text_len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ngx_http_feira_csv_type;
    r->headers_out.content_type_len = ngx_http_feira_csv_type.len;
    r->headers_out.content_length_n = job->text_len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
