/*
 * feira_auth for other modules: checks of a token and of an identity
 * outside the access phase (a WebSocket that stays open, a stream
 * session).  Load ngx_http_feira_auth_module.so before the module that
 * uses these.
 */

#ifndef _NGX_FEIRA_AUTH_API_H_INCLUDED_
#define _NGX_FEIRA_AUTH_API_H_INCLUDED_


#include "ngx_feira_common.h"


/*
 * NGX_OK: the token is good and *id is filled, its strings allocated from
 * pool; NGX_DECLINED: it is not, *reason says why; NGX_BUSY: the deny list
 * feed is lost or auth is not configured (fail closed); NGX_ERROR.
 */
ngx_int_t ngx_feira_auth_token_identity(ngx_pool_t *pool, u_char *token,
    size_t len, ngx_feira_identity_t *id, const char **reason);

/* 1 once the identity's token has expired (feira_auth_leeway allowed) */
ngx_int_t ngx_feira_auth_expired(ngx_feira_identity_t *id);

/* 1 once the identity's token is on the deny list (logout, reuse) */
ngx_int_t ngx_feira_auth_revoked(ngx_feira_identity_t *id);

/* auth is configured and its deny list feed is current */
ngx_int_t ngx_feira_auth_ready(void);


#endif /* _NGX_FEIRA_AUTH_API_H_INCLUDED_ */
