/*
 * Stripe-Signature (nginx-modules/payments/ngx_feira_stripe_sig.c): the
 * parser and the check of a delivery.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_stripe_sig.h"


static const unsigned char  secret[] = "whsec_test_secret";
static const char           body[] = "{\"id\":\"evt_1\",\"type\":\"x\"}";

#define NOW  1700000000

/* a well-formed v1 value */
#define V1   "5257a869e7ecebeda32affa62cdca3fa" \
             "51cad7e77a0e56ff536d0ce8e108d8bd"


/* "t=<t>,v1=<hex of the mac of body at t>" */
static void
signed_header(char *out, size_t size, int64_t t, const char *b,
    const char *extra)
{
    size_t         i, n;
    unsigned char  mac[32];

    assert_int_equal(ngx_feira_stripe_sig_sign((const unsigned char *) b,
                                               strlen(b), secret,
                                               sizeof(secret) - 1, t, mac),
                     0);

    n = snprintf(out, size, "t=%lld,%sv1=", (long long) t, extra);

    for (i = 0; i < 32; i++) {
        n += snprintf(out + n, size - n, "%02x", mac[i]);
    }
}


static int
verify(const char *header, const char *b, int64_t now)
{
    return ngx_feira_stripe_sig_verify(header, strlen(header),
                                       (const unsigned char *) b, strlen(b),
                                       secret, sizeof(secret) - 1, now, 300);
}


static void
test_parse_good(void **state)
{
    ngx_feira_stripe_sig_t  sig;
    const char *h = "t=1492774577,"
        "v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
        "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";

    assert_int_equal(ngx_feira_stripe_sig_parse(h, strlen(h), &sig), 0);
    assert_int_equal(sig.t, 1492774577);
    assert_int_equal(sig.nv1, 1);
    assert_int_equal(sig.v1[0][0], 0x52);
    assert_int_equal(sig.v1[0][31], 0xbd);
    assert_int_equal(sig.t_len, 10);
}


static void
test_parse_bad(void **state)
{
    size_t                   i;
    ngx_feira_stripe_sig_t   sig;
    static const char       *bad[] = {
        "",
        "t=",
        "t=12",                                         /* no v1 */
        "v1=" V1,
        "t=1x,v1=" V1,
        "t=1,t=2,v1=" V1,
        "t=1,v1=5257",                                  /* short v1 only */
        "t=1,v1=zz57a869e7ecebeda32affa62cdca3fa"
            "51cad7e77a0e56ff536d0ce8e108d8bd",
        "t=1,garbage",
        "t=1,=x,v1=" V1,
        "t=1234567890123456789,v1=" V1,
        "t=-5,v1=" V1,
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ngx_feira_stripe_sig_parse(bad[i], strlen(bad[i]),
                                                    &sig),
                         -1);
    }

    assert_int_equal(ngx_feira_stripe_sig_parse(NULL, 0, &sig), -1);
}


static void
test_verify_good(void **state)
{
    char  h[256];

    signed_header(h, sizeof(h), NOW, body, "");
    assert_int_equal(verify(h, body, NOW), NGX_FEIRA_STRIPE_SIG_OK);
    assert_int_equal(verify(h, body, NOW + 300), NGX_FEIRA_STRIPE_SIG_OK);
}


static void
test_verify_any_v1(void **state)
{
    char  h[512];

    /* a rolled secret: the old signature first, ours second */
    signed_header(h, sizeof(h), NOW, body,
        "v1=0000000000000000000000000000000000000000000000000000000000000000,");
    assert_int_equal(verify(h, body, NOW), NGX_FEIRA_STRIPE_SIG_OK);
}


static void
test_verify_expired(void **state)
{
    char  h[256];

    signed_header(h, sizeof(h), NOW - 301, body, "");
    assert_int_equal(verify(h, body, NOW), NGX_FEIRA_STRIPE_SIG_EXPIRED);

    signed_header(h, sizeof(h), NOW + 301, body, "");
    assert_int_equal(verify(h, body, NOW), NGX_FEIRA_STRIPE_SIG_EXPIRED);
}


static void
test_verify_tampered(void **state)
{
    char  h[256];

    signed_header(h, sizeof(h), NOW, body, "");

    /* another body, another t, another secret */
    assert_int_equal(verify(h, "{\"id\":\"evt_2\",\"type\":\"x\"}", NOW),
                     NGX_FEIRA_STRIPE_SIG_MISMATCH);

    h[2] = h[2] == '1' ? '2' : '1';
    assert_int_equal(verify(h, body, NOW), NGX_FEIRA_STRIPE_SIG_MISMATCH);

    signed_header(h, sizeof(h), NOW, body, "");
    assert_int_equal(ngx_feira_stripe_sig_verify(h, strlen(h),
                         (const unsigned char *) body, strlen(body),
                         (const unsigned char *) "whsec_other", 11, NOW, 300),
                     NGX_FEIRA_STRIPE_SIG_MISMATCH);

    assert_int_equal(verify("t=1,v0=ab", body, NOW),
                     NGX_FEIRA_STRIPE_SIG_MALFORMED);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_verify_good),
        cmocka_unit_test(test_verify_any_v1),
        cmocka_unit_test(test_verify_expired),
        cmocka_unit_test(test_verify_tampered),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
