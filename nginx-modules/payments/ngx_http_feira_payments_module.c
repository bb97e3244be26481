/*
 * feira_payments: a client pays for its request; Stripe and PayPal are
 * driven by the payment worker (workers/payment-worker) from Kafka.
 *
 *     location ~ ^/v1/requests/[^/]+/payments$ {
 *         feira_auth_require;  feira_idempotency on;
 *         feira_payments_endpoint create;
 *     }
 *     location /v1/payments/ {
 *         feira_auth_require;  feira_idempotency on;
 *         feira_payments_endpoint payments;
 *     }
 *     location = /v1/webhooks/stripe { feira_payments_endpoint stripe; }
 *     location = /v1/webhooks/paypal { feira_payments_endpoint paypal; }
 *
 * POST .../requests/{id}/payments  {"method":"stripe"|"paypal"} with an
 *                                  Idempotency-Key: a pending payment and a
 *                                  command to the worker, 202
 * GET  /v1/payments/{id}           payer, payee, admin
 * POST /v1/payments/{id}/refund    admin: a refund command, 202
 * Webhooks: ngx_feira_payments_webhook.c.
 */

#include "ngx_http_feira_payments_module.h"

#include <openssl/evp.h>


typedef struct {
    ngx_http_request_t          *r;
    ngx_uint_t                   status;
    json_t                      *answer;
    ngx_uint_t                   refs;
} ngx_feira_pay_wait_t;


static ngx_int_t ngx_http_feira_payments_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_feira_payments_segment(ngx_http_request_t *r,
    ngx_uint_t from_end, ngx_str_t *seg);
static ngx_uint_t ngx_http_feira_payments_has_key(ngx_http_request_t *r);
static void ngx_http_feira_payments_create_body(ngx_http_request_t *r,
    json_t *body);
static ngx_int_t ngx_http_feira_payments_post(ngx_http_request_t *r,
    ngx_feira_pay_job_t *job);
static void ngx_http_feira_payments_done(ngx_http_request_t *r, void *data);
static void ngx_http_feira_payments_pending(ngx_http_request_t *r,
    ngx_feira_pay_job_t *job);
static ngx_feira_pay_job_t *ngx_http_feira_payments_job(
    ngx_http_request_t *r, ngx_uint_t op);
static void ngx_feira_pay_delivered(void *data, rd_kafka_resp_err_t err);
static void ngx_feira_pay_wait_cleanup(void *data);
static void ngx_feira_pay_wait_release(ngx_feira_pay_wait_t *w);
static char *ngx_http_feira_payments_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void *ngx_http_feira_payments_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_feira_payments_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_feira_payments_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_feira_payments_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);


static const char *const  ngx_http_feira_payments_methods[] = {
    "stripe", "paypal", NULL
};

static const ngx_feira_field_t  ngx_http_feira_payments_create_fields[] = {
    { "method", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1,
      ngx_http_feira_payments_methods },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static ngx_conf_num_bounds_t  ngx_http_feira_payments_fee_bounds = {
    ngx_conf_check_num_bounds, 0, 10000
};


static ngx_command_t  ngx_http_feira_payments_commands[] = {

    { ngx_string("feira_payments_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_feira_payments_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("feira_payments_fee"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_payments_main_conf_t, fee_bps),
      &ngx_http_feira_payments_fee_bounds },

    { ngx_string("feira_payments_stripe_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_payments_main_conf_t, stripe_secret_file),
      NULL },

    { ngx_string("feira_payments_webhook_tolerance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_feira_payments_main_conf_t, tolerance),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_feira_payments_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_feira_payments_create_main_conf, /* create main configuration */
    ngx_http_feira_payments_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_feira_payments_create_loc_conf, /* create location configuration */
    ngx_http_feira_payments_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_feira_payments_module = {
    NGX_MODULE_V1,
    &ngx_http_feira_payments_module_ctx,   /* module context */
    ngx_http_feira_payments_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_feira_payments_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            seg, id;
    ngx_feira_pay_job_t                 *job;
    ngx_feira_identity_t                *ident;
    ngx_http_feira_payments_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_payments_module);

    if (plcf->endpoint == NGX_FEIRA_PAY_EP_STRIPE
        || plcf->endpoint == NGX_FEIRA_PAY_EP_PAYPAL)
    {
        return ngx_feira_pay_webhook_handler(r);
    }

    ident = ngx_feira_identity(r);

    if (ident == NULL) {
        /* feira_auth_require belongs in front of this location */
        return ngx_feira_send_problem(r, NGX_HTTP_UNAUTHORIZED,
                                      "a bearer token is required", NULL);
    }

    if (plcf->endpoint == NGX_FEIRA_PAY_EP_CREATE) {

        /* .../requests/{id}/payments: the segment before the last */

        if (ngx_http_feira_payments_segment(r, 1, &id) != NGX_OK
            || !ngx_feira_is_object_id((char *) id.data, id.len))
        {
            return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                          "no such request", NULL);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_feira_send_not_allowed(r, "POST");
        }

        if (!ngx_http_feira_payments_has_key(r)) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            /* the key itself is checked and kept by feira_idempotency */
            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                          "an Idempotency-Key header is "
                                          "required", NULL);
        }

        return ngx_feira_read_json_body(r,
                                        ngx_http_feira_payments_create_body);
    }

    /* /v1/payments/{id} and /v1/payments/{id}/refund */

    if (ngx_http_feira_payments_segment(r, 0, &seg) != NGX_OK) {
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such payment", NULL);
    }

    if (seg.len == sizeof("refund") - 1
        && ngx_strncmp(seg.data, "refund", seg.len) == 0)
    {
        if (ngx_http_feira_payments_segment(r, 1, &id) != NGX_OK
            || !ngx_feira_is_object_id((char *) id.data, id.len))
        {
            return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                          "no such payment", NULL);
        }

        if (r->method != NGX_HTTP_POST) {
            return ngx_feira_send_not_allowed(r, "POST");
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ident->role.len != 5
            || ngx_strncmp(ident->role.data, "admin", 5) != 0)
        {
            return ngx_feira_send_problem(r, NGX_HTTP_FORBIDDEN,
                                          "only an admin refunds", NULL);
        }

        job = ngx_http_feira_payments_job(r, NGX_FEIRA_PAY_OP_REFUND);
        if (job == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_strlow((u_char *) job->id, id.data, 24);

        rc = ngx_http_feira_payments_post(r, job);

        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    if (!ngx_feira_is_object_id((char *) seg.data, seg.len)
        || ngx_http_feira_payments_segment(r, 1, &id) != NGX_OK
        || id.len != sizeof("payments") - 1
        || ngx_strncmp(id.data, "payments", id.len) != 0)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such payment", NULL);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    job = ngx_http_feira_payments_job(r, NGX_FEIRA_PAY_OP_GET);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_strlow((u_char *) job->id, seg.data, 24);

    rc = ngx_http_feira_payments_post(r, job);

    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


static ngx_uint_t
ngx_http_feira_payments_has_key(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Idempotency-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Idempotency-Key",
                               h[i].key.len) == 0)
        {
            return 1;
        }
    }
}


/* the n-th segment of the path counted from its end (0: the last) */

static ngx_int_t
ngx_http_feira_payments_segment(ngx_http_request_t *r, ngx_uint_t from_end,
    ngx_str_t *seg)
{
    u_char  *p, *end;

    end = r->uri.data + r->uri.len;

    for ( ;; ) {
        p = end;

        while (p > r->uri.data && p[-1] != '/') {
            p--;
        }

        if (p == end || p == r->uri.data) {
            return NGX_DECLINED;
        }

        if (from_end-- == 0) {
            seg->data = p;
            seg->len = end - p;
            return NGX_OK;
        }

        end = p - 1;
    }
}


static void
ngx_http_feira_payments_create_body(ngx_http_request_t *r, json_t *body)
{
    ngx_str_t             id;
    ngx_feira_errors_t    errs;
    ngx_feira_pay_job_t  *job;

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_validate_object(body, ngx_http_feira_payments_create_fields,
                                  &errs)
        != 0 || errs.n)
    {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                   "the request body is invalid", &errs));
        return;
    }

    job = ngx_http_feira_payments_job(r, NGX_FEIRA_PAY_OP_CREATE);

    if (job == NULL
        || ngx_http_feira_payments_segment(r, 1, &id) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_strlow((u_char *) job->id, id.data, 24);
    ngx_cpystrn((u_char *) job->method,
                (u_char *) json_string_value(json_object_get(body, "method")),
                sizeof(job->method));

    /* the body's reference is the job's until it is done */

    if (ngx_http_feira_payments_post(r, job) != NGX_DONE) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the server is busy", NULL));
    }
}


static ngx_int_t
ngx_http_feira_payments_post(ngx_http_request_t *r, ngx_feira_pay_job_t *job)
{
    ngx_feira_job_pt  fn;

    switch (job->op) {
    case NGX_FEIRA_PAY_OP_CREATE:
        fn = ngx_feira_pay_create_job;
        break;
    case NGX_FEIRA_PAY_OP_REFUND:
        fn = ngx_feira_pay_refund_job;
        break;
    default:
        fn = ngx_feira_pay_get_job;
    }

    if (ngx_feira_thread_post(r, fn, ngx_http_feira_payments_done, job)
        != NGX_OK)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the server is busy", NULL);
    }

    return NGX_DONE;
}


static void
ngx_http_feira_payments_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_pay_job_t  *job = data;

    json_t       *command, *p;
    const char   *pid;
    char          seed[64];

    if ((job->result
         && ngx_feira_json_cleanup_add(r->pool, job->result) != NGX_OK)
        || (job->payment
            && ngx_feira_json_cleanup_add(r->pool, job->payment) != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->result == NULL || job->status >= NGX_HTTP_BAD_REQUEST) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r,
                job->status ? job->status : NGX_HTTP_SERVICE_UNAVAILABLE,
                job->detail ? job->detail : "payments are unavailable",
                NULL));
        return;
    }

    if (!job->command) {
        ngx_http_finalize_request(r, ngx_feira_send_json(r, job->status,
                                                         job->result));
        return;
    }

    /* a command for the worker: the answer waits until Kafka has it */

    p = job->payment;
    pid = json_string_value(json_object_get(p, "payment_id"));

    ngx_snprintf((u_char *) seed, sizeof(seed), "%s:%s%Z", pid,
                 job->op == NGX_FEIRA_PAY_OP_CREATE ? "create" : "refund");

    command = ngx_feira_pay_envelope(seed,
                  job->op == NGX_FEIRA_PAY_OP_CREATE ? "payment.create"
                                                     : "payment.refund",
                  job->now, job->caller, job->role, json_deep_copy(p));

    if (command == NULL
        || ngx_feira_json_cleanup_add(r->pool, command) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->created) {
        ngx_http_feira_payments_pending(r, job);
    }

    ngx_http_finalize_request(r,
        ngx_feira_pay_produce_then_answer(r, NGX_FEIRA_PAY_COMMANDS, pid,
                                          command, job->status, job->result));
}


/* payment.pending: to feira.payments and the realtime channels */

static void
ngx_http_feira_payments_pending(ngx_http_request_t *r,
    ngx_feira_pay_job_t *job)
{
    char        *payload;
    json_t      *event;
    ngx_str_t    channel, text;
    const char  *pid, *rid, *payer;
    u_char       name[NGX_FEIRA_RT_CHANNEL_MAX];
    char         seed[64];

    pid = json_string_value(json_object_get(job->payment, "payment_id"));
    rid = json_string_value(json_object_get(job->payment, "request_id"));
    payer = json_string_value(json_object_get(job->payment, "payer_id"));

    ngx_snprintf((u_char *) seed, sizeof(seed), "%s:pending%Z", pid);

    event = ngx_feira_pay_envelope(seed, "payment.pending", job->now,
                                   job->caller, job->role,
                                   json_deep_copy(job->payment));
    if (event == NULL) {
        return;
    }

    payload = json_dumps(event, JSON_COMPACT);
    json_decref(event);

    if (payload == NULL) {
        return;
    }

    if (ngx_feira_kafka_produce(NGX_FEIRA_PAY_TOPIC, pid, ngx_strlen(pid),
                                payload, ngx_strlen(payload), NULL, NULL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: payments: payment.pending of %s not published",
                      pid);
    }

    text.data = (u_char *) payload;
    text.len = ngx_strlen(payload);

    channel.data = name;
    channel.len = ngx_snprintf(name, sizeof(name), "request:%s", rid) - name;
    (void) ngx_feira_rt_publish(&channel, &text, NULL, NULL);

    channel.len = ngx_snprintf(name, sizeof(name), "user:%s", payer) - name;
    (void) ngx_feira_rt_publish(&channel, &text, NULL, NULL);

    free(payload);
}


static ngx_feira_pay_job_t *
ngx_http_feira_payments_job(ngx_http_request_t *r, ngx_uint_t op)
{
    ngx_feira_pay_job_t                  *job;
    ngx_feira_identity_t                 *id;
    ngx_http_feira_payments_main_conf_t  *pmcf;

    job = ngx_pcalloc(r->pool, sizeof(ngx_feira_pay_job_t));
    if (job == NULL) {
        return NULL;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_payments_module);
    id = ngx_feira_identity(r);

    job->op = op;
    job->fee_bps = pmcf->fee_bps;
    job->now = ngx_feira_now_ms();

    ngx_memcpy(job->caller, id->id.data, ngx_min(id->id.len, 24));
    ngx_memcpy(job->role, id->role.data,
               ngx_min(id->role.len, sizeof(job->role) - 1));

    return job;
}


/*
 * Produces a message and answers once its delivery report came (acks=all):
 * 'status' with 'answer', or 503 when Kafka did not take it.  The waiting
 * state outlives a request that goes away first.
 */

ngx_int_t
ngx_feira_pay_produce_then_answer(ngx_http_request_t *r, const char *topic,
    const char *key, json_t *message, ngx_uint_t status, json_t *answer)
{
    char                  *payload;
    ngx_int_t              rc;
    ngx_pool_cleanup_t    *cln;
    ngx_feira_pay_wait_t  *w;

    payload = json_dumps(message, JSON_COMPACT);
    if (payload == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = ngx_calloc(sizeof(ngx_feira_pay_wait_t), r->connection->log);
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (w == NULL || cln == NULL) {
        ngx_free(w);
        free(payload);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->r = r;
    w->status = status;
    w->answer = answer;
    w->refs = 2;

    cln->handler = ngx_feira_pay_wait_cleanup;
    cln->data = w;

    rc = ngx_feira_kafka_produce(topic, key, ngx_strlen(key), payload,
                                 ngx_strlen(payload), ngx_feira_pay_delivered,
                                 w);
    free(payload);

    if (rc != NGX_OK) {
        w->refs--;
        w->r = NULL;

        return ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the event bus is unavailable; "
                                      "retry", NULL);
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_feira_pay_delivered(void *data, rd_kafka_resp_err_t err)
{
    ngx_feira_pay_wait_t  *w = data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = w->r;

    if (r == NULL) {
        ngx_feira_pay_wait_release(w);
        return;
    }

    w->r = NULL;
    c = r->connection;

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: payments: kafka did not take the message: %s",
                      rd_kafka_err2str(err));

        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "the event bus is unavailable; retry",
                                   NULL));
    } else {
        ngx_http_finalize_request(r, ngx_feira_send_json(r, w->status,
                                                         w->answer));
    }

    /* the request's cleanup releases the other reference */
    ngx_feira_pay_wait_release(w);

    ngx_http_run_posted_requests(c);
}


static void
ngx_feira_pay_wait_cleanup(void *data)
{
    ngx_feira_pay_wait_t  *w = data;

    w->r = NULL;
    ngx_feira_pay_wait_release(w);
}


static void
ngx_feira_pay_wait_release(ngx_feira_pay_wait_t *w)
{
    if (--w->refs == 0) {
        ngx_free(w);
    }
}


json_t *
ngx_feira_pay_envelope(const char *seed, const char *type, int64_t now,
    const char *actor_id, const char *actor_role, json_t *data)
{
    char  id[25], at[32];

    if (data == NULL) {
        return NULL;
    }

    ngx_feira_pay_event_id(seed, id);
    ngx_feira_rfc3339(now, at, sizeof(at));

    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o}",
                     "id", id, "type", type, "occurred_at", at,
                     "actor", "id", actor_id, "role", actor_role,
                     "data", data);
}


/* the first 24 hex digits of SHA-256(seed): one event, one id */

void
ngx_feira_pay_event_id(const char *seed, char *hex)
{
    u_char        md[EVP_MAX_MD_SIZE];
    unsigned int  len;

    if (!EVP_Digest(seed, ngx_strlen(seed), md, &len, EVP_sha256(), NULL)) {
        ngx_memset(md, 0, 12);
    }

    ngx_hex_dump((u_char *) hex, md, 12);
    hex[24] = '\0';
}


static char *
ngx_http_feira_payments_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_feira_payments_loc_conf_t  *plcf = conf;

    ngx_str_t                   *value;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_feira_main_conf_t  *fmcf;

    if (plcf->endpoint != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "create") == 0) {
        plcf->endpoint = NGX_FEIRA_PAY_EP_CREATE;

    } else if (ngx_strcmp(value[1].data, "payments") == 0) {
        plcf->endpoint = NGX_FEIRA_PAY_EP_PAYMENTS;

    } else if (ngx_strcmp(value[1].data, "stripe") == 0) {
        plcf->endpoint = NGX_FEIRA_PAY_EP_STRIPE;

    } else if (ngx_strcmp(value[1].data, "paypal") == 0) {
        plcf->endpoint = NGX_FEIRA_PAY_EP_PAYPAL;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown feira_payments_endpoint \"%V\": "
                           "create, payments, stripe or paypal", &value[1]);
        return NGX_CONF_ERROR;
    }

    fmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_feira_common_module);

    if (fmcf->kafka_brokers.len == 0) {
        return "needs \"feira_kafka_brokers\"";
    }

    if (plcf->endpoint <= NGX_FEIRA_PAY_EP_PAYMENTS
        && fmcf->mongo_uri.len == 0)
    {
        return "needs \"feira_mongo_uri\"";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_feira_payments_handler;

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_payments_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_feira_payments_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_payments_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    pmcf->fee_bps = NGX_CONF_UNSET;
    pmcf->tolerance = NGX_CONF_UNSET;

    return pmcf;
}


static char *
ngx_http_feira_payments_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_feira_payments_main_conf_t  *pmcf = conf;

    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *s;
    ngx_file_info_t  fi;

    ngx_conf_init_value(pmcf->fee_bps, 1000);
    ngx_conf_init_value(pmcf->tolerance, 300);

    if (pmcf->tolerance <= 0 || pmcf->tolerance > 3600) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"feira_payments_webhook_tolerance\" must be "
                           "1s to 1h");
        return NGX_CONF_ERROR;
    }

    s = &pmcf->stripe_secret_file;

    if (s->len == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_conf_full_name(cf->cycle, s, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(s->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", s);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a secret of at most 4k", s);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    pmcf->stripe_secret.data = ngx_pnalloc(cf->pool, 4097);
    if (pmcf->stripe_secret.data == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, pmcf->stripe_secret.data, 4096);
    ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", s);
        return NGX_CONF_ERROR;
    }

    /* a trailing newline of an editor is not part of the secret */
    while (n > 0 && (pmcf->stripe_secret.data[n - 1] == '\n'
                     || pmcf->stripe_secret.data[n - 1] == '\r'))
    {
        n--;
    }

    if (n < 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the Stripe webhook secret in \"%V\" is shorter "
                           "than 16 bytes", s);
        return NGX_CONF_ERROR;
    }

    pmcf->stripe_secret.len = n;

    return NGX_CONF_OK;
}


static void *
ngx_http_feira_payments_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_feira_payments_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_feira_payments_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    plcf->endpoint = NGX_CONF_UNSET_UINT;

    return plcf;
}


static char *
ngx_http_feira_payments_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_feira_payments_loc_conf_t  *conf = child;

    ngx_http_feira_payments_main_conf_t  *pmcf;

    /* an endpoint is never inherited: it names one location */

    if (conf->endpoint == NGX_CONF_UNSET_UINT) {
        conf->endpoint = 0;
        return NGX_CONF_OK;
    }

    if (conf->endpoint == NGX_FEIRA_PAY_EP_STRIPE) {
        pmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_feira_payments_module);

        if (pmcf->stripe_secret_file.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"feira_payments_endpoint stripe\" needs "
                               "\"feira_payments_stripe_secret_file\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
