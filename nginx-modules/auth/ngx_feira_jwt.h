/*
 * Access tokens: JWT issue and verification over libjwt, with the header
 * checked before any signature is (no "none", no algorithm confusion).
 *
 * Pure C (libjwt, jansson, OpenSSL), so that unit tests and fuzz targets
 * link it without nginx.
 */

#ifndef _NGX_FEIRA_JWT_H_INCLUDED_
#define _NGX_FEIRA_JWT_H_INCLUDED_


#include <stddef.h>
#include <time.h>
#include <jwt.h>


#define NGX_FEIRA_JWT_MAX_LEN   4096
/* libjwt 1.10 always writes "typ":"JWT": the kind goes in a claim */
#define NGX_FEIRA_JWT_USE       "access"


typedef struct {
    jwt_alg_t               alg;
    /* HS256: the secret; RS256/ES256: the private key, PEM */
    const unsigned char    *sign_key;
    size_t                  sign_key_len;
    /* HS256: the secret; RS256/ES256: the public key, PEM */
    const unsigned char    *verify_key;
    size_t                  verify_key_len;
    const char             *kid;          /* NULL: none */
    const char             *issuer;
    const char             *audience;
    long                    ttl;          /* seconds */
    long                    leeway;       /* seconds */
} ngx_feira_jwt_conf_t;


typedef struct {
    char                    sub[25];
    char                    role[16];
    char                    jti[33];
    char                    sid[33];
    long                    iat;
    long                    exp;
} ngx_feira_jwt_claims_t;


/* fills claims->jti, iat and exp; returns a malloc()ed token or NULL */
char *ngx_feira_jwt_sign(const ngx_feira_jwt_conf_t *conf,
    ngx_feira_jwt_claims_t *claims, time_t now);

/* 0 and the claims, or -1 and a reason fit for a log line */
int ngx_feira_jwt_verify(const ngx_feira_jwt_conf_t *conf, const char *token,
    size_t len, time_t now, ngx_feira_jwt_claims_t *claims,
    const char **reason);

int ngx_feira_jwt_random_hex(char *buf, size_t bytes);
int ngx_feira_jwt_role_valid(const char *role);


#endif /* _NGX_FEIRA_JWT_H_INCLUDED_ */
