/*
 * Stripe's PaymentIntents API (form-encoded requests, JSON answers):
 * a hold (capture_method=manual), its capture, its cancellation and a
 * refund.  Every call carries Idempotency-Key "<payment id>:<step>".
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


static pw_call_e pw_stripe_call(pw_ctx_t *c, const char *path,
    const char *pid, const char *step, const char *form, pw_resp_t *resp);


pw_call_e
pw_stripe_create(pw_ctx_t *c, const bson_t *payment, const char *destination,
    pw_resp_t *resp)
{
    int        n;
    char       pid[25], rid[25], cur[4], form[1024];
    char      *dest;
    size_t     i;
    pw_call_e  rc;

    memset(resp, 0, sizeof(pw_resp_t));

    pw_oid_hex(payment, "_id", pid);
    pw_oid_hex(payment, "request_id", rid);

    /* Stripe's currencies are lower case ISO codes */
    snprintf(cur, sizeof(cur), "%s", pw_str(payment, "currency"));
    for (i = 0; cur[i]; i++) {
        if (cur[i] >= 'A' && cur[i] <= 'Z') {
            cur[i] += 'a' - 'A';
        }
    }

    n = snprintf(form, sizeof(form),
                 "amount=%lld&currency=%s&capture_method=manual"
                 "&metadata[payment_id]=%s&metadata[request_id]=%s"
                 "&payment_method_types[]=card",
                 (long long) pw_int(payment, "amount"), cur, pid, rid);

    if (destination != NULL && destination[0] != '\0') {
        /* a destination charge: the provider's share, our fee kept */
        dest = pw_form_escape(destination);
        if (dest == NULL) {
            snprintf(resp->error, sizeof(resp->error), "out of memory");
            return PW_CALL_TRANSIENT;
        }

        n += snprintf(form + n, sizeof(form) - n,
                      "&application_fee_amount=%lld"
                      "&transfer_data[destination]=%s",
                      (long long) pw_int(payment, "fee"), dest);
        free(dest);
    }

    if (n < 0 || (size_t) n >= sizeof(form)) {
        snprintf(resp->error, sizeof(resp->error), "form too long");
        return PW_CALL_REFUSED;
    }

    rc = pw_stripe_call(c, "/v1/payment_intents", pid, "create", form, resp);

    return rc;
}


/* capture, cancel (of the payment intent) or refund */

pw_call_e
pw_stripe_step(pw_ctx_t *c, const char *pid, const char *pi,
    const char *step, pw_resp_t *resp)
{
    char   path[256], form[256];
    char  *esc;

    memset(resp, 0, sizeof(pw_resp_t));

    esc = pw_form_escape(pi);
    if (esc == NULL) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return PW_CALL_TRANSIENT;
    }

    form[0] = '\0';

    if (strcmp(step, "refund") == 0) {
        snprintf(path, sizeof(path), "/v1/refunds");
        snprintf(form, sizeof(form), "payment_intent=%s"
                 "&metadata[payment_id]=%s", esc, pid);

    } else if (strcmp(step, "cancel") == 0) {
        snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel", esc);
        snprintf(form, sizeof(form), "cancellation_reason=abandoned");

    } else {
        snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture", esc);
    }

    free(esc);

    return pw_stripe_call(c, path, pid, step, form, resp);
}


static pw_call_e
pw_stripe_call(pw_ctx_t *c, const char *path, const char *pid,
    const char *step, const char *form, pw_resp_t *resp)
{
    char         url[512], auth[512], key[96], labels[128];
    pw_call_e    rc;
    const char  *headers[5];

    snprintf(url, sizeof(url), "%s%s", c->stripe_base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->stripe_key);
    snprintf(key, sizeof(key), "Idempotency-Key: %s:%s", pid, step);

    headers[0] = auth;
    headers[1] = key;
    headers[2] = "Content-Type: application/x-www-form-urlencoded";
    headers[3] = "Stripe-Version: 2024-06-20";
    headers[4] = NULL;

    rc = pw_http(c, "POST", url, headers, NULL, form, resp);

    snprintf(labels, sizeof(labels), "provider=\"stripe\",step=\"%s\","
             "result=\"%s\"", step,
             rc == PW_CALL_OK ? "ok"
                              : rc == PW_CALL_REFUSED ? "refused"
                                                      : "transient");
    fw_metrics_count(pw_metric_calls, "Calls to the payment providers",
                     labels, 1);

    fw_log_info("stripe: %s of payment %s: %s", step, pid,
                rc == PW_CALL_OK ? "ok" : resp->error);

    return rc;
}
