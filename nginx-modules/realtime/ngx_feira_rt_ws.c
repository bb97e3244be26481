/*
 * A WebSocket connection after the handshake: frames read into one buffer
 * per worker (nothing is kept between reads but a fragmented message),
 * a bounded queue of outgoing frames shared between connections, the
 * ping/pong and close timers.
 *
 * Frames are queued, and the queue is written by the connection's posted
 * write event: everything an event loop iteration queued for a connection
 * (a burst of events, an ack and its replay) goes in one writev().
 *
 * Only event handlers tear a connection down (finalize); code that runs
 * for many connections at once (the fan-out, Redis replies) marks it and
 * posts its write event instead (abort).
 */

#include "ngx_http_feira_realtime_module.h"


#define NGX_FEIRA_WS_READ_BUF     16384
#define NGX_FEIRA_WS_READ_FAIR    65536
#define NGX_FEIRA_WS_IOVS         64
#define NGX_FEIRA_WS_FREE_MAX     4096


static void ngx_feira_rt_ws_read_handler(ngx_event_t *rev);
static void ngx_feira_rt_ws_write_handler(ngx_event_t *wev);
static void ngx_feira_rt_ws_timer(ngx_feira_ws_t *ws);
static void ngx_feira_rt_ws_input(ngx_feira_ws_t *ws, u_char *data,
    size_t len);
static void ngx_feira_rt_ws_data(ngx_feira_ws_t *ws,
    ngx_feira_ws_event_t *ev);
static void ngx_feira_rt_ws_control(ngx_feira_ws_t *ws,
    ngx_feira_ws_event_t *ev);
static void ngx_feira_rt_ws_dispatch(ngx_feira_ws_t *ws, int opcode,
    u_char *data, size_t len);
static void ngx_feira_rt_ws_queue(ngx_feira_ws_t *ws,
    ngx_feira_ws_msg_t *msg);
static void ngx_feira_rt_ws_out_free(ngx_feira_ws_out_t *out);
static void ngx_feira_rt_ws_frame(ngx_feira_ws_t *ws, int opcode,
    const u_char *payload, size_t len);
static ngx_int_t ngx_feira_rt_ws_flush(ngx_feira_ws_t *ws);
static ngx_int_t ngx_feira_rt_ws_done(ngx_feira_ws_t *ws);
static void ngx_feira_rt_ws_goodbye(ngx_feira_ws_t *ws);
static void ngx_feira_rt_ws_finalize(ngx_feira_ws_t *ws);
static ngx_int_t ngx_feira_rt_ws_user_connected(ngx_str_t *id);


/* per-worker state: the connections, and the buffer every read uses */
static ngx_queue_t          ngx_feira_rt_ws_list;
static ngx_uint_t           ngx_feira_rt_ws_list_ready;
static u_char               ngx_feira_rt_ws_buf[NGX_FEIRA_WS_READ_BUF];

/* queue entries are recycled: a fan-out needs one per connection */
static ngx_feira_ws_out_t  *ngx_feira_rt_ws_free;
static ngx_uint_t           ngx_feira_rt_ws_nfree;


ngx_queue_t *
ngx_feira_rt_ws_all(void)
{
    if (!ngx_feira_rt_ws_list_ready) {
        ngx_queue_init(&ngx_feira_rt_ws_list);
        ngx_feira_rt_ws_list_ready = 1;
    }

    return &ngx_feira_rt_ws_list;
}


ngx_int_t
ngx_feira_rt_ws_start(ngx_connection_t *c,
    ngx_http_feira_realtime_loc_conf_t *conf, ngx_feira_identity_t *id,
    u_char *pipelined, size_t len)
{
    ngx_feira_ws_t  *ws;

    ws = ngx_pcalloc(c->pool, sizeof(ngx_feira_ws_t));
    if (ws == NULL) {
        return NGX_ERROR;
    }

    ws->connection = c;
    ws->conf = conf;
    ws->identity = *id;
    ws->out_last = &ws->out;
    ws->last_read = ngx_current_msec;
    ws->provider = (id->role.len == 8
                    && ngx_strncmp(id->role.data, "provider", 8) == 0);

    ngx_feira_ws_parser_init(&ws->parser, conf->max_message);
    ngx_queue_init(&ws->subs);
    ngx_queue_insert_tail(ngx_feira_rt_ws_all(), &ws->queue);
    ngx_feira_wsmsg_peer_init(&ws->peer, &ws->identity, c->log,
                              ngx_feira_rt_ws_peer_send, ws);

    c->data = ws;
    c->read->handler = ngx_feira_rt_ws_read_handler;
    c->write->handler = ngx_feira_rt_ws_write_handler;
    c->log->action = "serving a WebSocket";

    /* a graceful shutdown calls the read handler with c->close set */
    c->idle = 1;

    /* frames are small and must not wait for Nagle */
    (void) ngx_tcp_nodelay(c);

    ngx_add_timer(c->read, conf->ping_interval);

    ngx_feira_stats_ws_open();

    /* a provider with an open WebSocket counts as online */
    if (ws->provider) {
        (void) ngx_feira_presence_seen(&ws->identity.id, 1);
    }

    /* anyone with one is online for chat (recipient_online) */
    (void) ngx_feira_presence_online(&ws->identity.id, 1);

    if (len) {
        ngx_feira_rt_ws_input(ws, pipelined, len);
    }

    if (ws->aborted || ngx_feira_rt_ws_done(ws)) {
        ngx_post_event(c->write, &ngx_posted_events);
        return NGX_OK;
    }

    if (c->read->ready) {
        ngx_post_event(c->read, &ngx_posted_events);

    } else if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_feira_rt_ws_abort(ws);
    }

    return NGX_OK;
}


static void
ngx_feira_rt_ws_read_handler(ngx_event_t *rev)
{
    size_t             total;
    ssize_t            n;
    ngx_feira_ws_t    *ws;
    ngx_connection_t  *c;

    c = rev->data;
    ws = c->data;

    if (c->close) {
        ngx_feira_rt_ws_goodbye(ws);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;
        ngx_feira_rt_ws_timer(ws);
        return;
    }

    if (ws->aborted) {
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    for (total = 0; /* void */; total += n) {

        if (total >= NGX_FEIRA_WS_READ_FAIR) {
            /* let the other connections of the worker in */
            ngx_post_event(rev, &ngx_posted_events);
            return;
        }

        n = c->recv(c, ngx_feira_rt_ws_buf, NGX_FEIRA_WS_READ_BUF);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            /* the peer is gone; after its close frame that is normal */
            if (!ws->close_received) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "feira: realtime: client closed the "
                              "connection without a close frame");
            }

            ngx_feira_rt_ws_finalize(ws);
            return;
        }

        ws->last_read = ngx_current_msec;
        ws->ping_sent = 0;

        ngx_feira_rt_ws_input(ws, ngx_feira_rt_ws_buf, (size_t) n);

        if (ws->aborted) {
            ngx_feira_rt_ws_finalize(ws);
            return;
        }

        if (ngx_feira_rt_ws_done(ws)) {
            ngx_feira_rt_ws_finalize(ws);
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_feira_rt_ws_finalize(ws);
    }
}


/* the read timer: pings, pongs that do not come, the close handshake */

static void
ngx_feira_rt_ws_timer(ngx_feira_ws_t *ws)
{
    ngx_msec_t         idle;
    ngx_connection_t  *c;

    c = ws->connection;

    if (ws->close_sent) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "feira: realtime: no close frame came back");
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    if (ws->ping_sent) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "feira: realtime: client silent after a ping, "
                      "dropped");
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    idle = ngx_current_msec - ws->last_read;

    if (idle < ws->conf->ping_interval) {
        ngx_add_timer(c->read, ws->conf->ping_interval - idle);
        return;
    }

    ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_PING, (u_char *) "feira", 5);
    ws->ping_sent = 1;

    if (ws->aborted) {
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    ngx_add_timer(c->read, ws->conf->ping_timeout);
}


static void
ngx_feira_rt_ws_input(ngx_feira_ws_t *ws, u_char *data, size_t len)
{
    int                    rc;
    u_char                *pos, *last;
    ngx_feira_ws_event_t   ev;

    pos = data;
    last = data + len;

    while (!ws->failing && !ws->close_received && !ws->aborted) {

        rc = ngx_feira_ws_parse(&ws->parser, &pos, last, &ev);

        switch (rc) {

        case NGX_FEIRA_WS_AGAIN:
            return;

        case NGX_FEIRA_WS_FAIL:
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "feira: realtime: closing with %ud: %s",
                          ev.code, ev.reason);

            ngx_feira_rt_ws_close(ws, ev.code, ev.reason);
            ws->failing = 1;
            return;

        case NGX_FEIRA_WS_CONTROL:
            ngx_feira_rt_ws_control(ws, &ev);
            break;

        default: /* NGX_FEIRA_WS_DATA */
            ngx_feira_rt_ws_data(ws, &ev);
            break;
        }
    }
}


static void
ngx_feira_rt_ws_data(ngx_feira_ws_t *ws, ngx_feira_ws_event_t *ev)
{
    u_char  *p;
    size_t   size;

    if (ws->close_sent) {
        /* after our close frame, data is discarded */
        return;
    }

    if (ev->first && ev->last) {
        /* the whole message is in the read buffer */
        ngx_feira_rt_ws_dispatch(ws, ev->opcode, (u_char *) ev->data,
                                 ev->len);
        return;
    }

    if (ws->msg_len + ev->len > ws->msg_size) {
        size = ngx_max(ws->msg_size * 2, ws->msg_len + ev->len);
        size = ngx_max(size, 1024);
        size = ngx_min(size, ws->conf->max_message);

        p = ngx_alloc(size, ws->connection->log);
        if (p == NULL) {
            ngx_feira_rt_ws_close(ws, NGX_FEIRA_WS_CLOSE_INTERNAL,
                                  "out of memory");
            ws->failing = 1;
            return;
        }

        if (ws->msg) {
            ngx_memcpy(p, ws->msg, ws->msg_len);
            ngx_free(ws->msg);
        }

        ws->msg = p;
        ws->msg_size = size;
    }

    if (ev->len) {
        ngx_memcpy(ws->msg + ws->msg_len, ev->data, ev->len);
        ws->msg_len += ev->len;
    }

    if (!ev->last) {
        return;
    }

    p = ws->msg;
    size = ws->msg_len;

    /* the buffer is freed between messages: idle costs nothing */
    ws->msg = NULL;
    ws->msg_len = 0;
    ws->msg_size = 0;

    ngx_feira_rt_ws_dispatch(ws, ev->opcode, p ? p : (u_char *) "", size);

    ngx_free(p);
}


static void
ngx_feira_rt_ws_control(ngx_feira_ws_t *ws, ngx_feira_ws_event_t *ev)
{
    u_char  payload[2];

    switch (ev->opcode) {

    case NGX_FEIRA_WS_OP_PING:
        if (!ws->close_sent) {
            ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_PONG, ev->data,
                                  ev->len);
        }
        return;

    case NGX_FEIRA_WS_OP_PONG:
        return;

    default: /* NGX_FEIRA_WS_OP_CLOSE */
        ws->close_received = 1;

        if (ws->close_sent) {
            return;
        }

        /* the echo carries the status code received, if any */
        if (ev->code == NGX_FEIRA_WS_CLOSE_NO_STATUS) {
            ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_CLOSE, NULL, 0);

        } else {
            payload[0] = (u_char) (ev->code >> 8);
            payload[1] = (u_char) ev->code;
            ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_CLOSE, payload, 2);
        }

        ws->close_sent = 1;
        return;
    }
}


static void
ngx_feira_rt_ws_dispatch(ngx_feira_ws_t *ws, int opcode, u_char *data,
    size_t len)
{
    ngx_feira_stats_ws_message_in();

    if (opcode == NGX_FEIRA_WS_OP_BINARY) {
        ngx_feira_rt_ws_close(ws, NGX_FEIRA_WS_CLOSE_DATA_TYPE,
                              "binary messages are not accepted");
        ws->failing = 1;
        return;
    }

    ngx_feira_rt_client_message(ws, data, len);
}


ngx_feira_ws_msg_t *
ngx_feira_rt_ws_msg(int opcode, size_t len, u_char **payload)
{
    size_t               hdr;
    ngx_feira_ws_msg_t  *msg;

    hdr = ngx_feira_ws_header_size(len);

    msg = ngx_alloc(offsetof(ngx_feira_ws_msg_t, data) + hdr + len,
                    ngx_cycle->log);
    if (msg == NULL) {
        return NULL;
    }

    msg->refs = 1;
    msg->len = hdr + len;

    ngx_feira_ws_header(msg->data, opcode, len);

    *payload = msg->data + hdr;

    return msg;
}


void
ngx_feira_rt_ws_msg_release(ngx_feira_ws_msg_t *msg)
{
    if (--msg->refs == 0) {
        ngx_free(msg);
    }
}


void
ngx_feira_rt_ws_send(ngx_feira_ws_t *ws, ngx_feira_ws_msg_t *msg)
{
    if (ws->close_sent || ws->aborted) {
        return;
    }

    ngx_feira_stats_ws_message_out();
    ngx_feira_rt_ws_queue(ws, msg);
}


/*
 * Queued, and written by the posted write event; a queue over
 * feira_realtime_send_queue bytes drops the connection.
 */

static void
ngx_feira_rt_ws_queue(ngx_feira_ws_t *ws, ngx_feira_ws_msg_t *msg)
{
    ngx_connection_t    *c;
    ngx_feira_ws_out_t  *out;

    c = ws->connection;

    if (ws->out_bytes + msg->len > ws->conf->send_queue) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "feira: realtime: client reads too slowly, "
                      "%uz bytes queued, dropped", ws->out_bytes);
        ngx_feira_rt_ws_abort(ws);
        return;
    }

    out = ngx_feira_rt_ws_free;

    if (out) {
        ngx_feira_rt_ws_free = out->next;
        ngx_feira_rt_ws_nfree--;

    } else {
        out = ngx_alloc(sizeof(ngx_feira_ws_out_t), c->log);
        if (out == NULL) {
            ngx_feira_rt_ws_abort(ws);
            return;
        }
    }

    msg->refs++;

    out->next = NULL;
    out->msg = msg;
    out->sent = 0;

    *ws->out_last = out;
    ws->out_last = &out->next;
    ws->out_bytes += msg->len;

    if (c->write->ready && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


static void
ngx_feira_rt_ws_out_free(ngx_feira_ws_out_t *out)
{
    ngx_feira_rt_ws_msg_release(out->msg);

    if (ngx_feira_rt_ws_nfree < NGX_FEIRA_WS_FREE_MAX) {
        out->next = ngx_feira_rt_ws_free;
        ngx_feira_rt_ws_free = out;
        ngx_feira_rt_ws_nfree++;
        return;
    }

    ngx_free(out);
}


static void
ngx_feira_rt_ws_frame(ngx_feira_ws_t *ws, int opcode, const u_char *payload,
    size_t len)
{
    u_char              *p;
    ngx_feira_ws_msg_t  *msg;

    msg = ngx_feira_rt_ws_msg(opcode, len, &p);
    if (msg == NULL) {
        ngx_feira_rt_ws_abort(ws);
        return;
    }

    if (len) {
        ngx_memcpy(p, payload, len);
    }

    ngx_feira_rt_ws_queue(ws, msg);
    ngx_feira_rt_ws_msg_release(msg);
}


void
ngx_feira_rt_ws_send_json(ngx_feira_ws_t *ws, json_t *json)
{
    char  *text;

    if (json == NULL) {
        ngx_feira_rt_ws_abort(ws);
        return;
    }

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        ngx_feira_rt_ws_abort(ws);
        return;
    }

    if (!ws->close_sent && !ws->aborted) {
        ngx_feira_stats_ws_message_out();
        ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_TEXT, (u_char *) text,
                              ngx_strlen(text));
    }

    free(text);
}


/* the send of a peer (ngx_feira_wsmsg.c): frames from other modules */

void
ngx_feira_rt_ws_peer_send(ngx_feira_wsmsg_peer_t *peer, json_t *json)
{
    ngx_feira_rt_ws_send_json(peer->data, json);
}


/* another connection of this worker has the user still */

static ngx_int_t
ngx_feira_rt_ws_user_connected(ngx_str_t *id)
{
    ngx_queue_t     *q, *list;
    ngx_feira_ws_t  *ws;

    list = ngx_feira_rt_ws_all();

    for (q = ngx_queue_head(list);
         q != ngx_queue_sentinel(list);
         q = ngx_queue_next(q))
    {
        ws = ngx_queue_data(q, ngx_feira_ws_t, queue);

        if (ws->identity.id.len == id->len
            && ngx_strncmp(ws->identity.id.data, id->data, id->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_feira_rt_ws_error(ngx_feira_ws_t *ws, const char *code,
    const char *detail, ngx_str_t *channel)
{
    json_t  *json;

    json = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code,
                     "detail", detail);

    if (json && channel) {
        json_object_set_new(json, "channel",
                            json_stringn((char *) channel->data,
                                         channel->len));
    }

    ngx_feira_rt_ws_send_json(ws, json);
}


/* the close handshake from our side; the client has close_timeout */

void
ngx_feira_rt_ws_close(ngx_feira_ws_t *ws, unsigned code, const char *reason)
{
    size_t             len;
    ngx_connection_t  *c;
    u_char             payload[NGX_FEIRA_WS_MAX_CONTROL];

    if (ws->close_sent || ws->aborted) {
        return;
    }

    c = ws->connection;

    payload[0] = (u_char) (code >> 8);
    payload[1] = (u_char) code;
    len = ngx_min(ngx_strlen(reason), sizeof(payload) - 2);
    ngx_memcpy(payload + 2, reason, len);

    ngx_feira_rt_ws_frame(ws, NGX_FEIRA_WS_OP_CLOSE, payload, len + 2);
    ws->close_sent = 1;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_add_timer(c->read, ws->conf->close_timeout);

    /* the flush, and the end once it is done, belong to the write event */
    ngx_post_event(c->write, &ngx_posted_events);
}


void
ngx_feira_rt_ws_abort(ngx_feira_ws_t *ws)
{
    if (ws->aborted) {
        return;
    }

    ws->aborted = 1;
    ngx_post_event(ws->connection->write, &ngx_posted_events);
}


static void
ngx_feira_rt_ws_write_handler(ngx_event_t *wev)
{
    ngx_feira_ws_t    *ws;
    ngx_connection_t  *c;

    c = wev->data;
    ws = c->data;

    if (ws->aborted) {
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "feira: realtime: client reads nothing, dropped");
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    if (ngx_feira_rt_ws_flush(ws) == NGX_ERROR) {
        ngx_feira_rt_ws_finalize(ws);
        return;
    }

    if (ws->out) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, ws->conf->send_timeout);
        }

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_feira_rt_ws_finalize(ws);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ngx_feira_rt_ws_done(ws)) {
        ngx_feira_rt_ws_finalize(ws);
    }
}


/* the queue, up to NGX_FEIRA_WS_IOVS frames per writev() (or SSL) */

static ngx_int_t
ngx_feira_rt_ws_flush(ngx_feira_ws_t *ws)
{
    off_t                sent;
    size_t               n, left;
    ngx_uint_t           i;
    ngx_chain_t         *cl;
    ngx_connection_t    *c;
    ngx_feira_ws_out_t  *out;
    ngx_buf_t            bufs[NGX_FEIRA_WS_IOVS];
    ngx_chain_t          chain[NGX_FEIRA_WS_IOVS];

    c = ws->connection;

    while (ws->out) {

        if (!c->write->ready) {
            return NGX_AGAIN;
        }

        for (i = 0, out = ws->out;
             out && i < NGX_FEIRA_WS_IOVS;
             out = out->next, i++)
        {
            ngx_memzero(&bufs[i], sizeof(ngx_buf_t));
            bufs[i].start = out->msg->data;
            bufs[i].pos = out->msg->data + out->sent;
            bufs[i].last = out->msg->data + out->msg->len;
            bufs[i].end = bufs[i].last;
            bufs[i].memory = 1;

            chain[i].buf = &bufs[i];
            chain[i].next = NULL;

            if (i) {
                chain[i - 1].next = &chain[i];
            }
        }

        sent = c->sent;

        cl = c->send_chain(c, chain, 0);

        if (cl == NGX_CHAIN_ERROR) {
            return NGX_ERROR;
        }

        /* what went out, frame by frame */

        n = (size_t) (c->sent - sent);
        ws->out_bytes -= n;

        while (n && ws->out) {
            out = ws->out;
            left = out->msg->len - out->sent;

            if (n < left) {
                out->sent += n;
                break;
            }

            n -= left;
            ws->out = out->next;
            ngx_feira_rt_ws_out_free(out);
        }

        if (ws->out == NULL) {
            ws->out_last = &ws->out;
        }

        if (cl) {
            return NGX_AGAIN;
        }
    }

    return NGX_OK;
}


/* the close handshake is over (or failed) and everything is sent */

static ngx_int_t
ngx_feira_rt_ws_done(ngx_feira_ws_t *ws)
{
    return ws->out == NULL
           && (ws->failing || (ws->close_received && ws->close_sent));
}


/* nginx is shutting down: 1001, sent if it fits, and gone */

static void
ngx_feira_rt_ws_goodbye(ngx_feira_ws_t *ws)
{
    if (!ws->close_sent && !ws->aborted) {
        ngx_feira_rt_ws_close(ws, NGX_FEIRA_WS_CLOSE_GOING_AWAY,
                              "server shutting down");
        (void) ngx_feira_rt_ws_flush(ws);
    }

    ngx_feira_rt_ws_finalize(ws);
}


void
ngx_feira_rt_ws_shutdown(void)
{
    ngx_queue_t     *q, *list;
    ngx_feira_ws_t  *ws;

    list = ngx_feira_rt_ws_all();

    while (!ngx_queue_empty(list)) {
        q = ngx_queue_head(list);
        ws = ngx_queue_data(q, ngx_feira_ws_t, queue);
        ngx_feira_rt_ws_finalize(ws);
    }
}


static void
ngx_feira_rt_ws_finalize(ngx_feira_ws_t *ws)
{
    ngx_connection_t    *c;
    ngx_feira_ws_out_t  *out;

    c = ws->connection;

    ngx_feira_rt_unsubscribe_all(ws);

    if (ws->location) {
        ngx_feira_rt_location_cancel(ws->location);
        ws->location = NULL;
    }

    while (ws->out) {
        out = ws->out;
        ws->out = out->next;
        ngx_feira_rt_ws_out_free(out);
    }

    if (ws->msg) {
        ngx_free(ws->msg);
        ws->msg = NULL;
    }

    /* chat messages in flight finish without this connection */
    ngx_feira_wsmsg_peer_gone(&ws->peer);

    ngx_queue_remove(&ws->queue);

    if (!ngx_feira_rt_ws_user_connected(&ws->identity.id)) {
        (void) ngx_feira_presence_offline(&ws->identity.id);
    }

    /* a close handshake completed both ways, or the connection was lost */
    ngx_feira_stats_ws_close(!(ws->close_sent && ws->close_received));

    c->idle = 0;

    /* frees c->pool, and ws with it */
    ngx_http_close_connection(c);
}
