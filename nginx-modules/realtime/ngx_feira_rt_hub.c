/*
 * The worker's hub: one Redis subscriber connection per worker, SUBSCRIBEd
 * to the channels its connections listen to (counted, so a channel is
 * subscribed once), and the fan-out of each event to them.
 *
 * No event is lost or repeated: every subscription remembers the last
 * sequence number it delivered.  When it starts, after a reconnection, or
 * when a number is skipped, it reads the channel's history from there
 * (ngx_feira_rt_replay) while live events only raise the mark to read up
 * to; it goes live once the history has caught up with that mark.
 *
 * hiredis 0.14 drops out of subscribed mode when the count of
 * subscriptions reaches zero, and aborts on the next reply: a control
 * channel of the worker's own stays subscribed for the connection's life.
 * The worker publishes a heartbeat on it every second; a subscriber
 * connection that stops hearing it (a silent network) is dropped and
 * re-established.
 */

#include "ngx_http_feira_realtime_module.h"


#define NGX_FEIRA_RT_CHAN_NONE          0
#define NGX_FEIRA_RT_CHAN_SUBSCRIBING   1
#define NGX_FEIRA_RT_CHAN_SUBSCRIBED    2
#define NGX_FEIRA_RT_CHAN_UNSUBSCRIBING 3

#define NGX_FEIRA_RT_RETRY              1000
#define NGX_FEIRA_RT_HEARTBEAT          1000
#define NGX_FEIRA_RT_SILENT             5000


typedef struct {
    ngx_feira_rt_sub_t      *sub;        /* NULL once cancelled */
} ngx_feira_rt_replay_op_t;


static void ngx_feira_rt_hub_connected(ngx_feira_redis_t *rc, void *data);
static void ngx_feira_rt_hub_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_feira_rt_hub_lost(void);
static void ngx_feira_rt_hub_subscribed(ngx_feira_rt_chan_t *chan);
static void ngx_feira_rt_hub_unsubscribed(ngx_feira_rt_chan_t *chan);
static void ngx_feira_rt_hub_command(ngx_feira_rt_chan_t *chan,
    ngx_uint_t subscribe);
static void ngx_feira_rt_hub_fanout(ngx_feira_rt_chan_t *chan, int64_t seq,
    ngx_str_t *event);
static void ngx_feira_rt_hub_catchup(ngx_feira_rt_sub_t *sub);
static void ngx_feira_rt_hub_replayed(void *data, ngx_int_t rc,
    int64_t current, redisReply *entries);
static ngx_int_t ngx_feira_rt_hub_deliver(ngx_feira_rt_sub_t *sub,
    int64_t seq, ngx_str_t *event, ngx_feira_ws_msg_t **msg);
static ngx_feira_ws_msg_t *ngx_feira_rt_hub_frame(ngx_str_t *channel,
    int64_t seq, ngx_str_t *event);
static ngx_uint_t ngx_feira_rt_hub_event_kind(ngx_str_t *event,
    u_char *pair);
static ngx_uint_t ngx_feira_rt_hub_hidden(ngx_feira_rt_sub_t *sub,
    ngx_uint_t kind, u_char *pair);
static void ngx_feira_rt_hub_retry(ngx_event_t *ev);
static void ngx_feira_rt_hub_heartbeat(ngx_event_t *ev);
static ngx_feira_rt_chan_t *ngx_feira_rt_hub_find(ngx_str_t *name,
    uint32_t hash);
static void ngx_feira_rt_hub_free(ngx_feira_rt_chan_t *chan);
static void ngx_feira_rt_hub_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


#define NGX_FEIRA_RT_EVENT_OTHER     0
#define NGX_FEIRA_RT_EVENT_LOCATION  1
#define NGX_FEIRA_RT_EVENT_REQUEST   2
#define NGX_FEIRA_RT_EVENT_CHAT      3    /* of one (client, provider) pair */


/* per-worker state: set up in init_process, torn down in exit_process */
static ngx_feira_redis_t   *ngx_feira_rt_sub_conn;
static ngx_rbtree_t         ngx_feira_rt_chans;
static ngx_rbtree_node_t    ngx_feira_rt_sentinel;
static ngx_uint_t           ngx_feira_rt_up;
static ngx_uint_t           ngx_feira_rt_retries;
static ngx_event_t          ngx_feira_rt_retry_ev;
static ngx_event_t          ngx_feira_rt_hb_ev;
static ngx_msec_t           ngx_feira_rt_hb_heard;
static ngx_uint_t           ngx_feira_rt_ctl_ok;
static ngx_str_t            ngx_feira_rt_ctl;
static u_char               ngx_feira_rt_ctl_buf[64];


ngx_int_t
ngx_feira_rt_hub_init(ngx_cycle_t *cycle)
{
    ngx_http_feira_main_conf_t  *fmcf;

    fmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_feira_common_module);

    ngx_rbtree_init(&ngx_feira_rt_chans, &ngx_feira_rt_sentinel,
                    ngx_feira_rt_hub_insert);

    ngx_feira_rt_up = 0;
    ngx_feira_rt_retries = 0;

    /* outside the feira:rt:<channel> names clients can ask for */
    ngx_feira_rt_ctl.data = ngx_feira_rt_ctl_buf;
    ngx_feira_rt_ctl.len = ngx_snprintf(ngx_feira_rt_ctl_buf,
                                        sizeof(ngx_feira_rt_ctl_buf),
                                        "feira:rtctl:%P:%08xD", ngx_pid,
                                        (uint32_t) ngx_random())
                           - ngx_feira_rt_ctl_buf;

    ngx_feira_rt_retry_ev.handler = ngx_feira_rt_hub_retry;
    ngx_feira_rt_retry_ev.log = cycle->log;
    ngx_feira_rt_retry_ev.cancelable = 1;

    ngx_feira_rt_ctl_ok = 0;
    ngx_feira_rt_hb_ev.handler = ngx_feira_rt_hub_heartbeat;
    ngx_feira_rt_hb_ev.log = cycle->log;
    ngx_feira_rt_hb_ev.cancelable = 1;
    ngx_add_timer(&ngx_feira_rt_hb_ev, NGX_FEIRA_RT_HEARTBEAT);

    ngx_feira_rt_sub_conn = ngx_feira_redis_create(cycle, fmcf,
                                                   ngx_feira_rt_hub_connected,
                                                   NULL,
                                                   NGX_FEIRA_REDIS_SUBSCRIBER);

    return ngx_feira_rt_sub_conn ? NGX_OK : NGX_ERROR;
}


void
ngx_feira_rt_hub_exit(void)
{
    ngx_rbtree_node_t    *node;
    ngx_feira_rt_chan_t  *chan;

    if (ngx_feira_rt_retry_ev.timer_set) {
        ngx_del_timer(&ngx_feira_rt_retry_ev);
    }

    if (ngx_feira_rt_hb_ev.timer_set) {
        ngx_del_timer(&ngx_feira_rt_hb_ev);
    }

    if (ngx_feira_rt_sub_conn) {
        ngx_feira_redis_destroy(ngx_feira_rt_sub_conn);
        ngx_feira_rt_sub_conn = NULL;
    }

    /* the connections are gone: only empty channels are left */
    while (ngx_feira_rt_chans.root != ngx_feira_rt_chans.sentinel) {
        node = ngx_rbtree_min(ngx_feira_rt_chans.root,
                              ngx_feira_rt_chans.sentinel);
        chan = (ngx_feira_rt_chan_t *) node;
        ngx_feira_rt_hub_free(chan);
    }
}


/* (re)connected: the control channel, then every channel in use */

static void
ngx_feira_rt_hub_connected(ngx_feira_redis_t *rc, void *data)
{
    ngx_rbtree_node_t    *node, *root, *sentinel;
    ngx_feira_rt_chan_t  *chan;
    const char           *argv[2];
    size_t                argvlen[2];

    ngx_feira_rt_hub_lost();

    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    argv[1] = (char *) ngx_feira_rt_ctl.data;
    argvlen[1] = ngx_feira_rt_ctl.len;

    if (ngx_feira_redis_commandargv(rc, ngx_feira_rt_hub_reply, NULL, 2,
                                    argv, argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: realtime: cannot subscribe");
        return;
    }

    ngx_feira_rt_up = 1;

    root = ngx_feira_rt_chans.root;
    sentinel = ngx_feira_rt_chans.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_feira_rt_chans, node))
    {
        chan = (ngx_feira_rt_chan_t *) node;

        if (chan->nsubs) {
            ngx_feira_rt_hub_command(chan, 1);
        }
    }
}


/* the subscriber connection is gone: everything waits for a SUBSCRIBE */

static void
ngx_feira_rt_hub_lost(void)
{
    ngx_queue_t          *q;
    ngx_rbtree_node_t    *node, *next, *root, *sentinel;
    ngx_feira_rt_sub_t   *sub;
    ngx_feira_rt_chan_t  *chan;

    ngx_feira_rt_up = 0;
    ngx_feira_rt_ctl_ok = 0;

    root = ngx_feira_rt_chans.root;
    sentinel = ngx_feira_rt_chans.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel); node; node = next) {
        next = ngx_rbtree_next(&ngx_feira_rt_chans, node);
        chan = (ngx_feira_rt_chan_t *) node;

        chan->state = NGX_FEIRA_RT_CHAN_NONE;

        if (chan->nsubs == 0) {
            ngx_feira_rt_hub_free(chan);
            continue;
        }

        for (q = ngx_queue_head(&chan->subs);
             q != ngx_queue_sentinel(&chan->subs);
             q = ngx_queue_next(q))
        {
            sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_chan);

            ngx_feira_rt_hub_cancel(sub);
            sub->state = NGX_FEIRA_RT_SUB_WAITING;
        }
    }
}


/* every reply of the subscriber connection: confirmations and messages */

static void
ngx_feira_rt_hub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    int64_t               seq;
    uint32_t              hash;
    ngx_str_t             kind, pubsub, name, payload, event;
    redisReply           *rr = reply;
    ngx_feira_rt_chan_t  *chan;

    if (rr == NULL) {
        /* once per channel when the connection goes */
        if (ngx_feira_rt_up) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: realtime: subscriber connection lost");
            ngx_feira_rt_hub_lost();
        }

        return;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 3
        || rr->element[0]->type != REDIS_REPLY_STRING
        || rr->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind.data = (u_char *) rr->element[0]->str;
    kind.len = rr->element[0]->len;
    pubsub.data = (u_char *) rr->element[1]->str;
    pubsub.len = rr->element[1]->len;

    if (pubsub.len == ngx_feira_rt_ctl.len
        && ngx_strncmp(pubsub.data, ngx_feira_rt_ctl.data, pubsub.len) == 0)
    {
        /* the control channel: subscribed, or a heartbeat */
        ngx_feira_rt_ctl_ok = 1;
        ngx_feira_rt_hb_heard = ngx_current_msec;
        return;
    }

    if (ngx_feira_rt_subject(&pubsub, &name) != NGX_OK) {
        return;
    }

    hash = ngx_crc32_short(name.data, name.len);
    chan = ngx_feira_rt_hub_find(&name, hash);

    if (chan == NULL) {
        return;
    }

    if (kind.len == 7 && ngx_strncmp(kind.data, "message", 7) == 0) {

        if (rr->element[2]->type != REDIS_REPLY_STRING
            || chan->state != NGX_FEIRA_RT_CHAN_SUBSCRIBED)
        {
            return;
        }

        payload.data = (u_char *) rr->element[2]->str;
        payload.len = rr->element[2]->len;

        if (ngx_feira_rt_message(&payload, &seq, &event) != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "feira: realtime: malformed event on \"%V\"",
                          &name);
            return;
        }

        ngx_feira_rt_hub_fanout(chan, seq, &event);
        return;
    }

    if (kind.len == 9 && ngx_strncmp(kind.data, "subscribe", 9) == 0) {
        ngx_feira_rt_hub_subscribed(chan);
        return;
    }

    if (kind.len == 11 && ngx_strncmp(kind.data, "unsubscribe", 11) == 0) {
        ngx_feira_rt_hub_unsubscribed(chan);
    }
}


static void
ngx_feira_rt_hub_subscribed(ngx_feira_rt_chan_t *chan)
{
    ngx_queue_t         *q;
    ngx_feira_rt_sub_t  *sub;

    if (chan->state != NGX_FEIRA_RT_CHAN_SUBSCRIBING) {
        return;
    }

    chan->state = NGX_FEIRA_RT_CHAN_SUBSCRIBED;

    if (chan->nsubs == 0) {
        /* everyone left while the SUBSCRIBE was on its way */
        ngx_feira_rt_hub_command(chan, 0);
        return;
    }

    /* from now on nothing published is missed: read what was before */

    for (q = ngx_queue_head(&chan->subs);
         q != ngx_queue_sentinel(&chan->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_chan);

        if (sub->state == NGX_FEIRA_RT_SUB_WAITING) {
            ngx_feira_rt_hub_catchup(sub);
        }
    }
}


static void
ngx_feira_rt_hub_unsubscribed(ngx_feira_rt_chan_t *chan)
{
    if (chan->state != NGX_FEIRA_RT_CHAN_UNSUBSCRIBING) {
        return;
    }

    chan->state = NGX_FEIRA_RT_CHAN_NONE;

    if (chan->nsubs) {
        /* someone came back meanwhile */
        ngx_feira_rt_hub_command(chan, 1);
        return;
    }

    ngx_feira_rt_hub_free(chan);
}


static void
ngx_feira_rt_hub_command(ngx_feira_rt_chan_t *chan, ngx_uint_t subscribe)
{
    size_t      argvlen[2];
    const char *argv[2];
    u_char      pubsub[NGX_FEIRA_RT_CHANNEL_MAX + 16];

    argv[0] = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    argvlen[0] = ngx_strlen(argv[0]);
    argv[1] = (char *) pubsub;
    argvlen[1] = ngx_snprintf(pubsub, sizeof(pubsub), "%s%V",
                              NGX_FEIRA_RT_PUBSUB_PREFIX, &chan->name)
                 - pubsub;

    if (!ngx_feira_rt_up
        || ngx_feira_redis_commandargv(ngx_feira_rt_sub_conn,
                                       ngx_feira_rt_hub_reply, NULL, 2,
                                       argv, argvlen)
           != NGX_OK)
    {
        /* the next connection subscribes what is in use */
        chan->state = NGX_FEIRA_RT_CHAN_NONE;
        return;
    }

    chan->state = subscribe ? NGX_FEIRA_RT_CHAN_SUBSCRIBING
                            : NGX_FEIRA_RT_CHAN_UNSUBSCRIBING;
}


ngx_int_t
ngx_feira_rt_hub_attach(ngx_feira_rt_sub_t *sub)
{
    uint32_t              hash;
    ngx_feira_rt_chan_t  *chan;

    hash = ngx_crc32_short(sub->name.data, sub->name.len);
    chan = ngx_feira_rt_hub_find(&sub->name, hash);

    if (chan == NULL) {
        chan = ngx_calloc(sizeof(ngx_feira_rt_chan_t) + sub->name.len,
                          ngx_cycle->log);
        if (chan == NULL) {
            return NGX_ERROR;
        }

        chan->node.key = hash;
        chan->name.data = chan->data;
        chan->name.len = sub->name.len;
        ngx_memcpy(chan->data, sub->name.data, sub->name.len);
        ngx_queue_init(&chan->subs);
        chan->state = NGX_FEIRA_RT_CHAN_NONE;

        ngx_rbtree_insert(&ngx_feira_rt_chans, &chan->node);
    }

    ngx_queue_insert_tail(&chan->subs, &sub->in_chan);
    chan->nsubs++;

    if (sub->kind == NGX_FEIRA_RT_KIND_OFFERED) {
        chan->noffered++;
    }

    sub->chan = chan;
    sub->state = NGX_FEIRA_RT_SUB_WAITING;

    switch (chan->state) {

    case NGX_FEIRA_RT_CHAN_SUBSCRIBED:
        ngx_feira_rt_hub_catchup(sub);
        break;

    case NGX_FEIRA_RT_CHAN_NONE:
        ngx_feira_rt_hub_command(chan, 1);
        break;

    default:
        /* the confirmation, or the UNSUBSCRIBE's answer, moves it on */
        break;
    }

    return NGX_OK;
}


void
ngx_feira_rt_hub_detach(ngx_feira_rt_sub_t *sub)
{
    ngx_feira_rt_chan_t  *chan;

    chan = sub->chan;

    ngx_feira_rt_hub_cancel(sub);

    ngx_queue_remove(&sub->in_chan);
    chan->nsubs--;

    if (sub->kind == NGX_FEIRA_RT_KIND_OFFERED) {
        chan->noffered--;
    }

    sub->chan = NULL;

    if (chan->nsubs) {
        return;
    }

    switch (chan->state) {

    case NGX_FEIRA_RT_CHAN_SUBSCRIBED:
        ngx_feira_rt_hub_command(chan, 0);

        if (chan->state == NGX_FEIRA_RT_CHAN_NONE) {
            ngx_feira_rt_hub_free(chan);
        }

        break;

    case NGX_FEIRA_RT_CHAN_NONE:
        ngx_feira_rt_hub_free(chan);
        break;

    default:
        /* decided when the pending answer comes */
        break;
    }
}


void
ngx_feira_rt_hub_cancel(ngx_feira_rt_sub_t *sub)
{
    if (sub->replay) {
        *sub->replay = NULL;
        sub->replay = NULL;
    }

    if (sub->state == NGX_FEIRA_RT_SUB_RETRY) {
        ngx_feira_rt_retries--;
        sub->state = NGX_FEIRA_RT_SUB_WAITING;
    }
}


/* a live event: to each subscription that is next in line for it */

static void
ngx_feira_rt_hub_fanout(ngx_feira_rt_chan_t *chan, int64_t seq,
    ngx_str_t *event)
{
    ngx_uint_t           kind;
    ngx_queue_t         *q;
    ngx_feira_ws_msg_t  *msg;
    ngx_feira_rt_sub_t  *sub;
    u_char               pair[24];

    msg = NULL;

    /* only offered providers see less: read the type for them alone */
    kind = chan->noffered ? ngx_feira_rt_hub_event_kind(event, pair)
                          : NGX_FEIRA_RT_EVENT_OTHER;

    for (q = ngx_queue_head(&chan->subs);
         q != ngx_queue_sentinel(&chan->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_chan);

        switch (sub->state) {

        case NGX_FEIRA_RT_SUB_CATCHING_UP:
        case NGX_FEIRA_RT_SUB_RETRY:
            if (seq > sub->seen) {
                sub->seen = seq;
            }
            continue;

        case NGX_FEIRA_RT_SUB_LIVE:
            break;

        default:
            continue;
        }

        if (seq <= sub->last) {
            if (seq != 1) {
                continue;
            }

            /* the channel was idle past its TTL and started again */
            sub->last = 0;
        }

        if (seq > sub->last + 1) {
            /* a number was skipped: read it from the history */
            sub->seen = seq;
            ngx_feira_rt_hub_catchup(sub);
            continue;
        }

        if (sub->kind == NGX_FEIRA_RT_KIND_OFFERED) {
            sub->last = seq;

            if (ngx_feira_rt_hub_hidden(sub, kind, pair)) {
                continue;
            }

            if (kind == NGX_FEIRA_RT_EVENT_REQUEST && sub->job == NULL) {
                /* the request moved on: is it still theirs to see? */
                sub->reauth = 1;

                if (ngx_feira_rt_authorize(sub) != NGX_OK) {
                    sub->reauth = 0;
                }
            }
        }

        if (ngx_feira_rt_hub_deliver(sub, seq, event, &msg) != NGX_OK) {
            break;
        }
    }

    if (msg) {
        ngx_feira_rt_ws_msg_release(msg);
    }
}


static void
ngx_feira_rt_hub_catchup(ngx_feira_rt_sub_t *sub)
{
    ngx_int_t                  rc;
    ngx_feira_rt_replay_op_t  *op;

    op = ngx_alloc(sizeof(ngx_feira_rt_replay_op_t), ngx_cycle->log);
    if (op == NULL) {
        goto retry;
    }

    op->sub = sub;

    rc = ngx_feira_rt_replay(&sub->chan->name, sub->last,
                             NGX_FEIRA_RT_REPLAY_BATCH,
                             ngx_feira_rt_hub_replayed, op);
    if (rc != NGX_OK) {
        ngx_free(op);
        goto retry;
    }

    sub->replay = &op->sub;
    sub->state = NGX_FEIRA_RT_SUB_CATCHING_UP;

    return;

retry:

    /* Redis is down: the retry timer asks again */
    sub->state = NGX_FEIRA_RT_SUB_RETRY;
    ngx_feira_rt_retries++;

    if (!ngx_feira_rt_retry_ev.timer_set) {
        ngx_add_timer(&ngx_feira_rt_retry_ev, NGX_FEIRA_RT_RETRY);
    }
}


static void
ngx_feira_rt_hub_replayed(void *data, ngx_int_t rc, int64_t current,
    redisReply *entries)
{
    ngx_feira_rt_replay_op_t  *op = data;

    size_t               i;
    int64_t              seq;
    ngx_str_t            event;
    ngx_feira_ws_t      *ws;
    ngx_feira_ws_msg_t  *msg;
    ngx_feira_rt_sub_t  *sub;
    json_t              *json;
    u_char               detail[96], pair[24];

    sub = op->sub;
    ngx_free(op);

    if (sub == NULL) {
        return;
    }

    sub->replay = NULL;
    ws = sub->ws;

    if (rc != NGX_OK) {
        ngx_feira_rt_hub_cancel(sub);
        sub->state = NGX_FEIRA_RT_SUB_RETRY;
        ngx_feira_rt_retries++;

        if (!ngx_feira_rt_retry_ev.timer_set) {
            ngx_add_timer(&ngx_feira_rt_retry_ev, NGX_FEIRA_RT_RETRY);
        }

        return;
    }

    if (!sub->acked) {
        sub->acked = 1;

        json = json_pack("{s:s, s:s%, s:I}", "type", "subscribed",
                         "channel", (char *) sub->name.data, sub->name.len,
                         "seq", (json_int_t) current);
        ngx_feira_rt_ws_send_json(ws, json);
    }

    if (sub->last < 0) {
        /* no `since`: what comes from now on */
        sub->last = current;

    } else {
        if (current < sub->last) {
            /* the channel expired and started again: all of it is new */
            sub->last = 0;
        }

        for (i = 0; i < entries->elements; i++) {
            if (ngx_feira_rt_entry(entries->element[i], &seq, &event)
                != NGX_OK
                || seq <= sub->last)
            {
                continue;
            }

            if (seq > sub->last + 1) {
                *ngx_snprintf(detail, sizeof(detail) - 1,
                              "events %L to %L are no longer kept",
                              sub->last + 1, seq - 1) = '\0';
                ngx_feira_rt_ws_error(ws, "history_gap", (char *) detail,
                                      &sub->name);
            }

            if (sub->kind == NGX_FEIRA_RT_KIND_OFFERED
                && ngx_feira_rt_hub_hidden(sub,
                       ngx_feira_rt_hub_event_kind(&event, pair), pair))
            {
                sub->last = seq;
                continue;
            }

            msg = NULL;

            if (ngx_feira_rt_hub_deliver(sub, seq, &event, &msg) != NGX_OK) {
                /* out of memory: the client reconnects with its `since` */
                ngx_feira_rt_ws_abort(ws);
                return;
            }

            ngx_feira_rt_ws_msg_release(msg);
        }

        if (entries->elements == NGX_FEIRA_RT_REPLAY_BATCH
            && sub->last < current)
        {
            /* more history than one batch */
            ngx_feira_rt_hub_catchup(sub);
            return;
        }

        if (sub->last < current) {
            *ngx_snprintf(detail, sizeof(detail) - 1,
                          "events %L to %L are no longer kept",
                          sub->last + 1, current) = '\0';
            ngx_feira_rt_ws_error(ws, "history_gap", (char *) detail,
                                  &sub->name);
            sub->last = current;
        }
    }

    if (sub->seen > sub->last) {
        /* live events came meanwhile that the read did not include */
        ngx_feira_rt_hub_catchup(sub);
        return;
    }

    sub->state = NGX_FEIRA_RT_SUB_LIVE;
}


/* one event to one subscription; *msg is built once and shared */

static ngx_int_t
ngx_feira_rt_hub_deliver(ngx_feira_rt_sub_t *sub, int64_t seq,
    ngx_str_t *event, ngx_feira_ws_msg_t **msg)
{
    if (*msg == NULL) {
        *msg = ngx_feira_rt_hub_frame(&sub->chan->name, seq, event);

        if (*msg == NULL) {
            return NGX_ERROR;
        }
    }

    sub->last = seq;

    ngx_feira_rt_ws_send(sub->ws, *msg);

    return NGX_OK;
}


/* {"type":"event","channel":"<channel>","seq":<seq>,"event":<event>} */

static ngx_feira_ws_msg_t *
ngx_feira_rt_hub_frame(ngx_str_t *channel, int64_t seq, ngx_str_t *event)
{
    u_char              *p;
    size_t               len;
    ngx_feira_ws_msg_t  *msg;
    u_char               num[NGX_INT64_LEN];

    /* the frame header depends on the exact length: count it first */
    len = sizeof("{\"type\":\"event\",\"channel\":\"") - 1 + channel->len
          + sizeof("\",\"seq\":") - 1 + (ngx_sprintf(num, "%L", seq) - num)
          + sizeof(",\"event\":") - 1 + event->len + 1;

    msg = ngx_feira_rt_ws_msg(NGX_FEIRA_WS_OP_TEXT, len, &p);
    if (msg == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "{\"type\":\"event\",\"channel\":\"%V\",\"seq\":%L,"
                "\"event\":%V}", channel, seq, event);

    return msg;
}


/*
 * The kind of an event; for chat.* events of feira_chat the pair's
 * provider (data.provider_id, 24 hex) is copied to pair.
 */

static ngx_uint_t
ngx_feira_rt_hub_event_kind(ngx_str_t *event, u_char *pair)
{
    json_t      *json, *provider;
    ngx_uint_t   kind;
    const char  *type;

    json = json_loadb((char *) event->data, event->len, 0, NULL);
    type = json_string_value(json_object_get(json, "type"));

    if (type == NULL) {
        kind = NGX_FEIRA_RT_EVENT_OTHER;

    } else if (ngx_strcmp(type, "provider.location") == 0) {
        kind = NGX_FEIRA_RT_EVENT_LOCATION;

    } else if (ngx_strncmp(type, "request.", 8) == 0) {
        kind = NGX_FEIRA_RT_EVENT_REQUEST;

    } else if (ngx_strncmp(type, "chat.", 5) == 0) {
        kind = NGX_FEIRA_RT_EVENT_CHAT;
        provider = json_object_get(json_object_get(json, "data"),
                                   "provider_id");

        /* no pair named: no offered provider sees it */
        if (json_is_string(provider) && json_string_length(provider) == 24) {
            ngx_memcpy(pair, json_string_value(provider), 24);

        } else {
            ngx_memzero(pair, 24);
        }

    } else {
        kind = NGX_FEIRA_RT_EVENT_OTHER;
    }

    json_decref(json);

    return kind;
}


/*
 * What an offered provider does not see: the provider's location, and the
 * conversations of the client with the other providers.
 */

static ngx_uint_t
ngx_feira_rt_hub_hidden(ngx_feira_rt_sub_t *sub, ngx_uint_t kind,
    u_char *pair)
{
    ngx_str_t  *id;

    if (kind == NGX_FEIRA_RT_EVENT_LOCATION) {
        return 1;
    }

    if (kind != NGX_FEIRA_RT_EVENT_CHAT) {
        return 0;
    }

    id = &sub->ws->identity.id;

    return id->len != 24 || ngx_strncasecmp(id->data, pair, 24) != 0;
}


static void
ngx_feira_rt_hub_retry(ngx_event_t *ev)
{
    ngx_queue_t          *q;
    ngx_rbtree_node_t    *node, *root, *sentinel;
    ngx_feira_rt_sub_t   *sub;
    ngx_feira_rt_chan_t  *chan;

    if (ngx_exiting || ngx_terminate || ngx_quit
        || ngx_feira_rt_retries == 0)
    {
        return;
    }

    root = ngx_feira_rt_chans.root;
    sentinel = ngx_feira_rt_chans.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ngx_feira_rt_chans, node))
    {
        chan = (ngx_feira_rt_chan_t *) node;

        if (chan->state != NGX_FEIRA_RT_CHAN_SUBSCRIBED) {
            continue;
        }

        for (q = ngx_queue_head(&chan->subs);
             q != ngx_queue_sentinel(&chan->subs);
             q = ngx_queue_next(q))
        {
            sub = ngx_queue_data(q, ngx_feira_rt_sub_t, in_chan);

            if (sub->state == NGX_FEIRA_RT_SUB_RETRY) {
                ngx_feira_rt_retries--;
                ngx_feira_rt_hub_catchup(sub);
            }
        }
    }
}


static void
ngx_feira_rt_hub_heartbeat(ngx_event_t *ev)
{
    ngx_feira_redis_t  *main;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    main = ngx_feira_redis_main();

    if (ngx_feira_rt_ctl_ok && ngx_feira_redis_is_up(main)) {

        if (ngx_current_msec - ngx_feira_rt_hb_heard > NGX_FEIRA_RT_SILENT) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "feira: realtime: subscriber connection silent "
                          "for %M ms, reconnecting",
                          ngx_current_msec - ngx_feira_rt_hb_heard);
            ngx_feira_rt_ctl_ok = 0;
            ngx_feira_redis_drop(ngx_feira_rt_sub_conn);

        } else {
            (void) ngx_feira_redis_command(main, NULL, NULL, "PUBLISH %b h",
                                           ngx_feira_rt_ctl.data,
                                           ngx_feira_rt_ctl.len);
        }
    }

    ngx_add_timer(ev, NGX_FEIRA_RT_HEARTBEAT);
}


static ngx_feira_rt_chan_t *
ngx_feira_rt_hub_find(ngx_str_t *name, uint32_t hash)
{
    ngx_int_t             rc;
    ngx_rbtree_node_t    *node, *sentinel;
    ngx_feira_rt_chan_t  *chan;

    node = ngx_feira_rt_chans.root;
    sentinel = ngx_feira_rt_chans.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        chan = (ngx_feira_rt_chan_t *) node;

        rc = ngx_memn2cmp(name->data, chan->name.data, name->len,
                          chan->name.len);

        if (rc == 0) {
            return chan;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_feira_rt_hub_free(ngx_feira_rt_chan_t *chan)
{
    ngx_rbtree_delete(&ngx_feira_rt_chans, &chan->node);
    ngx_free(chan);
}


static void
ngx_feira_rt_hub_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t    **p;
    ngx_feira_rt_chan_t   *c, *ct;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            c = (ngx_feira_rt_chan_t *) node;
            ct = (ngx_feira_rt_chan_t *) temp;

            p = (ngx_memn2cmp(c->name.data, ct->name.data, c->name.len,
                              ct->name.len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
