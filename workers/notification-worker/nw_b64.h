/*
 * Base64 (RFC 4648): standard with padding, and URL-safe without.
 */

#ifndef NW_B64_H
#define NW_B64_H

#include <stddef.h>

char *nw_b64(const unsigned char *in, size_t len, int url, size_t *out_len);

#endif /* NW_B64_H */
