/*
 * feira_realtime: types shared by the files of the real-time module.
 */

#ifndef _NGX_HTTP_FEIRA_REALTIME_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_REALTIME_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_auth_api.h"
#include "ngx_feira_ws_frame.h"
#include "ngx_feira_realtime.h"


#define NGX_FEIRA_HTTP_UPGRADE_REQUIRED  426

/* application close codes (RFC 6455 7.4.2: 4000-4999 are ours) */
#define NGX_FEIRA_WS_CLOSE_EXPIRED   4001
#define NGX_FEIRA_WS_CLOSE_REVOKED   4003

/* what a subscriber is to a channel */
#define NGX_FEIRA_RT_KIND_SELF       1    /* user:<own id> */
#define NGX_FEIRA_RT_KIND_CLIENT     2    /* the request's client */
#define NGX_FEIRA_RT_KIND_PROVIDER   3    /* the request's provider */
#define NGX_FEIRA_RT_KIND_OFFERED    4    /* offered it, not (yet) assigned */
#define NGX_FEIRA_RT_KIND_ADMIN      5

/* where a subscription is */
#define NGX_FEIRA_RT_SUB_AUTHORIZING 0    /* the store is asked */
#define NGX_FEIRA_RT_SUB_WAITING     1    /* for the worker's SUBSCRIBE */
#define NGX_FEIRA_RT_SUB_CATCHING_UP 2    /* the history is read */
#define NGX_FEIRA_RT_SUB_RETRY       3    /* reading it failed; again soon */
#define NGX_FEIRA_RT_SUB_LIVE        4

#define NGX_FEIRA_RT_REPLAY_BATCH    100


typedef struct ngx_feira_ws_s        ngx_feira_ws_t;
typedef struct ngx_feira_rt_chan_s   ngx_feira_rt_chan_t;
typedef struct ngx_feira_rt_sub_s    ngx_feira_rt_sub_t;
typedef struct ngx_feira_ws_out_s    ngx_feira_ws_out_t;


typedef struct {
    ngx_msec_t                       auth_check;
    ngx_msec_t                       presence_interval;
    ngx_msec_t                       location_interval;
    ngx_msec_t                       lookup_cache;
    ngx_shm_zone_t                  *limit_zone;
    ngx_uint_t                       used;
} ngx_http_feira_realtime_main_conf_t;


typedef struct {
    ngx_array_t                     *origins;     /* of ngx_str_t */
    size_t                           max_message;
    size_t                           send_queue;
    ngx_msec_t                       ping_interval;
    ngx_msec_t                       ping_timeout;
    ngx_msec_t                       send_timeout;
    ngx_msec_t                       close_timeout;
    ngx_uint_t                       max_subscriptions;
    ngx_uint_t                       per_address;
} ngx_http_feira_realtime_loc_conf_t;


/* an outgoing frame, shared by every connection it is queued on */
typedef struct {
    ngx_uint_t                       refs;
    size_t                           len;
    u_char                           data[1];
} ngx_feira_ws_msg_t;


struct ngx_feira_ws_out_s {
    ngx_feira_ws_out_t              *next;
    ngx_feira_ws_msg_t              *msg;
    size_t                           sent;
};


/* a WebSocket connection, once its HTTP request is gone */
struct ngx_feira_ws_s {
    ngx_connection_t                *connection;
    ngx_http_feira_realtime_loc_conf_t  *conf;
    ngx_feira_identity_t             identity;    /* strings in c->pool */

    ngx_feira_ws_parser_t            parser;

    /* a fragmented message, allocated while it is read */
    u_char                          *msg;
    size_t                           msg_len;
    size_t                           msg_size;

    ngx_feira_ws_out_t              *out;
    ngx_feira_ws_out_t             **out_last;
    size_t                           out_bytes;

    ngx_queue_t                      subs;        /* ngx_feira_rt_sub_t */
    ngx_uint_t                       nsubs;
    ngx_queue_t                      queue;       /* the worker's list */

    ngx_msec_t                       last_read;
    ngx_feira_rt_location_t         *location;    /* one in flight */
    ngx_feira_wsmsg_peer_t           peer;        /* other modules' types */

    unsigned                         provider:1;
    unsigned                         ping_sent:1;
    unsigned                         close_sent:1;
    unsigned                         close_received:1;
    unsigned                         failing:1;   /* close after the flush */
    unsigned                         aborted:1;   /* close at once */
};


struct ngx_feira_rt_chan_s {
    ngx_rbtree_node_t                node;        /* key: hash of name */
    ngx_queue_t                      subs;
    ngx_uint_t                       nsubs;
    ngx_uint_t                       noffered;
    ngx_str_t                        name;
    ngx_uint_t                       state;
    u_char                           data[1];
};


struct ngx_feira_rt_sub_s {
    ngx_queue_t                      in_chan;
    ngx_queue_t                      in_ws;
    ngx_feira_ws_t                  *ws;
    ngx_feira_rt_chan_t             *chan;        /* NULL until attached */
    ngx_str_t                        name;
    int64_t                          last;        /* -1: no `since` given */
    int64_t                          seen;        /* live, while catching up */
    ngx_feira_rt_sub_t             **job;         /* authorization, or NULL */
    ngx_feira_rt_sub_t             **replay;      /* history read, or NULL */
    unsigned                         state:3;
    unsigned                         kind:3;
    unsigned                         acked:1;
    unsigned                         reauth:1;
};


extern ngx_module_t  ngx_http_feira_realtime_module;


/* ngx_feira_rt_handshake.c: GET /v1/ws */
ngx_int_t ngx_feira_rt_ws_handler(ngx_http_request_t *r);

/* ngx_feira_rt_ws.c: the connection */
ngx_int_t ngx_feira_rt_ws_start(ngx_connection_t *c,
    ngx_http_feira_realtime_loc_conf_t *conf, ngx_feira_identity_t *id,
    u_char *pipelined, size_t len);
ngx_feira_ws_msg_t *ngx_feira_rt_ws_msg(int opcode, size_t len,
    u_char **payload);
void ngx_feira_rt_ws_msg_release(ngx_feira_ws_msg_t *msg);
void ngx_feira_rt_ws_send(ngx_feira_ws_t *ws, ngx_feira_ws_msg_t *msg);
void ngx_feira_rt_ws_send_json(ngx_feira_ws_t *ws, json_t *json);
void ngx_feira_rt_ws_error(ngx_feira_ws_t *ws, const char *code,
    const char *detail, ngx_str_t *channel);
void ngx_feira_rt_ws_close(ngx_feira_ws_t *ws, unsigned code,
    const char *reason);
void ngx_feira_rt_ws_abort(ngx_feira_ws_t *ws);
ngx_queue_t *ngx_feira_rt_ws_all(void);
void ngx_feira_rt_ws_peer_send(ngx_feira_wsmsg_peer_t *peer, json_t *json);
void ngx_feira_rt_ws_shutdown(void);

/* ngx_feira_rt_messages.c: what a client sends */
void ngx_feira_rt_client_message(ngx_feira_ws_t *ws, u_char *data,
    size_t len);
void ngx_feira_rt_unsubscribe_all(ngx_feira_ws_t *ws);
void ngx_feira_rt_sub_drop(ngx_feira_rt_sub_t *sub, const char *reason);

/* ngx_feira_rt_access.c: who may subscribe; tokens of open connections */
ngx_int_t ngx_feira_rt_authorize(ngx_feira_rt_sub_t *sub);
ngx_int_t ngx_feira_rt_channel_parse(ngx_str_t *name, ngx_str_t *id,
    ngx_uint_t *user);
ngx_int_t ngx_feira_rt_access_init(ngx_cycle_t *cycle,
    ngx_http_feira_realtime_main_conf_t *rmcf);
void ngx_feira_rt_access_exit(void);

/* ngx_feira_rt_hub.c: the worker's Redis subscriber and the fan-out */
ngx_int_t ngx_feira_rt_hub_init(ngx_cycle_t *cycle);
void ngx_feira_rt_hub_exit(void);
ngx_int_t ngx_feira_rt_hub_attach(ngx_feira_rt_sub_t *sub);
void ngx_feira_rt_hub_detach(ngx_feira_rt_sub_t *sub);
void ngx_feira_rt_hub_cancel(ngx_feira_rt_sub_t *sub);

/* ngx_feira_rt_location.c: the location pipeline and its cache */
ngx_int_t ngx_feira_rt_location_init(ngx_cycle_t *cycle,
    ngx_http_feira_realtime_main_conf_t *rmcf);
void ngx_feira_rt_location_exit(void);
ngx_int_t ngx_feira_rt_location_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_FEIRA_REALTIME_MODULE_H_INCLUDED_ */
