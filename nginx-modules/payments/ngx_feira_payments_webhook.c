/*
 * Webhooks of the payment providers: POST /v1/webhooks/stripe and
 * /v1/webhooks/paypal.  The raw body is checked and forwarded to Kafka
 * (feira.webhooks, keyed by the provider's event id); the answer is 200
 * only once Kafka has it (acks=all), else 503 so that the provider retries.
 * The payment worker applies each event once (docs/events.md).
 *
 * Stripe: Stripe-Signature is verified here (ngx_feira_stripe_sig.c).
 * PayPal: its signatures are checked with PayPal's verify-webhook-signature
 * API, a network call: the transmission headers are forwarded with the
 * event and the worker verifies before it applies anything.
 */

#include "ngx_http_feira_payments_module.h"


static void ngx_feira_pay_webhook_body(ngx_http_request_t *r);
static ngx_int_t ngx_feira_pay_webhook_answer(ngx_http_request_t *r);
static ngx_int_t ngx_feira_pay_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


static const char *const  ngx_feira_pay_paypal_headers[] = {
    "PAYPAL-TRANSMISSION-ID",
    "PAYPAL-TRANSMISSION-TIME",
    "PAYPAL-TRANSMISSION-SIG",
    "PAYPAL-CERT-URL",
    "PAYPAL-AUTH-ALGO",
    NULL
};

static const char *const  ngx_feira_pay_paypal_fields[] = {
    "transmission_id",
    "transmission_time",
    "transmission_sig",
    "cert_url",
    "auth_algo",
    NULL
};


ngx_int_t
ngx_feira_pay_webhook_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_feira_loc_conf_t  *flcf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_feira_send_not_allowed(r, "POST");
    }

    flcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_common_module);

    if (r->headers_in.content_length_n > (off_t) flcf->body_limit) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_feira_send_problem(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the request body is too large", NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_feira_pay_webhook_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_feira_pay_webhook_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_feira_pay_webhook_answer(r));
}


static ngx_int_t
ngx_feira_pay_webhook_answer(ngx_http_request_t *r)
{
    u_char                               *body, *p;
    size_t                                len;
    json_t                               *event, *data, *headers, *message;
    json_t                               *answer;
    ngx_int_t                             rc, stripe;
    ngx_str_t                             sig, value;
    ngx_uint_t                            i;
    ngx_chain_t                          *cl;
    json_error_t                          jerr;
    const char                           *event_id, *type;
    ngx_http_feira_loc_conf_t            *flcf;
    ngx_http_feira_payments_loc_conf_t   *plcf;
    ngx_http_feira_payments_main_conf_t  *pmcf;
    char                                  seed[NGX_FEIRA_PAY_MAX_EVENT_ID
                                               + 16];

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_payments_module);
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_feira_payments_module);
    flcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_common_module);

    stripe = (plcf->endpoint == NGX_FEIRA_PAY_EP_STRIPE);

    if (r->request_body == NULL || r->request_body->temp_file) {
        return ngx_feira_send_problem(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                      "the request body is too large", NULL);
    }

    /* the raw body, in one piece: it is what was signed */

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->in_file) {
            return ngx_feira_send_problem(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "the request body is too large",
                                          NULL);
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (len == 0 || len > flcf->body_limit) {
        return ngx_feira_send_problem(r, len ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                             : NGX_HTTP_BAD_REQUEST,
                                      len ? "the request body is too large"
                                          : "the request body is empty",
                                      NULL);
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    headers = NULL;

    if (stripe) {
        if (ngx_feira_pay_header(r, "Stripe-Signature", &sig) != NGX_OK) {
            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                          "Stripe-Signature is missing",
                                          NULL);
        }

        rc = ngx_feira_stripe_sig_verify((char *) sig.data, sig.len, body,
                                         len, pmcf->stripe_secret.data,
                                         pmcf->stripe_secret.len,
                                         (int64_t) ngx_time(),
                                         (int64_t) pmcf->tolerance);

        if (rc != NGX_FEIRA_STRIPE_SIG_OK) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "feira: payments: Stripe webhook refused: %s",
                          rc == NGX_FEIRA_STRIPE_SIG_EXPIRED
                          ? "timestamp outside the tolerance"
                          : rc == NGX_FEIRA_STRIPE_SIG_MALFORMED
                            ? "malformed Stripe-Signature"
                            : "no matching signature");

            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                       rc == NGX_FEIRA_STRIPE_SIG_EXPIRED
                       ? "the signature's timestamp is too old or too new"
                       : "the Stripe-Signature does not verify", NULL);
        }

    } else {
        /* PayPal: the worker verifies these with PayPal's API */

        headers = json_object();
        if (headers == NULL
            || ngx_feira_json_cleanup_add(r->pool, headers) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; ngx_feira_pay_paypal_headers[i]; i++) {
            if (ngx_feira_pay_header(r, ngx_feira_pay_paypal_headers[i],
                                     &value)
                != NGX_OK
                || value.len > 2048)
            {
                return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                              "a PayPal transmission header "
                                              "is missing", NULL);
            }

            json_object_set_new(headers, ngx_feira_pay_paypal_fields[i],
                                json_stringn((char *) value.data, value.len));
        }
    }

    /* the event: a JSON object with an id */

    event = json_loadb((char *) body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (event == NULL
        || ngx_feira_json_cleanup_add(r->pool, event) != NGX_OK)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "the event is not JSON", NULL);
    }

    event_id = json_string_value(json_object_get(event, "id"));
    type = json_string_value(json_object_get(event,
                                             stripe ? "type" : "event_type"));

    if (!json_is_object(event) || event_id == NULL || type == NULL
        || json_string_length(json_object_get(event, "id")) == 0
        || json_string_length(json_object_get(event, "id"))
           > NGX_FEIRA_PAY_MAX_EVENT_ID
        || !ngx_feira_json_is_safe(event, 0))
    {
        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "the event has no id or type", NULL);
    }

    data = json_pack("{s:s, s:s, s:s, s:O}",
                     "provider", stripe ? "stripe" : "paypal",
                     "event_id", event_id, "event_type", type,
                     "event", event);

    if (data && headers) {
        json_object_set(data, "headers", headers);
    }

    ngx_snprintf((u_char *) seed, sizeof(seed), "%s:%s%Z",
                 stripe ? "stripe" : "paypal", event_id);

    message = ngx_feira_pay_envelope(seed,
                                     stripe ? "webhook.stripe"
                                            : "webhook.paypal",
                                     ngx_feira_now_ms(),
                                     stripe ? "stripe" : "paypal",
                                     "system", data);

    if (message == NULL
        || ngx_feira_json_cleanup_add(r->pool, message) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    answer = json_pack("{s:b}", "received", 1);

    if (answer == NULL
        || ngx_feira_json_cleanup_add(r->pool, answer) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_feira_pay_produce_then_answer(r, NGX_FEIRA_PAY_WEBHOOKS,
                                             seed, message, NGX_HTTP_OK,
                                             answer);
}


static ngx_int_t
ngx_feira_pay_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            *value = h[i].value;
            return NGX_OK;
        }
    }
}
