/*
 * Unit tests of access token issue and verification (ngx_feira_jwt.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_feira_jwt.h"


#define NOW  1800000000L


static const unsigned char  secret[] = "0123456789abcdef0123456789abcdef";

static ngx_feira_jwt_conf_t  conf = {
    .alg = JWT_ALG_HS256,
    .sign_key = secret,
    .sign_key_len = 32,
    .verify_key = secret,
    .verify_key_len = 32,
    .kid = NULL,
    .issuer = "feira",
    .audience = "feira-api",
    .ttl = 900,
    .leeway = 30
};


static char *
issue(void)
{
    ngx_feira_jwt_claims_t  c;

    memset(&c, 0, sizeof(c));
    strcpy(c.sub, "0123456789abcdef01234567");
    strcpy(c.role, "provider");
    strcpy(c.sid, "00112233445566778899aabbccddeeff");

    return ngx_feira_jwt_sign(&conf, &c, NOW);
}


static void
b64url(const unsigned char *in, size_t len, char *out)
{
    size_t  i, n;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    for (i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';

        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }

    while (n && out[n - 1] == '=') {
        n--;
    }

    out[n] = '\0';
}


/* header and payload JSON signed with HS256 and the test secret */

static char *
forge(const char *header, const char *payload)
{
    char           *token, *p;
    unsigned int    mdlen;
    unsigned char   md[32];

    token = malloc(4096);
    assert_non_null(token);

    b64url((const unsigned char *) header, strlen(header), token);
    p = token + strlen(token);
    *p++ = '.';
    b64url((const unsigned char *) payload, strlen(payload), p);
    p += strlen(p);

    HMAC(EVP_sha256(), secret, 32, (unsigned char *) token, p - token, md,
         &mdlen);

    *p++ = '.';
    b64url(md, mdlen, p);

    return token;
}


static int
verify(const char *token, const char **reason)
{
    ngx_feira_jwt_claims_t  c;

    return ngx_feira_jwt_verify(&conf, token, strlen(token), NOW, &c, reason);
}


#define CLAIMS(extra)                                                        \
    "{\"sub\":\"0123456789abcdef01234567\",\"role\":\"client\","             \
    "\"jti\":\"abcdef\",\"iss\":\"feira\",\"aud\":\"feira-api\","            \
    "\"iat\":1800000000,\"exp\":1800000900,\"token_use\":\"access\""        \
    extra "}"


static void
test_round_trip(void **state)
{
    char                    *t;
    const char              *reason;
    ngx_feira_jwt_claims_t   c;

    t = issue();
    assert_non_null(t);

    assert_int_equal(ngx_feira_jwt_verify(&conf, t, strlen(t), NOW + 60, &c,
                                          &reason), 0);
    assert_string_equal(c.sub, "0123456789abcdef01234567");
    assert_string_equal(c.role, "provider");
    assert_string_equal(c.sid, "00112233445566778899aabbccddeeff");
    assert_int_equal(strlen(c.jti), 32);
    assert_int_equal(c.exp, NOW + 900);

    free(t);
}


static void
test_forged_control(void **state)
{
    char        *t;
    const char  *reason;

    t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", CLAIMS(""));
    assert_int_equal(verify(t, &reason), 0);
    free(t);
}


static void
test_expiry_and_leeway(void **state)
{
    char                    *t;
    const char              *reason;
    ngx_feira_jwt_claims_t   c;

    t = issue();

    assert_int_equal(ngx_feira_jwt_verify(&conf, t, strlen(t),
                                          NOW + 900 + 30, &c, &reason), 0);
    assert_int_equal(ngx_feira_jwt_verify(&conf, t, strlen(t),
                                          NOW + 900 + 31, &c, &reason), -1);
    assert_string_equal(reason, "expired");

    free(t);
}


static void
test_rejections(void **state)
{
    size_t       i;
    char        *t;
    const char  *reason;

    static const struct {
        const char  *header;
        const char  *payload;
        const char  *reason;
    } cases[] = {
        { "{\"alg\":\"none\"}", CLAIMS(""), "unexpected algorithm" },
        { "{\"alg\":\"HS512\"}", CLAIMS(""), "unexpected algorithm" },
        { "{\"typ\":\"JWT\"}", CLAIMS(""), "unexpected algorithm" },
        { "{\"alg\":\"HS256\",\"typ\":\"x\"}", CLAIMS(""),
          "not an access token" },
        { "{\"alg\":\"HS256\",\"kid\":\"k\"}", CLAIMS(""),
          "unknown key id" },
        { "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", CLAIMS(""),
          "unsupported critical header" },
        { "{\"alg\":\"HS256\"}", CLAIMS(",\"nbf\":1800001000"),
          "not yet valid" },
        { "{\"alg\":\"HS256\"}",
          "{\"sub\":\"0123456789abcdef01234567\",\"role\":\"client\","
          "\"jti\":\"ab\",\"iss\":\"feira\",\"aud\":\"feira-api\","
          "\"iat\":1800000000,\"exp\":1800000900}", "not an access token" },
        { "{\"alg\":\"HS256\"}",
          "{\"sub\":\"0123456789abcdef01234567\",\"role\":\"client\","
          "\"jti\":\"ab\",\"iss\":\"other\",\"aud\":\"feira-api\","
          "\"iat\":1800000000,\"exp\":1800000900,\"token_use\":\"access\"}",
          "wrong issuer" },
        { "{\"alg\":\"HS256\"}",
          "{\"sub\":\"0123456789abcdef01234567\",\"role\":\"root\","
          "\"jti\":\"ab\",\"iss\":\"feira\",\"aud\":\"feira-api\","
          "\"iat\":1800000000,\"exp\":1800000900,\"token_use\":\"access\"}",
          "bad role" },
        { "{\"alg\":\"HS256\"}",
          "{\"sub\":\"nothex\",\"role\":\"client\","
          "\"jti\":\"ab\",\"iss\":\"feira\",\"aud\":\"feira-api\","
          "\"iat\":1800000000,\"exp\":1800000900,\"token_use\":\"access\"}",
          "bad subject" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t = forge(cases[i].header, cases[i].payload);
        reason = NULL;
        assert_int_equal(verify(t, &reason), -1);
        assert_non_null(reason);

        if (strcmp(reason, cases[i].reason) != 0) {
            fail_msg("case %zu: \"%s\", expected \"%s\"", i, reason,
                     cases[i].reason);
        }

        free(t);
    }
}


static void
test_tampering(void **state)
{
    char        *t, *dot;
    const char  *reason;

    t = issue();

    /* flip one character of the payload */
    dot = strchr(t, '.');
    dot[5] = (dot[5] == 'A') ? 'B' : 'A';
    assert_int_equal(verify(t, &reason), -1);

    free(t);

    assert_int_equal(verify("", &reason), -1);
    assert_int_equal(verify("abc", &reason), -1);
    assert_int_equal(verify("a.b.c", &reason), -1);
    assert_int_equal(verify("!!!.b.c", &reason), -1);
    assert_int_equal(verify(".eyJ9.x", &reason), -1);
    assert_int_equal(verify("a.b.c.d", &reason), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_forged_control),
        cmocka_unit_test(test_expiry_and_leeway),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_tampering),
    };

    if (ngx_feira_jwt_prepare(&conf) != 0) {
        fprintf(stderr, "ngx_feira_jwt_prepare() failed\n");
        return 1;
    }

    return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
