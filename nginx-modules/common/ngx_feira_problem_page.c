/*
 * feira_problem: nginx's own error answers (no route, a body over
 * client_max_body_size, limit_conn, an unparsable request) as
 * problem+json like the API's, from the internal location that error_page
 * sends them to.  The status is kept: error_page without "=".
 */

#include "ngx_feira_common.h"


static ngx_int_t ngx_feira_problem_page_handler(ngx_http_request_t *r);


char *
ngx_feira_problem_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate or conflicts with another handler";
    }

    clcf->handler = ngx_feira_problem_page_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_feira_problem_page_handler(ngx_http_request_t *r)
{
    ngx_uint_t   status;
    const char  *detail;

    status = r->err_status;

    if (status < NGX_HTTP_BAD_REQUEST || status > 599) {
        /* reached directly, not through error_page */
        status = NGX_HTTP_NOT_FOUND;
    }

    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        detail = "the request could not be parsed";
        break;

    case NGX_HTTP_NOT_FOUND:
        detail = "no such resource";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        detail = "method not allowed here";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        detail = "the body is larger than this server accepts";
        break;

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        detail = "the request line or a header is too long";
        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        detail = "too many requests or connections from this client";
        break;

    default:
        detail = NULL;
    }

    /* HEAD and any method get the same answer, without a body for HEAD */
    r->method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_HEAD : NGX_HTTP_GET;

    return ngx_feira_send_problem(r, status, detail, NULL);
}
