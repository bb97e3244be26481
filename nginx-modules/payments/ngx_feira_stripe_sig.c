/*
 * Stripe-Signature: parse the header, check a delivery.  See the header.
 */

#include "ngx_feira_stripe_sig.h"

#include <string.h>
#include <stdio.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>


static int ngx_feira_stripe_hex(int c);
static int ngx_feira_stripe_mac(const char *t, size_t t_len,
    const unsigned char *body, size_t body_len, const unsigned char *secret,
    size_t secret_len, unsigned char *mac);


int
ngx_feira_stripe_sig_parse(const char *header, size_t len,
    ngx_feira_stripe_sig_t *sig)
{
    int          hi, lo, have_t;
    size_t       i, klen, vlen;
    const char  *p, *end, *item, *eq, *key, *val;

    memset(sig, 0, sizeof(ngx_feira_stripe_sig_t));

    if (header == NULL || len == 0 || len > NGX_FEIRA_STRIPE_SIG_MAX_LEN) {
        return -1;
    }

    have_t = 0;
    p = header;
    end = header + len;

    while (p <= end) {
        item = p;

        while (p < end && *p != ',') {
            p++;
        }

        /* one "key=value" in [item, p) */

        key = item;

        while (key < p && (*key == ' ' || *key == '\t')) {
            key++;
        }

        eq = memchr(key, '=', p - key);

        if (eq == NULL) {
            return -1;
        }

        klen = eq - key;
        val = eq + 1;
        vlen = p - val;

        while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t')) {
            vlen--;
        }

        if (klen == 1 && key[0] == 't') {
            if (have_t || vlen == 0 || vlen > 18) {
                return -1;
            }

            for (i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9') {
                    return -1;
                }

                sig->t = sig->t * 10 + (val[i] - '0');
            }

            memcpy(sig->t_text, val, vlen);
            sig->t_len = vlen;
            have_t = 1;

        } else if (klen == 2 && key[0] == 'v' && key[1] == '1') {

            /* a v1 that is not 64 hex digits can match nothing: skipped */

            if (vlen == 64 && sig->nv1 < NGX_FEIRA_STRIPE_SIG_MAX_V1) {
                for (i = 0; i < 32; i++) {
                    hi = ngx_feira_stripe_hex(val[2 * i]);
                    lo = ngx_feira_stripe_hex(val[2 * i + 1]);

                    if (hi < 0 || lo < 0) {
                        break;
                    }

                    sig->v1[sig->nv1][i] = (unsigned char) (hi << 4 | lo);
                }

                if (i == 32) {
                    sig->nv1++;
                }
            }

        } else if (klen == 0) {
            return -1;
        }

        /* other schemes (v0, ...) are ignored */

        p++;
    }

    if (!have_t || sig->nv1 == 0) {
        return -1;
    }

    return 0;
}


int
ngx_feira_stripe_sig_verify(const char *header, size_t header_len,
    const unsigned char *body, size_t body_len, const unsigned char *secret,
    size_t secret_len, int64_t now, int64_t tolerance)
{
    int                      match;
    size_t                   i;
    unsigned char            mac[32];
    ngx_feira_stripe_sig_t   sig;

    if (ngx_feira_stripe_sig_parse(header, header_len, &sig) != 0) {
        return NGX_FEIRA_STRIPE_SIG_MALFORMED;
    }

    if (ngx_feira_stripe_mac(sig.t_text, sig.t_len, body, body_len, secret,
                             secret_len, mac)
        != 0)
    {
        return NGX_FEIRA_STRIPE_SIG_MISMATCH;
    }

    match = 0;

    /* every v1 is compared, in constant time */

    for (i = 0; i < sig.nv1; i++) {
        match |= (CRYPTO_memcmp(mac, sig.v1[i], 32) == 0);
    }

    if (!match) {
        return NGX_FEIRA_STRIPE_SIG_MISMATCH;
    }

    if (sig.t < now - tolerance || sig.t > now + tolerance) {
        return NGX_FEIRA_STRIPE_SIG_EXPIRED;
    }

    return NGX_FEIRA_STRIPE_SIG_OK;
}


int
ngx_feira_stripe_sig_sign(const unsigned char *body, size_t body_len,
    const unsigned char *secret, size_t secret_len, int64_t t,
    unsigned char *mac)
{
    int   n;
    char  text[24];

    n = snprintf(text, sizeof(text), "%lld", (long long) t);

    if (n <= 0 || (size_t) n >= sizeof(text)) {
        return -1;
    }

    return ngx_feira_stripe_mac(text, n, body, body_len, secret, secret_len,
                                mac);
}


static int
ngx_feira_stripe_mac(const char *t, size_t t_len, const unsigned char *body,
    size_t body_len, const unsigned char *secret, size_t secret_len,
    unsigned char *mac)
{
    int            rc;
    size_t         len;
    EVP_MAC       *hmac;
    OSSL_PARAM     params[2];
    EVP_MAC_CTX   *ctx;

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (hmac == NULL) {
        return -1;
    }

    ctx = EVP_MAC_CTX_new(hmac);
    if (ctx == NULL) {
        EVP_MAC_free(hmac);
        return -1;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    rc = -1;

    if (EVP_MAC_init(ctx, secret, secret_len, params)
        && EVP_MAC_update(ctx, (const unsigned char *) t, t_len)
        && EVP_MAC_update(ctx, (const unsigned char *) ".", 1)
        && (body_len == 0 || EVP_MAC_update(ctx, body, body_len))
        && EVP_MAC_final(ctx, mac, &len, 32)
        && len == 32)
    {
        rc = 0;
    }

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);

    return rc;
}


static int
ngx_feira_stripe_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}
