/*
 * feira_chat: types shared by the files of the chat module.
 */

#ifndef _NGX_HTTP_FEIRA_CHAT_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_CHAT_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_chat_input.h"


#define NGX_FEIRA_CHAT_TOPIC         "feira.chat"   /* the default */
#define NGX_FEIRA_CHAT_MESSAGES      "messages"
#define NGX_FEIRA_CHAT_READS         "chat_reads"
#define NGX_FEIRA_CHAT_TYPING_PREFIX "feira:rl:typing:"


typedef struct {
    ngx_str_t                    topic;       /* NUL-terminated */
    size_t                       text_max;
    ngx_msec_t                   typing_interval;
    ngx_msec_t                   online_window;
    ngx_uint_t                   used;
} ngx_http_feira_chat_main_conf_t;


typedef struct {
    ngx_flag_t                   enabled;
} ngx_http_feira_chat_loc_conf_t;


typedef enum {
    NGX_FEIRA_CHAT_SEND = 0,
    NGX_FEIRA_CHAT_HISTORY,
    NGX_FEIRA_CHAT_READ,
    NGX_FEIRA_CHAT_CONVERSATIONS,
    NGX_FEIRA_CHAT_TYPING
} ngx_feira_chat_what_e;


typedef struct ngx_feira_chat_op_s  ngx_feira_chat_op_t;

/* on the event loop, once the op's work is over */
typedef void (*ngx_feira_chat_finish_pt)(ngx_feira_chat_op_t *op);


/*
 * One chat operation, from the HTTP API or a WebSocket message.  Ids are
 * 24 hex, NUL-terminated.  The thread-pool job fills the answer part.
 */
struct ngx_feira_chat_op_s {
    ngx_feira_chat_what_e        what;
    ngx_pool_t                  *pool;
    ngx_log_t                   *log;
    ngx_http_request_t          *request;     /* HTTP; NULL for WebSocket */
    ngx_feira_wsmsg_op_t         ws;          /* WebSocket */
    ngx_feira_chat_finish_pt     finish;

    char                         user[25];    /* the caller */
    char                         role[16];
    char                         request_id[25];
    char                         to[25];      /* the pair's provider, or "" */
    char                        *text;
    size_t                       text_len;
    char                         cmid[NGX_FEIRA_CHAT_CMID_MAX + 1];
    char                         before[25];  /* history: or "" */
    size_t                       limit;
    char                         up_to[25];   /* read */

    /* the answer */
    ngx_uint_t                   status;      /* HTTP status */
    const char                  *detail;
    ngx_feira_errors_t           errs;
    json_t                      *result;
    char                         client_id[25];   /* the pair */
    char                         provider_id[25];
    char                         peer_id[25];     /* the other side */
    unsigned                     replayed:1;
    unsigned                     changed:1;       /* read: moved on */
    unsigned                     online:1;
};


extern ngx_module_t  ngx_http_feira_chat_module;


/* ngx_feira_chat_store.c: the MongoDB jobs, in the thread pool */
void ngx_feira_chat_job(void *data);
void ngx_feira_chat_oid_init(void);

/* ngx_feira_chat_deliver.c: live delivery, Kafka, typing limit */
void ngx_feira_chat_deliver(ngx_feira_chat_op_t *op);
ngx_int_t ngx_feira_chat_typing_claim(ngx_feira_chat_op_t *op);
void ngx_feira_chat_publish(ngx_feira_chat_op_t *op, const char *type,
    json_t *data);

/* ngx_feira_chat_http.c: the HTTP API */
ngx_int_t ngx_feira_chat_handler(ngx_http_request_t *r);

/* ngx_feira_chat_ws.c: the WebSocket message types */
void ngx_feira_chat_ws_message(ngx_feira_wsmsg_peer_t *peer,
    const char *type, json_t *msg);
void ngx_feira_chat_ws_done(ngx_http_request_t *r, void *data);

ngx_http_feira_chat_main_conf_t *ngx_feira_chat_conf(void);


#endif /* _NGX_HTTP_FEIRA_CHAT_MODULE_H_INCLUDED_ */
