/*
 * feira_auth for other modules (ngx_feira_auth_api.h): the checks of the
 * access phase, for connections that outlive their HTTP request.
 */

#include "ngx_http_feira_auth_module.h"
#include "ngx_feira_auth_api.h"


static ngx_http_feira_auth_main_conf_t *ngx_feira_auth_api_conf(void);


static ngx_http_feira_auth_main_conf_t *
ngx_feira_auth_api_conf(void)
{
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_feira_auth_module);

    return (amcf && amcf->used) ? amcf : NULL;
}


ngx_int_t
ngx_feira_auth_ready(void)
{
    return ngx_feira_auth_api_conf() != NULL && ngx_feira_auth_feed_ok();
}


ngx_int_t
ngx_feira_auth_token_identity(ngx_pool_t *pool, u_char *token, size_t len,
    ngx_feira_identity_t *id, const char **reason)
{
    ngx_feira_jwt_claims_t            claims;
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_feira_auth_api_conf();

    if (amcf == NULL || !ngx_feira_auth_feed_ok()) {
        *reason = "authentication is unavailable";
        return NGX_BUSY;
    }

    if (ngx_feira_jwt_verify(&amcf->jwt, (char *) token, len, ngx_time(),
                             &claims, reason)
        != 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_feira_auth_deny_check(amcf->shm_zone, &claims)) {
        *reason = "the token has been revoked";
        return NGX_DECLINED;
    }

    return ngx_feira_auth_identity_set(pool, &claims, id);
}


ngx_int_t
ngx_feira_auth_expired(ngx_feira_identity_t *id)
{
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_feira_auth_api_conf();

    return ngx_time() > id->exp + (amcf ? amcf->leeway : 0);
}


ngx_int_t
ngx_feira_auth_revoked(ngx_feira_identity_t *id)
{
    ngx_feira_jwt_claims_t            claims;
    ngx_http_feira_auth_main_conf_t  *amcf;

    amcf = ngx_feira_auth_api_conf();

    if (amcf == NULL
        || id->id.len >= sizeof(claims.sub)
        || id->jti.len >= sizeof(claims.jti))
    {
        return 1;
    }

    /* the deny list is keyed by token id, and by user for "everywhere" */
    ngx_memzero(&claims, sizeof(ngx_feira_jwt_claims_t));
    ngx_memcpy(claims.sub, id->id.data, id->id.len);
    ngx_memcpy(claims.jti, id->jti.data, id->jti.len);
    claims.iat = (long) id->iat;
    claims.exp = (long) id->exp;

    return ngx_feira_auth_deny_check(amcf->shm_zone, &claims);
}


/* the identity of verified claims, each string NUL-terminated */

ngx_int_t
ngx_feira_auth_identity_set(ngx_pool_t *pool, ngx_feira_jwt_claims_t *claims,
    ngx_feira_identity_t *id)
{
    id->id.len = ngx_strlen(claims->sub);
    id->role.len = ngx_strlen(claims->role);
    id->jti.len = ngx_strlen(claims->jti);
    id->sid.len = ngx_strlen(claims->sid);

    id->id.data = ngx_pnalloc(pool, id->id.len + id->role.len + id->jti.len
                                    + id->sid.len + 4);
    if (id->id.data == NULL) {
        return NGX_ERROR;
    }

    id->role.data = ngx_cpystrn(id->id.data, (u_char *) claims->sub,
                                id->id.len + 1) + 1;
    id->jti.data = ngx_cpystrn(id->role.data, (u_char *) claims->role,
                               id->role.len + 1) + 1;
    id->sid.data = ngx_cpystrn(id->jti.data, (u_char *) claims->jti,
                               id->jti.len + 1) + 1;
    ngx_cpystrn(id->sid.data, (u_char *) claims->sid, id->sid.len + 1);

    id->iat = (time_t) claims->iat;
    id->exp = (time_t) claims->exp;

    return NGX_OK;
}
