/*
 * GET /v1/ws: the opening handshake of RFC 6455 (section 4.2), the 101
 * answer, then the connection is taken over from HTTP: the request and its
 * pool are freed, so that an idle WebSocket costs its connection only.
 */

#include <ngx_sha1.h>

#include "ngx_http_feira_realtime_module.h"


#define NGX_FEIRA_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static ngx_int_t ngx_feira_rt_has_token(ngx_str_t *value, const char *token,
    size_t len);
static ngx_table_elt_t *ngx_feira_rt_header(ngx_http_request_t *r,
    const char *name, size_t len, ngx_uint_t *count);
static ngx_int_t ngx_feira_rt_header_has(ngx_http_request_t *r,
    const char *name, size_t len, const char *token, size_t token_len);
static ngx_int_t ngx_feira_rt_origin_allowed(ngx_http_request_t *r,
    ngx_http_feira_realtime_loc_conf_t *rlcf);
static ngx_int_t ngx_feira_rt_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail);
static void ngx_feira_rt_upgrade_handler(ngx_http_request_t *r);
static void ngx_feira_rt_take_over_handler(ngx_event_t *rev);


/* the identity to keep while the request is flushed */
typedef struct {
    ngx_feira_identity_t  *identity;
} ngx_feira_rt_handshake_ctx_t;


ngx_int_t
ngx_feira_rt_ws_handler(ngx_http_request_t *r)
{
    u_char                               *p;
    ngx_int_t                             rc;
    ngx_str_t                             key, src, dst;
    ngx_sha1_t                            sha1;
    ngx_uint_t                            n;
    ngx_table_elt_t                      *h;
    ngx_feira_identity_t                 *id;
    ngx_feira_rt_handshake_ctx_t         *ctx;
    ngx_http_feira_realtime_loc_conf_t   *rlcf;
    ngx_http_feira_realtime_main_conf_t  *rmcf;
    u_char                                decoded[32];
    u_char                                digest[20];

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_realtime_module);

    if (r->method != NGX_HTTP_GET) {
        return ngx_feira_send_not_allowed(r, "GET");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    id = ngx_feira_identity(r);

    if (id == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: realtime: the location needs "
                      "\"feira_auth_require\"");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* HTTP/1.1 only: no RFC 8441 over HTTP/2 */
    if (r->http_version != NGX_HTTP_VERSION_11
#if (NGX_HTTP_V2)
        || r->stream
#endif
        || !ngx_feira_rt_header_has(r, "Upgrade", 7, "websocket", 9)
        || !ngx_feira_rt_header_has(r, "Connection", 10, "upgrade", 7))
    {
        if (ngx_feira_add_header(r, "Upgrade", (u_char *) "websocket", 9)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_rt_reject(r, NGX_FEIRA_HTTP_UPGRADE_REQUIRED,
                                   "a WebSocket upgrade over HTTP/1.1 is "
                                   "required");
    }

    h = ngx_feira_rt_header(r, "Sec-WebSocket-Version", 21, &n);

    if (h == NULL || n != 1 || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        if (ngx_feira_add_header(r, "Sec-WebSocket-Version",
                                 (u_char *) "13", 2)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_rt_reject(r, NGX_FEIRA_HTTP_UPGRADE_REQUIRED,
                                   "only WebSocket version 13 is spoken");
    }

    h = ngx_feira_rt_header(r, "Sec-WebSocket-Key", 17, &n);

    /* the key is 16 random bytes in base64: 24 characters */
    if (h == NULL || n != 1 || h->value.len != 24) {
        return ngx_feira_rt_reject(r, NGX_HTTP_BAD_REQUEST,
                                   "a valid Sec-WebSocket-Key is required");
    }

    key = h->value;
    dst.data = decoded;

    if (ngx_decode_base64(&dst, &key) != NGX_OK || dst.len != 16) {
        return ngx_feira_rt_reject(r, NGX_HTTP_BAD_REQUEST,
                                   "a valid Sec-WebSocket-Key is required");
    }

    if (!ngx_feira_rt_origin_allowed(r, rlcf)) {
        return ngx_feira_rt_reject(r, NGX_HTTP_FORBIDDEN,
                                   "this Origin may not connect");
    }

    /* the last check: a slot taken is only given back with the socket */
    if (rlcf->per_address) {
        rmcf = ngx_http_get_module_main_conf(r,
                                             ngx_http_feira_realtime_module);

        rc = ngx_feira_addr_limit_acquire(r->connection, rmcf->limit_zone,
                                          rlcf->per_address);
        if (rc == NGX_BUSY) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "feira: realtime: %ui WebSockets of this address "
                          "already", rlcf->per_address);
            return ngx_feira_rt_reject(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "too many WebSockets from this "
                                       "address");
        }

        if (rc != NGX_OK) {
            return ngx_feira_rt_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "no room for another WebSocket");
        }
    }

    /* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) */

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key.data, key.len);
    ngx_sha1_update(&sha1, NGX_FEIRA_WS_GUID, sizeof(NGX_FEIRA_WS_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    p = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    src.data = digest;
    src.len = 20;
    dst.data = p;
    ngx_encode_base64(&dst, &src);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_feira_rt_handshake_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->identity = id;
    ngx_http_set_ctx(r, ctx, ngx_http_feira_realtime_module);

    if (ngx_feira_add_header(r, "Upgrade", (u_char *) "websocket", 9) == NULL
        || ngx_feira_add_header(r, "Sec-WebSocket-Accept", dst.data, dst.len)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->header_only = 1;
    r->keepalive = 0;
    r->lingering_close = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /*
     * The 101 may still sit in r->out: the write event sends it.  The
     * take-over runs from a read event of its own, once nothing of HTTP's
     * is on the stack (ngx_http_run_posted_requests() reads c->data).
     */

    r->main->count++;
    r->write_event_handler = ngx_feira_rt_upgrade_handler;
    r->read_event_handler = ngx_http_block_reading;

    ngx_feira_rt_upgrade_handler(r);

    return NGX_DONE;
}


static void
ngx_feira_rt_upgrade_handler(ngx_http_request_t *r)
{
    ngx_event_t       *wev;
    ngx_connection_t  *c;

    c = r->connection;
    wev = c->write;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "feira: realtime: client timed out in the handshake");
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (r->out || c->buffered) {
        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
    }

    if (r->out || c->buffered) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, 10000);
        }

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    c->read->handler = ngx_feira_rt_take_over_handler;
    ngx_post_event(c->read, &ngx_posted_events);
}


/* like ngx_http_set_keepalive(), but the connection stays ours */

static void
ngx_feira_rt_take_over_handler(ngx_event_t *rev)
{
    u_char                              *pipelined;
    size_t                               len;
    ngx_buf_t                           *b;
    ngx_chain_t                         *cl, *ln;
    ngx_connection_t                    *c;
    ngx_feira_identity_t                 id;
    ngx_http_connection_t               *hc;
    ngx_feira_rt_handshake_ctx_t        *ctx;
    ngx_http_request_t                  *r;
    ngx_http_feira_realtime_loc_conf_t  *rlcf;

    c = rev->data;
    r = c->data;

    if (c->close) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    hc = r->http_connection;
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_realtime_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_feira_realtime_module);

    /* frames the client sent right after its handshake */

    b = r->header_in;
    len = b->last - b->pos;
    pipelined = NULL;

    if (len) {
        pipelined = ngx_alloc(len, c->log);
        if (pipelined == NULL) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        ngx_memcpy(pipelined, b->pos, len);
    }

    /* the identity moves to the connection's pool */

    id = *ctx->identity;

    id.id.data = ngx_pnalloc(c->pool, id.id.len + id.role.len + id.jti.len
                                      + id.sid.len + 4);
    if (id.id.data == NULL) {
        ngx_free(pipelined);
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    id.role.data = ngx_cpystrn(id.id.data, ctx->identity->id.data,
                               id.id.len + 1) + 1;
    id.jti.data = ngx_cpystrn(id.role.data, ctx->identity->role.data,
                              id.role.len + 1) + 1;
    id.sid.data = ngx_cpystrn(id.jti.data, ctx->identity->jti.data,
                              id.jti.len + 1) + 1;
    ngx_cpystrn(id.sid.data, ctx->identity->sid.data, id.sid.len + 1);

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    /* the request is logged (101) and its pool freed */

    r->keepalive = 0;
    ngx_http_free_request(r, 0);

    c->destroyed = 0;

    /* the header buffers are not needed any more */

    if (c->buffer && ngx_pfree(c->pool, c->buffer->start) == NGX_OK) {
        c->buffer->pos = NULL;
    }

    for (cl = hc->busy; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
    }

    for (cl = hc->free; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
    }

    hc->busy = NULL;
    hc->free = NULL;
    hc->nbusy = 0;

    if (ngx_feira_rt_ws_start(c, rlcf, &id, pipelined, len) != NGX_OK) {
        ngx_free(pipelined);
        ngx_http_close_connection(c);
        return;
    }

    ngx_free(pipelined);
}


/* a comma-separated list of tokens holds this one, in any case */

static ngx_int_t
ngx_feira_rt_has_token(ngx_str_t *value, const char *token, size_t len)
{
    u_char  *p, *last, *start, *end;

    p = value->data;
    last = p + value->len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) == len
            && ngx_strncasecmp(start, (u_char *) token, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_table_elt_t *
ngx_feira_rt_header(ngx_http_request_t *r, const char *name, size_t len,
    ngx_uint_t *count)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    part = &r->headers_in.headers.part;
    h = part->elts;
    found = NULL;
    *count = 0;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            found = &h[i];
            (*count)++;
        }
    }

    return found;
}


/* a header of this name (nginx 1.22 keeps no Connection) has the token */

static ngx_int_t
ngx_feira_rt_header_has(ngx_http_request_t *r, const char *name, size_t len,
    const char *token, size_t token_len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0
            && ngx_feira_rt_has_token(&h[i].value, token, token_len))
        {
            return 1;
        }
    }
}


/* without an allow-list any origin may connect; browsers send Origin */

static ngx_int_t
ngx_feira_rt_origin_allowed(ngx_http_request_t *r,
    ngx_http_feira_realtime_loc_conf_t *rlcf)
{
    ngx_str_t        *origin;
    ngx_uint_t        i, n;
    ngx_table_elt_t  *h;

    if (rlcf->origins == NULL) {
        return 1;
    }

    h = ngx_feira_rt_header(r, "Origin", 6, &n);

    if (h == NULL || n != 1) {
        return 0;
    }

    origin = rlcf->origins->elts;

    for (i = 0; i < rlcf->origins->nelts; i++) {
        if (origin[i].len == h->value.len
            && ngx_strncasecmp(origin[i].data, h->value.data, h->value.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_feira_rt_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "feira: realtime: handshake refused: %s", detail);

    /* nginx's table of status lines has no text for 426 */
    if (status == NGX_FEIRA_HTTP_UPGRADE_REQUIRED) {
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    }

    return ngx_feira_send_problem(r, status, detail, NULL);
}
