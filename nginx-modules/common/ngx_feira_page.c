/*
 * Lists: ?limit= and ?cursor= of a request, checked by the pure
 * ngx_feira_page_parse() (ngx_feira_validate.c), and the page a MongoDB
 * cursor makes, for every list endpoint.
 */

#include "ngx_feira_common.h"


ngx_int_t
ngx_feira_page_args(ngx_http_request_t *r, ngx_feira_page_t *page,
    ngx_feira_errors_t *errs)
{
    ngx_int_t  has_limit, has_cursor;
    ngx_str_t  limit, cursor;

    has_limit = ngx_http_arg(r, (u_char *) "limit", 5, &limit) == NGX_OK;
    has_cursor = ngx_http_arg(r, (u_char *) "cursor", 6, &cursor) == NGX_OK;

    if (ngx_feira_page_parse(has_limit ? (char *) limit.data : NULL,
                             has_limit ? limit.len : 0,
                             has_cursor ? (char *) cursor.data : NULL,
                             has_cursor ? cursor.len : 0, page, errs)
        != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_feira_mongo_page(mongoc_cursor_t *cursor, ngx_uint_t limit,
    ngx_feira_page_view_pt view, void *data, const char *id_name,
    json_t **page, bson_error_t *error)
{
    json_t        *items, *item, *next;
    ngx_uint_t     n, more;
    const bson_t  *doc;

    *page = NULL;

    items = json_array();
    if (items == NULL) {
        return NGX_ERROR;
    }

    n = 0;
    more = 0;

    while (mongoc_cursor_next(cursor, &doc)) {
        if (n == limit) {
            more = 1;
            break;
        }

        item = view(doc, data);

        if (item == NULL || json_array_append_new(items, item) != 0) {
            json_decref(items);
            return NGX_ERROR;
        }

        n++;
    }

    if (mongoc_cursor_error(cursor, error)) {
        json_decref(items);
        return NGX_DECLINED;
    }

    next = (more && n) ? json_object_get(json_array_get(items, n - 1),
                                         id_name)
                       : NULL;

    *page = json_pack("{s:O, s:O?}", "items", items, "next_cursor", next);

    json_decref(items);

    return *page ? NGX_OK : NGX_ERROR;
}
