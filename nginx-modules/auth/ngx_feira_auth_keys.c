/*
 * Signing keys, read at configuration time: an HS256 secret from a file,
 * or an RS256/ES256 key pair in PEM, whose public half is also served as a
 * JWK Set (GET /.well-known/jwks.json).
 */

#include "ngx_http_feira_auth_module.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>


#define NGX_FEIRA_AUTH_MIN_SECRET  32


static ngx_int_t ngx_feira_auth_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out);
static char *ngx_feira_auth_jwks(ngx_conf_t *cf,
    ngx_http_feira_auth_main_conf_t *amcf);
static json_t *ngx_feira_auth_bn_param(EVP_PKEY *pkey, const char *name,
    size_t pad);
static json_t *ngx_feira_auth_b64url(const u_char *data, size_t len);


char *
ngx_feira_auth_load_keys(ngx_conf_t *cf, ngx_http_feira_auth_main_conf_t *amcf)
{
    ngx_str_t  secret, priv, pub;

    if (amcf->algorithm.len == 0 || ngx_strcmp(amcf->algorithm.data, "HS256")
                                    == 0)
    {
        amcf->jwt.alg = JWT_ALG_HS256;

        if (amcf->secret_file.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"feira_auth_secret_file\" is required "
                               "for HS256");
            return NGX_CONF_ERROR;
        }

        if (ngx_feira_auth_read_file(cf, &amcf->secret_file, &secret)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        /* a trailing newline of an editor is not part of the secret */
        while (secret.len && (secret.data[secret.len - 1] == '\n'
                              || secret.data[secret.len - 1] == '\r'))
        {
            secret.len--;
        }

        if (secret.len < NGX_FEIRA_AUTH_MIN_SECRET) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the secret in \"%V\" is shorter than %d "
                               "bytes", &amcf->secret_file,
                               NGX_FEIRA_AUTH_MIN_SECRET);
            return NGX_CONF_ERROR;
        }

        amcf->jwt.sign_key = secret.data;
        amcf->jwt.sign_key_len = secret.len;
        amcf->jwt.verify_key = secret.data;
        amcf->jwt.verify_key_len = secret.len;

        ngx_str_set(&amcf->jwks, "{\"keys\":[]}");

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(amcf->algorithm.data, "RS256") == 0) {
        amcf->jwt.alg = JWT_ALG_RS256;

    } else if (ngx_strcmp(amcf->algorithm.data, "ES256") == 0) {
        amcf->jwt.alg = JWT_ALG_ES256;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown \"feira_auth_algorithm\" \"%V\", "
                           "expected HS256, RS256 or ES256",
                           &amcf->algorithm);
        return NGX_CONF_ERROR;
    }

    if (amcf->private_key.len == 0 || amcf->public_key.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_auth_private_key\" and "
                           "\"feira_auth_public_key\" are required for %V",
                           &amcf->algorithm);
        return NGX_CONF_ERROR;
    }

    if (ngx_feira_auth_read_file(cf, &amcf->private_key, &priv) != NGX_OK
        || ngx_feira_auth_read_file(cf, &amcf->public_key, &pub) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    amcf->jwt.sign_key = priv.data;
    amcf->jwt.sign_key_len = priv.len;
    amcf->jwt.verify_key = pub.data;
    amcf->jwt.verify_key_len = pub.len;

    if (amcf->kid.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_auth_kid\" is required for %V",
                           &amcf->algorithm);
        return NGX_CONF_ERROR;
    }

    return ngx_feira_auth_jwks(cf, amcf);
}


static ngx_int_t
ngx_feira_auth_read_file(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out)
{
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 64 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be read or is too large", name);
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, out->data, out->len, 0);

    ngx_close_file(file.fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cannot read \"%V\"", name);
        return NGX_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


static char *
ngx_feira_auth_jwks(ngx_conf_t *cf, ngx_http_feira_auth_main_conf_t *amcf)
{
    BIO       *bio;
    char      *text;
    size_t     len;
    json_t    *jwk, *jwks;
    EVP_PKEY  *pkey;

    bio = BIO_new_mem_buf(amcf->jwt.verify_key,
                          (int) amcf->jwt.verify_key_len);
    if (bio == NULL) {
        return NGX_CONF_ERROR;
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a PEM public key",
                           &amcf->public_key);
        return NGX_CONF_ERROR;
    }

    jwk = NULL;

    if (amcf->jwt.alg == JWT_ALG_RS256 && EVP_PKEY_is_a(pkey, "RSA")) {
        jwk = json_pack("{s:s, s:s, s:s, s:s%, s:o, s:o}",
                        "kty", "RSA", "use", "sig", "alg", "RS256",
                        "kid", amcf->kid.data, amcf->kid.len,
                        "n", ngx_feira_auth_bn_param(pkey,
                                                     OSSL_PKEY_PARAM_RSA_N, 0),
                        "e", ngx_feira_auth_bn_param(pkey,
                                                     OSSL_PKEY_PARAM_RSA_E,
                                                     0));

    } else if (amcf->jwt.alg == JWT_ALG_ES256 && EVP_PKEY_is_a(pkey, "EC")
               && EVP_PKEY_get_bits(pkey) == 256)
    {
        jwk = json_pack("{s:s, s:s, s:s, s:s, s:s%, s:o, s:o}",
                        "kty", "EC", "use", "sig", "alg", "ES256",
                        "crv", "P-256",
                        "kid", amcf->kid.data, amcf->kid.len,
                        "x", ngx_feira_auth_bn_param(pkey,
                                                 OSSL_PKEY_PARAM_EC_PUB_X, 32),
                        "y", ngx_feira_auth_bn_param(pkey,
                                                 OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    }

    EVP_PKEY_free(pkey);

    if (jwk == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a key for %V",
                           &amcf->public_key, &amcf->algorithm);
        return NGX_CONF_ERROR;
    }

    jwks = json_pack("{s:[o]}", "keys", jwk);
    if (jwks == NULL) {
        return NGX_CONF_ERROR;
    }

    text = json_dumps(jwks, JSON_COMPACT);
    json_decref(jwks);

    if (text == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_strlen(text);

    amcf->jwks.data = ngx_pnalloc(cf->pool, len);
    if (amcf->jwks.data == NULL) {
        free(text);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(amcf->jwks.data, text, len);
    amcf->jwks.len = len;

    free(text);

    return NGX_CONF_OK;
}


static json_t *
ngx_feira_auth_bn_param(EVP_PKEY *pkey, const char *name, size_t pad)
{
    int      n;
    json_t  *v;
    BIGNUM  *bn;
    u_char   buf[1024];

    bn = NULL;

    if (!EVP_PKEY_get_bn_param(pkey, name, &bn)) {
        return NULL;
    }

    n = BN_num_bytes(bn);

    if (pad) {
        n = ((size_t) n > pad || pad > sizeof(buf))
            ? -1 : BN_bn2binpad(bn, buf, (int) pad);

    } else if ((size_t) n <= sizeof(buf)) {
        n = BN_bn2bin(bn, buf);

    } else {
        n = -1;
    }

    BN_free(bn);

    if (n < 0) {
        return NULL;
    }

    v = ngx_feira_auth_b64url(buf, (size_t) n);

    return v;
}


static json_t *
ngx_feira_auth_b64url(const u_char *data, size_t len)
{
    u_char     buf[2048];
    ngx_str_t  src, dst;

    if (ngx_base64_encoded_length(len) > sizeof(buf)) {
        return NULL;
    }

    src.data = (u_char *) data;
    src.len = len;
    dst.data = buf;

    ngx_encode_base64url(&dst, &src);

    return json_stringn((char *) dst.data, dst.len);
}
