/*
 * feira_chat: the pure checks of what clients send (no nginx), for the
 * module, the unit tests and the fuzz targets.
 */

#ifndef _NGX_FEIRA_CHAT_INPUT_H_INCLUDED_
#define _NGX_FEIRA_CHAT_INPUT_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>

#include "ngx_feira_validate.h"


#define NGX_FEIRA_CHAT_CMID_MAX     64
#define NGX_FEIRA_CHAT_TEXT_LIMIT   10000


/* which message: the fields each one has */
typedef enum {
    NGX_FEIRA_CHAT_IN_SEND = 0,     /* POST .../messages */
    NGX_FEIRA_CHAT_IN_READ,         /* POST .../messages/read */
    NGX_FEIRA_CHAT_IN_WS_CHAT,      /* {"type":"chat"} */
    NGX_FEIRA_CHAT_IN_WS_TYPING,    /* {"type":"typing"} */
    NGX_FEIRA_CHAT_IN_WS_READ       /* {"type":"read"} */
} ngx_feira_chat_input_e;


/*
 * 0 when the object is valid: typed field by field, no unknown field, the
 * text 1..text_max characters (code points, not bytes) and without NUL,
 * a client_msg_id of 1..64 of [A-Za-z0-9._:-], ids of 24 hex.
 */
int ngx_feira_chat_check(const json_t *obj, ngx_feira_chat_input_e what,
    size_t text_max, ngx_feira_errors_t *errs);
int ngx_feira_chat_cmid_valid(const char *s, size_t len);
/* the number of code points of valid UTF-8, or (size_t) -1 */
size_t ngx_feira_chat_utf8_count(const char *s, size_t len);
/*
 * ?before= and ?limit=: before is "" or 24 hex (lower-cased into before,
 * 25 bytes), limit 1..100 (default 20).  0, or -1 with errs filled.
 */
int ngx_feira_chat_page_parse(const char *before, size_t before_len,
    const char *limit, size_t limit_len, char *out, size_t *lim,
    ngx_feira_errors_t *errs);


#endif /* _NGX_FEIRA_CHAT_INPUT_H_INCLUDED_ */
