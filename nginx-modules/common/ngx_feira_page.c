/*
 * Lists: ?limit= (1..100, default 20) and ?cursor= (an opaque position,
 * here the 24-hex id of the last item seen), for every paginated endpoint.
 */

#include "ngx_feira_common.h"


ngx_int_t
ngx_feira_page_parse(ngx_http_request_t *r, ngx_feira_page_t *page,
    ngx_feira_errors_t *errs)
{
    ngx_int_t  n;
    ngx_str_t  value;

    page->limit = NGX_FEIRA_PAGE_DEFAULT;
    page->cursor[0] = '\0';

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n < 1 || n > NGX_FEIRA_PAGE_MAX) {
            ngx_feira_errors_add(errs, "limit", "must be 1 to 100");

        } else {
            page->limit = (ngx_uint_t) n;
        }
    }

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &value) == NGX_OK) {

        if (!ngx_feira_is_object_id((char *) value.data, value.len)) {
            ngx_feira_errors_add(errs, "cursor", "is not a valid cursor");

        } else {
            ngx_strlow(page->cursor, value.data, value.len);
            page->cursor[value.len] = '\0';
        }
    }

    return errs->n ? NGX_DECLINED : NGX_OK;
}
