/*
 * Payments in MongoDB (collection "payments"; docs/events.md): jobs for the
 * thread pool, never the event loop.  feira_payments writes a payment once,
 * pending; the payment worker moves it on.  The request is read from the
 * "requests" collection of feira_services.
 */

#include "ngx_http_feira_payments_module.h"

#include <openssl/evp.h>


static json_t *ngx_feira_pay_view(const bson_t *doc, ngx_uint_t secrets);
static json_t *ngx_feira_pay_data(const bson_t *doc);
static ngx_int_t ngx_feira_pay_oid_eq(const bson_t *doc, const char *field,
    const char *hex);
static const char *ngx_feira_pay_str(const bson_t *doc, const char *field);
static void ngx_feira_pay_oid_hex(const bson_t *doc, const char *field,
    char *hex);


void
ngx_feira_pay_create_job(void *data)
{
    ngx_feira_pay_job_t  *job = data;

    bson_t               *filter, *doc;
    bson_oid_t            rid, pid, client, provider;
    bson_iter_t           it, price;
    ngx_uint_t            k;
    const char           *status, *currency, *method;
    char                  cur3[4];
    const bson_t         *found;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_client_t      *mc;
    mongoc_collection_t  *requests, *payments;
    int64_t               amount, fee;
    unsigned int          mdlen;
    u_char                md[EVP_MAX_MD_SIZE];
    char                  key[64];

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    mc = ngx_feira_mongo_pop();
    if (mc == NULL) {
        return;
    }

    requests = mongoc_client_get_collection(mc, ngx_feira_mongo_db(),
                                            "requests");
    payments = mongoc_client_get_collection(mc, ngx_feira_mongo_db(),
                                            "payments");

    doc = NULL;
    filter = NULL;
    cur = NULL;

    /* the request: the caller's, accepted, with a price */

    bson_oid_init_from_string(&rid, job->id);
    filter = BCON_NEW("_id", BCON_OID(&rid));
    cur = mongoc_collection_find_with_opts(requests, filter, NULL, NULL);

    if (!mongoc_cursor_next(cur, &found)) {
        if (mongoc_cursor_error(cur, &error)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: payments: %s", error.message);
            goto done;
        }

        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such request";
        goto done;
    }

    if (ngx_feira_pay_oid_eq(found, "client_id", job->caller) != NGX_OK) {
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "only the request's client pays for it";
        goto done;
    }

    status = ngx_feira_pay_str(found, "status");

    if (status == NULL
        || (ngx_strcmp(status, "accepted") != 0
            && ngx_strcmp(status, "in_progress") != 0
            && ngx_strcmp(status, "completed") != 0))
    {
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the request is not accepted, in progress or "
                      "completed";
        goto done;
    }

    amount = -1;
    currency = NULL;

    if (bson_iter_init_find(&it, found, "price")
        && BSON_ITER_HOLDS_DOCUMENT(&it)
        && bson_iter_recurse(&it, &price))
    {
        while (bson_iter_next(&price)) {
            if (ngx_strcmp(bson_iter_key(&price), "amount") == 0
                && (BSON_ITER_HOLDS_INT32(&price)
                    || BSON_ITER_HOLDS_INT64(&price)))
            {
                amount = bson_iter_as_int64(&price);

            } else if (ngx_strcmp(bson_iter_key(&price), "currency") == 0
                       && BSON_ITER_HOLDS_UTF8(&price))
            {
                currency = bson_iter_utf8(&price, NULL);
            }
        }
    }

    if (amount <= 0 || amount > 100000000 || currency == NULL
        || ngx_strlen(currency) != 3)
    {
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the request has no price";
        goto done;
    }

    /* the request's document goes with its cursor: the currency is kept */
    ngx_memcpy(cur3, currency, 4);
    currency = cur3;

    if (!bson_iter_init_find(&it, found, "provider_id")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the request has no provider";
        goto done;
    }

    bson_oid_copy(bson_iter_oid(&it), &provider);
    bson_oid_init_from_string(&client, job->caller);

    job->result = NULL;

    /*
     * One live payment per request.  A pending one of the same method is
     * answered again and its command sent again (the worker is
     * idempotent): a retry after Kafka was down completes it.
     */

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);

    filter = BCON_NEW("request_id", BCON_OID(&rid));
    cur = mongoc_collection_find_with_opts(payments, filter, NULL, NULL);

    k = 0;

    while (mongoc_cursor_next(cur, &found)) {
        k++;
        status = ngx_feira_pay_str(found, "status");

        if (status && (ngx_strcmp(status, "failed") == 0
                       || ngx_strcmp(status, "refunded") == 0))
        {
            continue;
        }

        method = ngx_feira_pay_str(found, "method");

        if (status && ngx_strcmp(status, "pending") == 0
            && method && ngx_strcmp(method, job->method) == 0)
        {
            job->result = ngx_feira_pay_view(found, 0);
            job->payment = ngx_feira_pay_data(found);
            job->status = NGX_HTTP_ACCEPTED;
            job->command = 1;

            if (job->result == NULL || job->payment == NULL) {
                job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            goto done;
        }

        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the request already has a payment";
        goto done;
    }

    if (mongoc_cursor_error(cur, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: payments: %s", error.message);
        goto done;
    }

    /*
     * The k-th payment of a request has a fixed id (SHA-256 of the request
     * id and k): its insert is the claim.  Of concurrent creators exactly
     * one inserts it (a unique _id, atomic even in FerretDB), and nothing
     * is left half-done if the insert fails.
     */

    ngx_snprintf((u_char *) key, sizeof(key), "payment:%s:%ui%Z", job->id, k);

    if (!EVP_Digest(key, ngx_strlen(key), md, &mdlen, EVP_sha256(), NULL)) {
        goto done;
    }

    bson_oid_init_from_data(&pid, md);

    fee = amount * job->fee_bps / 10000;

    doc = BCON_NEW("_id", BCON_OID(&pid),
                   "request_id", BCON_OID(&rid),
                   "payer_id", BCON_OID(&client),
                   "payee_id", BCON_OID(&provider),
                   "method", BCON_UTF8(job->method),
                   "amount", BCON_INT64(amount),
                   "currency", BCON_UTF8(currency),
                   "fee", BCON_INT64(fee),
                   "status", BCON_UTF8("pending"),
                   "created_at", BCON_DATE_TIME(job->now),
                   "updated_at", BCON_DATE_TIME(job->now));

    if (!mongoc_collection_insert_one(payments, doc, NULL, NULL, &error)) {
        if (error.code == 11000) {
            job->status = NGX_HTTP_CONFLICT;
            job->detail = "a payment of this request is being created";

        } else {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: payments: %s", error.message);
        }

        goto done;
    }

    job->result = ngx_feira_pay_view(doc, 0);
    job->payment = ngx_feira_pay_data(doc);

    if (job->result == NULL || job->payment == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    job->status = NGX_HTTP_ACCEPTED;
    job->created = 1;
    job->command = 1;

done:

    if (doc) {
        bson_destroy(doc);
    }

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(payments);
    mongoc_collection_destroy(requests);
    ngx_feira_mongo_push(mc);
}


void
ngx_feira_pay_get_job(void *data)
{
    ngx_feira_pay_job_t  *job = data;

    bson_t               *filter;
    bson_oid_t            pid;
    ngx_uint_t            payer;
    const bson_t         *found;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_client_t      *mc;
    mongoc_collection_t  *payments;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    mc = ngx_feira_mongo_pop();
    if (mc == NULL) {
        return;
    }

    payments = mongoc_client_get_collection(mc, ngx_feira_mongo_db(),
                                            "payments");

    bson_oid_init_from_string(&pid, job->id);
    filter = BCON_NEW("_id", BCON_OID(&pid));
    cur = mongoc_collection_find_with_opts(payments, filter, NULL, NULL);

    if (!mongoc_cursor_next(cur, &found)) {
        if (mongoc_cursor_error(cur, &error)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: payments: %s", error.message);
        } else {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such payment";
        }

        goto done;
    }

    payer = (ngx_feira_pay_oid_eq(found, "payer_id", job->caller) == NGX_OK);

    if (!payer
        && ngx_feira_pay_oid_eq(found, "payee_id", job->caller) != NGX_OK
        && ngx_strcmp(job->role, "admin") != 0)
    {
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "only the payer, the payee and admins see a payment";
        goto done;
    }

    /* what the payer needs to act: to the payer only */
    job->result = ngx_feira_pay_view(found, payer);
    job->status = job->result ? NGX_HTTP_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

done:

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(payments);
    ngx_feira_mongo_push(mc);
}


void
ngx_feira_pay_refund_job(void *data)
{
    ngx_feira_pay_job_t  *job = data;

    bson_t               *filter;
    bson_oid_t            pid;
    const char           *status;
    const bson_t         *found;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_client_t      *mc;
    mongoc_collection_t  *payments;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    mc = ngx_feira_mongo_pop();
    if (mc == NULL) {
        return;
    }

    payments = mongoc_client_get_collection(mc, ngx_feira_mongo_db(),
                                            "payments");

    bson_oid_init_from_string(&pid, job->id);
    filter = BCON_NEW("_id", BCON_OID(&pid));
    cur = mongoc_collection_find_with_opts(payments, filter, NULL, NULL);

    if (!mongoc_cursor_next(cur, &found)) {
        if (mongoc_cursor_error(cur, &error)) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: payments: %s", error.message);
        } else {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such payment";
        }

        goto done;
    }

    status = ngx_feira_pay_str(found, "status");

    if (status == NULL
        || (ngx_strcmp(status, "succeeded") != 0
            && ngx_strcmp(status, "refunded") != 0))
    {
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "only a succeeded payment is refunded";
        goto done;
    }

    job->result = ngx_feira_pay_view(found, 0);
    job->payment = ngx_feira_pay_data(found);

    if (job->result == NULL || job->payment == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    /* refunded already: nothing more to ask of the worker */
    job->command = (ngx_strcmp(status, "succeeded") == 0);
    job->status = NGX_HTTP_ACCEPTED;

done:

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(payments);
    ngx_feira_mongo_push(mc);
}


/* what a participant sees of a payment */

static json_t *
ngx_feira_pay_view(const bson_t *doc, ngx_uint_t secrets)
{
    json_t       *v;
    bson_iter_t   it;
    const char   *key;
    char          buf[32];

    v = json_object();
    if (v == NULL || !bson_iter_init(&it, doc)) {
        json_decref(v);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), buf);
            json_object_set_new(v, ngx_strcmp(key, "_id") == 0 ? "id" : key,
                                json_string(buf));

        } else if (BSON_ITER_HOLDS_UTF8(&it)
                   && (ngx_strcmp(key, "method") == 0
                       || ngx_strcmp(key, "currency") == 0
                       || ngx_strcmp(key, "status") == 0
                       || ngx_strcmp(key, "failure_reason") == 0))
        {
            json_object_set_new(v, key, json_string(bson_iter_utf8(&it,
                                                                   NULL)));

        } else if ((BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it))
                   && (ngx_strcmp(key, "amount") == 0
                       || ngx_strcmp(key, "fee") == 0))
        {
            json_object_set_new(v, key, json_integer(bson_iter_as_int64(&it)));

        } else if (BSON_ITER_HOLDS_DATE_TIME(&it)
                   && (ngx_strcmp(key, "created_at") == 0
                       || ngx_strcmp(key, "updated_at") == 0))
        {
            ngx_feira_rfc3339(bson_iter_date_time(&it), buf, sizeof(buf));
            json_object_set_new(v, key, json_string(buf));

        } else if (secrets && BSON_ITER_HOLDS_UTF8(&it)
                   && (ngx_strcmp(key, "client_secret") == 0
                       || ngx_strcmp(key, "approve_url") == 0))
        {
            json_object_set_new(v, key, json_string(bson_iter_utf8(&it,
                                                                   NULL)));
        }
    }

    return v;
}


/* the data of the events and commands of a payment (docs/events.md) */

static json_t *
ngx_feira_pay_data(const bson_t *doc)
{
    bson_iter_t  it;
    char         pid[25], rid[25], payer[25], payee[25];
    int64_t      amount, fee;

    ngx_feira_pay_oid_hex(doc, "_id", pid);
    ngx_feira_pay_oid_hex(doc, "request_id", rid);
    ngx_feira_pay_oid_hex(doc, "payer_id", payer);
    ngx_feira_pay_oid_hex(doc, "payee_id", payee);

    amount = bson_iter_init_find(&it, doc, "amount")
             ? bson_iter_as_int64(&it) : 0;
    fee = bson_iter_init_find(&it, doc, "fee") ? bson_iter_as_int64(&it) : 0;

    if (ngx_feira_pay_str(doc, "currency") == NULL
        || ngx_feira_pay_str(doc, "method") == NULL)
    {
        return NULL;
    }

    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s}",
                     "payment_id", pid, "request_id", rid,
                     "payer_id", payer, "payee_id", payee,
                     "amount", (json_int_t) amount,
                     "currency", ngx_feira_pay_str(doc, "currency"),
                     "fee", (json_int_t) fee,
                     "method", ngx_feira_pay_str(doc, "method"));
}


static ngx_int_t
ngx_feira_pay_oid_eq(const bson_t *doc, const char *field, const char *hex)
{
    char  buf[25];

    ngx_feira_pay_oid_hex(doc, field, buf);

    return ngx_strcmp(buf, hex) == 0 ? NGX_OK : NGX_DECLINED;
}


/* an ObjectId field (or a 24-hex string) as 24 hex, "" when absent */

static void
ngx_feira_pay_oid_hex(const bson_t *doc, const char *field, char *hex)
{
    uint32_t      len;
    bson_iter_t   it;
    const char   *s;

    hex[0] = '\0';

    if (!bson_iter_init_find(&it, doc, field)) {
        return;
    }

    if (BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), hex);
        return;
    }

    if (BSON_ITER_HOLDS_UTF8(&it)) {
        s = bson_iter_utf8(&it, &len);

        if (ngx_feira_is_object_id(s, len)) {
            ngx_strlow((u_char *) hex, (u_char *) s, 24);
            hex[24] = '\0';
        }
    }
}


static const char *
ngx_feira_pay_str(const bson_t *doc, const char *field)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_UTF8(&it)) {
        return bson_iter_utf8(&it, NULL);
    }

    return NULL;
}
