/*
 * The payment worker's shared state and the functions of its files.
 *
 * One event at a time: each provider call is a blocking libcurl call with
 * a timeout, then its result is stored (MongoDB), then published (Kafka,
 * Redis).  Every provider call carries an idempotency key derived from the
 * payment and the step, so that an event handled again after a crash or a
 * retry never charges twice.
 */

#ifndef PW_H
#define PW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "../common/fw_worker.h"


#define PW_TOPIC_PAYMENTS  "feira.payments"


/* one name, one pointer: the metrics compare names by address */
extern const char  pw_metric_calls[];
extern const char  pw_metric_payments[];
extern const char  pw_metric_amount[];


/* the outcome of a provider call */
typedef enum {
    PW_CALL_OK = 0,     /* 2xx */
    PW_CALL_REFUSED,    /* 4xx but 408/409/429: the provider said no */
    PW_CALL_TRANSIENT   /* network, timeout, 408, 409, 429, 5xx */
} pw_call_e;

typedef struct {
    long          status;
    json_t       *body;         /* the parsed answer, or NULL */
    char          error[256];
} pw_resp_t;

typedef struct {
    fw_worker_t        *worker;
    mongoc_client_t    *mongo;
    mongoc_database_t  *db;
    rd_kafka_t         *producer;
    const char         *redis_addr;
    redisContext       *redis;
    long                rt_history_len;
    long                rt_history_ttl;
    long                http_timeout_ms;
    long                test_pause_ms;   /* tests: between call and store */
    int                 refund_on_cancel;
    long                claim_stale_ms;
    char                event_key[192];  /* topic/partition/offset */

    const char         *stripe_base;
    char               *stripe_key;

    const char         *paypal_base;
    char               *paypal_client_id;
    char               *paypal_secret;
    const char         *paypal_webhook_id;
    char               *paypal_token;
    int64_t             paypal_token_expires;   /* wall ms */
} pw_ctx_t;


/* pw_handler.c */
void pw_handle(void *ctx, fw_event_t **evs, size_t n);
void pw_poll(void *ctx, int timeout_ms);
void pw_tick(void *ctx, int stopping);
size_t pw_busy(void *ctx);

/* pw_http.c: one blocking call; headers: NULL-terminated "Name: value" */
pw_call_e pw_http(pw_ctx_t *c, const char *method, const char *url,
    const char *const *headers, const char *userpwd, const char *body,
    pw_resp_t *resp);
void pw_resp_free(pw_resp_t *resp);
char *pw_form_escape(const char *s);

/* pw_stripe.c */
pw_call_e pw_stripe_create(pw_ctx_t *c, const bson_t *payment,
    const char *destination, pw_resp_t *resp);
pw_call_e pw_stripe_step(pw_ctx_t *c, const char *pid, const char *pi,
    const char *step, pw_resp_t *resp);

/* pw_paypal.c */
pw_call_e pw_paypal_create(pw_ctx_t *c, const bson_t *payment,
    pw_resp_t *resp);
pw_call_e pw_paypal_capture(pw_ctx_t *c, const char *pid,
    const char *order, pw_resp_t *resp);
pw_call_e pw_paypal_refund(pw_ctx_t *c, const char *pid,
    const char *capture, pw_resp_t *resp);
pw_call_e pw_paypal_verify(pw_ctx_t *c, json_t *headers, json_t *event,
    int *verified);

/* pw_store.c */
int pw_store_open(pw_ctx_t *c, const char *uri);
void pw_store_close(pw_ctx_t *c);
int pw_store_indexes(pw_ctx_t *c);
/* 1 found, 0 not found, -1 error; *doc to bson_destroy() */
int pw_payment_get(pw_ctx_t *c, const char *pid, bson_t **doc);
int pw_payment_find(pw_ctx_t *c, const char *field, const char *value,
    bson_t **doc);
/* the payments of a request, a BSON array document; -1 on errors */
int pw_payments_of_request(pw_ctx_t *c, const char *rid, bson_t **list);
int pw_payment_set(pw_ctx_t *c, const char *pid, bson_t *set);
int pw_user_stripe_account(pw_ctx_t *c, const bson_t *payment, char *acct,
    size_t size);
/* 1 seen already, 0 not, -1 error */
int pw_webhook_seen(pw_ctx_t *c, const char *key);
int pw_webhook_record(pw_ctx_t *c, const char *key, const char *type);
const char *pw_str(const bson_t *doc, const char *field);
int64_t pw_int(const bson_t *doc, const char *field);
int pw_bool(const bson_t *doc, const char *field);
void pw_oid_hex(const bson_t *doc, const char *field, char *hex);

/* pw_transition.c: the payment's status, once per target status */
int pw_transition(pw_ctx_t *c, const bson_t *payment, const char *to,
    bson_t *set, const char *actor);
int pw_status_rank(const char *status);

/* pw_publish.c */
int pw_publish_open(pw_ctx_t *c, const char *brokers);
void pw_publish_close(pw_ctx_t *c);
int pw_publish_kafka(pw_ctx_t *c, const char *topic, const char *key,
    const char *payload);
int pw_publish_rt(pw_ctx_t *c, const char *channel, const char *payload);
void pw_event_id(const char *seed, char *hex);

#endif /* PW_H */
