/*
 * libFuzzer target: what feira_chat accepts (ngx_feira_chat_input.c): a
 * message body or WebSocket message through jansson and the chat checks,
 * and the strict UTF-8 counter on raw bytes.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ngx_feira_chat_input.h"


#define TEXT_MAX  16


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  what;
    size_t               n;
    json_t              *json, *v;
    ngx_feira_errors_t   errs;

    n = ngx_feira_chat_utf8_count((const char *) data, size);

    /* never more code points than bytes */
    if (n != (size_t) -1 && n > size) {
        __builtin_trap();
    }

    /* jansson accepts a string exactly when it is valid UTF-8 */
    json = json_stringn((const char *) data, size);
    if ((json != NULL) != (n != (size_t) -1) && memchr(data, 0, size) == NULL)
    {
        __builtin_trap();
    }

    json_decref(json);

    json = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    if (json == NULL) {
        return 0;
    }

    for (what = NGX_FEIRA_CHAT_IN_SEND; what <= NGX_FEIRA_CHAT_IN_WS_READ;
         what++)
    {
        memset(&errs, 0, sizeof(errs));

        if (ngx_feira_chat_check(json, what, TEXT_MAX, &errs) != 0) {
            continue;
        }

        /* what passes is bounded and safe to hand to MongoDB */
        v = json_object_get(json, "text");

        if (v != NULL
            && ngx_feira_chat_utf8_count(json_string_value(v),
                                         json_string_length(v)) > TEXT_MAX)
        {
            __builtin_trap();
        }

        v = json_object_get(json, "client_msg_id");

        if (v != NULL && !ngx_feira_chat_cmid_valid(json_string_value(v),
                                                    json_string_length(v)))
        {
            __builtin_trap();
        }

        if (!ngx_feira_json_is_safe(json, 0)) {
            __builtin_trap();
        }
    }

    json_decref(json);

    return 0;
}
