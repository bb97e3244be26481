/*
 * PayPal's Orders v2 API: an order (the payer approves it at its approve
 * link), its capture, a refund of the capture, and the check of a webhook
 * with verify-webhook-signature.  The OAuth2 client-credentials token is
 * kept until shortly before it expires.  Every mutating call carries
 * PayPal-Request-Id "<payment id>:<step>", PayPal's idempotency key.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


static pw_call_e pw_paypal_token(pw_ctx_t *c, char *error, size_t size);
static pw_call_e pw_paypal_call(pw_ctx_t *c, const char *path,
    const char *request_id, const char *step, json_t *body, pw_resp_t *resp);


pw_call_e
pw_paypal_create(pw_ctx_t *c, const bson_t *payment, pw_resp_t *resp)
{
    char        pid[25], rid[25], value[32], request_id[64];
    json_t     *body;
    int64_t     amount;
    pw_call_e   rc;

    memset(resp, 0, sizeof(pw_resp_t));

    pw_oid_hex(payment, "_id", pid);
    pw_oid_hex(payment, "request_id", rid);

    /* minor units to PayPal's decimal string (two decimals: BRL, USD) */
    amount = pw_int(payment, "amount");
    snprintf(value, sizeof(value), "%lld.%02lld", (long long) (amount / 100),
             (long long) (amount % 100));

    body = json_pack("{s:s, s:[{s:s, s:s, s:s, s:{s:s, s:s}}]}",
                     "intent", "CAPTURE",
                     "purchase_units",
                         "reference_id", rid,
                         "custom_id", pid,
                         "description", "Feira service request",
                         "amount",
                             "currency_code", pw_str(payment, "currency"),
                             "value", value);
    if (body == NULL) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return PW_CALL_TRANSIENT;
    }

    snprintf(request_id, sizeof(request_id), "%s:create", pid);

    rc = pw_paypal_call(c, "/v2/checkout/orders", request_id, "create", body,
                        resp);
    json_decref(body);

    return rc;
}


pw_call_e
pw_paypal_capture(pw_ctx_t *c, const char *pid, const char *order,
    pw_resp_t *resp)
{
    char       path[256], request_id[64];
    json_t    *body;
    pw_call_e  rc;

    memset(resp, 0, sizeof(pw_resp_t));

    if (strspn(order, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        != strlen(order) || strlen(order) > 64)
    {
        snprintf(resp->error, sizeof(resp->error), "bad order id");
        return PW_CALL_REFUSED;
    }

    snprintf(path, sizeof(path), "/v2/checkout/orders/%s/capture", order);
    snprintf(request_id, sizeof(request_id), "%s:capture", pid);

    body = json_object();
    rc = pw_paypal_call(c, path, request_id, "capture", body, resp);
    json_decref(body);

    return rc;
}


pw_call_e
pw_paypal_refund(pw_ctx_t *c, const char *pid, const char *capture,
    pw_resp_t *resp)
{
    char       path[256], request_id[64];
    json_t    *body;
    pw_call_e  rc;

    memset(resp, 0, sizeof(pw_resp_t));

    if (strspn(capture, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        != strlen(capture) || strlen(capture) > 64)
    {
        snprintf(resp->error, sizeof(resp->error), "bad capture id");
        return PW_CALL_REFUSED;
    }

    snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", capture);
    snprintf(request_id, sizeof(request_id), "%s:refund", pid);

    body = json_object();
    rc = pw_paypal_call(c, path, request_id, "refund", body, resp);
    json_decref(body);

    return rc;
}


/* *verified: 1 when PayPal answers verification_status SUCCESS */

pw_call_e
pw_paypal_verify(pw_ctx_t *c, json_t *headers, json_t *event, int *verified)
{
    json_t      *body;
    pw_resp_t    resp;
    pw_call_e    rc;
    const char  *status;

    *verified = 0;

    if (c->paypal_webhook_id == NULL || !json_is_object(headers)) {
        return PW_CALL_REFUSED;
    }

    body = json_pack("{s:O, s:O, s:O, s:O, s:O, s:s, s:O}",
                     "auth_algo", json_object_get(headers, "auth_algo"),
                     "cert_url", json_object_get(headers, "cert_url"),
                     "transmission_id",
                         json_object_get(headers, "transmission_id"),
                     "transmission_sig",
                         json_object_get(headers, "transmission_sig"),
                     "transmission_time",
                         json_object_get(headers, "transmission_time"),
                     "webhook_id", c->paypal_webhook_id,
                     "webhook_event", event);
    if (body == NULL) {
        return PW_CALL_REFUSED;
    }

    rc = pw_paypal_call(c, "/v1/notifications/verify-webhook-signature",
                        NULL, "verify", body, &resp);
    json_decref(body);

    if (rc == PW_CALL_OK) {
        status = json_string_value(json_object_get(resp.body,
                                                   "verification_status"));
        *verified = (status != NULL && strcmp(status, "SUCCESS") == 0);
    }

    pw_resp_free(&resp);

    return rc;
}


static pw_call_e
pw_paypal_call(pw_ctx_t *c, const char *path, const char *request_id,
    const char *step, json_t *body, pw_resp_t *resp)
{
    int          attempt;
    char        *text;
    char         url[512], auth[2048], rid[128], labels[128];
    pw_call_e    rc;
    const char  *headers[5];

    memset(resp, 0, sizeof(pw_resp_t));

    text = json_dumps(body, JSON_COMPACT);
    if (text == NULL) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return PW_CALL_TRANSIENT;
    }

    snprintf(url, sizeof(url), "%s%s", c->paypal_base, path);

    for (attempt = 0; attempt < 2; attempt++) {
        rc = pw_paypal_token(c, resp->error, sizeof(resp->error));
        if (rc != PW_CALL_OK) {
            free(text);
            return rc;
        }

        snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
                 c->paypal_token);

        headers[0] = auth;
        headers[1] = "Content-Type: application/json";
        headers[2] = NULL;

        if (request_id != NULL) {
            snprintf(rid, sizeof(rid), "PayPal-Request-Id: %s", request_id);
            headers[2] = rid;
            headers[3] = NULL;
        }

        rc = pw_http(c, "POST", url, headers, NULL, text, resp);

        if (resp->status != 401) {
            break;
        }

        /* the token was revoked or expired early: a new one, once */
        pw_resp_free(resp);
        free(c->paypal_token);
        c->paypal_token = NULL;
    }

    free(text);

    snprintf(labels, sizeof(labels), "provider=\"paypal\",step=\"%s\","
             "result=\"%s\"", step,
             rc == PW_CALL_OK ? "ok"
                              : rc == PW_CALL_REFUSED ? "refused"
                                                      : "transient");
    fw_metrics_count(pw_metric_calls, "Calls to the payment providers",
                     labels, 1);

    fw_log_info("paypal: %s%s%s: %s", step, request_id ? " " : "",
                request_id ? request_id : "",
                rc == PW_CALL_OK ? "ok" : resp->error);

    return rc;
}


/* the OAuth2 client-credentials token, kept until a minute before expiry */

static pw_call_e
pw_paypal_token(pw_ctx_t *c, char *error, size_t size)
{
    char         url[512], userpwd[1024];
    json_int_t   expires_in;
    pw_resp_t    resp;
    pw_call_e    rc;
    const char  *token;
    const char  *headers[] = {
        "Content-Type: application/x-www-form-urlencoded",
        "Accept: application/json",
        NULL
    };

    if (c->paypal_token != NULL && fw_wall_ms() < c->paypal_token_expires) {
        return PW_CALL_OK;
    }

    free(c->paypal_token);
    c->paypal_token = NULL;

    if (c->paypal_client_id == NULL || c->paypal_secret == NULL) {
        snprintf(error, size, "PayPal is not configured");
        return PW_CALL_REFUSED;
    }

    snprintf(url, sizeof(url), "%s/v1/oauth2/token", c->paypal_base);
    snprintf(userpwd, sizeof(userpwd), "%s:%s", c->paypal_client_id,
             c->paypal_secret);

    rc = pw_http(c, "POST", url, headers, userpwd,
                 "grant_type=client_credentials", &resp);

    memset(userpwd, 0, sizeof(userpwd));

    if (rc != PW_CALL_OK) {
        snprintf(error, size, "token: %.200s", resp.error);
        pw_resp_free(&resp);
        /* bad credentials are for an operator: retried, then dead */
        return PW_CALL_TRANSIENT;
    }

    token = json_string_value(json_object_get(resp.body, "access_token"));
    expires_in = json_integer_value(json_object_get(resp.body, "expires_in"));

    if (token == NULL || expires_in <= 0) {
        snprintf(error, size, "token: no access_token in the answer");
        pw_resp_free(&resp);
        return PW_CALL_TRANSIENT;
    }

    c->paypal_token = strdup(token);
    c->paypal_token_expires = fw_wall_ms()
                              + (expires_in > 120 ? expires_in - 60
                                                  : expires_in / 2) * 1000;
    pw_resp_free(&resp);

    fw_metrics_count("feira_payment_paypal_tokens_total",
                     "OAuth2 tokens fetched from PayPal", "", 1);

    return c->paypal_token ? PW_CALL_OK : PW_CALL_TRANSIENT;
}
