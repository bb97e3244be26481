/*
 * Lists: ?limit= and ?cursor= of a request, checked by the pure
 * ngx_feira_page_parse() (ngx_feira_validate.c), for every list endpoint.
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
