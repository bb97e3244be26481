/*
 * One line of the TCP location ingest ("AUTH <token>", "LOC <lat> <lng>
 * [<unix ms>]"), parsed and checked.
 *
 * Pure C, with no nginx dependency, so that the C unit tests and the
 * libFuzzer target link it alone.
 */

#ifndef _NGX_FEIRA_INGEST_LINE_H_INCLUDED_
#define _NGX_FEIRA_INGEST_LINE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_FEIRA_INGEST_EMPTY     0
#define NGX_FEIRA_INGEST_AUTH      1
#define NGX_FEIRA_INGEST_LOC       2
#define NGX_FEIRA_INGEST_UNKNOWN   3

/* a time stamp may be this far ahead of the server's clock, or behind */
#define NGX_FEIRA_INGEST_MAX_SKEW  60000
#define NGX_FEIRA_INGEST_MAX_AGE   600000


typedef struct {
    int             command;

    /* AUTH: the token, within the line */
    const unsigned char  *token;
    size_t          token_len;

    /* LOC: at_ms is 0 when the line gives no time */
    double          lat;
    double          lng;
    int64_t         at_ms;

    /* NULL, or why the line is refused: the ERR reason */
    const char     *error;
} ngx_feira_ingest_line_t;


/*
 * Parses LINE (without its newline) of LEN bytes; NOW_MS is the server's
 * clock for the time check.  Returns the command, with line->error set
 * when its arguments are refused.
 */
int ngx_feira_ingest_parse(const unsigned char *line, size_t len,
    int64_t now_ms, ngx_feira_ingest_line_t *out);


#endif /* _NGX_FEIRA_INGEST_LINE_H_INCLUDED_ */
