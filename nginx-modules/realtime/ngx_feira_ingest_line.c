/*
 * The TCP location ingest's line parser (see ngx_feira_ingest_line.h).
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_feira_ingest_line.h"


#define NGX_FEIRA_INGEST_NUMBER  32


static int ngx_feira_ingest_number(const unsigned char **p,
    const unsigned char *last, double *value);
static void ngx_feira_ingest_loc(const unsigned char *p,
    const unsigned char *last, int64_t now_ms, ngx_feira_ingest_line_t *out);


int
ngx_feira_ingest_parse(const unsigned char *line, size_t len, int64_t now_ms,
    ngx_feira_ingest_line_t *out)
{
    memset(out, 0, sizeof(ngx_feira_ingest_line_t));

    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }

    if (len == 0) {
        out->command = NGX_FEIRA_INGEST_EMPTY;
        return out->command;
    }

    if (len > 5 && memcmp(line, "AUTH ", 5) == 0) {
        out->command = NGX_FEIRA_INGEST_AUTH;
        out->token = line + 5;
        out->token_len = len - 5;

        while (out->token_len && *out->token == ' ') {
            out->token++;
            out->token_len--;
        }

        while (out->token_len && out->token[out->token_len - 1] == ' ') {
            out->token_len--;
        }

        if (out->token_len == 0) {
            out->error = "invalid_token";
        }

        return out->command;
    }

    if (len > 4 && memcmp(line, "LOC ", 4) == 0) {
        out->command = NGX_FEIRA_INGEST_LOC;
        ngx_feira_ingest_loc(line + 4, line + len, now_ms, out);
        return out->command;
    }

    out->command = NGX_FEIRA_INGEST_UNKNOWN;
    out->error = "unknown_command";

    return out->command;
}


static void
ngx_feira_ingest_loc(const unsigned char *p, const unsigned char *last,
    int64_t now_ms, ngx_feira_ingest_line_t *out)
{
    double  at;

    if (ngx_feira_ingest_number(&p, last, &out->lat) != 0
        || ngx_feira_ingest_number(&p, last, &out->lng) != 0
        || !(out->lat >= -90 && out->lat <= 90
             && out->lng >= -180 && out->lng <= 180))
    {
        out->error = "bad_location";
        return;
    }

    if (p == last) {
        return;
    }

    /* whole milliseconds, within the clock's tolerance */
    if (ngx_feira_ingest_number(&p, last, &at) != 0
        || p != last || at < 0 || at > 1e15
        || at != (double) (int64_t) at)
    {
        out->error = "bad_time";
        return;
    }

    out->at_ms = (int64_t) at;

    if (out->at_ms > now_ms + NGX_FEIRA_INGEST_MAX_SKEW
        || out->at_ms < now_ms - NGX_FEIRA_INGEST_MAX_AGE)
    {
        out->error = "bad_time";
        out->at_ms = 0;
    }
}


/* a decimal number and the spaces after it; 0 on success */

static int
ngx_feira_ingest_number(const unsigned char **p, const unsigned char *last,
    double *value)
{
    char                 *stop, buf[NGX_FEIRA_INGEST_NUMBER];
    const unsigned char  *s, *end;

    s = *p;

    while (s < last && *s == ' ') {
        s++;
    }

    for (end = s; end < last && *end != ' '; end++) {
        if (!((*end >= '0' && *end <= '9') || *end == '.' || *end == '-'
              || *end == '+' || *end == 'e' || *end == 'E'))
        {
            return -1;
        }
    }

    if (end == s || (size_t) (end - s) >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, s, end - s);
    buf[end - s] = '\0';

    *value = strtod(buf, &stop);

    if (*stop != '\0' || !isfinite(*value)) {
        return -1;
    }

    while (end < last && *end == ' ') {
        end++;
    }

    *p = end;

    return 0;
}
