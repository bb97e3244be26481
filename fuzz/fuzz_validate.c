/*
 * libFuzzer target: a request body through jansson and the strict field
 * validation (ngx_feira_validate.c), as every JSON endpoint does.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ngx_feira_validate.h"


static const char *const  roles[] = { "client", "provider", NULL };

static const ngx_feira_field_t  fields[] = {
    { "email", NGX_FEIRA_STRING, 1, 3, 254, 0, -1, NULL },
    { "name", NGX_FEIRA_STRING, 0, 1, 100, 0, -1, NULL },
    { "role", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1, roles },
    { "rating", NGX_FEIRA_INTEGER, 0, 0, 0, 1, 5, NULL },
    { "lat", NGX_FEIRA_NUMBER, 0, 0, 0, -90, 90, NULL },
    { "online", NGX_FEIRA_BOOLEAN, 0, 0, 0, 0, -1, NULL },
    { "location", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { "skills", NGX_FEIRA_ARRAY, 0, 0, 20, 0, -1, NULL },
    { "id", NGX_FEIRA_OBJECT_ID, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t              *json;
    ngx_feira_errors_t   errs;

    json = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      NULL);
    if (json == NULL) {
        return 0;
    }

    memset(&errs, 0, sizeof(errs));

    if (ngx_feira_validate_object(json, fields, &errs) == 0) {
        /* what passes is safe to hand to MongoDB */
        if (!ngx_feira_json_is_safe(json, 0)) {
            __builtin_trap();
        }
    }

    if (errs.n > NGX_FEIRA_MAX_ERRORS) {
        __builtin_trap();
    }

    json_decref(json);

    return 0;
}
