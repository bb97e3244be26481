/*
 * Strict validation of JSON request bodies: types, lengths, ranges, and no
 * Mongo operators or dotted keys anywhere in what a client sends.
 */

#include <string.h>
#include <math.h>

#include "ngx_feira_validate.h"


#define NGX_FEIRA_MAX_DEPTH  8


static const ngx_feira_field_t *ngx_feira_field_find(
    const ngx_feira_field_t *fields, const char *name);
static void ngx_feira_validate_value(const json_t *value,
    const ngx_feira_field_t *f, ngx_feira_errors_t *errs);
static int ngx_feira_key_is_safe(const char *key);


void
ngx_feira_errors_add(ngx_feira_errors_t *errs, const char *field,
    const char *message)
{
    size_t  n;

    if (errs == NULL || errs->n >= NGX_FEIRA_MAX_ERRORS) {
        return;
    }

    n = errs->n++;

    /* keys of a body are copied: the body may be freed before the reply */
    strncpy(errs->names[n], field ? field : "", sizeof(errs->names[n]) - 1);
    errs->names[n][sizeof(errs->names[n]) - 1] = '\0';

    errs->items[n].field = errs->names[n];
    errs->items[n].message = message;
}


size_t
ngx_feira_utf8_length(const char *s, size_t len)
{
    size_t  i, n;

    /* jansson has already rejected invalid UTF-8: count lead bytes */
    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


int
ngx_feira_is_object_id(const char *s, size_t len)
{
    size_t  i;

    if (len != 24) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')
              || (s[i] >= 'A' && s[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/* digits (7 to 15), a leading '+', and the usual spaces, dashes, brackets */

int
ngx_feira_is_phone(const char *s, size_t len)
{
    size_t  i, digits;

    digits = 0;

    for (i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;

        } else if (!(s[i] == '+' && i == 0) && s[i] != ' ' && s[i] != '-'
                   && s[i] != '(' && s[i] != ')')
        {
            return 0;
        }
    }

    return digits >= 7 && digits <= 15;
}


/*
 * ?limit= and ?cursor= of a list, as raw query values (NULL when absent).
 * The cursor is opaque to clients; it is the id of the last item of the
 * previous page, kept in lower case.
 */

int
ngx_feira_page_parse(const char *limit, size_t limit_len, const char *cursor,
    size_t cursor_len, ngx_feira_page_t *page, ngx_feira_errors_t *errs)
{
    size_t  i, n, before;

    before = errs->n;

    page->limit = NGX_FEIRA_PAGE_DEFAULT;
    page->cursor[0] = '\0';

    if (limit != NULL) {
        n = 0;

        for (i = 0; i < limit_len && i < 4; i++) {
            if (limit[i] < '0' || limit[i] > '9') {
                break;
            }

            n = n * 10 + (limit[i] - '0');
        }

        if (limit_len == 0 || i != limit_len || n < 1
            || n > NGX_FEIRA_PAGE_MAX)
        {
            ngx_feira_errors_add(errs, "limit",
                                 "must be an integer from 1 to 100");

        } else {
            page->limit = n;
        }
    }

    /* an empty ?cursor= is the first page, as no cursor at all */

    if (cursor != NULL && cursor_len != 0) {
        if (!ngx_feira_is_object_id(cursor, cursor_len)) {
            ngx_feira_errors_add(errs, "cursor", "is not a valid cursor");

        } else {
            for (i = 0; i < cursor_len; i++) {
                page->cursor[i] = (cursor[i] >= 'A' && cursor[i] <= 'F')
                                  ? cursor[i] - 'A' + 'a' : cursor[i];
            }

            page->cursor[cursor_len] = '\0';
        }
    }

    return errs->n == before ? 0 : -1;
}


int
ngx_feira_json_is_safe(const json_t *value, int depth)
{
    size_t       i;
    const char  *key;
    json_t      *v;

    if (depth > NGX_FEIRA_MAX_DEPTH) {
        return 0;
    }

    if (json_is_object(value)) {
        json_object_foreach((json_t *) value, key, v) {
            if (!ngx_feira_key_is_safe(key)
                || !ngx_feira_json_is_safe(v, depth + 1))
            {
                return 0;
            }
        }

    } else if (json_is_array(value)) {
        json_array_foreach(value, i, v) {
            if (!ngx_feira_json_is_safe(v, depth + 1)) {
                return 0;
            }
        }
    }

    return 1;
}


int
ngx_feira_validate_object(const json_t *obj, const ngx_feira_field_t *fields,
    ngx_feira_errors_t *errs)
{
    size_t                    before;
    const char               *key;
    json_t                   *v;
    const ngx_feira_field_t  *f;

    if (!json_is_object(obj)) {
        ngx_feira_errors_add(errs, "", "must be a JSON object");
        return -1;
    }

    before = errs->n;

    json_object_foreach((json_t *) obj, key, v) {

        if (!ngx_feira_key_is_safe(key)) {
            ngx_feira_errors_add(errs, key,
                                 "operators and dotted keys are not allowed");
            continue;
        }

        if (ngx_feira_field_find(fields, key) == NULL) {
            ngx_feira_errors_add(errs, key, "unknown field");
        }
    }

    for (f = fields; f->name != NULL; f++) {
        v = json_object_get(obj, f->name);

        if (v == NULL || json_is_null(v)) {
            if (f->required) {
                ngx_feira_errors_add(errs, f->name, "is required");
            }

            continue;
        }

        ngx_feira_validate_value(v, f, errs);
    }

    return errs->n == before ? 0 : -1;
}


static void
ngx_feira_validate_value(const json_t *v, const ngx_feira_field_t *f,
    ngx_feira_errors_t *errs)
{
    size_t               len;
    double               d;
    const char          *s;
    const char *const   *e;

    switch (f->type) {

    case NGX_FEIRA_STRING:
    case NGX_FEIRA_ENUM:
    case NGX_FEIRA_OBJECT_ID:
        if (!json_is_string(v)) {
            ngx_feira_errors_add(errs, f->name, "must be a string");
            return;
        }

        s = json_string_value(v);
        len = json_string_length(v);

        if (memchr(s, '\0', len) != NULL) {
            ngx_feira_errors_add(errs, f->name, "must not contain NUL");
            return;
        }

        if (f->type == NGX_FEIRA_OBJECT_ID) {
            if (!ngx_feira_is_object_id(s, len)) {
                ngx_feira_errors_add(errs, f->name,
                                     "must be a 24-character hex id");
            }

            return;
        }

        if (f->type == NGX_FEIRA_ENUM) {
            for (e = f->values; e != NULL && *e != NULL; e++) {
                if (strcmp(*e, s) == 0) {
                    return;
                }
            }

            ngx_feira_errors_add(errs, f->name, "is not an allowed value");
            return;
        }

        len = ngx_feira_utf8_length(s, len);

        if (len < f->min_len) {
            ngx_feira_errors_add(errs, f->name, f->min_len == 1
                                 ? "must not be empty" : "is too short");

        } else if (f->max_len && len > f->max_len) {
            ngx_feira_errors_add(errs, f->name, "is too long");
        }

        return;

    case NGX_FEIRA_INTEGER:
        if (!json_is_integer(v)) {
            ngx_feira_errors_add(errs, f->name, "must be an integer");
            return;
        }

        d = (double) json_integer_value(v);
        break;

    case NGX_FEIRA_NUMBER:
        if (!json_is_number(v)) {
            ngx_feira_errors_add(errs, f->name, "must be a number");
            return;
        }

        d = json_number_value(v);

        if (!isfinite(d)) {
            ngx_feira_errors_add(errs, f->name, "must be a finite number");
            return;
        }

        break;

    case NGX_FEIRA_BOOLEAN:
        if (!json_is_boolean(v)) {
            ngx_feira_errors_add(errs, f->name, "must be true or false");
        }

        return;

    case NGX_FEIRA_OBJECT:
    case NGX_FEIRA_ARRAY:
        if (f->type == NGX_FEIRA_OBJECT && !json_is_object(v)) {
            ngx_feira_errors_add(errs, f->name, "must be an object");
            return;
        }

        if (f->type == NGX_FEIRA_ARRAY && !json_is_array(v)) {
            ngx_feira_errors_add(errs, f->name, "must be an array");
            return;
        }

        if (!ngx_feira_json_is_safe(v, 1)) {
            ngx_feira_errors_add(errs, f->name,
                         "operators, dotted keys or deep nesting not allowed");
            return;
        }

        if (f->type == NGX_FEIRA_ARRAY) {
            len = json_array_size(v);

            if (len < f->min_len || (f->max_len && len > f->max_len)) {
                ngx_feira_errors_add(errs, f->name,
                                     "has a wrong number of items");
            }
        }

        return;

    default:
        ngx_feira_errors_add(errs, f->name, "has an unsupported type");
        return;
    }

    /* integers and numbers: range */

    if (f->min <= f->max && (d < f->min || d > f->max)) {
        ngx_feira_errors_add(errs, f->name, "is out of range");
    }
}


static const ngx_feira_field_t *
ngx_feira_field_find(const ngx_feira_field_t *fields, const char *name)
{
    const ngx_feira_field_t  *f;

    for (f = fields; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }

    return NULL;
}


static int
ngx_feira_key_is_safe(const char *key)
{
    return key[0] != '$' && key[0] != '\0' && strchr(key, '.') == NULL;
}
