/*
 * The auth API: register, login, refresh, logout, me and the JWK Set,
 * each switched on by "feira_auth_endpoint <name>;" in a location.
 */

#include "ngx_http_feira_auth_module.h"


static ngx_int_t ngx_feira_auth_jwks_handler(ngx_http_request_t *r);
static ngx_int_t ngx_feira_auth_logout_handler(ngx_http_request_t *r);
static ngx_int_t ngx_feira_auth_me_handler(ngx_http_request_t *r);
static void ngx_feira_auth_register_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_auth_login_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_auth_refresh_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_auth_register_done(ngx_http_request_t *r, void *data);
static void ngx_feira_auth_login_done(ngx_http_request_t *r, void *data);
static void ngx_feira_auth_refresh_done(ngx_http_request_t *r, void *data);
static void ngx_feira_auth_logout_done(ngx_http_request_t *r, void *data);
static void ngx_feira_auth_logout_denied(void *data, ngx_int_t rc);
static void ngx_feira_auth_me_done(ngx_http_request_t *r, void *data);
static ngx_feira_auth_job_t *ngx_feira_auth_job(ngx_http_request_t *r);
static void ngx_feira_auth_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, ngx_feira_auth_job_t *ctx);
static ngx_int_t ngx_feira_auth_job_cleanup(ngx_http_request_t *r,
    ngx_feira_auth_job_t *job);
static ngx_int_t ngx_feira_auth_send_tokens(ngx_http_request_t *r,
    ngx_feira_auth_job_t *job);
static void ngx_feira_auth_fail(ngx_http_request_t *r,
    ngx_feira_auth_job_t *job);
static void ngx_feira_auth_invalid(ngx_http_request_t *r,
    ngx_feira_errors_t *errs);
static const char *ngx_feira_auth_lower(ngx_http_request_t *r,
    const char *s);
static ngx_int_t ngx_feira_auth_limit_key(ngx_http_request_t *r,
    ngx_feira_auth_job_t *job, ngx_str_t *key);
static ngx_int_t ngx_feira_auth_email_valid(const char *s);
static ngx_int_t ngx_feira_auth_phone_valid(const char *s);


static const char *const  ngx_feira_auth_roles[] = {
    "client", "provider", NULL
};


static const ngx_feira_field_t  ngx_feira_auth_register_fields[] = {
    { "email", NGX_FEIRA_STRING, 1, 3, 254, 0, -1, NULL },
    { "password", NGX_FEIRA_STRING, 1, 10, 256, 0, -1, NULL },
    { "name", NGX_FEIRA_STRING, 1, 1, 100, 0, -1, NULL },
    { "role", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1, ngx_feira_auth_roles },
    { "phone", NGX_FEIRA_STRING, 0, 7, 20, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_auth_login_fields[] = {
    { "email", NGX_FEIRA_STRING, 1, 1, 254, 0, -1, NULL },
    { "password", NGX_FEIRA_STRING, 1, 1, 256, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_auth_refresh_fields[] = {
    { "refresh_token", NGX_FEIRA_STRING, 1, 1, 128, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


ngx_int_t
ngx_feira_auth_endpoint_handler(ngx_http_request_t *r)
{
    ngx_http_feira_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_auth_module);

    switch (alcf->endpoint) {

    case NGX_FEIRA_AUTH_EP_JWKS:
        return ngx_feira_auth_jwks_handler(r);

    case NGX_FEIRA_AUTH_EP_ME:
        return ngx_feira_auth_me_handler(r);

    case NGX_FEIRA_AUTH_EP_LOGOUT:
        return ngx_feira_auth_logout_handler(r);

    default:
        break;
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_feira_send_not_allowed(r, "POST");
    }

    switch (alcf->endpoint) {

    case NGX_FEIRA_AUTH_EP_REGISTER:
        return ngx_feira_read_json_body(r, ngx_feira_auth_register_body);

    case NGX_FEIRA_AUTH_EP_LOGIN:
        return ngx_feira_read_json_body(r, ngx_feira_auth_login_body);

    default: /* NGX_FEIRA_AUTH_EP_REFRESH */
        return ngx_feira_read_json_body(r, ngx_feira_auth_refresh_body);
    }
}


static ngx_int_t
ngx_feira_auth_jwks_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_buf_t                        *b;
    ngx_chain_t                       out;
    ngx_http_feira_auth_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_feira_auth_module);

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = amcf->jwks.data;
    b->last = amcf->jwks.data + amcf->jwks.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = amcf->jwks.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_feira_auth_register_body(ngx_http_request_t *r, json_t *body)
{
    const char            *phone;
    ngx_feira_errors_t     errs;
    ngx_feira_auth_job_t  *job;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_feira_auth_register_fields,
                                  &errs)
        != 0)
    {
        ngx_feira_auth_invalid(r, &errs);
        return;
    }

    job = ngx_feira_auth_job(r);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    job->email = json_string_value(json_object_get(body, "email"));
    job->password = json_string_value(json_object_get(body, "password"));
    job->password_len = json_string_length(json_object_get(body, "password"));
    job->name = json_string_value(json_object_get(body, "name"));
    job->role = json_string_value(json_object_get(body, "role"));

    phone = json_string_value(json_object_get(body, "phone"));

    if (!ngx_feira_auth_email_valid(job->email)) {
        ngx_feira_errors_add(&errs, "email", "is not a valid e-mail address");
    }

    if (phone && !ngx_feira_auth_phone_valid(phone)) {
        ngx_feira_errors_add(&errs, "phone", "is not a valid phone number");
    }

    if (errs.n) {
        ngx_feira_auth_invalid(r, &errs);
        return;
    }

    job->phone = phone;

    /* one account per address, whatever its case */
    job->email_lc = ngx_feira_auth_lower(r, job->email);
    if (job->email_lc == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_feira_auth_post(r, ngx_feira_auth_register_job,
                        ngx_feira_auth_register_done, job);
}


static void
ngx_feira_auth_register_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_auth_job_t  *job = data;

    if (ngx_feira_auth_job_cleanup(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_CREATED) {
        ngx_feira_auth_fail(r, job);
        return;
    }

    ngx_http_finalize_request(r, ngx_feira_auth_send_tokens(r, job));
}


static void
ngx_feira_auth_login_body(ngx_http_request_t *r, json_t *body)
{
    time_t                            wait;
    u_char                           *p;
    ngx_str_t                         key;
    ngx_feira_errors_t                errs;
    ngx_feira_auth_job_t             *job;
    ngx_http_feira_auth_main_conf_t  *amcf;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_feira_auth_login_fields, &errs)
        != 0)
    {
        ngx_feira_auth_invalid(r, &errs);
        return;
    }

    job = ngx_feira_auth_job(r);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    job->password = json_string_value(json_object_get(body, "password"));
    job->password_len = json_string_length(json_object_get(body, "password"));
    job->email_lc = ngx_feira_auth_lower(r, json_string_value(
                                         json_object_get(body, "email")));

    if (job->email_lc == NULL
        || ngx_feira_auth_limit_key(r, job, &key) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    amcf = job->amcf;

    /* a locked key costs no password check at all */
    wait = ngx_feira_auth_limit_check(amcf->shm_zone, &key);

    if (wait) {
        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

        if (p == NULL
            || ngx_feira_add_header(r, "Retry-After", p,
                                    ngx_sprintf(p, "%T", wait) - p)
               == NULL)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                   "too many failed logins, try later",
                                   NULL));
        return;
    }

    ngx_feira_auth_post(r, ngx_feira_auth_login_job,
                        ngx_feira_auth_login_done, job);
}


static void
ngx_feira_auth_login_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_auth_job_t  *job = data;

    ngx_str_t  key;

    if (ngx_feira_auth_job_cleanup(r, job) != NGX_OK
        || ngx_feira_auth_limit_key(r, job, &key) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status == NGX_HTTP_UNAUTHORIZED) {
        (void) ngx_feira_auth_limit_fail(job->amcf->shm_zone, &key,
                                         job->amcf);
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_feira_auth_fail(r, job);
        return;
    }

    ngx_feira_auth_limit_reset(job->amcf->shm_zone, &key);

    ngx_http_finalize_request(r, ngx_feira_auth_send_tokens(r, job));
}


static void
ngx_feira_auth_refresh_body(ngx_http_request_t *r, json_t *body)
{
    json_t                *v;
    ngx_feira_errors_t     errs;
    ngx_feira_auth_job_t  *job;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_feira_auth_refresh_fields, &errs)
        != 0)
    {
        ngx_feira_auth_invalid(r, &errs);
        return;
    }

    job = ngx_feira_auth_job(r);
    if (job == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v = json_object_get(body, "refresh_token");
    job->refresh = json_string_value(v);
    job->refresh_len = json_string_length(v);

    ngx_feira_auth_post(r, ngx_feira_auth_refresh_job,
                        ngx_feira_auth_refresh_done, job);
}


static void
ngx_feira_auth_refresh_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_auth_job_t  *job = data;

    time_t  now;

    if (ngx_feira_auth_job_cleanup(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->reused) {
        /*
         * A rotated token came back: someone holds a stolen copy.  Its
         * family is revoked; the access tokens issued so far go too.
         */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: auth: refresh token reuse for user %s, "
                      "family revoked", job->claims.sub);

        now = ngx_time();

        ngx_feira_auth_deny_add(job->amcf->shm_zone,
                                NGX_FEIRA_AUTH_DENY_USERS,
                                (u_char *) job->claims.sub,
                                ngx_strlen(job->claims.sub), now,
                                now + job->amcf->access_ttl
                                + job->amcf->leeway);

        (void) ngx_feira_auth_deny_publish(NGX_FEIRA_AUTH_DENY_USERS,
                                           job->claims.sub, now, NULL, NULL);
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_feira_auth_fail(r, job);
        return;
    }

    ngx_http_finalize_request(r, ngx_feira_auth_send_tokens(r, job));
}


static ngx_int_t
ngx_feira_auth_logout_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    const char                      *detail;
    ngx_feira_identity_t            *id;
    ngx_feira_auth_job_t            *job;
    ngx_http_feira_auth_loc_conf_t  *alcf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_feira_send_not_allowed(r, "POST");
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_auth_module);

    rc = ngx_feira_auth_authenticate(r, alcf, &detail);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_feira_auth_send_reject(r, rc, detail);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    id = ngx_feira_identity(r);

    job = ngx_feira_auth_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    job->sid = (char *) id->sid.data;

    r->main->count++;

    ngx_feira_auth_post(r, ngx_feira_auth_logout_job,
                        ngx_feira_auth_logout_done, job);

    return NGX_DONE;
}


static void
ngx_feira_auth_logout_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_auth_job_t  *job = data;

    ngx_int_t              rc;
    ngx_feira_identity_t  *id;

    if (job->status != NGX_HTTP_NO_CONTENT) {
        ngx_feira_auth_fail(r, job);
        return;
    }

    id = ngx_feira_identity(r);

    /* at once here; in the other workers and instances through Redis */

    ngx_feira_auth_deny_add(job->amcf->shm_zone, NGX_FEIRA_AUTH_DENY_TOKEN,
                            id->jti.data, id->jti.len, id->exp,
                            id->exp + job->amcf->leeway);

    rc = ngx_feira_auth_deny_publish(NGX_FEIRA_AUTH_DENY_TOKEN,
                                     (char *) id->jti.data, id->exp,
                                     ngx_feira_auth_logout_denied, r);
    if (rc != NGX_OK) {
        ngx_feira_auth_logout_denied(r, NGX_ERROR);
    }
}


static void
ngx_feira_auth_logout_denied(void *data, ngx_int_t rc)
{
    ngx_http_request_t  *r = data;

    if (rc != NGX_OK) {
        /* the client retries: logging out twice is harmless */
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the logout could not be recorded, "
                                   "try again", NULL));
        return;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    ngx_http_finalize_request(r, ngx_http_send_header(r));
}


static ngx_int_t
ngx_feira_auth_me_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    const char                      *detail;
    ngx_feira_auth_job_t            *job;
    ngx_http_feira_auth_loc_conf_t  *alcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_auth_module);

    rc = ngx_feira_auth_authenticate(r, alcf, &detail);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_feira_auth_send_reject(r, rc, detail);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    job = ngx_feira_auth_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    job->user_id = (char *) ngx_feira_identity(r)->id.data;

    r->main->count++;

    ngx_feira_auth_post(r, ngx_feira_auth_me_job, ngx_feira_auth_me_done,
                        job);

    return NGX_DONE;
}


static void
ngx_feira_auth_me_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_auth_job_t  *job = data;

    if (ngx_feira_auth_job_cleanup(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_feira_auth_fail(r, job);
        return;
    }

    ngx_http_finalize_request(r, ngx_feira_send_json(r, NGX_HTTP_OK,
                                                     job->user));
}


static ngx_feira_auth_job_t *
ngx_feira_auth_job(ngx_http_request_t *r)
{
    ngx_feira_auth_job_t  *job;

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_auth_job_t));
    if (job == NULL) {
        return NULL;
    }

    job->amcf = ngx_http_get_module_main_conf(r, ngx_http_feira_auth_module);
    job->now = ngx_time();
    job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    return job;
}


static void
ngx_feira_auth_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, ngx_feira_auth_job_t *ctx)
{
    if (ngx_feira_thread_post(r, job, done, ctx) != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy, try again", NULL));
    }
}


/* what a job allocated outside the pool goes with the request */

static ngx_int_t
ngx_feira_auth_job_cleanup(ngx_http_request_t *r, ngx_feira_auth_job_t *job)
{
    char    *token;
    size_t   len;
    json_t  *user;

    user = job->user;

    if (user && ngx_feira_json_cleanup_add(r->pool, user) != NGX_OK) {
        job->user = NULL;
        free(job->access_token);
        job->access_token = NULL;
        return NGX_ERROR;
    }

    token = job->access_token;

    if (token) {
        /* from libjwt's malloc() to the request pool */
        len = ngx_strlen(token);
        job->access_token = ngx_pnalloc(r->pool, len + 1);

        if (job->access_token) {
            ngx_memcpy(job->access_token, token, len + 1);
        }

        free(token);

        if (job->access_token == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_feira_auth_send_tokens(ngx_http_request_t *r, ngx_feira_auth_job_t *job)
{
    json_t     *body;
    ngx_int_t   rc;

    body = json_pack("{s:O, s:s%, s:s, s:s, s:I}",
                     "user", job->user,
                     "access_token", job->access_token,
                     ngx_strlen(job->access_token),
                     "refresh_token", job->refresh_token,
                     "token_type", "Bearer",
                     "expires_in", (json_int_t) job->amcf->access_ttl);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* tokens are never cached by anyone */
    if (ngx_feira_add_header(r, "Cache-Control", (u_char *) "no-store", 8)
        == NULL)
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_feira_send_json(r, job->status, body);

    json_decref(body);

    return rc;
}


static void
ngx_feira_auth_fail(ngx_http_request_t *r, ngx_feira_auth_job_t *job)
{
    ngx_http_finalize_request(r, ngx_feira_auth_send_reject(r, job->status,
                                                            job->detail));
}


static void
ngx_feira_auth_invalid(ngx_http_request_t *r, ngx_feira_errors_t *errs)
{
    ngx_http_finalize_request(r, ngx_feira_send_problem(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "the request body is invalid", errs));
}


static const char *
ngx_feira_auth_lower(ngx_http_request_t *r, const char *s)
{
    size_t   len;
    u_char  *p;

    len = ngx_strlen(s);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_strlow(p, (u_char *) s, len);
    p[len] = '\0';

    return (char *) p;
}


static ngx_int_t
ngx_feira_auth_limit_key(ngx_http_request_t *r, ngx_feira_auth_job_t *job,
    ngx_str_t *key)
{
    size_t  len;

    len = ngx_strlen(job->email_lc);

    key->data = ngx_pnalloc(r->pool, len + 1 + r->connection->addr_text.len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "%s|%V", job->email_lc,
                           &r->connection->addr_text)
               - key->data;

    return NGX_OK;
}


/* local@domain.tld, printable, no spaces: the rest is the mail server's */

static ngx_int_t
ngx_feira_auth_email_valid(const char *s)
{
    const char  *at, *dot, *p;

    at = ngx_strchr(s, '@');

    if (at == NULL || at == s || ngx_strchr(at + 1, '@') != NULL
        || at - s > 64)
    {
        return 0;
    }

    for (p = s; *p; p++) {
        if ((u_char) *p <= ' ' || *p == 0x7f || *p == '<' || *p == '>'
            || *p == '(' || *p == ')' || *p == ',' || *p == ';'
            || *p == ':' || *p == '\\' || *p == '"' || *p == '['
            || *p == ']')
        {
            return 0;
        }
    }

    dot = ngx_strchr(at + 1, '.');

    if (dot == NULL || dot == at + 1 || p[-1] == '.'
        || ngx_strstr(at + 1, "..") != NULL)
    {
        return 0;
    }

    return 1;
}


static ngx_int_t
ngx_feira_auth_phone_valid(const char *s)
{
    ngx_uint_t   digits;
    const char  *p;

    digits = 0;

    for (p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;

        } else if (!(*p == '+' && p == s) && *p != ' ' && *p != '-'
                   && *p != '(' && *p != ')')
        {
            return 0;
        }
    }

    return digits >= 7 && digits <= 15;
}
