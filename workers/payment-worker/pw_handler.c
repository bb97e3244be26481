/*
 * The payment worker's events, one at a time:
 *   feira.payments.commands  payment.create, payment.refund (feira_payments)
 *   feira.requests           request.completed (capture the hold),
 *                            request.cancelled (cancel it, or refund)
 *   feira.webhooks           webhook.stripe, webhook.paypal (feira_payments)
 * Each handler is idempotent: provider calls carry "<payment>:<step>" keys,
 * status changes are claimed once (pw_transition.c), webhook events are
 * recorded once applied (payment_webhook_events).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


#define PW_ACTOR  "payment-worker"


static fw_result_e pw_event(pw_ctx_t *c, fw_event_t *ev, char *err,
    size_t size);
static fw_result_e pw_create(pw_ctx_t *c, json_t *data, char *err,
    size_t size);
static fw_result_e pw_create_stripe(pw_ctx_t *c, bson_t *p, char *err,
    size_t size);
static fw_result_e pw_create_paypal(pw_ctx_t *c, bson_t *p, char *err,
    size_t size);
static fw_result_e pw_refund(pw_ctx_t *c, bson_t *p, char *err, size_t size);
static fw_result_e pw_request(pw_ctx_t *c, const char *type, json_t *data,
    char *err, size_t size);
static fw_result_e pw_capture(pw_ctx_t *c, bson_t *p, char *err,
    size_t size);
static fw_result_e pw_cancel(pw_ctx_t *c, bson_t *p, char *err, size_t size);
static fw_result_e pw_stripe_webhook(pw_ctx_t *c, json_t *data, char *err,
    size_t size);
static fw_result_e pw_paypal_webhook(pw_ctx_t *c, json_t *data, char *err,
    size_t size);
static fw_result_e pw_moved(int rc, char *err, size_t size);
static fw_result_e pw_failed(pw_ctx_t *c, bson_t *p, const char *reason,
    char *err, size_t size);
static void pw_pause(pw_ctx_t *c, const char *what, const char *pid);
static void pw_count(const char *name, const char *help, const char *labels);


void
pw_handle(void *ctx, fw_event_t **evs, size_t n)
{
    size_t       i;
    char         err[512];
    fw_result_e  rc;

    pw_ctx_t    *c = ctx;

    for (i = 0; i < n; i++) {
        err[0] = '\0';

        /* who claims status changes: the same message when redelivered */
        snprintf(c->event_key, sizeof(c->event_key), "%s/%d/%lld",
                 evs[i]->topic, (int) evs[i]->msg->partition,
                 (long long) evs[i]->msg->offset);

        rc = pw_event(ctx, evs[i], err, sizeof(err));
        fw_event_done(evs[i], rc, err[0] ? err : NULL);
    }
}


void
pw_poll(void *ctx, int timeout_ms)
{
    (void) ctx;

    /* every event is finished inside pw_handle(): nothing to wait for */
    if (timeout_ms > 0) {
        usleep((useconds_t) (timeout_ms < 50 ? timeout_ms : 50) * 1000);
    }
}


void
pw_tick(void *ctx, int stopping)
{
    (void) ctx;
    (void) stopping;
}


size_t
pw_busy(void *ctx)
{
    (void) ctx;

    return 0;
}


static fw_result_e
pw_event(pw_ctx_t *c, fw_event_t *ev, char *err, size_t size)
{
    json_t       *env, *data;
    const char   *type;
    fw_result_e   rc;
    json_error_t  jerr;

    env = json_loadb(ev->msg->payload, ev->msg->len, 0, &jerr);

    if (!json_is_object(env)) {
        json_decref(env);
        snprintf(err, size, "not a JSON envelope");
        return FW_FAIL;
    }

    type = json_string_value(json_object_get(env, "type"));
    data = json_object_get(env, "data");

    if (type == NULL || !json_is_object(data)) {
        json_decref(env);
        snprintf(err, size, "an envelope without type or data");
        return FW_FAIL;
    }

    rc = FW_OK;

    if (strcmp(type, "payment.create") == 0) {
        rc = pw_create(c, data, err, size);

    } else if (strcmp(type, "payment.refund") == 0) {
        bson_t      *p;
        const char  *pid;
        int          found;

        pid = json_string_value(json_object_get(data, "payment_id"));
        found = pid ? pw_payment_get(c, pid, &p) : 0;

        if (found < 0) {
            snprintf(err, size, "mongo unavailable");
            rc = FW_RETRY;

        } else if (found == 0) {
            snprintf(err, size, "no such payment");
            rc = FW_FAIL;

        } else {
            rc = pw_refund(c, p, err, size);
            bson_destroy(p);
        }

    } else if (strcmp(type, "request.completed") == 0
               || strcmp(type, "request.cancelled") == 0)
    {
        rc = pw_request(c, type, data, err, size);

    } else if (strcmp(type, "webhook.stripe") == 0) {
        rc = pw_stripe_webhook(c, data, err, size);

    } else if (strcmp(type, "webhook.paypal") == 0) {
        rc = pw_paypal_webhook(c, data, err, size);
    }

    /* other types (request.created, ...) are not the worker's */

    json_decref(env);

    return rc;
}


static fw_result_e
pw_create(pw_ctx_t *c, json_t *data, char *err, size_t size)
{
    int           found;
    bson_t       *p;
    const char   *pid, *method;
    fw_result_e   rc;

    pid = json_string_value(json_object_get(data, "payment_id"));

    found = pid ? pw_payment_get(c, pid, &p) : 0;

    if (found < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    if (found == 0) {
        snprintf(err, size, "no such payment");
        return FW_RETRY;
    }

    if (pw_status_rank(pw_str(p, "status")) > 1) {
        /* done already (or cancelled first) */
        bson_destroy(p);
        return FW_OK;
    }

    method = pw_str(p, "method");

    if (method && strcmp(method, "stripe") == 0) {
        rc = pw_create_stripe(c, p, err, size);

    } else if (method && strcmp(method, "paypal") == 0) {
        rc = pw_create_paypal(c, p, err, size);

    } else {
        snprintf(err, size, "unknown method");
        rc = FW_FAIL;
    }

    bson_destroy(p);

    return rc;
}


static fw_result_e
pw_create_stripe(pw_ctx_t *c, bson_t *p, char *err, size_t size)
{
    char         pid[25], acct[128];
    bson_t      *set;
    pw_resp_t    resp;
    pw_call_e    call;
    const char  *pi, *secret, *code;

    pw_oid_hex(p, "_id", pid);

    if (pw_str(p, "stripe_payment_intent") != NULL) {
        /* the intent is stored: only its status change may be missing */
        return pw_moved(pw_transition(c, p, "requires_action", NULL,
                                      PW_ACTOR), err, size);
    }

    if (c->stripe_key == NULL) {
        snprintf(err, size, "Stripe is not configured");
        return FW_RETRY;
    }

    if (pw_user_stripe_account(c, p, acct, sizeof(acct)) < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    call = pw_stripe_create(c, p, acct, &resp);

    if (call == PW_CALL_TRANSIENT) {
        snprintf(err, size, "%s", resp.error);
        pw_resp_free(&resp);
        return FW_RETRY;
    }

    if (call == PW_CALL_REFUSED) {
        code = json_string_value(json_object_get(
                   json_object_get(resp.body, "error"), "code"));
        pw_resp_free(&resp);
        return pw_failed(c, p, code ? code : "stripe_refused", err, size);
    }

    pi = json_string_value(json_object_get(resp.body, "id"));
    secret = json_string_value(json_object_get(resp.body, "client_secret"));

    if (pi == NULL) {
        pw_resp_free(&resp);
        snprintf(err, size, "Stripe answered without an id");
        return FW_RETRY;
    }

    pw_pause(c, "stripe: payment intent created", pid);

    set = BCON_NEW("stripe_payment_intent", BCON_UTF8(pi));

    if (secret) {
        BSON_APPEND_UTF8(set, "client_secret", secret);
    }

    if (acct[0]) {
        BSON_APPEND_UTF8(set, "stripe_destination", acct);
    }

    pw_resp_free(&resp);

    if (pw_payment_set(c, pid, set) != 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    /* the payer confirms the intent with its client_secret */
    return pw_moved(pw_transition(c, p, "requires_action", NULL, PW_ACTOR),
                    err, size);
}


static fw_result_e
pw_create_paypal(pw_ctx_t *c, bson_t *p, char *err, size_t size)
{
    char         pid[25];
    size_t       i;
    json_t      *link;
    bson_t      *set;
    pw_resp_t    resp;
    pw_call_e    call;
    const char  *order, *rel, *url;

    pw_oid_hex(p, "_id", pid);

    if (pw_str(p, "paypal_order_id") != NULL) {
        return pw_moved(pw_transition(c, p, "requires_action", NULL,
                                      PW_ACTOR), err, size);
    }

    call = pw_paypal_create(c, p, &resp);

    if (call == PW_CALL_TRANSIENT) {
        snprintf(err, size, "%s", resp.error);
        pw_resp_free(&resp);
        return FW_RETRY;
    }

    if (call == PW_CALL_REFUSED) {
        pw_resp_free(&resp);
        return pw_failed(c, p, "paypal_refused", err, size);
    }

    order = json_string_value(json_object_get(resp.body, "id"));
    url = NULL;

    json_array_foreach(json_object_get(resp.body, "links"), i, link) {
        rel = json_string_value(json_object_get(link, "rel"));

        if (rel && (strcmp(rel, "approve") == 0
                    || strcmp(rel, "payer-action") == 0))
        {
            url = json_string_value(json_object_get(link, "href"));
        }
    }

    if (order == NULL || url == NULL) {
        pw_resp_free(&resp);
        snprintf(err, size, "PayPal answered without an id or approve link");
        return FW_RETRY;
    }

    pw_pause(c, "paypal: order created", pid);

    set = BCON_NEW("paypal_order_id", BCON_UTF8(order),
                   "approve_url", BCON_UTF8(url));
    pw_resp_free(&resp);

    if (pw_payment_set(c, pid, set) != 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    return pw_moved(pw_transition(c, p, "requires_action", NULL, PW_ACTOR),
                    err, size);
}


static fw_result_e
pw_refund(pw_ctx_t *c, bson_t *p, char *err, size_t size)
{
    char         pid[25];
    bson_t      *set;
    pw_resp_t    resp;
    pw_call_e    call;
    const char  *status, *method, *ref, *id;

    pw_oid_hex(p, "_id", pid);
    status = pw_str(p, "status");
    method = pw_str(p, "method");

    if (status == NULL || strcmp(status, "succeeded") != 0) {
        /* refunded already, or nothing taken */
        return FW_OK;
    }

    if (method && strcmp(method, "stripe") == 0) {
        ref = pw_str(p, "stripe_payment_intent");
        call = ref ? pw_stripe_step(c, pid, ref, "refund", &resp)
                   : PW_CALL_REFUSED;

    } else {
        ref = pw_str(p, "paypal_capture_id");
        call = ref ? pw_paypal_refund(c, pid, ref, &resp) : PW_CALL_REFUSED;
    }

    if (ref == NULL) {
        snprintf(err, size, "payment %s has nothing to refund", pid);
        return FW_FAIL;
    }

    if (call != PW_CALL_OK) {
        snprintf(err, size, "%s", resp.error);
        pw_resp_free(&resp);
        return call == PW_CALL_TRANSIENT ? FW_RETRY : FW_FAIL;
    }

    id = json_string_value(json_object_get(resp.body, "id"));
    set = BCON_NEW("refund_id", BCON_UTF8(id ? id : ""));
    pw_resp_free(&resp);

    return pw_moved(pw_transition(c, p, "refunded", set, PW_ACTOR), err,
                    size);
}


/* request.completed: capture the holds; request.cancelled: release them */

static fw_result_e
pw_request(pw_ctx_t *c, const char *type, json_t *data, char *err,
    size_t size)
{
    int           n, completed;
    bson_t       *list, p;
    bson_iter_t   it;
    const char   *rid;
    uint32_t      len;
    const uint8_t *buf;
    fw_result_e   rc, worst;

    rid = json_string_value(json_object_get(data, "request_id"));
    if (rid == NULL) {
        snprintf(err, size, "no request_id");
        return FW_FAIL;
    }

    n = pw_payments_of_request(c, rid, &list);
    if (n < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    completed = (strcmp(type, "request.completed") == 0);
    worst = FW_OK;

    if (bson_iter_init(&it, list)) {
        while (bson_iter_next(&it)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
                continue;
            }

            bson_iter_document(&it, &len, &buf);
            if (!bson_init_static(&p, buf, len)) {
                continue;
            }

            rc = completed ? pw_capture(c, &p, err, size)
                           : pw_cancel(c, &p, err, size);

            if (rc != FW_OK) {
                worst = rc;
            }
        }
    }

    bson_destroy(list);

    return worst;
}


static fw_result_e
pw_capture(pw_ctx_t *c, bson_t *p, char *err, size_t size)
{
    char         pid[25];
    pw_resp_t    resp;
    pw_call_e    call;
    const char  *pi, *method, *status;

    pw_oid_hex(p, "_id", pid);
    method = pw_str(p, "method");

    if (method == NULL || strcmp(method, "stripe") != 0
        || pw_status_rank(pw_str(p, "status")) > 1)
    {
        /* PayPal captures on approval; a finished payment stays so */
        return FW_OK;
    }

    pi = pw_str(p, "stripe_payment_intent");

    if (pi == NULL) {
        snprintf(err, size, "payment %s has no intent yet", pid);
        return FW_RETRY;
    }

    /* wanted from now on: a hold authorized later is captured then */
    if (!pw_bool(p, "capture_wanted")
        && pw_payment_set(c, pid, BCON_NEW("capture_wanted", BCON_BOOL(true)))
           != 0)
    {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    call = pw_stripe_step(c, pid, pi, "capture", &resp);

    if (call == PW_CALL_TRANSIENT) {
        snprintf(err, size, "%s", resp.error);
        pw_resp_free(&resp);
        return FW_RETRY;
    }

    if (call == PW_CALL_REFUSED) {
        /* not authorized yet: amount_capturable_updated will capture */
        pw_resp_free(&resp);
        return FW_OK;
    }

    status = json_string_value(json_object_get(resp.body, "status"));

    if (pw_payment_set(c, pid, BCON_NEW("captured", BCON_BOOL(true))) != 0) {
        pw_resp_free(&resp);
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    if (status && strcmp(status, "succeeded") == 0) {
        pw_resp_free(&resp);
        return pw_moved(pw_transition(c, p, "succeeded", NULL, PW_ACTOR),
                        err, size);
    }

    /* payment_intent.succeeded comes as a webhook */
    pw_resp_free(&resp);

    return FW_OK;
}


static fw_result_e
pw_cancel(pw_ctx_t *c, bson_t *p, char *err, size_t size)
{
    char         pid[25];
    pw_resp_t    resp;
    pw_call_e    call;
    const char  *pi, *status;

    pw_oid_hex(p, "_id", pid);
    status = pw_str(p, "status");

    if (status && strcmp(status, "succeeded") == 0) {
        /* the policy: a paid request cancelled is refunded */
        return c->refund_on_cancel ? pw_refund(c, p, err, size) : FW_OK;
    }

    if (pw_status_rank(status) > 1) {
        return FW_OK;
    }

    pi = pw_str(p, "stripe_payment_intent");

    if (pi != NULL) {
        call = pw_stripe_step(c, pid, pi, "cancel", &resp);
        pw_resp_free(&resp);

        if (call == PW_CALL_TRANSIENT) {
            snprintf(err, size, "%s", resp.error);
            return FW_RETRY;
        }
    }

    /* an intent not yet created never will be: the payment is failed */
    return pw_failed(c, p, "request_cancelled", err, size);
}


static fw_result_e
pw_stripe_webhook(pw_ctx_t *c, json_t *data, char *err, size_t size)
{
    int           found, seen;
    char          key[300], pid[25];
    json_t       *obj;
    bson_t       *p;
    const char   *id, *type, *ref;
    fw_result_e   rc;

    id = json_string_value(json_object_get(data, "event_id"));
    type = json_string_value(json_object_get(json_object_get(data, "event"),
                                             "type"));
    obj = json_object_get(json_object_get(json_object_get(data, "event"),
                                          "data"), "object");

    if (id == NULL || type == NULL || !json_is_object(obj)) {
        snprintf(err, size, "a Stripe event without id, type or object");
        return FW_FAIL;
    }

    snprintf(key, sizeof(key), "stripe:%s", id);

    seen = pw_webhook_seen(c, key);
    if (seen < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    if (seen) {
        pw_count("feira_payment_webhooks_replayed_total",
                 "Webhook events delivered again, not applied again",
                 "provider=\"stripe\"");
        return FW_OK;
    }

    /* the payment: our metadata, else the intent of the object */

    found = 0;
    ref = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                            "payment_id"));
    if (ref) {
        found = pw_payment_get(c, ref, &p);
    }

    if (found == 0) {
        ref = json_string_value(json_object_get(obj,
                  strncmp(type, "charge.", 7) == 0 ? "payment_intent" : "id"));
        found = ref ? pw_payment_find(c, "stripe_payment_intent", ref, &p)
                    : 0;
    }

    if (found < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    rc = FW_OK;

    if (found) {
        pw_oid_hex(p, "_id", pid);

        if (strcmp(type, "payment_intent.succeeded") == 0) {
            rc = pw_moved(pw_transition(c, p, "succeeded", NULL, PW_ACTOR),
                          err, size);

        } else if (strcmp(type, "payment_intent.payment_failed") == 0
                   || strcmp(type, "payment_intent.canceled") == 0)
        {
            rc = pw_failed(c, p, type + sizeof("payment_intent.") - 1, err,
                           size);

        } else if (strcmp(type, "payment_intent.requires_action") == 0) {
            rc = pw_moved(pw_transition(c, p, "requires_action", NULL,
                                        PW_ACTOR), err, size);

        } else if (strcmp(type, "payment_intent.amount_capturable_updated")
                   == 0)
        {
            /* the hold is in place; captured now if the job is done */
            if (pw_payment_set(c, pid, BCON_NEW("authorized",
                                                BCON_BOOL(true)))
                != 0)
            {
                rc = FW_RETRY;

            } else if (pw_bool(p, "capture_wanted")) {
                rc = pw_capture(c, p, err, size);
            }

        } else if (strcmp(type, "charge.refunded") == 0) {
            rc = pw_moved(pw_transition(c, p, "refunded", NULL, PW_ACTOR),
                          err, size);
        }

        /* payment_intent.processing, created...: nothing to apply */

        bson_destroy(p);
    }

    if (rc == FW_OK && pw_webhook_record(c, key, type) != 0) {
        snprintf(err, size, "mongo unavailable");
        rc = FW_RETRY;
    }

    return rc;
}


static fw_result_e
pw_paypal_webhook(pw_ctx_t *c, json_t *data, char *err, size_t size)
{
    int           found, seen, verified;
    char          key[300], pid[25];
    json_t       *event, *res, *unit;
    bson_t       *p, *set;
    pw_resp_t     resp;
    pw_call_e     call;
    const char   *id, *type, *ref, *order, *capture, *status;
    fw_result_e   rc;

    id = json_string_value(json_object_get(data, "event_id"));
    event = json_object_get(data, "event");
    type = json_string_value(json_object_get(event, "event_type"));
    res = json_object_get(event, "resource");

    if (id == NULL || type == NULL) {
        snprintf(err, size, "a PayPal event without id or type");
        return FW_FAIL;
    }

    snprintf(key, sizeof(key), "paypal:%s", id);

    seen = pw_webhook_seen(c, key);
    if (seen < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    if (seen) {
        pw_count("feira_payment_webhooks_replayed_total",
                 "Webhook events delivered again, not applied again",
                 "provider=\"paypal\"");
        return FW_OK;
    }

    /* PayPal's word on its own signature, before anything is applied */

    call = pw_paypal_verify(c, json_object_get(data, "headers"), event,
                            &verified);

    if (call == PW_CALL_TRANSIENT) {
        snprintf(err, size, "verify-webhook-signature unavailable");
        return FW_RETRY;
    }

    if (!verified) {
        fw_log_warn("paypal: webhook %s not verified: dropped", id);
        pw_count("feira_payment_webhooks_rejected_total",
                 "Webhook events whose signature did not verify",
                 "provider=\"paypal\"");
        return FW_OK;
    }

    if (!json_is_object(res)) {
        /* verified, but nothing of ours to apply */
        return pw_webhook_record(c, key, type) == 0 ? FW_OK : FW_RETRY;
    }

    /* the payment: custom_id is ours (the order's unit, or the capture) */

    unit = json_array_get(json_object_get(res, "purchase_units"), 0);
    ref = json_string_value(json_object_get(unit ? unit : res, "custom_id"));

    found = ref ? pw_payment_get(c, ref, &p) : 0;

    if (found == 0 && strcmp(type, "CHECKOUT.ORDER.APPROVED") == 0
        && json_string_value(json_object_get(res, "id")))
    {
        found = pw_payment_find(c, "paypal_order_id",
                                json_string_value(json_object_get(res, "id")),
                                &p);
    }

    if (found < 0) {
        snprintf(err, size, "mongo unavailable");
        return FW_RETRY;
    }

    rc = FW_OK;

    if (found) {
        pw_oid_hex(p, "_id", pid);

        if (strcmp(type, "CHECKOUT.ORDER.APPROVED") == 0
            && pw_status_rank(pw_str(p, "status")) <= 1)
        {
            order = pw_str(p, "paypal_order_id");

            call = order ? pw_paypal_capture(c, pid, order, &resp)
                         : PW_CALL_TRANSIENT;

            if (order == NULL) {
                snprintf(err, size, "payment %s has no order yet", pid);
                rc = FW_RETRY;

            } else if (call == PW_CALL_TRANSIENT) {
                snprintf(err, size, "%s", resp.error);
                pw_resp_free(&resp);
                rc = FW_RETRY;

            } else if (call == PW_CALL_REFUSED) {
                pw_resp_free(&resp);
                rc = pw_failed(c, p, "paypal_capture_refused", err, size);

            } else {
                status = json_string_value(json_object_get(resp.body,
                                                           "status"));
                capture = json_string_value(json_object_get(
                    json_array_get(json_object_get(json_object_get(
                        json_array_get(json_object_get(resp.body,
                                                       "purchase_units"), 0),
                        "payments"), "captures"), 0), "id"));

                pw_pause(c, "paypal: order captured", pid);

                set = BCON_NEW("paypal_capture_id",
                               BCON_UTF8(capture ? capture : ""));

                if (status && strcmp(status, "COMPLETED") == 0) {
                    rc = pw_moved(pw_transition(c, p, "succeeded", set,
                                                PW_ACTOR), err, size);

                } else if (pw_payment_set(c, pid, set) != 0) {
                    rc = FW_RETRY;
                }

                pw_resp_free(&resp);
            }

        } else if (strcmp(type, "PAYMENT.CAPTURE.COMPLETED") == 0) {
            capture = json_string_value(json_object_get(res, "id"));
            set = BCON_NEW("paypal_capture_id",
                           BCON_UTF8(capture ? capture : ""));
            rc = pw_moved(pw_transition(c, p, "succeeded", set, PW_ACTOR),
                          err, size);

        } else if (strcmp(type, "PAYMENT.CAPTURE.DENIED") == 0) {
            rc = pw_failed(c, p, "paypal_capture_denied", err, size);

        } else if (strcmp(type, "PAYMENT.CAPTURE.REFUNDED") == 0) {
            rc = pw_moved(pw_transition(c, p, "refunded", NULL, PW_ACTOR),
                          err, size);
        }

        bson_destroy(p);
    }

    if (rc == FW_OK && pw_webhook_record(c, key, type) != 0) {
        snprintf(err, size, "mongo unavailable");
        rc = FW_RETRY;
    }

    return rc;
}


static fw_result_e
pw_moved(int rc, char *err, size_t size)
{
    if (rc < 0) {
        snprintf(err, size, "the status change could not be stored or "
                 "published");
        return FW_RETRY;
    }

    return FW_OK;
}


static fw_result_e
pw_failed(pw_ctx_t *c, bson_t *p, const char *reason, char *err,
    size_t size)
{
    return pw_moved(pw_transition(c, p, "failed",
                                  BCON_NEW("failure_reason",
                                           BCON_UTF8(reason)),
                                  PW_ACTOR), err, size);
}


/* tests only: a window between a provider call and storing its result */

static void
pw_pause(pw_ctx_t *c, const char *what, const char *pid)
{
    if (c->test_pause_ms > 0) {
        fw_log_info("%s for payment %s; storing in %ld ms", what, pid,
                    c->test_pause_ms);
        usleep((useconds_t) c->test_pause_ms * 1000);
    }
}


static void
pw_count(const char *name, const char *help, const char *labels)
{
    fw_metrics_count(name, help, labels, 1);
}
