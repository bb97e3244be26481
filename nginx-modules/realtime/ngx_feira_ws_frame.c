/*
 * WebSocket (RFC 6455) client frames, parsed incrementally: any split of
 * the input gives the same events.  Every rule of section 5 that a server
 * must enforce fails the connection here, with the close code to send.
 */

#include <string.h>

#include "ngx_feira_ws_frame.h"


#define NGX_FEIRA_WS_ST_HEADER   0
#define NGX_FEIRA_WS_ST_PAYLOAD  1


static int ngx_feira_ws_header_done(ngx_feira_ws_parser_t *p,
    ngx_feira_ws_event_t *ev);
static int ngx_feira_ws_fail(ngx_feira_ws_event_t *ev, unsigned code,
    const char *reason);
static int ngx_feira_ws_control(ngx_feira_ws_parser_t *p,
    ngx_feira_ws_event_t *ev);
static int ngx_feira_ws_data_end(ngx_feira_ws_parser_t *p,
    ngx_feira_ws_event_t *ev);
static void ngx_feira_ws_unmask(uint8_t *data, size_t len,
    const uint8_t mask[4], uint64_t offset);


void
ngx_feira_ws_parser_init(ngx_feira_ws_parser_t *p, uint64_t max_message)
{
    memset(p, 0, sizeof(ngx_feira_ws_parser_t));

    p->max_message = max_message;
    p->state = NGX_FEIRA_WS_ST_HEADER;
    p->hdr_need = 2;
}


int
ngx_feira_ws_parser_idle(const ngx_feira_ws_parser_t *p)
{
    return p->msg_opcode == 0 && p->state == NGX_FEIRA_WS_ST_HEADER
           && p->hdr_len == 0;
}


int
ngx_feira_ws_parse(ngx_feira_ws_parser_t *p, uint8_t **pos, uint8_t *last,
    ngx_feira_ws_event_t *ev)
{
    int       rc;
    size_t    n;
    uint8_t  *s;

    memset(ev, 0, sizeof(ngx_feira_ws_event_t));

    s = *pos;

    while (s < last) {

        if (p->state == NGX_FEIRA_WS_ST_HEADER) {

            while (s < last && p->hdr_len < p->hdr_need) {
                p->hdr[p->hdr_len++] = *s++;
            }

            *pos = s;

            /* the first two bytes are checked as soon as they come */
            if (p->hdr_len == 2 && p->hdr_need == 2) {
                rc = ngx_feira_ws_header_done(p, ev);
                if (rc != NGX_FEIRA_WS_AGAIN) {
                    return rc;
                }

                continue;
            }

            if (p->hdr_len < p->hdr_need) {
                return NGX_FEIRA_WS_AGAIN;
            }

            rc = ngx_feira_ws_header_done(p, ev);
            if (rc != NGX_FEIRA_WS_AGAIN) {
                return rc;
            }

            continue;
        }

        /* the payload */

        n = (size_t) (p->frame_len - p->frame_pos);

        if (n > (size_t) (last - s)) {
            n = last - s;
        }

        ngx_feira_ws_unmask(s, n, p->mask, p->frame_pos);

        if (p->opcode >= NGX_FEIRA_WS_OP_CLOSE) {
            memcpy(p->ctl + p->ctl_len, s, n);
            p->ctl_len += (uint8_t) n;
            p->frame_pos += n;
            s += n;
            *pos = s;

            if (p->frame_pos == p->frame_len) {
                return ngx_feira_ws_control(p, ev);
            }

            return NGX_FEIRA_WS_AGAIN;
        }

        if (p->msg_opcode == NGX_FEIRA_WS_OP_TEXT
            && ngx_feira_utf8_feed(&p->utf8, s, n) != 0)
        {
            *pos = s + n;
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_BAD_DATA,
                                     "invalid UTF-8 in a text message");
        }

        p->frame_pos += n;
        p->msg_len += n;

        ev->opcode = p->msg_opcode;
        ev->data = s;
        ev->len = n;
        ev->first = p->msg_first;
        p->msg_first = 0;

        s += n;
        *pos = s;

        return ngx_feira_ws_data_end(p, ev);
    }

    *pos = s;

    return NGX_FEIRA_WS_AGAIN;
}


/* the header is read (or its first two bytes are): check it, go on */

static int
ngx_feira_ws_header_done(ngx_feira_ws_parser_t *p, ngx_feira_ws_event_t *ev)
{
    int       len7;
    uint8_t   b0, b1, opcode;
    uint64_t  len;
    unsigned  i, off;

    b0 = p->hdr[0];
    b1 = p->hdr[1];
    opcode = b0 & 0x0f;
    len7 = b1 & 0x7f;

    if (p->hdr_need == 2) {

        /* no extension is negotiated: every reserved bit must be 0 */
        if (b0 & 0x70) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "reserved bits set");
        }

        if (!(b1 & 0x80)) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "unmasked client frame");
        }

        switch (opcode) {

        case NGX_FEIRA_WS_OP_CLOSE:
        case NGX_FEIRA_WS_OP_PING:
        case NGX_FEIRA_WS_OP_PONG:

            if (!(b0 & 0x80)) {
                return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                         "fragmented control frame");
            }

            if (len7 > NGX_FEIRA_WS_MAX_CONTROL) {
                return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                         "control frame over 125 bytes");
            }

            break;

        case NGX_FEIRA_WS_OP_CONT:

            if (p->msg_opcode == 0) {
                return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                         "continuation outside a message");
            }

            break;

        case NGX_FEIRA_WS_OP_TEXT:
        case NGX_FEIRA_WS_OP_BINARY:

            if (p->msg_opcode != 0) {
                return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                         "new message inside a fragmented "
                                         "one");
            }

            break;

        default:
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "unknown opcode");
        }

        p->hdr_need = 2 + 4 + (len7 == 126 ? 2 : (len7 == 127 ? 8 : 0));

        return NGX_FEIRA_WS_AGAIN;
    }

    /* the whole header */

    off = 2;

    if (len7 == 126) {
        len = ((uint64_t) p->hdr[2] << 8) | p->hdr[3];
        off = 4;

        if (len < 126) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "length not in its shortest form");
        }

    } else if (len7 == 127) {
        len = 0;

        for (i = 2; i < 10; i++) {
            len = (len << 8) | p->hdr[i];
        }

        off = 10;

        if (p->hdr[2] & 0x80) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "64-bit length with its top bit set");
        }

        if (len <= 0xffff) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                     "length not in its shortest form");
        }

    } else {
        len = (uint64_t) len7;
    }

    memcpy(p->mask, p->hdr + off, 4);

    p->fin = (b0 & 0x80) ? 1 : 0;
    p->opcode = opcode;
    p->frame_len = len;
    p->frame_pos = 0;
    p->hdr_len = 0;
    p->hdr_need = 2;
    p->state = NGX_FEIRA_WS_ST_PAYLOAD;

    if (opcode >= NGX_FEIRA_WS_OP_CLOSE) {
        p->ctl_len = 0;

        if (len == 0) {
            return ngx_feira_ws_control(p, ev);
        }

        return NGX_FEIRA_WS_AGAIN;
    }

    /* a data frame: the message must stay within its limit */

    if (p->msg_opcode == 0) {
        if (len > p->max_message) {
            return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_TOO_BIG,
                                     "message too big");
        }

        p->msg_opcode = opcode;
        p->msg_len = 0;
        p->msg_first = 1;
        ngx_feira_utf8_init(&p->utf8);

    } else if (len > p->max_message - p->msg_len) {
        return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_TOO_BIG,
                                 "message too big");
    }

    if (len == 0) {
        /* an empty frame still carries FIN */
        ev->opcode = p->msg_opcode;
        ev->data = p->hdr;
        ev->len = 0;
        ev->first = p->msg_first;
        p->msg_first = 0;

        return ngx_feira_ws_data_end(p, ev);
    }

    return NGX_FEIRA_WS_AGAIN;
}


static int
ngx_feira_ws_data_end(ngx_feira_ws_parser_t *p, ngx_feira_ws_event_t *ev)
{
    if (p->frame_pos < p->frame_len) {
        ev->last = 0;
        return NGX_FEIRA_WS_DATA;
    }

    p->state = NGX_FEIRA_WS_ST_HEADER;

    if (!p->fin) {
        ev->last = 0;
        return NGX_FEIRA_WS_DATA;
    }

    if (p->msg_opcode == NGX_FEIRA_WS_OP_TEXT
        && !ngx_feira_utf8_complete(&p->utf8))
    {
        return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_BAD_DATA,
                                 "text message ends inside a UTF-8 "
                                 "sequence");
    }

    p->msg_opcode = 0;
    ev->last = 1;

    return NGX_FEIRA_WS_DATA;
}


static int
ngx_feira_ws_control(ngx_feira_ws_parser_t *p, ngx_feira_ws_event_t *ev)
{
    unsigned          code;
    ngx_feira_utf8_t  u;

    p->state = NGX_FEIRA_WS_ST_HEADER;

    ev->opcode = p->opcode;
    ev->data = p->ctl;
    ev->len = p->ctl_len;

    if (p->opcode != NGX_FEIRA_WS_OP_CLOSE) {
        return NGX_FEIRA_WS_CONTROL;
    }

    if (p->ctl_len == 0) {
        ev->code = NGX_FEIRA_WS_CLOSE_NO_STATUS;
        return NGX_FEIRA_WS_CONTROL;
    }

    if (p->ctl_len == 1) {
        return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                 "close frame with a 1-byte payload");
    }

    code = ((unsigned) p->ctl[0] << 8) | p->ctl[1];

    if (!ngx_feira_ws_close_code_valid(code)) {
        return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_PROTOCOL,
                                 "invalid close code");
    }

    ngx_feira_utf8_init(&u);

    if (ngx_feira_utf8_feed(&u, p->ctl + 2, p->ctl_len - 2) != 0
        || !ngx_feira_utf8_complete(&u))
    {
        return ngx_feira_ws_fail(ev, NGX_FEIRA_WS_CLOSE_BAD_DATA,
                                 "invalid UTF-8 in a close reason");
    }

    ev->code = code;

    return NGX_FEIRA_WS_CONTROL;
}


static int
ngx_feira_ws_fail(ngx_feira_ws_event_t *ev, unsigned code,
    const char *reason)
{
    ev->code = code;
    ev->reason = reason;

    return NGX_FEIRA_WS_FAIL;
}


static void
ngx_feira_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
    uint64_t offset)
{
    size_t    i;
    uint8_t   m[8];
    uint64_t  word, key;

    i = 0;

    /* eight bytes at a time, with the mask rotated to the offset */
    if (len >= 16) {
        for (i = 0; i < 8; i++) {
            m[i] = mask[(offset + i) & 3];
        }

        memcpy(&key, m, 8);

        for (i = 0; i + 8 <= len; i += 8) {
            memcpy(&word, data + i, 8);
            word ^= key;
            memcpy(data + i, &word, 8);
        }
    }

    for ( /* void */ ; i < len; i++) {
        data[i] ^= mask[(offset + i) & 3];
    }
}


size_t
ngx_feira_ws_header_size(uint64_t len)
{
    return len < 126 ? 2 : (len <= 0xffff ? 4 : 10);
}


size_t
ngx_feira_ws_header(uint8_t *buf, int opcode, uint64_t len)
{
    int  i;

    buf[0] = (uint8_t) (0x80 | (opcode & 0x0f));

    if (len < 126) {
        buf[1] = (uint8_t) len;
        return 2;
    }

    if (len <= 0xffff) {
        buf[1] = 126;
        buf[2] = (uint8_t) (len >> 8);
        buf[3] = (uint8_t) len;
        return 4;
    }

    buf[1] = 127;

    for (i = 0; i < 8; i++) {
        buf[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }

    return 10;
}


/*
 * 1000-1003 and 1007-1014 (IANA's registry), 3000-4999 for libraries and
 * applications; 1004-1006 and 1015 are never sent on the wire.
 */

int
ngx_feira_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}


void
ngx_feira_utf8_init(ngx_feira_utf8_t *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xbf;
}


/*
 * Unicode's table 3-7 of well-formed sequences: the range of the second
 * byte depends on the first, which rules out overlong forms, surrogates
 * and code points above U+10FFFF.
 */

int
ngx_feira_utf8_feed(ngx_feira_utf8_t *u, const uint8_t *p, size_t len)
{
    uint8_t         c;
    uint64_t        word;
    const uint8_t  *last;

    last = p + len;

    while (p < last) {

        if (u->need == 0) {

            /* ASCII runs, eight bytes at a time */
            while (last - p >= 8) {
                memcpy(&word, p, 8);

                if (word & 0x8080808080808080ULL) {
                    break;
                }

                p += 8;
            }

            if (p == last) {
                break;
            }

            c = *p++;

            if (c < 0x80) {
                continue;
            }

            if (c < 0xc2) {
                return -1;
            }

            if (c < 0xe0) {
                u->need = 1;
                u->lo = 0x80;
                u->hi = 0xbf;

            } else if (c < 0xf0) {
                u->need = 2;
                u->lo = (c == 0xe0) ? 0xa0 : 0x80;
                u->hi = (c == 0xed) ? 0x9f : 0xbf;

            } else if (c < 0xf5) {
                u->need = 3;
                u->lo = (c == 0xf0) ? 0x90 : 0x80;
                u->hi = (c == 0xf4) ? 0x8f : 0xbf;

            } else {
                return -1;
            }

            continue;
        }

        c = *p++;

        if (c < u->lo || c > u->hi) {
            return -1;
        }

        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
    }

    return 0;
}


int
ngx_feira_utf8_complete(const ngx_feira_utf8_t *u)
{
    return u->need == 0;
}
