/*
 * feira_notifications: the in-app inbox of the caller.
 *
 *     location /v1/notifications { feira_auth_require; feira_notifications; }
 *
 * GET  <location>         the caller's notifications, newest first, paginated,
 *                         with the unread count (?unread=true: only those)
 * POST <location>/read    marks as read: {"ids":[...]}, {"up_to":"<id>"}, or
 *                         all with {}
 */

#include "ngx_http_feira_notifications_module.h"


static char *ngx_http_feira_notifications(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_feira_inbox_handler(ngx_http_request_t *r);
static void ngx_http_feira_inbox_read_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_http_feira_inbox_done(ngx_http_request_t *r, void *data);
static ngx_feira_inbox_job_t *ngx_http_feira_inbox_job(ngx_http_request_t *r);


static const ngx_feira_field_t  ngx_http_feira_inbox_read_fields[] = {
    { "ids", NGX_FEIRA_ARRAY, 0, 1, NGX_FEIRA_INBOX_MAX_IDS, 0, -1, NULL },
    { "up_to", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static ngx_command_t  ngx_http_feira_notifications_commands[] = {

    { ngx_string("feira_notifications"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_feira_notifications,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_notifications_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_feira_notifications_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_notifications_module_ctx, /* module context */
    ngx_http_feira_notifications_commands, /* module directives */
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
ngx_http_feira_notifications(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->mongo_uri.len == 0) {
        return "needs \"feira_mongo_uri\"";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->regex || clcf->named) {
        return "needs a prefix location, such as /v1/notifications";
    }

    clcf->handler = ngx_http_feira_inbox_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_feira_inbox_handler(ngx_http_request_t *r)
{
    u_char                    *p, *last;
    ngx_int_t                  rc;
    ngx_str_t                  value;
    ngx_feira_errors_t         errs;
    ngx_feira_inbox_job_t     *job;
    ngx_http_core_loc_conf_t  *clcf;

    if (ngx_feira_identity(r) == NULL) {
        /* feira_auth_require belongs in front of this location */
        return ngx_feira_send_problem(r, NGX_HTTP_UNAUTHORIZED,
                                      "a bearer token is required", NULL);
    }

    /* what follows the location's own prefix */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data + ngx_min(clcf->name.len, r->uri.len);
    last = r->uri.data + r->uri.len;

    if (p < last && p[-1] != '/' && *p != '/') {
        /* /v1/notificationsfoo: not ours */
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such resource", NULL);
    }

    while (p < last && *p == '/') {
        p++;
    }

    if (p == last) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_feira_send_not_allowed(r, "GET, HEAD");
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        job = ngx_http_feira_inbox_job(r);
        if (job == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

        (void) ngx_feira_page_args(r, &job->page, &errs);

        if (ngx_http_arg(r, (u_char *) "unread", 6, &value) == NGX_OK) {
            if (value.len == 4 && ngx_strncmp(value.data, "true", 4) == 0) {
                job->unread_only = 1;

            } else if (value.len != 5
                       || ngx_strncmp(value.data, "false", 5) != 0)
            {
                ngx_feira_errors_add(&errs, "unread", "must be true or false");
            }
        }

        if (errs.n) {
            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid query", &errs);
        }

        if (ngx_feira_thread_post(r, ngx_feira_inbox_list_job,
                                  ngx_http_feira_inbox_done, job)
            != NGX_OK)
        {
            return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "the server is busy", NULL);
        }

        r->main->count++;

        return NGX_DONE;
    }

    if ((size_t) (last - p) == sizeof("read") - 1
        && ngx_strncmp(p, "read", 4) == 0)
    {
        if (r->method != NGX_HTTP_POST) {
            return ngx_feira_send_not_allowed(r, "POST");
        }

        return ngx_feira_read_json_body(r, ngx_http_feira_inbox_read_body);
    }

    return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND, "no such resource",
                                  NULL);
}


static void
ngx_http_feira_inbox_read_body(ngx_http_request_t *r, json_t *body)
{
    size_t                  i;
    json_t                 *ids, *v;
    const char             *s;
    ngx_feira_errors_t      errs;
    ngx_feira_inbox_job_t  *job;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_http_feira_inbox_read_fields,
                                  &errs)
        == 0)
    {
        ids = json_object_get(body, "ids");

        json_array_foreach(ids, i, v) {
            if (!json_is_string(v)
                || !ngx_feira_is_object_id(json_string_value(v),
                                           json_string_length(v)))
            {
                ngx_feira_errors_add(&errs, "ids",
                                     "must be 24-character hex ids");
                break;
            }
        }

        if (ids && json_object_get(body, "up_to")) {
            ngx_feira_errors_add(&errs, "ids", "give ids or up_to, not both");
        }
    }

    if (errs.n) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                   "the request body is invalid", &errs));
        return;
    }

    job = ngx_http_feira_inbox_job(r);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    s = json_string_value(json_object_get(body, "up_to"));

    if (s) {
        ngx_strlow((u_char *) job->up_to, (u_char *) s, 24);
    }

    json_array_foreach(json_object_get(body, "ids"), i, v) {
        ngx_strlow((u_char *) job->ids[i], (u_char *) json_string_value(v),
                   24);
    }

    job->nids = json_array_size(json_object_get(body, "ids"));

    if (ngx_feira_thread_post(r, ngx_feira_inbox_read_job,
                              ngx_http_feira_inbox_done, job)
        != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy", NULL));
    }
}


static void
ngx_http_feira_inbox_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_inbox_job_t  *job = data;

    if (job->result
        && ngx_feira_json_cleanup_add(r->pool, job->result) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK || job->result == NULL) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the inbox is unavailable", NULL));
        return;
    }

    ngx_http_finalize_request(r, ngx_feira_send_json(r, NGX_HTTP_OK,
                                                     job->result));
}


static ngx_feira_inbox_job_t *
ngx_http_feira_inbox_job(ngx_http_request_t *r)
{
    ngx_feira_identity_t   *id;
    ngx_feira_inbox_job_t  *job;

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_inbox_job_t));
    if (job == NULL) {
        return NULL;
    }

    id = ngx_feira_identity(r);

    ngx_memcpy(job->user, id->id.data, ngx_min(id->id.len, 24));

    return job;
}
