/*
 * feira_auth_require: the access-phase check of a bearer token, in any
 * location (also in front of proxy_pass).  It costs no network round trip:
 * the signature and claims are checked here and the deny list lives in
 * shared memory, kept current by ngx_feira_auth_feed.c.
 */

#include "ngx_http_feira_auth_module.h"


static ngx_int_t ngx_feira_auth_token(ngx_http_request_t *r,
    ngx_http_feira_auth_loc_conf_t *alcf, ngx_str_t *token);
static ngx_int_t ngx_feira_auth_set_identity(ngx_http_request_t *r,
    ngx_feira_jwt_claims_t *claims);


ngx_int_t
ngx_feira_auth_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    const char                      *detail;
    ngx_http_feira_auth_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_auth_module);

    if (alcf->roles == NULL) {
        return NGX_DECLINED;
    }

    rc = ngx_feira_auth_authenticate(r, alcf, &detail);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* answered here, in problem+json: the phases stop */
    ngx_http_finalize_request(r, ngx_feira_auth_send_reject(r, rc, detail));

    return NGX_DONE;
}


/*
 * NGX_OK with the identity set; or the HTTP status to answer (401, 403 or
 * 503) and *detail; NGX_ERROR on a failed allocation.
 */

ngx_int_t
ngx_feira_auth_authenticate(ngx_http_request_t *r,
    ngx_http_feira_auth_loc_conf_t *alcf, const char **detail)
{
    ngx_str_t                        token, *role;
    ngx_uint_t                       i;
    const char                      *reason;
    ngx_feira_jwt_claims_t           claims;
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_feira_auth_module);

    if (ngx_feira_auth_token(r, alcf, &token) != NGX_OK) {
        *detail = "a bearer token is required";
        return NGX_HTTP_UNAUTHORIZED;
    }

    /* no deny list, no trust: fail closed while the feed is lost */
    if (!ngx_feira_auth_feed_ok()) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: auth: deny list feed lost, failing closed");
        *detail = "authentication is unavailable";
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_feira_jwt_verify(&amcf->jwt, (char *) token.data, token.len,
                             ngx_time(), &claims, &reason)
        != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "feira: auth: token rejected: %s", reason);
        *detail = "the token is invalid or expired";
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (ngx_feira_auth_deny_check(amcf->shm_zone, &claims)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "feira: auth: token rejected: revoked");
        *detail = "the token has been revoked";
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (alcf->roles && alcf->roles->nelts) {
        role = alcf->roles->elts;

        for (i = 0; i < alcf->roles->nelts; i++) {
            if (ngx_strcmp(role[i].data, claims.role) == 0) {
                break;
            }
        }

        if (i == alcf->roles->nelts) {
            *detail = "this role may not do this";
            return NGX_HTTP_FORBIDDEN;
        }
    }

    return ngx_feira_auth_set_identity(r, &claims);
}


static ngx_int_t
ngx_feira_auth_token(ngx_http_request_t *r,
    ngx_http_feira_auth_loc_conf_t *alcf, ngx_str_t *token)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h != NULL) {
        p = h->value.data;
        last = p + h->value.len;

        if (h->value.len < sizeof("Bearer ") - 1
            || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0)
        {
            return NGX_DECLINED;
        }

        p += 7;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        token->data = p;
        token->len = last - p;

        return NGX_OK;
    }

    if (alcf->query_token
        && ngx_http_arg(r, (u_char *) "access_token", 12, token) == NGX_OK
        && token->len)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_feira_auth_set_identity(ngx_http_request_t *r,
    ngx_feira_jwt_claims_t *claims)
{
    ngx_feira_ctx_t       *ctx;
    ngx_feira_identity_t  *id;

    ctx = ngx_feira_ctx(r->main);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    id = ngx_pcalloc(r->main->pool, sizeof(ngx_feira_identity_t));
    if (id == NULL) {
        return NGX_ERROR;
    }

    id->id.len = ngx_strlen(claims->sub);
    id->role.len = ngx_strlen(claims->role);
    id->jti.len = ngx_strlen(claims->jti);
    id->sid.len = ngx_strlen(claims->sid);

    id->id.data = ngx_pnalloc(r->main->pool, id->id.len + id->role.len
                                             + id->jti.len + id->sid.len + 4);
    if (id->id.data == NULL) {
        return NGX_ERROR;
    }

    /* each string NUL-terminated, for the jobs that take C strings */
    id->role.data = ngx_cpystrn(id->id.data, (u_char *) claims->sub,
                                id->id.len + 1) + 1;
    id->jti.data = ngx_cpystrn(id->role.data, (u_char *) claims->role,
                               id->role.len + 1) + 1;
    id->sid.data = ngx_cpystrn(id->jti.data, (u_char *) claims->jti,
                               id->jti.len + 1) + 1;
    ngx_cpystrn(id->sid.data, (u_char *) claims->sid, id->sid.len + 1);

    id->iat = (time_t) claims->iat;
    id->exp = (time_t) claims->exp;

    ctx->identity = id;

    return NGX_OK;
}


ngx_int_t
ngx_feira_auth_send_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    static u_char  www[] = "Bearer error=\"invalid_token\"";

    if (status == NGX_HTTP_UNAUTHORIZED
        && ngx_feira_add_header(r, "WWW-Authenticate", www, sizeof(www) - 1)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_feira_send_problem(r, status, detail, NULL);
}
