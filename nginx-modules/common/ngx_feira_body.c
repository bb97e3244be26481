/*
 * Reading a JSON request body into memory: content type (415), size limit
 * (413), syntax (400); the parsed document is released with the request.
 */

#include "ngx_feira_common.h"


static void ngx_feira_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_feira_body_is_json(ngx_http_request_t *r);
static void ngx_feira_body_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail);


ngx_int_t
ngx_feira_read_json_body(ngx_http_request_t *r, ngx_feira_body_pt handler)
{
    ngx_int_t                   rc;
    ngx_feira_ctx_t            *ctx;
    ngx_http_feira_loc_conf_t  *flcf;

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_common_module);

    if (!ngx_feira_body_is_json(r)) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_send_problem(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                      "Content-Type must be application/json",
                                      NULL);
    }

    if (r->headers_in.content_length_n > (off_t) flcf->body_limit) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_send_problem(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the request body is too large", NULL);
    }

    ctx = ngx_feira_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body_handler = handler;

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_feira_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_feira_body_handler(ngx_http_request_t *r)
{
    u_char                     *p, *data;
    size_t                      len;
    json_t                     *json;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    json_error_t                err;
    ngx_feira_ctx_t            *ctx;
    ngx_http_feira_loc_conf_t  *flcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_common_module);
    flcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_common_module);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ngx_feira_body_fail(r, NGX_HTTP_BAD_REQUEST,
                            "a JSON request body is required");
        return;
    }

    /* a body spilled to a file is larger than any limit we accept */
    if (r->request_body->temp_file) {
        ngx_feira_body_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                            "the request body is too large");
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || !ngx_buf_in_memory(b)) {
            ngx_feira_body_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "the request body is too large");
            return;
        }

        len += b->last - b->pos;
    }

    if (len > flcf->body_limit) {
        ngx_feira_body_fail(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                            "the request body is too large");
        return;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        data = cl->buf->pos;

    } else {
        data = ngx_pnalloc(r->pool, len);
        if (data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = data;

        for ( /* void */ ; cl; cl = cl->next) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    json = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES, &err);
    if (json == NULL) {
        ngx_feira_body_fail(r, NGX_HTTP_BAD_REQUEST,
                            "the request body is not valid JSON");
        return;
    }

    if (ngx_feira_json_cleanup_add(r->pool, json) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->body_handler(r, json);
}


static void
ngx_feira_body_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    ngx_http_finalize_request(r, ngx_feira_send_problem(r, status, detail,
                                                        NULL));
}


static ngx_int_t
ngx_feira_body_is_json(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t   type;

    static u_char  json[] = "application/json";

    if (r->headers_in.content_type == NULL) {
        return 0;
    }

    type = r->headers_in.content_type->value;

    if (type.len < sizeof(json) - 1
        || ngx_strncasecmp(type.data, json, sizeof(json) - 1) != 0)
    {
        return 0;
    }

    /* only parameters may follow, such as "; charset=utf-8" */

    p = type.data + sizeof(json) - 1;
    last = type.data + type.len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p == last || *p == ';';
}
