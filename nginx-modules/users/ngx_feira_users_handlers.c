/*
 * feira_users: the profiles API under a prefix location.  Routing, access
 * rules and body checks run here, on the event loop; every MongoDB call is
 * a job of ngx_feira_users_store.c in the thread pool.
 */

#include "ngx_http_feira_users_module.h"


static char *ngx_feira_users_allow(ngx_feira_users_route_e route,
    ngx_uint_t method);
static ngx_int_t ngx_feira_users_start(ngx_http_request_t *r,
    ngx_feira_job_pt fn, ngx_feira_users_job_t *job);
static ngx_int_t ngx_feira_users_read(ngx_http_request_t *r,
    ngx_feira_body_pt handler, ngx_feira_users_job_t *job);
static ngx_int_t ngx_feira_users_forbidden(ngx_http_request_t *r,
    const char *detail);
static void ngx_feira_users_patch_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_users_preferences_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_feira_users_device_body(ngx_http_request_t *r, json_t *body);
static ngx_int_t ngx_feira_users_bson_cleanup_add(ngx_pool_t *pool,
    bson_t *bson);
static void ngx_feira_users_bson_cleanup(void *data);


ngx_int_t
ngx_feira_users_handler(ngx_http_request_t *r)
{
    char                             *allow;
    ngx_feira_errors_t                errs;
    ngx_feira_users_job_t            *job;
    ngx_feira_users_path_t            path;
    ngx_http_feira_users_loc_conf_t  *ulcf;

    ulcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_users_module);

    /* the location matched its prefix; what follows names the resource */

    if (r->uri.len <= ulcf->prefix.len
        || ngx_strncmp(r->uri.data, ulcf->prefix.data, ulcf->prefix.len) != 0
        || ngx_feira_users_parse_path((char *) r->uri.data + ulcf->prefix.len,
                                      r->uri.len - ulcf->prefix.len, &path)
           != 0)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such resource", NULL);
    }

    allow = ngx_feira_users_allow(path.route, r->method);
    if (allow != NULL) {
        return ngx_feira_send_not_allowed(r, allow);
    }

    job = ngx_feira_users_job(r);
    if (job == NULL) {
        return ngx_feira_send_problem(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      NULL, NULL);
    }

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_users_oid(r, path.id, path.id_len, &job->user) != NGX_OK) {
        ngx_feira_errors_add(&errs, "id", "must be a 24-character hex id");
    }

    if (path.route == NGX_FEIRA_USERS_DEVICE
        && ngx_feira_users_oid(r, path.item, path.item_len, &job->item)
           != NGX_OK)
    {
        ngx_feira_errors_add(&errs, "device_id",
                             "must be a 24-character hex id");
    }

    if (errs.n) {
        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "the path names an invalid id", &errs);
    }

    job->route = path.route;
    job->method = r->method;
    job->self = bson_oid_equal(&job->user, &job->caller);
    job->devices_max = ulcf->devices_max;

    /*
     * Who may do what.  Checked before anything is read, so that a
     * caller learns nothing about another user's data by trying.
     */

    switch (path.route) {

    case NGX_FEIRA_USERS_PROFILE:

        if (r->method != NGX_HTTP_PATCH) {
            /* anyone signed in; private fields decided by the job */
            return ngx_feira_users_start(r, ngx_feira_users_profile_get_job,
                                         job);
        }

        if (!job->self && !job->admin) {
            return ngx_feira_users_forbidden(r,
                             "only the user or an admin may change a profile");
        }

        return ngx_feira_users_read(r, ngx_feira_users_patch_body, job);

    case NGX_FEIRA_USERS_PREFERENCES:

        if (!job->self && !job->admin) {
            return ngx_feira_users_forbidden(r,
                                    "these are another user's preferences");
        }

        if (r->method == NGX_HTTP_PUT) {
            return ngx_feira_users_read(r, ngx_feira_users_preferences_body,
                                        job);
        }

        return ngx_feira_users_start(r, ngx_feira_users_preferences_get_job,
                                     job);

    case NGX_FEIRA_USERS_DEVICES:

        if (r->method == NGX_HTTP_POST) {
            /* a push token is registered by its own user only */
            if (!job->self) {
                return ngx_feira_users_forbidden(r,
                              "devices are registered by their own user");
            }

            return ngx_feira_users_read(r, ngx_feira_users_device_body, job);
        }

        if (!job->self && !job->admin) {
            return ngx_feira_users_forbidden(r,
                                        "these are another user's devices");
        }

        return ngx_feira_users_start(r, ngx_feira_users_devices_list_job,
                                     job);

    case NGX_FEIRA_USERS_DEVICE:

        if (!job->self && !job->admin) {
            return ngx_feira_users_forbidden(r,
                                        "this is another user's device");
        }

        return ngx_feira_users_start(r, ngx_feira_users_device_delete_job,
                                     job);

    default: /* NGX_FEIRA_USERS_REVIEWS */

        if (ngx_feira_page_args(r, &job->page, &errs) != NGX_OK) {
            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                          "the query is invalid", &errs);
        }

        return ngx_feira_users_start(r, ngx_feira_users_reviews_list_job,
                                     job);
    }
}


/* a job with the caller's identity; NULL answers 500 */

ngx_feira_users_job_t *
ngx_feira_users_job(ngx_http_request_t *r)
{
    ngx_time_t             *tp;
    ngx_feira_identity_t   *id;
    ngx_feira_users_job_t  *job;

    id = ngx_feira_identity(r);

    /* the API needs to know who calls: fail closed without feira_auth */
    if (id == NULL
        || !ngx_feira_is_object_id((char *) id->id.data, id->id.len))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: users: no identity: the location needs "
                      "\"feira_auth_require\"");
        return NULL;
    }

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_users_job_t));
    if (job == NULL) {
        return NULL;
    }

    /* the identity's strings are NUL-terminated */
    bson_oid_init_from_string(&job->caller, (char *) id->id.data);

    job->caller_role = (char *) id->role.data;
    job->admin = (id->role.len == 5
                  && ngx_strncmp(id->role.data, "admin", 5) == 0);

    tp = ngx_timeofday();
    job->now = (int64_t) tp->sec * 1000 + tp->msec;

    job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    return job;
}


ngx_int_t
ngx_feira_users_oid(ngx_http_request_t *r, const char *s, size_t len,
    bson_oid_t *oid)
{
    char  hex[25];

    if (!ngx_feira_is_object_id(s, len)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(hex, s, 24);
    hex[24] = '\0';

    bson_oid_init_from_string(oid, hex);

    return NGX_OK;
}


void
ngx_feira_users_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, ngx_feira_users_job_t *ctx)
{
    if (ngx_feira_thread_post(r, job, done, ctx) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy, try again", NULL));
    }
}


void
ngx_feira_users_done(ngx_http_request_t *r, void *data)
{
    ngx_http_finalize_request(r, ngx_feira_users_result(r, data));
}


/* the answer of a finished job: its JSON, 204, or problem+json */

ngx_int_t
ngx_feira_users_result(ngx_http_request_t *r, ngx_feira_users_job_t *job)
{
    ngx_feira_errors_t  errs;

    if (job->result
        && ngx_feira_json_cleanup_add(r->pool, job->result) != NGX_OK)
    {
        job->result = NULL;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (job->status >= NGX_HTTP_BAD_REQUEST) {

        /* a field refused by the store's state, such as skills */
        if (job->field) {
            ngx_memzero(&errs, sizeof(ngx_feira_errors_t));
            ngx_feira_errors_add(&errs, job->field, job->detail);

            return ngx_feira_send_problem(r, job->status,
                                          "the request body is invalid",
                                          &errs);
        }

        return ngx_feira_send_problem(r, job->status, job->detail, NULL);
    }

    if (job->status == NGX_HTTP_NO_CONTENT) {
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        return ngx_http_send_header(r);
    }

    if (job->result == NULL) {
        return ngx_feira_send_problem(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      NULL, NULL);
    }

    return ngx_feira_send_json(r, job->status, job->result);
}


void
ngx_feira_users_invalid(ngx_http_request_t *r, ngx_feira_errors_t *errs)
{
    ngx_http_finalize_request(r, ngx_feira_send_problem(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "the request body is invalid", errs));
}


/* NULL when the method is served; otherwise the Allow header's value */

static char *
ngx_feira_users_allow(ngx_feira_users_route_e route, ngx_uint_t method)
{
    switch (route) {

    case NGX_FEIRA_USERS_PROFILE:
        return (method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PATCH))
               ? NULL : "GET, HEAD, PATCH";

    case NGX_FEIRA_USERS_PREFERENCES:
        return (method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT))
               ? NULL : "GET, HEAD, PUT";

    case NGX_FEIRA_USERS_DEVICES:
        return (method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))
               ? NULL : "GET, HEAD, POST";

    case NGX_FEIRA_USERS_DEVICE:
        return (method & NGX_HTTP_DELETE) ? NULL : "DELETE";

    default: /* NGX_FEIRA_USERS_REVIEWS */
        return (method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? NULL : "GET, HEAD";
    }
}


/* a job without a body: the content handler's reference is held for it */

static ngx_int_t
ngx_feira_users_start(ngx_http_request_t *r, ngx_feira_job_pt fn,
    ngx_feira_users_job_t *job)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;

    ngx_feira_users_post(r, fn, ngx_feira_users_done, job);

    return NGX_DONE;
}


static ngx_int_t
ngx_feira_users_read(ngx_http_request_t *r, ngx_feira_body_pt handler,
    ngx_feira_users_job_t *job)
{
    ngx_http_set_ctx(r, job, ngx_http_feira_users_module);

    return ngx_feira_read_json_body(r, handler);
}


static ngx_int_t
ngx_feira_users_forbidden(ngx_http_request_t *r, const char *detail)
{
    return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN, detail, NULL);
}


/* ?limit= and ?cursor=; NGX_DECLINED with errs for a 400 */

static void
ngx_feira_users_patch_body(ngx_http_request_t *r, json_t *body)
{
    int                     provider_only;
    ngx_feira_errors_t      errs;
    ngx_feira_users_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_users_module);

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_users_patch_check(body, &provider_only, &errs) != 0) {
        ngx_feira_users_invalid(r, &errs);
        return;
    }

    job->provider_only = provider_only ? 1 : 0;

    job->update = ngx_feira_users_patch_update(body, job->now);

    if (job->update == NULL
        || ngx_feira_users_bson_cleanup_add(r->pool, job->update) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_feira_users_post(r, ngx_feira_users_profile_patch_job,
                         ngx_feira_users_done, job);
}


static void
ngx_feira_users_preferences_body(ngx_http_request_t *r, json_t *body)
{
    ngx_feira_errors_t      errs;
    ngx_feira_users_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_users_module);

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_users_preferences_check(body, &errs) != 0) {
        ngx_feira_users_invalid(r, &errs);
        return;
    }

    job->update = ngx_feira_users_preferences_update(body, job->now);

    if (job->update == NULL
        || ngx_feira_users_bson_cleanup_add(r->pool, job->update) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_feira_users_post(r, ngx_feira_users_preferences_put_job,
                         ngx_feira_users_done, job);
}


static void
ngx_feira_users_device_body(ngx_http_request_t *r, json_t *body)
{
    ngx_feira_errors_t      errs;
    ngx_feira_users_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_users_module);

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_users_device_check(body, &errs) != 0) {
        ngx_feira_users_invalid(r, &errs);
        return;
    }

    /* the body lives as long as the request */
    job->platform = json_string_value(json_object_get(body, "platform"));
    job->token = json_string_value(json_object_get(body, "token"));

    ngx_feira_users_post(r, ngx_feira_users_device_add_job,
                         ngx_feira_users_done, job);
}


static ngx_int_t
ngx_feira_users_bson_cleanup_add(ngx_pool_t *pool, bson_t *bson)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        bson_destroy(bson);
        return NGX_ERROR;
    }

    cln->handler = ngx_feira_users_bson_cleanup;
    cln->data = bson;

    return NGX_OK;
}


static void
ngx_feira_users_bson_cleanup(void *data)
{
    bson_destroy((bson_t *) data);
}
