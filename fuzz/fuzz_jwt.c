/*
 * libFuzzer target: any bytes as a bearer token through the access token
 * check (ngx_feira_jwt.c).  Nothing forged may pass.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_feira_jwt.h"


static const unsigned char  secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";

static ngx_feira_jwt_conf_t  conf = {
    .alg = JWT_ALG_HS256,
    .sign_key = secret,
    .sign_key_len = sizeof(secret) - 1,
    .verify_key = secret,
    .verify_key_len = sizeof(secret) - 1,
    .issuer = "feira",
    .audience = "feira-api",
    .ttl = 900,
    .leeway = 30
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (ngx_feira_jwt_prepare(&conf) != 0) {
        fprintf(stderr, "ngx_feira_jwt_prepare() failed\n");
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char              *reason;
    ngx_feira_jwt_claims_t   claims;

    if (ngx_feira_jwt_verify(&conf, (const char *) data, size, 1800000000,
                             &claims, &reason) == 0)
    {
        /* a valid signature from random bytes: the check is broken */
        fprintf(stderr, "accepted a token nobody signed\n");
        abort();
    }

    return 0;
}
