/*
 * feira_chat: the checks of message bodies, WebSocket messages and page
 * arguments.  Pure C over jansson (unit tests and fuzzing link it alone).
 */

#include <string.h>

#include "ngx_feira_chat_input.h"


static const ngx_feira_field_t  ngx_feira_chat_send_fields[] = {
    { "text", NGX_FEIRA_STRING, 1, 1, 0, 0, 0, NULL },
    { "client_msg_id", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_CHAT_CMID_MAX,
      0, 0, NULL },
    { "to", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, 0, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};

static const ngx_feira_field_t  ngx_feira_chat_read_fields[] = {
    { "up_to", NGX_FEIRA_OBJECT_ID, 1, 0, 0, 0, 0, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};

static const ngx_feira_field_t  ngx_feira_chat_ws_chat_fields[] = {
    { "type", NGX_FEIRA_STRING, 1, 0, 0, 0, 0, NULL },
    { "request_id", NGX_FEIRA_OBJECT_ID, 1, 0, 0, 0, 0, NULL },
    { "text", NGX_FEIRA_STRING, 1, 1, 0, 0, 0, NULL },
    { "client_msg_id", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_CHAT_CMID_MAX,
      0, 0, NULL },
    { "to", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, 0, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};

static const ngx_feira_field_t  ngx_feira_chat_ws_typing_fields[] = {
    { "type", NGX_FEIRA_STRING, 1, 0, 0, 0, 0, NULL },
    { "request_id", NGX_FEIRA_OBJECT_ID, 1, 0, 0, 0, 0, NULL },
    { "to", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, 0, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};

static const ngx_feira_field_t  ngx_feira_chat_ws_read_fields[] = {
    { "type", NGX_FEIRA_STRING, 1, 0, 0, 0, 0, NULL },
    { "request_id", NGX_FEIRA_OBJECT_ID, 1, 0, 0, 0, 0, NULL },
    { "message_id", NGX_FEIRA_OBJECT_ID, 1, 0, 0, 0, 0, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


int
ngx_feira_chat_check(const json_t *obj, ngx_feira_chat_input_e what,
    size_t text_max, ngx_feira_errors_t *errs)
{
    int                       rc;
    size_t                    len, n;
    json_t                   *v;
    const char               *s;
    const ngx_feira_field_t  *fields;

    switch (what) {

    case NGX_FEIRA_CHAT_IN_SEND:
        fields = ngx_feira_chat_send_fields;
        break;

    case NGX_FEIRA_CHAT_IN_READ:
        fields = ngx_feira_chat_read_fields;
        break;

    case NGX_FEIRA_CHAT_IN_WS_CHAT:
        fields = ngx_feira_chat_ws_chat_fields;
        break;

    case NGX_FEIRA_CHAT_IN_WS_TYPING:
        fields = ngx_feira_chat_ws_typing_fields;
        break;

    default:
        fields = ngx_feira_chat_ws_read_fields;
        break;
    }

    rc = ngx_feira_validate_object(obj, fields, errs);

    /* the text bound is configuration: counted here, in code points */
    v = json_object_get(obj, "text");

    if (rc == 0 && json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
        n = ngx_feira_chat_utf8_count(s, len);

        if (n == (size_t) -1) {
            ngx_feira_errors_add(errs, "text", "must be valid UTF-8");
            rc = -1;

        } else if (n > text_max) {
            ngx_feira_errors_add(errs, "text", "is too long");
            rc = -1;
        }
    }

    v = json_object_get(obj, "client_msg_id");

    if (rc == 0 && json_is_string(v)
        && !ngx_feira_chat_cmid_valid(json_string_value(v),
                                      json_string_length(v)))
    {
        ngx_feira_errors_add(errs, "client_msg_id",
                             "must be 1 to 64 of A-Z a-z 0-9 . _ : -");
        rc = -1;
    }

    return rc;
}


int
ngx_feira_chat_cmid_valid(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > NGX_FEIRA_CHAT_CMID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* strict: no overlong forms, no surrogates, nothing above U+10FFFF */

size_t
ngx_feira_chat_utf8_count(const char *s, size_t len)
{
    size_t          i, n, k, j;
    unsigned int    cp, min;
    unsigned char   c;

    n = 0;

    for (i = 0; i < len; n++) {
        c = (unsigned char) s[i];

        if (c < 0x80) {
            i++;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            k = 1; cp = c & 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            k = 2; cp = c & 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            k = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return (size_t) -1;
        }

        if (len - i <= k) {
            return (size_t) -1;
        }

        for (j = 1; j <= k; j++) {
            c = (unsigned char) s[i + j];

            if ((c & 0xc0) != 0x80) {
                return (size_t) -1;
            }

            cp = (cp << 6) | (c & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return (size_t) -1;
        }

        i += k + 1;
    }

    return n;
}


int
ngx_feira_chat_page_parse(const char *before, size_t before_len,
    const char *limit, size_t limit_len, char *out, size_t *lim,
    ngx_feira_errors_t *errs)
{
    int     rc;
    size_t  i, n;

    rc = 0;
    out[0] = '\0';
    *lim = NGX_FEIRA_PAGE_DEFAULT;

    if (before != NULL && before_len) {
        if (!ngx_feira_is_object_id(before, before_len)) {
            ngx_feira_errors_add(errs, "before",
                                 "must be a message id (24 hex)");
            rc = -1;

        } else {
            for (i = 0; i < 24; i++) {
                out[i] = (before[i] >= 'A' && before[i] <= 'F')
                         ? before[i] - 'A' + 'a' : before[i];
            }

            out[24] = '\0';
        }
    }

    if (limit != NULL) {
        n = 0;

        for (i = 0; i < limit_len; i++) {
            if (limit[i] < '0' || limit[i] > '9' || n > NGX_FEIRA_PAGE_MAX) {
                break;
            }

            n = n * 10 + (limit[i] - '0');
        }

        if (limit_len == 0 || i != limit_len || n < 1
            || n > NGX_FEIRA_PAGE_MAX)
        {
            ngx_feira_errors_add(errs, "limit", "must be from 1 to 100");
            rc = -1;

        } else {
            *lim = n;
        }
    }

    return rc;
}
