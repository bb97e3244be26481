/*
 * JSON replies and RFC 9457 application/problem+json errors.
 */

#include "ngx_feira_common.h"


typedef struct {
    ngx_uint_t   status;
    const char  *title;
} ngx_feira_title_t;


static void ngx_feira_json_cleanup(void *data);
static ngx_int_t ngx_feira_send_dump(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body, ngx_str_t *type);


static ngx_str_t  ngx_feira_json_type = ngx_string("application/json");
static ngx_str_t  ngx_feira_problem_type =
    ngx_string("application/problem+json");


static const ngx_feira_title_t  ngx_feira_titles[] = {
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 409, "Conflict" },
    { 413, "Content Too Large" },
    { 414, "URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 422, "Unprocessable Content" },
    { 429, "Too Many Requests" },
    { 500, "Internal Server Error" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 0, NULL }
};


const char *
ngx_feira_status_title(ngx_uint_t status)
{
    const ngx_feira_title_t  *t;

    for (t = ngx_feira_titles; t->title != NULL; t++) {
        if (t->status == status) {
            return t->title;
        }
    }

    return status < 500 ? "Client Error" : "Server Error";
}


ngx_int_t
ngx_feira_json_cleanup_add(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NGX_ERROR;
    }

    cln->handler = ngx_feira_json_cleanup;
    cln->data = json;

    return NGX_OK;
}


static void
ngx_feira_json_cleanup(void *data)
{
    json_decref((json_t *) data);
}


ngx_int_t
ngx_feira_send_json(ngx_http_request_t *r, ngx_uint_t status, json_t *body)
{
    return ngx_feira_send_dump(r, status, body, &ngx_feira_json_type);
}


ngx_int_t
ngx_feira_send_problem(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail, ngx_feira_errors_t *errors)
{
    return ngx_feira_send_problem_ext(r, status, detail, errors, NULL);
}


/* the same with extension members (RFC 9457, 3.2) taken from "extra" */

ngx_int_t
ngx_feira_send_problem_ext(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail, ngx_feira_errors_t *errors, json_t *extra)
{
    size_t     i;
    json_t    *body, *list, *item;
    ngx_int_t  rc;

    /* an unread body must not be taken for the next request */
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:s, s:s, s:I, s:s}",
                     "type", "about:blank",
                     "title", ngx_feira_status_title(status),
                     "status", (json_int_t) status,
                     "detail", detail ? detail
                                      : ngx_feira_status_title(status));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (errors != NULL && errors->n > 0) {
        list = json_array();
        if (list == NULL) {
            json_decref(body);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json_object_set_new(body, "errors", list);

        for (i = 0; i < errors->n; i++) {
            item = json_pack("{s:s, s:s}",
                             "field", errors->items[i].field,
                             "message", errors->items[i].message);
            if (item == NULL || json_array_append_new(list, item) != 0) {
                json_decref(body);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    /* the standard members win over extensions of the same name */
    if (extra != NULL && json_object_update_missing(body, extra) != 0) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_feira_send_dump(r, status, body, &ngx_feira_problem_type);

    json_decref(body);

    return rc;
}


ngx_table_elt_t *
ngx_feira_add_header(ngx_http_request_t *r, char *key, u_char *value,
    size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;

    return h;
}


ngx_int_t
ngx_feira_send_not_allowed(ngx_http_request_t *r, char *allow)
{
    if (ngx_feira_add_header(r, "Allow", (u_char *) allow,
                             ngx_strlen(allow))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_feira_send_problem(r, NGX_HTTP_NOT_ALLOWED,
                                  "method not allowed here", NULL);
}


static ngx_int_t
ngx_feira_send_dump(ngx_http_request_t *r, ngx_uint_t status, json_t *body,
    ngx_str_t *type)
{
    size_t        len;
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_chain_t   out;

    /* 15 digits: 0.6906, not 0.69059999999999999 */
    len = json_dumpb(body, NULL, 0, JSON_COMPACT|JSON_REAL_PRECISION(15));
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (json_dumpb(body, (char *) b->pos, len,
                   JSON_COMPACT|JSON_REAL_PRECISION(15))
        != len)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = b->pos + len;
    *b->last++ = '\n';

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    /* errors replace whatever a handler had prepared */
    r->allow_ranges = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
