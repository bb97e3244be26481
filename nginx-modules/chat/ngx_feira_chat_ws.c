/*
 * feira_chat over the WebSocket of feira_realtime: "chat", "typing" and
 * "read" messages, registered in common's WebSocket type registry.  The
 * work is the HTTP API's; the answer is a frame: "chat.ack", "read.ack",
 * or {"type":"error","code","detail"}.
 */

#include "ngx_http_feira_chat_module.h"


static void ngx_feira_chat_ws_finish(ngx_feira_chat_op_t *op);
static const char *ngx_feira_chat_ws_code(ngx_uint_t status);
static void ngx_feira_chat_ws_id(char *out, json_t *v);


void
ngx_feira_chat_ws_message(ngx_feira_wsmsg_peer_t *peer, const char *type,
    json_t *msg)
{
    json_t                           *text;
    ngx_int_t                         rc;
    ngx_pool_t                       *pool;
    ngx_feira_errors_t                errs;
    ngx_feira_chat_op_t              *op;
    ngx_feira_chat_what_e             what;
    ngx_feira_chat_input_e            in;
    ngx_http_feira_chat_main_conf_t  *cmcf;
    char                              detail[160];

    if (ngx_strcmp(type, "chat") == 0) {
        what = NGX_FEIRA_CHAT_SEND;
        in = NGX_FEIRA_CHAT_IN_WS_CHAT;

    } else if (ngx_strcmp(type, "typing") == 0) {
        what = NGX_FEIRA_CHAT_TYPING;
        in = NGX_FEIRA_CHAT_IN_WS_TYPING;

    } else {
        what = NGX_FEIRA_CHAT_READ;
        in = NGX_FEIRA_CHAT_IN_WS_READ;
    }

    cmcf = ngx_feira_chat_conf();

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_chat_check(msg, in, cmcf->text_max, &errs) != 0) {
        *ngx_snprintf((u_char *) detail, sizeof(detail) - 1, "\"%s\" %s",
                      errs.n ? errs.items[0].field : "",
                      errs.n ? errs.items[0].message : "is invalid") = '\0';
        ngx_feira_wsmsg_error(peer, "bad_message", detail);
        return;
    }

    if (peer->identity->id.len != 24) {
        ngx_feira_wsmsg_error(peer, "forbidden", "no user");
        return;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        ngx_feira_wsmsg_error(peer, "unavailable", "out of memory");
        return;
    }

    op = ngx_pcalloc(pool, sizeof(ngx_feira_chat_op_t));
    if (op == NULL) {
        ngx_destroy_pool(pool);
        ngx_feira_wsmsg_error(peer, "unavailable", "out of memory");
        return;
    }

    op->what = what;
    op->pool = pool;
    op->log = ngx_cycle->log;
    op->finish = ngx_feira_chat_ws_finish;
    op->limit = NGX_FEIRA_PAGE_DEFAULT;

    ngx_memcpy(op->user, peer->identity->id.data, 24);
    ngx_memcpy(op->role, peer->identity->role.data,
               ngx_min(peer->identity->role.len, sizeof(op->role) - 1));

    ngx_feira_chat_ws_id(op->request_id, json_object_get(msg, "request_id"));
    ngx_feira_chat_ws_id(op->to, json_object_get(msg, "to"));
    ngx_feira_chat_ws_id(op->up_to, json_object_get(msg, "message_id"));

    if (what == NGX_FEIRA_CHAT_SEND) {
        text = json_object_get(msg, "text");

        op->text_len = json_string_length(text);
        op->text = ngx_pnalloc(pool, op->text_len + 1);
        if (op->text == NULL) {
            ngx_destroy_pool(pool);
            ngx_feira_wsmsg_error(peer, "unavailable", "out of memory");
            return;
        }

        ngx_memcpy(op->text, json_string_value(text), op->text_len + 1);
        ngx_cpystrn((u_char *) op->cmid,
                    (u_char *) json_string_value(json_object_get(msg,
                                                 "client_msg_id")),
                    sizeof(op->cmid));
    }

    ngx_feira_wsmsg_op_start(peer, &op->ws);

    if (what == NGX_FEIRA_CHAT_TYPING) {
        rc = ngx_feira_chat_typing_claim(op);

    } else {
        rc = ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                         ngx_feira_chat_job,
                                         ngx_feira_chat_ws_done, op);
    }

    if (rc != NGX_OK) {
        op->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        ngx_feira_chat_ws_finish(op);
    }
}


void
ngx_feira_chat_ws_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_chat_deliver(data);
}


/* the answer, if the connection is still there; then the op is freed */

static void
ngx_feira_chat_ws_finish(ngx_feira_chat_op_t *op)
{
    json_t                  *json;
    const char              *detail;
    ngx_feira_wsmsg_peer_t  *peer;

    peer = op->ws.peer;

    if (peer == NULL) {
        goto done;
    }

    ngx_feira_wsmsg_op_done(&op->ws);

    if (op->status >= NGX_HTTP_BAD_REQUEST) {
        detail = op->detail;

        if (op->errs.n) {
            detail = op->errs.items[0].message;
        }

        if (detail == NULL) {
            detail = "the message could not be served, try again";
        }

        json = json_pack("{s:s, s:s, s:s, s:s}", "type", "error",
                         "code", ngx_feira_chat_ws_code(op->status),
                         "detail", detail, "request_id", op->request_id);

        if (json && op->cmid[0]) {
            json_object_set_new(json, "client_msg_id",
                                json_string(op->cmid));
        }

        ngx_feira_wsmsg_send(peer, json);
        goto done;
    }

    switch (op->what) {

    case NGX_FEIRA_CHAT_SEND:
        json = json_pack("{s:s, s:s, s:s, s:b, s:O}", "type", "chat.ack",
                         "request_id", op->request_id,
                         "client_msg_id", op->cmid,
                         "replayed", (int) op->replayed,
                         "message", op->result);
        ngx_feira_wsmsg_send(peer, json);
        break;

    case NGX_FEIRA_CHAT_READ:
        json = json_pack("{s:s, s:O}", "type", "read.ack",
                         "receipt", op->result);
        ngx_feira_wsmsg_send(peer, json);
        break;

    default:
        break;
    }

done:

    json_decref(op->result);
    ngx_destroy_pool(op->pool);
}


static const char *
ngx_feira_chat_ws_code(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        return "bad_message";

    case NGX_HTTP_FORBIDDEN:
        return "forbidden";

    case NGX_HTTP_NOT_FOUND:
        return "not_found";

    case NGX_HTTP_CONFLICT:
        return "conflict";

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limited";

    default:
        return "unavailable";
    }
}


/* a checked 24-hex id, lower case; "" when absent */

static void
ngx_feira_chat_ws_id(char *out, json_t *v)
{
    ngx_uint_t   i;
    const char  *s;

    out[0] = '\0';

    if (!json_is_string(v) || json_string_length(v) != 24) {
        return;
    }

    s = json_string_value(v);

    for (i = 0; i < 24; i++) {
        out[i] = ngx_tolower(s[i]);
    }

    out[24] = '\0';
}
