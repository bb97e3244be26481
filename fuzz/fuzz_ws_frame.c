/*
 * libFuzzer target of the WebSocket frame parser: any input, fed whole and
 * in pieces, must give the same events, never read or write out of
 * bounds, keep messages within their limit, and pass only valid UTF-8 as
 * text.  `make fuzz` runs it for a bounded time.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_feira_ws_frame.h"


#define FUZZ_MAX_MESSAGE  4096
#define FUZZ_MAX_EVENTS   4096


typedef struct {
    int       rc;
    int       opcode;
    unsigned  code;
    int       first;
    int       last;
    uint32_t  hash;        /* of the chunk, so splits compare equal */
    size_t    len;
} fuzz_event_t;


typedef struct {
    fuzz_event_t  ev[FUZZ_MAX_EVENTS];
    size_t        n;
    size_t        data;     /* total data bytes, chunks merged */
} fuzz_trace_t;


static uint32_t
fuzz_hash(uint32_t h, const uint8_t *p, size_t len)
{
    while (len--) {
        h = (h ^ *p++) * 16777619u;
    }

    return h;
}


/* runs the parser over buf, cut every `step` bytes; chunks are merged */

static void
fuzz_run(const uint8_t *data, size_t size, size_t step, fuzz_trace_t *t)
{
    int                    rc;
    size_t                 off, n, msg_len;
    uint8_t               *buf, *pos, *last;
    uint32_t               h;
    ngx_feira_utf8_t       u;
    ngx_feira_ws_parser_t  p;
    ngx_feira_ws_event_t   ev;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    memcpy(buf, data, size);

    ngx_feira_ws_parser_init(&p, FUZZ_MAX_MESSAGE);
    t->n = 0;
    t->data = 0;
    h = 2166136261u;
    msg_len = 0;
    ngx_feira_utf8_init(&u);

    for (off = 0; off < size; off += n) {
        n = step ? step : size;
        if (n > size - off) {
            n = size - off;
        }

        pos = buf + off;
        last = pos + n;

        for ( ;; ) {
            rc = ngx_feira_ws_parse(&p, &pos, last, &ev);

            if (pos < buf + off || pos > last) {
                abort();
            }

            if (rc == NGX_FEIRA_WS_AGAIN) {
                if (pos != last) {
                    abort();
                }
                break;
            }

            if (t->n == FUZZ_MAX_EVENTS) {
                goto done;
            }

            if (rc == NGX_FEIRA_WS_DATA) {
                if (ev.first) {
                    msg_len = 0;
                    h = 2166136261u;
                    ngx_feira_utf8_init(&u);
                }

                msg_len += ev.len;
                t->data += ev.len;
                h = fuzz_hash(h, ev.data, ev.len);

                if (msg_len > FUZZ_MAX_MESSAGE) {
                    abort();
                }

                /* what the parser passes as text is valid UTF-8 */
                if (ev.opcode == NGX_FEIRA_WS_OP_TEXT
                    && ngx_feira_utf8_feed(&u, ev.data, ev.len) != 0)
                {
                    abort();
                }

                if (!ev.last) {
                    continue;
                }

                if (ev.opcode == NGX_FEIRA_WS_OP_TEXT
                    && !ngx_feira_utf8_complete(&u))
                {
                    abort();
                }

                t->ev[t->n].len = msg_len;
                t->ev[t->n].hash = h;

            } else if (rc == NGX_FEIRA_WS_CONTROL) {
                if (ev.len > NGX_FEIRA_WS_MAX_CONTROL) {
                    abort();
                }

                t->ev[t->n].len = ev.len;
                t->ev[t->n].hash = fuzz_hash(2166136261u, ev.data, ev.len);

            } else {
                t->ev[t->n].len = 0;
                t->ev[t->n].hash = 0;
            }

            t->ev[t->n].rc = rc;
            t->ev[t->n].opcode = ev.opcode;
            t->ev[t->n].code = ev.code;
            t->ev[t->n].first = 0;
            t->ev[t->n].last = 0;
            t->n++;

            if (rc == NGX_FEIRA_WS_FAIL) {
                if (!ngx_feira_ws_close_code_valid(ev.code)) {
                    abort();
                }
                goto done;
            }
        }
    }

done:

    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               step;
    static fuzz_trace_t  whole, split;

    fuzz_run(data, size, 0, &whole);

    step = size ? 1 + data[0] % 13 : 1;
    fuzz_run(data, size, step, &split);

    if (whole.n != split.n) {
        abort();
    }

    if (memcmp(whole.ev, split.ev, whole.n * sizeof(fuzz_event_t)) != 0) {
        abort();
    }

    return 0;
}
