/*
 * Unit tests of the WebSocket frame parser (nginx-modules/realtime/
 * ngx_feira_ws_frame.c): every rule of RFC 6455 section 5 a server checks,
 * and the same events for any split of the input.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_feira_ws_frame.h"


#define MAX_MESSAGE  (1024 * 1024)


typedef struct {
    uint8_t   buf[200000];
    size_t    len;
} wire_t;


/* what a run of the parser produced, flattened */
typedef struct {
    int       fail;
    unsigned  code;
    int       nmsgs;
    int       opcodes[16];
    uint8_t   msgs[16][70000];
    size_t    lens[16];
    int       ncontrol;
    int       controls[16];
    unsigned  close_code;
    int       ndata;
    int       firsts;
    int       lasts;
} result_t;


static const uint8_t  mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };


static void
frame(wire_t *w, int fin, int rsv, int opcode, int masked,
    const void *payload, size_t len)
{
    size_t    i;
    uint8_t  *p;

    p = w->buf + w->len;

    *p++ = (uint8_t) ((fin ? 0x80 : 0) | (rsv << 4) | opcode);

    if (len < 126) {
        *p++ = (uint8_t) ((masked ? 0x80 : 0) | len);

    } else if (len <= 0xffff) {
        *p++ = (uint8_t) ((masked ? 0x80 : 0) | 126);
        *p++ = (uint8_t) (len >> 8);
        *p++ = (uint8_t) len;

    } else {
        *p++ = (uint8_t) ((masked ? 0x80 : 0) | 127);
        for (i = 0; i < 8; i++) {
            *p++ = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
        }
    }

    if (masked) {
        memcpy(p, mask_key, 4);
        p += 4;
    }

    for (i = 0; i < len; i++) {
        *p++ = ((const uint8_t *) payload)[i]
               ^ (masked ? mask_key[i & 3] : 0);
    }

    w->len = p - w->buf;
}


static void
raw(wire_t *w, const void *bytes, size_t len)
{
    memcpy(w->buf + w->len, bytes, len);
    w->len += len;
}


/* feeds the wire in pieces of `step` bytes (0: all at once) */

static void
run(wire_t *w, size_t step, uint64_t max, result_t *r)
{
    int                    rc;
    size_t                 off, n;
    uint8_t               *pos, *last;
    uint8_t                copy[200000];
    ngx_feira_ws_parser_t  p;
    ngx_feira_ws_event_t   ev;

    memset(r, 0, sizeof(result_t));
    memcpy(copy, w->buf, w->len);
    ngx_feira_ws_parser_init(&p, max);

    for (off = 0; off < w->len; off += n) {
        n = step ? step : w->len;
        if (n > w->len - off) {
            n = w->len - off;
        }

        pos = copy + off;
        last = pos + n;

        for ( ;; ) {
            rc = ngx_feira_ws_parse(&p, &pos, last, &ev);

            if (rc == NGX_FEIRA_WS_AGAIN) {
                assert_ptr_equal(pos, last);
                break;
            }

            if (rc == NGX_FEIRA_WS_FAIL) {
                r->fail = 1;
                r->code = ev.code;
                assert_non_null(ev.reason);
                return;
            }

            if (rc == NGX_FEIRA_WS_CONTROL) {
                r->controls[r->ncontrol++] = ev.opcode;
                if (ev.opcode == NGX_FEIRA_WS_OP_CLOSE) {
                    r->close_code = ev.code;
                }
                continue;
            }

            assert_int_equal(rc, NGX_FEIRA_WS_DATA);
            r->ndata++;
            r->firsts += ev.first;
            r->lasts += ev.last;

            memcpy(r->msgs[r->nmsgs] + r->lens[r->nmsgs], ev.data, ev.len);
            r->lens[r->nmsgs] += ev.len;
            r->opcodes[r->nmsgs] = ev.opcode;

            if (ev.last) {
                r->nmsgs++;
            }
        }
    }
}


/* the same result whether fed at once, byte by byte, or in odd pieces */

static void
run_all(wire_t *w, uint64_t max, result_t *r)
{
    static result_t  r1, r7;

    run(w, 0, max, r);
    run(w, 1, max, &r1);
    run(w, 7, max, &r7);

    assert_int_equal(r->fail, r1.fail);
    assert_int_equal(r->fail, r7.fail);
    assert_int_equal(r->code, r1.code);
    assert_int_equal(r->code, r7.code);
    assert_int_equal(r->nmsgs, r1.nmsgs);
    assert_int_equal(r->nmsgs, r7.nmsgs);
    assert_int_equal(r->ncontrol, r1.ncontrol);

    for (int i = 0; i < r->nmsgs; i++) {
        assert_int_equal(r->lens[i], r1.lens[i]);
        assert_memory_equal(r->msgs[i], r1.msgs[i], r->lens[i]);
        assert_memory_equal(r->msgs[i], r7.msgs[i], r->lens[i]);
    }
}


static void
test_rfc_example_hello(void **state)
{
    /* RFC 6455 5.7: a single-frame masked text message */
    static const uint8_t  hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    raw(&w, hello, sizeof(hello));
    run_all(&w, MAX_MESSAGE, r);

    assert_int_equal(r->fail, 0);
    assert_int_equal(r->nmsgs, 1);
    assert_int_equal(r->opcodes[0], NGX_FEIRA_WS_OP_TEXT);
    assert_int_equal(r->lens[0], 5);
    assert_memory_equal(r->msgs[0], "Hello", 5);
    assert_int_equal(r->firsts, 1);
    assert_int_equal(r->lasts, 1);

    free(r);
}


static void
test_fragments_with_ping_between(void **state)
{
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "Hel", 3);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_PING, 1, "ping!", 5);
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_CONT, 1, "", 0);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "lo", 2);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_BINARY, 1, "\x00\x01", 2);
    run_all(&w, MAX_MESSAGE, r);

    assert_int_equal(r->fail, 0);
    assert_int_equal(r->nmsgs, 2);
    assert_int_equal(r->lens[0], 5);
    assert_memory_equal(r->msgs[0], "Hello", 5);
    assert_int_equal(r->opcodes[0], NGX_FEIRA_WS_OP_TEXT);
    assert_int_equal(r->opcodes[1], NGX_FEIRA_WS_OP_BINARY);
    assert_int_equal(r->ncontrol, 1);
    assert_int_equal(r->controls[0], NGX_FEIRA_WS_OP_PING);
    assert_int_equal(r->firsts, 2);
    assert_int_equal(r->lasts, 2);

    free(r);
}


static void
test_empty_messages(void **state)
{
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, "", 0);
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "", 0);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "", 0);
    run_all(&w, MAX_MESSAGE, r);

    assert_int_equal(r->fail, 0);
    assert_int_equal(r->nmsgs, 2);
    assert_int_equal(r->lens[0], 0);
    assert_int_equal(r->lens[1], 0);
    assert_int_equal(r->firsts, 2);

    free(r);
}


static void
expect_fail(wire_t *w, uint64_t max, unsigned code)
{
    result_t  *r = malloc(sizeof(result_t));

    run_all(w, max, r);
    assert_int_equal(r->fail, 1);
    assert_int_equal(r->code, code);

    free(r);
}


static void
test_unmasked_frame(void **state)
{
    wire_t  w = { .len = 0 };

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 0, "hi", 2);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);
}


static void
test_reserved_bits(void **state)
{
    int  rsv;

    for (rsv = 1; rsv < 8; rsv++) {
        wire_t  w = { .len = 0 };

        frame(&w, 1, rsv, NGX_FEIRA_WS_OP_TEXT, 1, "hi", 2);
        expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);
    }
}


static void
test_unknown_opcodes(void **state)
{
    static const int  ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        wire_t  w = { .len = 0 };

        frame(&w, 1, 0, ops[i], 1, "", 0);
        expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);
    }
}


static void
test_control_frames_rules(void **state)
{
    uint8_t  big[126];
    wire_t   w = { .len = 0 };

    memset(big, 'x', sizeof(big));

    /* a 126-byte ping */
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_PING, 1, big, 126);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

    /* a fragmented ping */
    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_PING, 1, "x", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

    /* 125 bytes is fine */
    w.len = 0;
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_PONG, 1, big, 125);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, "ok", 2);
    {
        result_t  *r = malloc(sizeof(result_t));

        run_all(&w, MAX_MESSAGE, r);
        assert_int_equal(r->fail, 0);
        assert_int_equal(r->ncontrol, 1);
        assert_int_equal(r->controls[0], NGX_FEIRA_WS_OP_PONG);
        assert_int_equal(r->nmsgs, 1);
        free(r);
    }
}


static void
test_fragmentation_rules(void **state)
{
    wire_t  w = { .len = 0 };

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "x", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "x", 1);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, "y", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_BINARY, 1, "x", 1);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, "y", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);
}


static void
test_utf8_across_fragments(void **state)
{
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    /* the euro sign split across three frames is valid */
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "a\xe2", 2);
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_CONT, 1, "\x82", 1);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "\xac" "b", 2);
    run_all(&w, MAX_MESSAGE, r);
    assert_int_equal(r->fail, 0);
    assert_int_equal(r->lens[0], 5);
    assert_memory_equal(r->msgs[0], "a\xe2\x82\xac" "b", 5);

    /* an invalid continuation in the next fragment fails */
    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "a\xe2\x82", 3);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "(", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_BAD_DATA);

    /* so does a message that ends inside a sequence */
    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, "a", 1);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, "\xf0\x9f\x98", 3);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_BAD_DATA);

    /* binary messages are not UTF-8 */
    w.len = 0;
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_BINARY, 1, "\xff\xfe", 2);
    run_all(&w, MAX_MESSAGE, r);
    assert_int_equal(r->fail, 0);

    free(r);
}


static void
test_fail_fast_on_invalid_utf8(void **state)
{
    int                    rc;
    uint8_t               *pos;
    ngx_feira_ws_parser_t  p;
    ngx_feira_ws_event_t   ev;
    wire_t                 w = { .len = 0 };

    /* the frame announces 100 bytes; the second one is already invalid */
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1,
          "a\xff" "cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
          "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy", 100);

    ngx_feira_ws_parser_init(&p, MAX_MESSAGE);
    pos = w.buf;

    rc = ngx_feira_ws_parse(&p, &pos, w.buf + 2 + 4 + 5, &ev);
    assert_int_equal(rc, NGX_FEIRA_WS_FAIL);
    assert_int_equal(ev.code, NGX_FEIRA_WS_CLOSE_BAD_DATA);
}


static void
test_message_size_limit(void **state)
{
    uint8_t  big[300];
    wire_t   w = { .len = 0 };

    memset(big, 'x', sizeof(big));

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, big, 101);
    expect_fail(&w, 100, NGX_FEIRA_WS_CLOSE_TOO_BIG);

    /* refused at the header, before the payload comes */
    {
        int                    rc;
        uint8_t               *pos;
        ngx_feira_ws_parser_t  p;
        ngx_feira_ws_event_t   ev;

        ngx_feira_ws_parser_init(&p, 100);
        pos = w.buf;
        rc = ngx_feira_ws_parse(&p, &pos, w.buf + 6, &ev);
        assert_int_equal(rc, NGX_FEIRA_WS_FAIL);
        assert_int_equal(ev.code, NGX_FEIRA_WS_CLOSE_TOO_BIG);
    }

    /* the fragments add up */
    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, big, 60);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, big, 41);
    expect_fail(&w, 100, NGX_FEIRA_WS_CLOSE_TOO_BIG);

    /* exactly the limit is fine */
    w.len = 0;
    frame(&w, 0, 0, NGX_FEIRA_WS_OP_TEXT, 1, big, 60);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CONT, 1, big, 40);
    {
        result_t  *r = malloc(sizeof(result_t));

        run_all(&w, 100, r);
        assert_int_equal(r->fail, 0);
        assert_int_equal(r->lens[0], 100);
        free(r);
    }
}


static void
test_lengths(void **state)
{
    uint8_t  *big;
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    big = malloc(70000);
    for (int i = 0; i < 70000; i++) {
        big[i] = 'a' + i % 26;
    }

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, big, 126);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, big, 65535);
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_BINARY, 1, big, 65536);
    run_all(&w, MAX_MESSAGE, r);

    assert_int_equal(r->fail, 0);
    assert_int_equal(r->nmsgs, 3);
    assert_int_equal(r->lens[0], 126);
    assert_int_equal(r->lens[1], 65535);
    assert_int_equal(r->lens[2], 65536);
    assert_memory_equal(r->msgs[1], big, 65535);
    assert_memory_equal(r->msgs[2], big, 65536);

    /* 16-bit length for 125 bytes: not the shortest form */
    {
        static const uint8_t  bad16[] = { 0x81, 0xfe, 0x00, 0x7d };
        static const uint8_t  bad64[] = { 0x82, 0xff, 0, 0, 0, 0, 0, 0,
                                          0xff, 0xff };
        static const uint8_t  top64[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0,
                                          0, 0 };

        w.len = 0;
        raw(&w, bad16, sizeof(bad16));
        raw(&w, mask_key, 4);
        expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

        w.len = 0;
        raw(&w, bad64, sizeof(bad64));
        raw(&w, mask_key, 4);
        expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

        w.len = 0;
        raw(&w, top64, sizeof(top64));
        raw(&w, mask_key, 4);
        expect_fail(&w, UINT64_MAX, NGX_FEIRA_WS_CLOSE_PROTOCOL);
    }

    free(big);
    free(r);
}


static void
test_close_frames(void **state)
{
    static const unsigned  good[] = { 1000, 1001, 1002, 1003, 1007, 1008,
                                      1009, 1010, 1011, 1014, 3000, 3999,
                                      4000, 4999 };
    static const unsigned  bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016,
                                     1100, 2000, 2999, 5000, 65535 };
    uint8_t   payload[32];
    wire_t    w = { .len = 0 };
    result_t  *r = malloc(sizeof(result_t));

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CLOSE, 1, "", 0);
    run_all(&w, MAX_MESSAGE, r);
    assert_int_equal(r->fail, 0);
    assert_int_equal(r->close_code, NGX_FEIRA_WS_CLOSE_NO_STATUS);

    w.len = 0;
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CLOSE, 1, "\x03", 1);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        payload[0] = (uint8_t) (good[i] >> 8);
        payload[1] = (uint8_t) good[i];
        memcpy(payload + 2, "bye", 3);
        w.len = 0;
        frame(&w, 1, 0, NGX_FEIRA_WS_OP_CLOSE, 1, payload, 5);
        run_all(&w, MAX_MESSAGE, r);
        assert_int_equal(r->fail, 0);
        assert_int_equal(r->close_code, good[i]);
    }

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        payload[0] = (uint8_t) (bad[i] >> 8);
        payload[1] = (uint8_t) bad[i];
        w.len = 0;
        frame(&w, 1, 0, NGX_FEIRA_WS_OP_CLOSE, 1, payload, 2);
        expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_PROTOCOL);
    }

    /* the reason must be UTF-8 */
    w.len = 0;
    frame(&w, 1, 0, NGX_FEIRA_WS_OP_CLOSE, 1, "\x03\xe8\xc3\x28", 4);
    expect_fail(&w, MAX_MESSAGE, NGX_FEIRA_WS_CLOSE_BAD_DATA);

    free(r);
}


static void
test_half_frame_waits(void **state)
{
    int                    rc;
    uint8_t               *pos;
    ngx_feira_ws_parser_t  p;
    ngx_feira_ws_event_t   ev;
    wire_t                 w = { .len = 0 };

    frame(&w, 1, 0, NGX_FEIRA_WS_OP_TEXT, 1, "hello", 5);

    ngx_feira_ws_parser_init(&p, MAX_MESSAGE);
    assert_true(ngx_feira_ws_parser_idle(&p));

    pos = w.buf;
    rc = ngx_feira_ws_parse(&p, &pos, w.buf + 4, &ev);
    assert_int_equal(rc, NGX_FEIRA_WS_AGAIN);
    assert_false(ngx_feira_ws_parser_idle(&p));
}


static void
test_server_header(void **state)
{
    uint8_t  b[16];

    assert_int_equal(ngx_feira_ws_header(b, NGX_FEIRA_WS_OP_TEXT, 5), 2);
    assert_int_equal(b[0], 0x81);
    assert_int_equal(b[1], 5);

    assert_int_equal(ngx_feira_ws_header(b, NGX_FEIRA_WS_OP_TEXT, 126), 4);
    assert_int_equal(b[1], 126);
    assert_int_equal(b[2], 0);
    assert_int_equal(b[3], 126);

    assert_int_equal(ngx_feira_ws_header(b, NGX_FEIRA_WS_OP_BINARY, 65536),
                     10);
    assert_int_equal(b[0], 0x82);
    assert_int_equal(b[1], 127);
    assert_int_equal(b[7], 1);
    assert_int_equal(b[8], 0);

    assert_int_equal(ngx_feira_ws_header_size(125), 2);
    assert_int_equal(ngx_feira_ws_header_size(65535), 4);
    assert_int_equal(ngx_feira_ws_header_size(65536), 10);
}


static int
utf8_ok(const char *s, size_t len)
{
    ngx_feira_utf8_t  u;

    ngx_feira_utf8_init(&u);

    return ngx_feira_utf8_feed(&u, (const uint8_t *) s, len) == 0
           && ngx_feira_utf8_complete(&u);
}


static void
test_utf8(void **state)
{
    assert_true(utf8_ok("", 0));
    assert_true(utf8_ok("plain ascii, long enough for words", 34));
    assert_true(utf8_ok("\xc3\xa9", 2));
    assert_true(utf8_ok("\xe2\x82\xac", 3));
    assert_true(utf8_ok("\xf0\x9f\x98\x80", 4));
    assert_true(utf8_ok("\xf4\x8f\xbf\xbf", 4));
    assert_true(utf8_ok("\xed\x9f\xbf", 3));

    assert_false(utf8_ok("\xc0\x80", 2));          /* overlong NUL */
    assert_false(utf8_ok("\xc1\xbf", 2));
    assert_false(utf8_ok("\xe0\x80\x80", 3));      /* overlong */
    assert_false(utf8_ok("\xe0\x9f\xbf", 3));
    assert_false(utf8_ok("\xed\xa0\x80", 3));      /* surrogate */
    assert_false(utf8_ok("\xf0\x80\x80\x80", 4));  /* overlong */
    assert_false(utf8_ok("\xf4\x90\x80\x80", 4));  /* above U+10FFFF */
    assert_false(utf8_ok("\xf5\x80\x80\x80", 4));
    assert_false(utf8_ok("\xff", 1));
    assert_false(utf8_ok("\x80", 1));
    assert_false(utf8_ok("\xc3", 1));              /* cut short */
    assert_false(utf8_ok("abcdefgh\xc3(", 10));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc_example_hello),
        cmocka_unit_test(test_fragments_with_ping_between),
        cmocka_unit_test(test_empty_messages),
        cmocka_unit_test(test_unmasked_frame),
        cmocka_unit_test(test_reserved_bits),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_control_frames_rules),
        cmocka_unit_test(test_fragmentation_rules),
        cmocka_unit_test(test_utf8_across_fragments),
        cmocka_unit_test(test_fail_fast_on_invalid_utf8),
        cmocka_unit_test(test_message_size_limit),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_half_frame_waits),
        cmocka_unit_test(test_server_header),
        cmocka_unit_test(test_utf8),
    };

    return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
