/*
 * WebSocket (RFC 6455) frames as a server reads and writes them: an
 * incremental parser of client frames with incremental UTF-8 validation,
 * and the header of server frames.
 *
 * Pure C, with no nginx dependency, so that the C unit tests and the
 * libFuzzer target link it alone.
 */

#ifndef _NGX_FEIRA_WS_FRAME_H_INCLUDED_
#define _NGX_FEIRA_WS_FRAME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_FEIRA_WS_OP_CONT          0x0
#define NGX_FEIRA_WS_OP_TEXT          0x1
#define NGX_FEIRA_WS_OP_BINARY        0x2
#define NGX_FEIRA_WS_OP_CLOSE         0x8
#define NGX_FEIRA_WS_OP_PING          0x9
#define NGX_FEIRA_WS_OP_PONG          0xa

#define NGX_FEIRA_WS_CLOSE_NORMAL     1000
#define NGX_FEIRA_WS_CLOSE_GOING_AWAY 1001
#define NGX_FEIRA_WS_CLOSE_PROTOCOL   1002
#define NGX_FEIRA_WS_CLOSE_DATA_TYPE  1003
#define NGX_FEIRA_WS_CLOSE_NO_STATUS  1005
#define NGX_FEIRA_WS_CLOSE_BAD_DATA   1007
#define NGX_FEIRA_WS_CLOSE_POLICY     1008
#define NGX_FEIRA_WS_CLOSE_TOO_BIG    1009
#define NGX_FEIRA_WS_CLOSE_INTERNAL   1011

#define NGX_FEIRA_WS_MAX_CONTROL      125
#define NGX_FEIRA_WS_MAX_HEADER       14


/* parse results */
#define NGX_FEIRA_WS_AGAIN            0    /* all input consumed */
#define NGX_FEIRA_WS_DATA             1    /* a chunk of a data message */
#define NGX_FEIRA_WS_CONTROL          2    /* a whole control frame */
#define NGX_FEIRA_WS_FAIL             3    /* fail the connection */


/* where a UTF-8 sequence is: bytes still due and the range of the next */
typedef struct {
    uint8_t         need;
    uint8_t         lo;
    uint8_t         hi;
} ngx_feira_utf8_t;


typedef struct {
    /* set by the user */
    uint64_t        max_message;

    /* the frame being read */
    uint64_t        frame_len;
    uint64_t        frame_pos;
    uint8_t         state;
    uint8_t         hdr_len;
    uint8_t         hdr_need;
    uint8_t         opcode;
    uint8_t         fin;
    uint8_t         mask[4];
    uint8_t         hdr[NGX_FEIRA_WS_MAX_HEADER];

    /* the data message being read: its opcode, 0 between messages */
    uint8_t         msg_opcode;
    uint8_t         msg_first;
    ngx_feira_utf8_t  utf8;
    uint64_t        msg_len;

    /* the payload of a control frame, which may arrive in pieces */
    uint8_t         ctl_len;
    uint8_t         ctl[NGX_FEIRA_WS_MAX_CONTROL];
} ngx_feira_ws_parser_t;


typedef struct {
    /* DATA: the message's opcode; CONTROL: the frame's */
    int             opcode;
    /* DATA: the unmasked chunk, inside the input; CONTROL: the payload */
    const uint8_t  *data;
    size_t          len;
    /* DATA: the chunk starts or ends its message */
    int             first;
    int             last;
    /* CONTROL close: the code received (1005 when none), the reason in
     * data + 2; FAIL: the close code to send */
    unsigned        code;
    /* FAIL: why, for a log line */
    const char     *reason;
} ngx_feira_ws_event_t;


void ngx_feira_ws_parser_init(ngx_feira_ws_parser_t *p, uint64_t max_message);

/*
 * Reads from *pos up to last, unmasking payload in place, and stops at the
 * first event: NGX_FEIRA_WS_DATA, NGX_FEIRA_WS_CONTROL, NGX_FEIRA_WS_FAIL,
 * or NGX_FEIRA_WS_AGAIN when the input is used up.  *pos is advanced past
 * what was consumed.  After FAIL the parser must not be called again.
 */
int ngx_feira_ws_parse(ngx_feira_ws_parser_t *p, uint8_t **pos,
    uint8_t *last, ngx_feira_ws_event_t *ev);

/* 1 while no data message is half read */
int ngx_feira_ws_parser_idle(const ngx_feira_ws_parser_t *p);

/* a server frame header (FIN set, unmasked) into buf; returns its length */
size_t ngx_feira_ws_header(uint8_t *buf, int opcode, uint64_t len);
size_t ngx_feira_ws_header_size(uint64_t len);

/* a close code a peer may send */
int ngx_feira_ws_close_code_valid(unsigned code);

void ngx_feira_utf8_init(ngx_feira_utf8_t *u);
/* 0 while valid so far, -1 at the first invalid byte */
int ngx_feira_utf8_feed(ngx_feira_utf8_t *u, const uint8_t *p, size_t len);
/* 1 when no sequence is left half done */
int ngx_feira_utf8_complete(const ngx_feira_utf8_t *u);


#endif /* _NGX_FEIRA_WS_FRAME_H_INCLUDED_ */
