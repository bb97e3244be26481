/*
 * feira_chat: the HTTP API under the location of "feira_chat;":
 * .../{request_id}/messages (GET history, POST send),
 * .../{request_id}/messages/read (POST receipt),
 * .../{request_id}/conversations (GET, with unread counts).
 */

#include "ngx_http_feira_chat_module.h"


static ngx_int_t ngx_feira_chat_route(ngx_http_request_t *r,
    ngx_feira_chat_what_e *what, ngx_str_t *id, char **allow);
static ngx_feira_chat_op_t *ngx_feira_chat_op(ngx_http_request_t *r,
    ngx_feira_chat_what_e what, ngx_str_t *id);
static ngx_int_t ngx_feira_chat_get(ngx_http_request_t *r,
    ngx_feira_chat_op_t *op);
static void ngx_feira_chat_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_chat_post(ngx_http_request_t *r,
    ngx_feira_chat_op_t *op);
static void ngx_feira_chat_http_done(ngx_http_request_t *r, void *data);
static void ngx_feira_chat_http_finish(ngx_feira_chat_op_t *op);
static ngx_int_t ngx_feira_chat_id_arg(ngx_http_request_t *r,
    const char *name, char *out, ngx_feira_errors_t *errs);


ngx_int_t
ngx_feira_chat_handler(ngx_http_request_t *r)
{
    char                   *allow;
    ngx_int_t               rc;
    ngx_str_t               id;
    ngx_feira_errors_t      errs;
    ngx_feira_chat_op_t    *op;
    ngx_feira_chat_what_e   what;

    what = NGX_FEIRA_CHAT_HISTORY;
    ngx_str_null(&id);
    allow = NULL;

    rc = ngx_feira_chat_route(r, &what, &id, &allow);

    if (rc == NGX_HTTP_NOT_ALLOWED) {
        return ngx_feira_send_not_allowed(r, allow);
    }

    if (rc != NGX_OK) {
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such resource", NULL);
    }

    if (!ngx_feira_is_object_id((char *) id.data, id.len)) {
        ngx_memzero(&errs, sizeof(ngx_feira_errors_t));
        ngx_feira_errors_add(&errs, "request_id",
                             "must be a 24-character hex id");

        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "the path names an invalid id", &errs);
    }

    op = ngx_feira_chat_op(r, what, &id);
    if (op == NULL) {
        return ngx_feira_send_problem(r, NGX_HTTP_UNAUTHORIZED,
                                      "no caller", NULL);
    }

    if (what == NGX_FEIRA_CHAT_HISTORY
        || what == NGX_FEIRA_CHAT_CONVERSATIONS)
    {
        return ngx_feira_chat_get(r, op);
    }

    ngx_http_set_ctx(r, op, ngx_http_feira_chat_module);

    return ngx_feira_read_json_body(r, ngx_feira_chat_body);
}


/* the location's pattern is configuration: the path is read from its end */

static ngx_int_t
ngx_feira_chat_route(ngx_http_request_t *r, ngx_feira_chat_what_e *what,
    ngx_str_t *id, char **allow)
{
    size_t      len, n;
    u_char     *p;
    ngx_uint_t  get;

    p = r->uri.data;
    len = r->uri.len;
    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) != 0;

#define ngx_feira_chat_ends(s)                                               \
    (len > sizeof(s) - 1                                                     \
     && ngx_strncmp(p + len - (sizeof(s) - 1), s, sizeof(s) - 1) == 0)

    if (ngx_feira_chat_ends("/messages/read")) {
        if (r->method != NGX_HTTP_POST) {
            *allow = "POST";
            return NGX_HTTP_NOT_ALLOWED;
        }

        *what = NGX_FEIRA_CHAT_READ;
        len -= sizeof("/messages/read") - 1;

    } else if (ngx_feira_chat_ends("/messages")) {
        if (!get && r->method != NGX_HTTP_POST) {
            *allow = "GET, HEAD, POST";
            return NGX_HTTP_NOT_ALLOWED;
        }

        *what = get ? NGX_FEIRA_CHAT_HISTORY : NGX_FEIRA_CHAT_SEND;
        len -= sizeof("/messages") - 1;

    } else if (ngx_feira_chat_ends("/conversations")) {
        if (!get) {
            *allow = "GET, HEAD";
            return NGX_HTTP_NOT_ALLOWED;
        }

        *what = NGX_FEIRA_CHAT_CONVERSATIONS;
        len -= sizeof("/conversations") - 1;

    } else {
        return NGX_HTTP_NOT_FOUND;
    }

#undef ngx_feira_chat_ends

    for (n = len; n > 0 && p[n - 1] != '/'; n--) {
        /* void */
    }

    id->data = p + n;
    id->len = len - n;

    return NGX_OK;
}


static ngx_feira_chat_op_t *
ngx_feira_chat_op(ngx_http_request_t *r, ngx_feira_chat_what_e what,
    ngx_str_t *id)
{
    ngx_uint_t             i;
    ngx_feira_chat_op_t   *op;
    ngx_feira_identity_t  *caller;

    caller = ngx_feira_identity(r);

    if (caller == NULL || caller->id.len != 24) {
        return NULL;
    }

    op = ngx_pcalloc(r->pool, sizeof(ngx_feira_chat_op_t));
    if (op == NULL) {
        return NULL;
    }

    op->what = what;
    op->pool = r->pool;
    op->log = r->connection->log;
    op->request = r;
    op->finish = ngx_feira_chat_http_finish;
    op->limit = NGX_FEIRA_PAGE_DEFAULT;

    ngx_memcpy(op->user, caller->id.data, 24);
    ngx_memcpy(op->role, caller->role.data,
               ngx_min(caller->role.len, sizeof(op->role) - 1));

    for (i = 0; i < 24; i++) {
        op->request_id[i] = ngx_tolower(id->data[i]);
    }

    return op;
}


/* GET: the arguments, then the job with the handler's reference held */

static ngx_int_t
ngx_feira_chat_get(ngx_http_request_t *r, ngx_feira_chat_op_t *op)
{
    ngx_int_t           rc, has_before, has_limit;
    ngx_str_t           before, limit;
    ngx_feira_errors_t  errs;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    (void) ngx_feira_chat_id_arg(r, "provider", op->to, &errs);

    if (op->what == NGX_FEIRA_CHAT_HISTORY) {
        has_before = ngx_http_arg(r, (u_char *) "before", 6, &before)
                     == NGX_OK;

        /* the list convention's name for the same cursor */
        if (!has_before) {
            has_before = ngx_http_arg(r, (u_char *) "cursor", 6, &before)
                         == NGX_OK;
        }

        has_limit = ngx_http_arg(r, (u_char *) "limit", 5, &limit)
                    == NGX_OK;

        (void) ngx_feira_chat_page_parse(
                   has_before ? (char *) before.data : NULL,
                   has_before ? before.len : 0,
                   has_limit ? (char *) limit.data : NULL,
                   has_limit ? limit.len : 0,
                   op->before, &op->limit, &errs);
    }

    if (errs.n) {
        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid query arguments", &errs);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;

    ngx_feira_chat_post(r, op);

    return NGX_DONE;
}


static void
ngx_feira_chat_body(ngx_http_request_t *r, json_t *body)
{
    json_t                           *v;
    ngx_feira_errors_t                errs;
    ngx_feira_chat_op_t              *op;
    ngx_http_feira_chat_main_conf_t  *cmcf;

    op = ngx_http_get_module_ctx(r, ngx_http_feira_chat_module);
    cmcf = ngx_feira_chat_conf();

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_chat_check(body, op->what == NGX_FEIRA_CHAT_SEND
                                   ? NGX_FEIRA_CHAT_IN_SEND
                                   : NGX_FEIRA_CHAT_IN_READ,
                             cmcf->text_max, &errs)
        != 0)
    {
        ngx_http_finalize_request(r, ngx_feira_send_problem(r,
                                         NGX_HTTP_BAD_REQUEST,
                                         "the request body is invalid",
                                         &errs));
        return;
    }

    if (op->what == NGX_FEIRA_CHAT_READ) {
        v = json_object_get(body, "up_to");
        ngx_strlow((u_char *) op->up_to, (u_char *) json_string_value(v), 24);

    } else {
        v = json_object_get(body, "text");
        op->text = (char *) json_string_value(v);      /* body outlives op */
        op->text_len = json_string_length(v);

        ngx_cpystrn((u_char *) op->cmid,
                    (u_char *) json_string_value(json_object_get(body,
                                                 "client_msg_id")),
                    sizeof(op->cmid));

        v = json_object_get(body, "to");

        if (json_is_string(v)) {
            ngx_strlow((u_char *) op->to, (u_char *) json_string_value(v),
                       24);
        }
    }

    ngx_feira_chat_post(r, op);
}


static void
ngx_feira_chat_post(ngx_http_request_t *r, ngx_feira_chat_op_t *op)
{
    if (ngx_feira_thread_post(r, ngx_feira_chat_job, ngx_feira_chat_http_done,
                              op)
        != NGX_OK)
    {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy, try again", NULL));
    }
}


static void
ngx_feira_chat_http_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_chat_deliver(data);
}


static void
ngx_feira_chat_http_finish(ngx_feira_chat_op_t *op)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = op->request;

    if (op->result
        && ngx_feira_json_cleanup_add(r->pool, op->result) != NGX_OK)
    {
        json_decref(op->result);
        op->result = NULL;
        op->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (op->status >= NGX_HTTP_BAD_REQUEST || op->result == NULL) {
        rc = ngx_feira_send_problem(r, op->status >= NGX_HTTP_BAD_REQUEST
                                       ? op->status
                                       : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    op->detail,
                                    op->errs.n ? &op->errs : NULL);

    } else {
        rc = ngx_feira_send_json(r, op->status, op->result);
    }

    ngx_http_finalize_request(r, rc);
}


/* an optional ?name= that is a 24-hex id, lower-cased into out */

static ngx_int_t
ngx_feira_chat_id_arg(ngx_http_request_t *r, const char *name, char *out,
    ngx_feira_errors_t *errs)
{
    ngx_str_t  v;

    out[0] = '\0';

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NGX_DECLINED;
    }

    if (!ngx_feira_is_object_id((char *) v.data, v.len)) {
        ngx_feira_errors_add(errs, name, "must be a 24-character hex id");
        return NGX_ERROR;
    }

    ngx_strlow((u_char *) out, v.data, 24);
    out[24] = '\0';

    return NGX_OK;
}
