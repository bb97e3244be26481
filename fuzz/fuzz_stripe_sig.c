/*
 * libFuzzer target: any bytes as a Stripe-Signature header, through the
 * parser and the check of a delivery (ngx_feira_stripe_sig.c).  A header
 * that does not carry the right MAC may never pass.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_feira_stripe_sig.h"


static const unsigned char  secret[] = "whsec_fuzz_secret";
static const unsigned char  body[] = "{\"id\":\"evt_fuzz\"}";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      rc;
    size_t                   i;
    unsigned char            mac[32];
    ngx_feira_stripe_sig_t   sig;

    if (ngx_feira_stripe_sig_parse((const char *) data, size, &sig) == 0) {
        if (sig.nv1 == 0 || sig.nv1 > NGX_FEIRA_STRIPE_SIG_MAX_V1
            || sig.t_len == 0 || sig.t_len > 18 || sig.t < 0)
        {
            abort();
        }
    }

    rc = ngx_feira_stripe_sig_verify((const char *) data, size, body,
                                     sizeof(body) - 1, secret,
                                     sizeof(secret) - 1, sig.t, 300);

    if (rc == NGX_FEIRA_STRIPE_SIG_OK) {
        /* it must really carry the MAC of the body at its t */
        if (ngx_feira_stripe_sig_sign(body, sizeof(body) - 1, secret,
                                      sizeof(secret) - 1, sig.t, mac)
            != 0)
        {
            abort();
        }

        for (i = 0; i < sig.nv1; i++) {
            if (memcmp(mac, sig.v1[i], 32) == 0) {
                break;
            }
        }

        if (i == sig.nv1) {
            abort();
        }
    }

    return 0;
}
