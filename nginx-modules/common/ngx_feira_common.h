/*
 * Feira shared library: what every Feira nginx module needs.
 */

#ifndef _NGX_FEIRA_COMMON_H_INCLUDED_
#define _NGX_FEIRA_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <librdkafka/rdkafka.h>

#include "ngx_feira_validate.h"
#include "ngx_feira_stats.h"


#define NGX_FEIRA_DEFAULT_BODY_LIMIT  (64 * 1024)

/* not in nginx 1.22 */
#define NGX_HTTP_UNPROCESSABLE_ENTITY  422


typedef struct {
    ngx_str_t                  mongo_uri;
    ngx_str_t                  mongo_db;
    ngx_str_t                  redis_host;    /* numeric address or path */
    ngx_int_t                  redis_port;    /* 0 for a unix socket */
    ngx_str_t                  kafka_brokers;
    ngx_str_t                  thread_pool_name;
    ngx_thread_pool_t         *thread_pool;
    ngx_int_t                  thread_nice;
    ngx_msec_t                 redis_timeout;
    ngx_msec_t                 kafka_timeout;
    ngx_msec_t                 kafka_outbox_interval;
    ngx_msec_t                 mongo_timeout;
    ngx_uint_t                 rt_history_len;
    time_t                     rt_history_ttl;
} ngx_http_feira_main_conf_t;


typedef struct {
    size_t                     body_limit;
} ngx_http_feira_loc_conf_t;


/* who is calling: set by feira_auth in the access phase */
typedef struct {
    ngx_str_t                  id;            /* 24 hex */
    ngx_str_t                  role;          /* client, provider, admin */
    ngx_str_t                  jti;
    ngx_str_t                  sid;           /* refresh token family */
    time_t                     iat;
    time_t                     exp;
} ngx_feira_identity_t;


typedef void (*ngx_feira_body_pt)(ngx_http_request_t *r, json_t *body);


/* per-request state of the shared library */
typedef struct {
    ngx_feira_body_pt          body_handler;
    ngx_feira_identity_t      *identity;
} ngx_feira_ctx_t;


extern ngx_module_t  ngx_http_feira_common_module;


ngx_feira_ctx_t *ngx_feira_ctx(ngx_http_request_t *r);
ngx_feira_identity_t *ngx_feira_identity(ngx_http_request_t *r);


/* replies: ngx_feira_json.c */

ngx_int_t ngx_feira_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_feira_send_problem(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail, ngx_feira_errors_t *errors);
ngx_int_t ngx_feira_send_problem_ext(ngx_http_request_t *r,
    ngx_uint_t status, const char *detail, ngx_feira_errors_t *errors,
    json_t *extra);
ngx_int_t ngx_feira_send_not_allowed(ngx_http_request_t *r, char *allow);
char *ngx_feira_problem_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


/* connections per client address: ngx_feira_addr_limit.c */

ngx_shm_zone_t *ngx_feira_addr_limit_zone(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *size, void *tag);
ngx_int_t ngx_feira_addr_limit_acquire(ngx_connection_t *c,
    ngx_shm_zone_t *zone, ngx_uint_t limit);
/* the key and value are not copied: static or from the request pool */
ngx_table_elt_t *ngx_feira_add_header(ngx_http_request_t *r, char *key,
    u_char *value, size_t len);
ngx_int_t ngx_feira_json_cleanup_add(ngx_pool_t *pool, json_t *json);
const char *ngx_feira_status_title(ngx_uint_t status);


/* request bodies: ngx_feira_body.c */

ngx_int_t ngx_feira_read_json_body(ngx_http_request_t *r,
    ngx_feira_body_pt handler);


/* times: ngx_feira_time.c */

void ngx_feira_rfc3339(int64_t ms, char *buf, size_t size);


/* lists: ngx_feira_page.c */

/* ?limit= and ?cursor= of the request (rules: ngx_feira_page_parse()) */
ngx_int_t ngx_feira_page_args(ngx_http_request_t *r, ngx_feira_page_t *page,
    ngx_feira_errors_t *errs);

/* a document as a list shows it; NULL: out of memory */
typedef json_t *(*ngx_feira_page_view_pt)(const bson_t *doc, void *data);

/*
 * One page of a find sorted by _id with a limit of "limit" + 1, in a job:
 * {"items": [each document through "view"], "next_cursor": the "id_name"
 * of the last item when there is one more, else null}.  NGX_DECLINED with
 * *error the store's, NGX_ERROR when out of memory.
 */
ngx_int_t ngx_feira_mongo_page(mongoc_cursor_t *cursor, ngx_uint_t limit,
    ngx_feira_page_view_pt view, void *data, const char *id_name,
    json_t **page, bson_error_t *error);


/* blocking work in the thread pool: ngx_feira_thread.c */

/* runs in a pool thread: no nginx pools, no event loop */
typedef void (*ngx_feira_job_pt)(void *data);
/* runs on the event loop once the job has finished */
typedef void (*ngx_feira_done_pt)(ngx_http_request_t *r, void *data);

ngx_int_t ngx_feira_thread_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, void *data);

/* the same outside any request (start-up work); done gets r == NULL */
ngx_int_t ngx_feira_thread_post_cycle(ngx_cycle_t *cycle,
    ngx_feira_job_pt job, ngx_feira_done_pt done, void *data);


/* MongoDB: ngx_feira_mongo.c; only from a job in a pool thread */

ngx_int_t ngx_feira_mongo_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf);
void ngx_feira_mongo_exit_process(void);
mongoc_client_t *ngx_feira_mongo_pop(void);
void ngx_feira_mongo_push(mongoc_client_t *client);
const char *ngx_feira_mongo_db(void);
ngx_int_t ngx_feira_mongo_configured(void);
ngx_int_t ngx_feira_mongo_ping(char *err, size_t len);


/* Redis: ngx_feira_redis.c; hiredis async on the nginx event loop */

typedef struct ngx_feira_redis_s  ngx_feira_redis_t;

/* called on the event loop after each (re)connection */
typedef void (*ngx_feira_redis_connect_pt)(ngx_feira_redis_t *rc, void *data);

/*
 * A subscriber connection (SUBSCRIBE) gets no PINGs: hiredis cannot match
 * their answers in subscribed mode; its user checks the feed itself.
 */
#define NGX_FEIRA_REDIS_SUBSCRIBER  1

ngx_feira_redis_t *ngx_feira_redis_create(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf, ngx_feira_redis_connect_pt on_connect,
    void *data, ngx_uint_t flags);
void ngx_feira_redis_destroy(ngx_feira_redis_t *rc);
/* not from a hiredis callback: a subscriber's user that finds it silent */
void ngx_feira_redis_drop(ngx_feira_redis_t *rc);
ngx_int_t ngx_feira_redis_command(ngx_feira_redis_t *rc, redisCallbackFn *fn,
    void *privdata, const char *format, ...);
ngx_int_t ngx_feira_redis_commandargv(ngx_feira_redis_t *rc,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen);
ngx_int_t ngx_feira_redis_is_up(ngx_feira_redis_t *rc);
ngx_feira_redis_t *ngx_feira_redis_main(void);

ngx_int_t ngx_feira_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf);
void ngx_feira_redis_exit_process(void);


/* Kafka: ngx_feira_kafka.c; one idempotent producer per worker */

/* delivery report, on the event loop; err is RD_KAFKA_RESP_ERR_NO_ERROR */
typedef void (*ngx_feira_kafka_dr_pt)(void *data, rd_kafka_resp_err_t err);

ngx_int_t ngx_feira_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_feira_main_conf_t *fmcf);
void ngx_feira_kafka_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_feira_kafka_produce(const char *topic, const char *key,
    size_t key_len, const void *payload, size_t len,
    ngx_feira_kafka_dr_pt handler, void *data);
ngx_int_t ngx_feira_kafka_configured(void);

/*
 * The outbox: ngx_feira_outbox.c.  A message whose delivery failed, or
 * that produce() refused (it then returns NGX_ERROR), is kept in MongoDB
 * and produced again: a caller whose write is stored may count its event
 * as published.
 */
ngx_int_t ngx_feira_outbox_init_process(ngx_cycle_t *cycle,
    ngx_msec_t interval, ngx_msec_t kafka_timeout);
void ngx_feira_outbox_exit_process(void);
void ngx_feira_outbox_save(const char *topic, const void *key,
    size_t key_len, const void *payload, size_t len, const char *error,
    ngx_uint_t sync);
void ngx_feira_outbox_forget(bson_oid_t *oid, ngx_uint_t sync);
ngx_int_t ngx_feira_kafka_produce_stored(const char *topic, const char *key,
    size_t key_len, const void *payload, size_t len, bson_oid_t *oid);

/*
 * The event of a write, durable before the answer: stored in the outbox
 * (a job), produced, then DONE answers the request (the caller's
 * reference, as with ngx_feira_thread_post).
 */
ngx_int_t ngx_feira_event_publish(ngx_http_request_t *r, const char *topic,
    const char *key, size_t key_len, const void *payload, size_t len,
    ngx_feira_done_pt done, void *data);
ngx_int_t ngx_feira_kafka_ping(char *err, size_t len, int timeout_ms);


/*
 * Real time: ngx_feira_rt.c.  Events of a channel ("request:<id>",
 * "user:<id>") are numbered, kept in a bounded history and fanned out to
 * every instance through Redis; keys and scripts in docs/events.md.
 */

#define NGX_FEIRA_RT_CHANNEL_MAX        64
#define NGX_FEIRA_RT_SEQ_PREFIX         "feira:rt:seq:"
#define NGX_FEIRA_RT_HISTORY_PREFIX     "feira:rt:h:"
#define NGX_FEIRA_RT_PUBSUB_PREFIX      "feira:rt:"

#define NGX_FEIRA_PRESENCE_GEO_PREFIX   "feira:geo:"
#define NGX_FEIRA_PRESENCE_SEEN         "feira:seen"
#define NGX_FEIRA_PRESENCE_ONLINE       "feira:online"
#define NGX_FEIRA_PRESENCE_OFFLINE      "feira:offline"
#define NGX_FEIRA_PRESENCE_CATEGORY_MAX 64

/* rc is NGX_OK with the event's sequence number, or NGX_ERROR */
typedef void (*ngx_feira_rt_publish_pt)(void *data, ngx_int_t rc,
    int64_t seq);
/* entries: the history after `since`, valid during the call only */
typedef void (*ngx_feira_rt_replay_pt)(void *data, ngx_int_t rc,
    int64_t current, redisReply *entries);
typedef void (*ngx_feira_presence_pt)(void *data, ngx_int_t rc);

/*
 * NGX_OK: the handler (if any) runs once, later, on the event loop;
 * NGX_DECLINED: Redis is down, NGX_ERROR: bad arguments or no memory, and
 * then the handler is not called.  The event is a JSON object.
 */
ngx_int_t ngx_feira_rt_publish(ngx_str_t *channel, ngx_str_t *event,
    ngx_feira_rt_publish_pt handler, void *data);
/* since: the last sequence number seen, -1 for only the current one */
ngx_int_t ngx_feira_rt_replay(ngx_str_t *channel, int64_t since,
    ngx_uint_t max, ngx_feira_rt_replay_pt handler, void *data);
/* one entry of a replay: its sequence number and event */
ngx_int_t ngx_feira_rt_entry(redisReply *entry, int64_t *seq,
    ngx_str_t *event);
/* the channel of a pub/sub name; a message's sequence number and event */
ngx_int_t ngx_feira_rt_subject(ngx_str_t *pubsub, ngx_str_t *channel);
ngx_int_t ngx_feira_rt_message(ngx_str_t *message, int64_t *seq,
    ngx_str_t *event);
ngx_int_t ngx_feira_rt_channel_valid(ngx_str_t *channel);

ngx_int_t ngx_feira_presence_update(ngx_str_t *provider,
    ngx_str_t *categories, ngx_uint_t n, double lat, double lng,
    ngx_feira_presence_pt handler, void *data);
/* the providers are seen now (connected); fire and forget */
ngx_int_t ngx_feira_presence_seen(ngx_str_t *providers, ngx_uint_t n);
/* users (any role) with an open WebSocket: feira:online; fire and forget */
ngx_int_t ngx_feira_presence_online(ngx_str_t *users, ngx_uint_t n);
ngx_int_t ngx_feira_presence_offline(ngx_str_t *user);
/*
 * PUT /v1/providers/me/status: online (1) is a sign of life and clears
 * the offline flag; offline (0) sets it and forgets the last sign of
 * life; -1 only reads.  The reply is {offline flag, last seen ms or nil}.
 */
ngx_int_t ngx_feira_presence_status(ngx_str_t *provider, ngx_int_t online,
    redisCallbackFn *fn, void *privdata);

int64_t ngx_feira_now_ms(void);

/*
 * WebSocket message types of other modules: ngx_feira_wsmsg.c.
 * feira_realtime owns the connection (a peer) and dispatches a client
 * message whose type it does not serve to the handler registered for it
 * in this worker (init_process; unregister in exit_process).  A handler
 * answers with ngx_feira_wsmsg_send() or _error(); work that outlives the
 * call is an op linked to the peer: when the connection closes first,
 * op->peer becomes NULL and the op finishes without answering.
 */

#define NGX_FEIRA_WSMSG_INFLIGHT        16

typedef struct ngx_feira_wsmsg_peer_s  ngx_feira_wsmsg_peer_t;

/* takes the reference to json (which may be NULL: out of memory) */
typedef void (*ngx_feira_wsmsg_send_pt)(ngx_feira_wsmsg_peer_t *peer,
    json_t *json);
/* msg is valid during the call only */
typedef void (*ngx_feira_wsmsg_pt)(ngx_feira_wsmsg_peer_t *peer,
    const char *type, json_t *msg);

struct ngx_feira_wsmsg_peer_s {
    ngx_feira_identity_t      *identity;
    ngx_log_t                 *log;
    ngx_feira_wsmsg_send_pt    send;
    void                      *data;        /* the owner's connection */
    ngx_queue_t                ops;
    ngx_uint_t                 nops;
};

typedef struct {
    ngx_queue_t                queue;
    ngx_feira_wsmsg_peer_t    *peer;        /* NULL: the connection is gone */
} ngx_feira_wsmsg_op_t;

ngx_int_t ngx_feira_wsmsg_register(const char *type,
    ngx_feira_wsmsg_pt handler);
void ngx_feira_wsmsg_unregister(ngx_feira_wsmsg_pt handler);
void ngx_feira_wsmsg_peer_init(ngx_feira_wsmsg_peer_t *peer,
    ngx_feira_identity_t *identity, ngx_log_t *log,
    ngx_feira_wsmsg_send_pt send, void *data);
/* NGX_DECLINED: no module serves this type */
ngx_int_t ngx_feira_wsmsg_dispatch(ngx_feira_wsmsg_peer_t *peer,
    const char *type, json_t *msg);
void ngx_feira_wsmsg_send(ngx_feira_wsmsg_peer_t *peer, json_t *json);
void ngx_feira_wsmsg_error(ngx_feira_wsmsg_peer_t *peer, const char *code,
    const char *detail);
void ngx_feira_wsmsg_op_start(ngx_feira_wsmsg_peer_t *peer,
    ngx_feira_wsmsg_op_t *op);
void ngx_feira_wsmsg_op_done(ngx_feira_wsmsg_op_t *op);
void ngx_feira_wsmsg_peer_gone(ngx_feira_wsmsg_peer_t *peer);



#endif /* _NGX_FEIRA_COMMON_H_INCLUDED_ */
