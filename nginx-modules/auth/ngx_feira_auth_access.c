/*
 * feira_auth_require: the access-phase check of a bearer token, in any
 * location (also in front of proxy_pass).  It costs no network round trip:
 * the signature and claims are checked here and the deny list lives in
 * shared memory, kept current by ngx_feira_auth_feed.c.
 */

#include "ngx_http_feira_auth_module.h"


#define NGX_FEIRA_AUTH_CACHE_TOKEN  512


/*
 * Tokens this worker has verified, by their exact bytes.  A client sends
 * the same token for its whole life; a hit saves the signature and the
 * JSON, never the expiry check or the deny list.
 */

typedef struct {
    uint32_t                 hash;
    u_short                  len;
    ngx_feira_jwt_claims_t   claims;
    u_char                   token[NGX_FEIRA_AUTH_CACHE_TOKEN];
} ngx_feira_auth_cached_t;


static ngx_int_t ngx_feira_auth_verify(ngx_http_request_t *r,
    ngx_http_feira_auth_main_conf_t *amcf, ngx_str_t *token,
    ngx_feira_jwt_claims_t *claims);
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

    if (ngx_feira_auth_verify(r, amcf, &token, &claims) != NGX_OK) {
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


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_feira_auth_cached_t  *ngx_feira_auth_cache;
static ngx_uint_t                ngx_feira_auth_cache_size;


ngx_int_t
ngx_feira_auth_cache_init(ngx_cycle_t *cycle, ngx_uint_t size)
{
    ngx_feira_auth_cache_size = size;

    if (size == 0) {
        return NGX_OK;
    }

    ngx_feira_auth_cache = ngx_calloc(size * sizeof(ngx_feira_auth_cached_t),
                                      cycle->log);

    return ngx_feira_auth_cache ? NGX_OK : NGX_ERROR;
}


void
ngx_feira_auth_cache_exit(void)
{
    ngx_free(ngx_feira_auth_cache);
    ngx_feira_auth_cache = NULL;
}


static ngx_int_t
ngx_feira_auth_verify(ngx_http_request_t *r,
    ngx_http_feira_auth_main_conf_t *amcf, ngx_str_t *token,
    ngx_feira_jwt_claims_t *claims)
{
    time_t                    now;
    uint32_t                  hash;
    const char               *reason;
    ngx_feira_auth_cached_t  *e;

    now = ngx_time();
    e = NULL;

    if (ngx_feira_auth_cache && token->len <= NGX_FEIRA_AUTH_CACHE_TOKEN) {
        hash = ngx_murmur_hash2(token->data, token->len);
        e = &ngx_feira_auth_cache[hash % ngx_feira_auth_cache_size];

        if (e->hash == hash && e->len == token->len
            && ngx_memcmp(e->token, token->data, token->len) == 0
            && now <= e->claims.exp + amcf->leeway)
        {
            *claims = e->claims;
            return NGX_OK;
        }

        e->hash = hash;
        e->len = 0;
    }

    if (ngx_feira_jwt_verify(&amcf->jwt, (char *) token->data, token->len,
                             now, claims, &reason)
        != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "feira: auth: token rejected: %s", reason);
        return NGX_DECLINED;
    }

    if (e) {
        e->claims = *claims;
        ngx_memcpy(e->token, token->data, token->len);
        e->len = (u_short) token->len;
    }

    return NGX_OK;
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

    if (ngx_feira_auth_identity_set(r->main->pool, claims, id) != NGX_OK) {
        return NGX_ERROR;
    }

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
