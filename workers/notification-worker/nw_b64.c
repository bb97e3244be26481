/*
 * Base64 encoding for MIME bodies, encoded words and JWTs.
 */

#include <stdint.h>
#include <stdlib.h>

#include "nw_b64.h"


static const char  nw_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  nw_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


char *
nw_b64(const unsigned char *in, size_t len, int url, size_t *out_len)
{
    char        *out, *p;
    size_t       i;
    uint32_t     v;
    const char  *abc;

    abc = url ? nw_b64_url : nw_b64_std;

    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];
        *p++ = abc[v >> 6 & 63];
        *p++ = abc[v & 63];
    }

    if (i < len) {
        v = (uint32_t) in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t) in[i + 1] << 8;
        }

        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];

        if (i + 1 < len) {
            *p++ = abc[v >> 6 & 63];

        } else if (!url) {
            *p++ = '=';
        }

        if (!url) {
            *p++ = '=';
        }
    }

    *p = '\0';

    if (out_len != NULL) {
        *out_len = p - out;
    }

    return out;
}
