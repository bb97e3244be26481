/*
 * Access tokens: issue and verify JWTs.
 *
 * libjwt's jwt_decode() trusts the "alg" of the token's header, so the
 * header is decoded and checked here first: the algorithm must be the
 * configured one (never "none", never HS256 with an RSA public key as the
 * secret), "typ" if present must be "JWT" or "at+jwt", and "kid" must
 * match.  The claim "token_use" must be "access".
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ngx_feira_jwt.h"


static int ngx_feira_jwt_check_header(const ngx_feira_jwt_conf_t *conf,
    const char *token, size_t len, const char **reason);
static int ngx_feira_b64url_decode(const char *in, size_t len,
    unsigned char *out, size_t *out_len);
static int ngx_feira_jwt_copy(char *dst, size_t size, const char *src);
static int ngx_feira_jwt_is_hex(const char *s, size_t len);


int
ngx_feira_jwt_random_hex(char *buf, size_t bytes)
{
    size_t          i;
    unsigned char   raw[64];

    static const char  hex[] = "0123456789abcdef";

    if (bytes > sizeof(raw) || RAND_bytes(raw, (int) bytes) != 1) {
        return -1;
    }

    for (i = 0; i < bytes; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 0xf];
    }

    buf[2 * bytes] = '\0';

    return 0;
}


int
ngx_feira_jwt_role_valid(const char *role)
{
    return strcmp(role, "client") == 0 || strcmp(role, "provider") == 0
           || strcmp(role, "admin") == 0;
}


char *
ngx_feira_jwt_sign(const ngx_feira_jwt_conf_t *conf,
    ngx_feira_jwt_claims_t *claims, time_t now)
{
    char   *token;
    jwt_t  *jwt;

    if (ngx_feira_jwt_random_hex(claims->jti, 16) != 0) {
        return NULL;
    }

    claims->iat = (long) now;
    claims->exp = (long) now + conf->ttl;

    if (jwt_new(&jwt) != 0) {
        return NULL;
    }

    token = NULL;

    if ((conf->kid && jwt_add_header(jwt, "kid", conf->kid) != 0)
        || jwt_add_grant(jwt, "token_use", NGX_FEIRA_JWT_USE) != 0
        || jwt_add_grant(jwt, "sub", claims->sub) != 0
        || jwt_add_grant(jwt, "role", claims->role) != 0
        || jwt_add_grant(jwt, "jti", claims->jti) != 0
        || (claims->sid[0] && jwt_add_grant(jwt, "sid", claims->sid) != 0)
        || jwt_add_grant(jwt, "iss", conf->issuer) != 0
        || jwt_add_grant(jwt, "aud", conf->audience) != 0
        || jwt_add_grant_int(jwt, "iat", claims->iat) != 0
        || jwt_add_grant_int(jwt, "exp", claims->exp) != 0
        || jwt_set_alg(jwt, conf->alg, conf->sign_key,
                       (int) conf->sign_key_len) != 0)
    {
        goto done;
    }

    token = jwt_encode_str(jwt);

done:

    jwt_free(jwt);

    return token;
}


int
ngx_feira_jwt_verify(const ngx_feira_jwt_conf_t *conf, const char *token,
    size_t len, time_t now, ngx_feira_jwt_claims_t *claims,
    const char **reason)
{
    int          rc;
    long         nbf;
    jwt_t       *jwt;
    const char  *s;
    char         buf[NGX_FEIRA_JWT_MAX_LEN + 1];

    if (len == 0 || len > NGX_FEIRA_JWT_MAX_LEN) {
        *reason = "bad token length";
        return -1;
    }

    if (ngx_feira_jwt_check_header(conf, token, len, reason) != 0) {
        return -1;
    }

    /* libjwt wants a C string */
    memcpy(buf, token, len);
    buf[len] = '\0';

    jwt = NULL;

    if (jwt_decode(&jwt, buf, conf->verify_key, (int) conf->verify_key_len)
        != 0 || jwt == NULL)
    {
        *reason = "bad signature or encoding";
        return -1;
    }

    rc = -1;

    if (jwt_get_alg(jwt) != conf->alg) {
        *reason = "unexpected algorithm";
        goto done;
    }

    s = jwt_get_grant(jwt, "token_use");
    if (s == NULL || strcmp(s, NGX_FEIRA_JWT_USE) != 0) {
        *reason = "not an access token";
        goto done;
    }

    s = jwt_get_grant(jwt, "iss");
    if (s == NULL || strcmp(s, conf->issuer) != 0) {
        *reason = "wrong issuer";
        goto done;
    }

    s = jwt_get_grant(jwt, "aud");
    if (s == NULL || strcmp(s, conf->audience) != 0) {
        *reason = "wrong audience";
        goto done;
    }

    errno = 0;
    claims->exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || claims->exp <= 0) {
        *reason = "no expiry";
        goto done;
    }

    if (now > claims->exp + conf->leeway) {
        *reason = "expired";
        goto done;
    }

    errno = 0;
    claims->iat = jwt_get_grant_int(jwt, "iat");
    if (errno != 0 || claims->iat <= 0 || claims->iat > now + conf->leeway) {
        *reason = "bad issue time";
        goto done;
    }

    errno = 0;
    nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno == 0 && nbf > now + conf->leeway) {
        *reason = "not yet valid";
        goto done;
    }

    s = jwt_get_grant(jwt, "sub");
    if (s == NULL || !ngx_feira_jwt_is_hex(s, strlen(s)) || strlen(s) != 24
        || ngx_feira_jwt_copy(claims->sub, sizeof(claims->sub), s) != 0)
    {
        *reason = "bad subject";
        goto done;
    }

    s = jwt_get_grant(jwt, "role");
    if (s == NULL || !ngx_feira_jwt_role_valid(s)
        || ngx_feira_jwt_copy(claims->role, sizeof(claims->role), s) != 0)
    {
        *reason = "bad role";
        goto done;
    }

    s = jwt_get_grant(jwt, "jti");
    if (s == NULL || *s == '\0' || !ngx_feira_jwt_is_hex(s, strlen(s))
        || ngx_feira_jwt_copy(claims->jti, sizeof(claims->jti), s) != 0)
    {
        *reason = "bad token id";
        goto done;
    }

    s = jwt_get_grant(jwt, "sid");
    claims->sid[0] = '\0';

    if (s != NULL
        && (!ngx_feira_jwt_is_hex(s, strlen(s))
            || ngx_feira_jwt_copy(claims->sid, sizeof(claims->sid), s) != 0))
    {
        *reason = "bad session id";
        goto done;
    }

    rc = 0;

done:

    jwt_free(jwt);

    return rc;
}


static int
ngx_feira_jwt_check_header(const ngx_feira_jwt_conf_t *conf,
    const char *token, size_t len, const char **reason)
{
    int             rc;
    size_t          hlen;
    json_t         *header, *v;
    const char     *dot, *s;
    unsigned char   raw[1024];

    dot = memchr(token, '.', len);
    if (dot == NULL || dot == token) {
        *reason = "malformed token";
        return -1;
    }

    if ((size_t) (dot - token) > (sizeof(raw) / 3) * 4) {
        *reason = "header too long";
        return -1;
    }

    if (ngx_feira_b64url_decode(token, dot - token, raw, &hlen) != 0) {
        *reason = "malformed header";
        return -1;
    }

    header = json_loadb((char *) raw, hlen, JSON_REJECT_DUPLICATES, NULL);
    if (header == NULL || !json_is_object(header)) {
        json_decref(header);
        *reason = "malformed header";
        return -1;
    }

    rc = -1;

    v = json_object_get(header, "alg");
    s = json_is_string(v) ? json_string_value(v) : NULL;

    if (s == NULL || conf->alg == JWT_ALG_NONE
        || strcmp(s, jwt_alg_str(conf->alg)) != 0)
    {
        *reason = "unexpected algorithm";
        goto done;
    }

    v = json_object_get(header, "typ");

    if (v != NULL) {
        s = json_is_string(v) ? json_string_value(v) : NULL;

        if (s == NULL
            || (strcasecmp(s, "JWT") != 0 && strcasecmp(s, "at+jwt") != 0))
        {
            *reason = "not an access token";
            goto done;
        }
    }

    v = json_object_get(header, "kid");

    if (v != NULL) {
        s = json_is_string(v) ? json_string_value(v) : NULL;

        if (s == NULL || conf->kid == NULL || strcmp(s, conf->kid) != 0) {
            *reason = "unknown key id";
            goto done;
        }

    } else if (conf->kid != NULL) {
        *reason = "no key id";
        goto done;
    }

    if (json_object_get(header, "crit") != NULL) {
        *reason = "unsupported critical header";
        goto done;
    }

    rc = 0;

done:

    json_decref(header);

    return rc;
}


static int
ngx_feira_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t *out_len)
{
    int            v, bits;
    size_t         i, n;
    uint32_t       acc;
    unsigned char  c;

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '-') {
            v = 62;

        } else if (c == '_') {
            v = 63;

        } else {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (acc >> bits);
        }
    }

    /* a length of 4k+1 cannot come from whole bytes */
    if (len % 4 == 1) {
        return -1;
    }

    *out_len = n;

    return 0;
}


static int
ngx_feira_jwt_copy(char *dst, size_t size, const char *src)
{
    size_t  len;

    len = strlen(src);

    if (len >= size) {
        return -1;
    }

    memcpy(dst, src, len + 1);

    return 0;
}


static int
ngx_feira_jwt_is_hex(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}
