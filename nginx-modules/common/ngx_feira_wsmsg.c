/*
 * WebSocket message types served by other modules: feira_realtime owns the
 * connections and dispatches the types it does not serve itself ("chat",
 * "typing", "read") to the module that registered them in this worker.
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_WSMSG_TYPES  8


typedef struct {
    const char           *type;
    ngx_feira_wsmsg_pt    handler;
} ngx_feira_wsmsg_entry_t;


/* per worker: filled in init_process, emptied in exit_process */
static ngx_feira_wsmsg_entry_t  ngx_feira_wsmsg_types[NGX_FEIRA_WSMSG_TYPES];
static ngx_uint_t               ngx_feira_wsmsg_ntypes;


ngx_int_t
ngx_feira_wsmsg_register(const char *type, ngx_feira_wsmsg_pt handler)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_feira_wsmsg_ntypes; i++) {
        if (ngx_strcmp(ngx_feira_wsmsg_types[i].type, type) == 0) {
            ngx_feira_wsmsg_types[i].handler = handler;
            return NGX_OK;
        }
    }

    if (ngx_feira_wsmsg_ntypes == NGX_FEIRA_WSMSG_TYPES) {
        return NGX_ERROR;
    }

    ngx_feira_wsmsg_types[ngx_feira_wsmsg_ntypes].type = type;
    ngx_feira_wsmsg_types[ngx_feira_wsmsg_ntypes].handler = handler;
    ngx_feira_wsmsg_ntypes++;

    return NGX_OK;
}


void
ngx_feira_wsmsg_unregister(ngx_feira_wsmsg_pt handler)
{
    ngx_uint_t  i, j;

    for (i = 0, j = 0; i < ngx_feira_wsmsg_ntypes; i++) {
        if (ngx_feira_wsmsg_types[i].handler != handler) {
            ngx_feira_wsmsg_types[j++] = ngx_feira_wsmsg_types[i];
        }
    }

    ngx_feira_wsmsg_ntypes = j;
}


void
ngx_feira_wsmsg_peer_init(ngx_feira_wsmsg_peer_t *peer,
    ngx_feira_identity_t *identity, ngx_log_t *log,
    ngx_feira_wsmsg_send_pt send, void *data)
{
    peer->identity = identity;
    peer->log = log;
    peer->send = send;
    peer->data = data;
    peer->nops = 0;
    ngx_queue_init(&peer->ops);
}


ngx_int_t
ngx_feira_wsmsg_dispatch(ngx_feira_wsmsg_peer_t *peer, const char *type,
    json_t *msg)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_feira_wsmsg_ntypes; i++) {
        if (ngx_strcmp(ngx_feira_wsmsg_types[i].type, type) == 0) {

            if (peer->nops >= NGX_FEIRA_WSMSG_INFLIGHT) {
                ngx_feira_wsmsg_error(peer, "rate_limited",
                                      "too many messages in flight on "
                                      "this connection");
                return NGX_OK;
            }

            ngx_feira_wsmsg_types[i].handler(peer, type, msg);
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


void
ngx_feira_wsmsg_send(ngx_feira_wsmsg_peer_t *peer, json_t *json)
{
    peer->send(peer, json);
}


void
ngx_feira_wsmsg_error(ngx_feira_wsmsg_peer_t *peer, const char *code,
    const char *detail)
{
    json_t  *json;

    json = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code,
                     "detail", detail);

    peer->send(peer, json);
}


void
ngx_feira_wsmsg_op_start(ngx_feira_wsmsg_peer_t *peer,
    ngx_feira_wsmsg_op_t *op)
{
    op->peer = peer;
    ngx_queue_insert_tail(&peer->ops, &op->queue);
    peer->nops++;
}


/* the op is over: its peer (if still there) forgets it */

void
ngx_feira_wsmsg_op_done(ngx_feira_wsmsg_op_t *op)
{
    if (op->peer) {
        ngx_queue_remove(&op->queue);
        op->peer->nops--;
        op->peer = NULL;
    }
}


/* the connection is closing: its ops in flight finish without it */

void
ngx_feira_wsmsg_peer_gone(ngx_feira_wsmsg_peer_t *peer)
{
    ngx_queue_t           *q;
    ngx_feira_wsmsg_op_t  *op;

    while (!ngx_queue_empty(&peer->ops)) {
        q = ngx_queue_head(&peer->ops);
        op = ngx_queue_data(q, ngx_feira_wsmsg_op_t, queue);
        ngx_queue_remove(q);
        op->peer = NULL;
    }

    peer->nops = 0;
}
