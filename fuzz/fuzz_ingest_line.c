/*
 * libFuzzer target of the TCP location ingest's line parser: any line
 * must parse without reading out of bounds, and what it accepts must be
 * a position on Earth, a time within the tolerance, or a token inside
 * the line.  `make fuzz` runs it for a bounded time.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_feira_ingest_line.h"


#define FUZZ_NOW  1764583200000LL


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char            *copy;
    ngx_feira_ingest_line_t   line;

    /* an exact-size copy, so that ASan sees any read past the line */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    switch (ngx_feira_ingest_parse(copy, size, FUZZ_NOW, &line)) {

    case NGX_FEIRA_INGEST_EMPTY:
        if (size > 1 || (size == 1 && copy[0] != '\r')) {
            abort();
        }
        break;

    case NGX_FEIRA_INGEST_AUTH:
        if (line.token < copy + 5
            || line.token + line.token_len > copy + size
            || (line.error == NULL && line.token_len == 0))
        {
            abort();
        }
        break;

    case NGX_FEIRA_INGEST_LOC:
        if (line.error != NULL) {
            break;
        }

        if (!(line.lat >= -90 && line.lat <= 90
              && line.lng >= -180 && line.lng <= 180))
        {
            abort();
        }

        if (line.at_ms != 0
            && (line.at_ms > FUZZ_NOW + NGX_FEIRA_INGEST_MAX_SKEW
                || line.at_ms < FUZZ_NOW - NGX_FEIRA_INGEST_MAX_AGE))
        {
            abort();
        }
        break;

    case NGX_FEIRA_INGEST_UNKNOWN:
        if (line.error == NULL) {
            abort();
        }
        break;

    default:
        abort();
    }

    free(copy);

    return 0;
}
