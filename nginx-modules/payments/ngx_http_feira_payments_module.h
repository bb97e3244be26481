/*
 * feira_payments: types shared by the files of the payments module.
 */

#ifndef _NGX_HTTP_FEIRA_PAYMENTS_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_PAYMENTS_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_stripe_sig.h"


#define NGX_FEIRA_PAY_EP_CREATE      1     /* POST .../requests/{id}/payments */
#define NGX_FEIRA_PAY_EP_PAYMENTS    2     /* GET {id}, POST {id}/refund */
#define NGX_FEIRA_PAY_EP_STRIPE      3     /* POST webhooks/stripe */
#define NGX_FEIRA_PAY_EP_PAYPAL      4     /* POST webhooks/paypal */

#define NGX_FEIRA_PAY_OP_CREATE      1
#define NGX_FEIRA_PAY_OP_GET         2
#define NGX_FEIRA_PAY_OP_REFUND      3

#define NGX_FEIRA_PAY_TOPIC          "feira.payments"
#define NGX_FEIRA_PAY_COMMANDS       "feira.payments.commands"
#define NGX_FEIRA_PAY_WEBHOOKS       "feira.webhooks"

#define NGX_FEIRA_PAY_MAX_EVENT_ID   255


typedef struct {
    ngx_int_t                    fee_bps;      /* platform fee, 1/100 % */
    ngx_str_t                    stripe_secret_file;
    ngx_str_t                    stripe_secret;
    time_t                       tolerance;
} ngx_http_feira_payments_main_conf_t;


typedef struct {
    ngx_uint_t                   endpoint;
} ngx_http_feira_payments_loc_conf_t;


/*
 * One job of the thread pool.  The "in" part is filled on the event loop
 * before the job is posted; the job fills "out" and touches nothing else.
 */

typedef struct {
    /* in */
    ngx_uint_t                   op;
    char                         caller[25];
    char                         role[16];
    char                         id[25];       /* request or payment */
    char                         method[8];
    ngx_int_t                    fee_bps;
    int64_t                      now;          /* ms since the epoch */

    /* out */
    ngx_uint_t                   status;
    const char                  *detail;
    json_t                      *result;       /* the answer */
    json_t                      *payment;      /* for events and commands */
    unsigned                     created:1;    /* a new payment */
    unsigned                     command:1;    /* a command to the worker */
} ngx_feira_pay_job_t;


extern ngx_module_t  ngx_http_feira_payments_module;


void ngx_feira_pay_create_job(void *data);
void ngx_feira_pay_get_job(void *data);
void ngx_feira_pay_refund_job(void *data);

ngx_int_t ngx_feira_pay_webhook_handler(ngx_http_request_t *r);

/* waits for Kafka's delivery report, then answers 'status' with 'answer' */
ngx_int_t ngx_feira_pay_produce_then_answer(ngx_http_request_t *r,
    const char *topic, const char *key, json_t *message, ngx_uint_t status,
    json_t *answer);
/* the envelope of docs/events.md; id from the seed (deterministic) */
json_t *ngx_feira_pay_envelope(const char *seed, const char *type,
    int64_t now, const char *actor_id, const char *actor_role, json_t *data);
void ngx_feira_pay_event_id(const char *seed, char *hex);


#endif /* _NGX_HTTP_FEIRA_PAYMENTS_MODULE_H_INCLUDED_ */
