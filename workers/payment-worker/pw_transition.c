/*
 * A payment's status moves forward only: pending < requires_action <
 * succeeded | failed < refunded (refunded only from succeeded).  Each
 * target status is claimed once per payment by inserting
 * payment_transitions {_id: "<payment id>:<status>"} (a unique _id: atomic
 * even in FerretDB, whose updates are not), then the payment is updated and
 * the event published; the claim is marked published last.  The claim names
 * the Kafka message that made it: that message, redelivered after a crash,
 * finishes the job (same event id); another message finds the claim and
 * leaves it to its owner, unless it has been unpublished for
 * FEIRA_PAYMENT_CLAIM_STALE_MS (its owner dead-lettered or lost).
 */

#include <stdio.h>
#include <string.h>

#include "pw.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


static int pw_claim(pw_ctx_t *c, const char *key);
static void pw_claim_published(pw_ctx_t *c, const char *key);
static char *pw_event(const bson_t *payment, const char *to,
    const char *actor);


int
pw_status_rank(const char *status)
{
    if (status == NULL || strcmp(status, "pending") == 0) {
        return 0;
    }

    if (strcmp(status, "requires_action") == 0) {
        return 1;
    }

    if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0) {
        return 2;
    }

    if (strcmp(status, "refunded") == 0) {
        return 3;
    }

    return -1;
}


/* 1 moved, 0 nothing to do, -1 to retry; set (may be NULL) is consumed */

int
pw_transition(pw_ctx_t *c, const bson_t *payment, const char *to,
    bson_t *set, const char *actor)
{
    int          rc;
    char         pid[25], rid[25], payer[25], key[64], channel[64];
    char         labels[96];
    char        *event;
    const char  *cur;

    cur = pw_str(payment, "status");

    if (pw_status_rank(to) <= pw_status_rank(cur)
        || (strcmp(to, "refunded") == 0 && cur != NULL
            && strcmp(cur, "succeeded") != 0))
    {
        if (set) {
            bson_destroy(set);
        }
        return 0;
    }

    pw_oid_hex(payment, "_id", pid);
    pw_oid_hex(payment, "request_id", rid);
    pw_oid_hex(payment, "payer_id", payer);

    snprintf(key, sizeof(key), "%s:%s", pid, to);

    rc = pw_claim(c, key);

    if (rc < 0) {
        if (set) {
            bson_destroy(set);
        }
        return -1;
    }

    if (rc == 0) {
        /* claimed and published before: a redelivery */
        if (set) {
            bson_destroy(set);
        }
        return 0;
    }

    if (set == NULL) {
        set = bson_new();
    }

    BSON_APPEND_UTF8(set, "status", to);

    if (pw_payment_set(c, pid, set) != 0) {
        return -1;
    }

    event = pw_event(payment, to, actor);
    if (event == NULL) {
        return -1;
    }

    rc = pw_publish_kafka(c, PW_TOPIC_PAYMENTS, pid, event);

    if (rc == 0) {
        snprintf(channel, sizeof(channel), "request:%s", rid);
        rc = pw_publish_rt(c, channel, event);
    }

    if (rc == 0) {
        snprintf(channel, sizeof(channel), "user:%s", payer);
        rc = pw_publish_rt(c, channel, event);
    }

    free(event);

    if (rc != 0) {
        return -1;
    }

    pw_claim_published(c, key);

    if (pw_status_rank(to) >= 2) {
        /* the business dashboard's counters (docs/metrics.md) */
        snprintf(labels, sizeof(labels), "method=\"%s\",status=\"%s\"",
                 pw_str(payment, "method") ? pw_str(payment, "method") : "",
                 to);
        fw_metrics_count(pw_metric_payments, "Payments that reached a "
                         "final status", labels, 1);

        if (strcmp(to, "succeeded") == 0) {
            snprintf(labels, sizeof(labels), "currency=\"%s\"",
                     pw_str(payment, "currency")
                     ? pw_str(payment, "currency") : "");
            fw_metrics_count(pw_metric_amount, "Amount of succeeded "
                             "payments, in minor units",
                             labels, (double) pw_int(payment, "amount"));
        }
    }

    fw_log_info("payment %s: %s -> %s", pid, cur ? cur : "pending", to);

    return 1;
}


/* 1 claimed now (or claimed before and not yet published), 0 done, -1 */

static int
pw_claim(pw_ctx_t *c, const char *key)
{
    int                   ok, rc;
    bson_t               *doc, *filter, *opts;
    int64_t               at;
    bson_iter_t           it;
    const char           *by;
    const bson_t         *found;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_collection_t  *coll;

    coll = mongoc_database_get_collection(c->db, "payment_transitions");

    doc = BCON_NEW("_id", BCON_UTF8(key), "published", BCON_BOOL(false),
                   "by", BCON_UTF8(c->event_key),
                   "at", BCON_DATE_TIME(fw_wall_ms()));
    ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
    bson_destroy(doc);

    if (ok) {
        mongoc_collection_destroy(coll);
        return 1;
    }

    if (error.code != 11000) {
        fw_log_warn("mongo: transition %s: %s", key, error.message);
        mongoc_collection_destroy(coll);
        return -1;
    }

    filter = BCON_NEW("_id", BCON_UTF8(key));
    opts = BCON_NEW("limit", BCON_INT64(1));
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    rc = -1;

    if (mongoc_cursor_next(cur, &found)) {
        by = pw_str(found, "by");
        at = bson_iter_init_find(&it, found, "at")
             && BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it) : 0;

        if (pw_bool(found, "published")) {
            rc = 0;

        } else if (by != NULL && strcmp(by, c->event_key) == 0) {
            rc = 1;             /* ours, cut short: finish it */

        } else {
            rc = (fw_wall_ms() - at > c->claim_stale_ms) ? 1 : 0;
        }
    }

    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);

    return rc;
}


static void
pw_claim_published(pw_ctx_t *c, const char *key)
{
    bson_t               *filter, *update;
    bson_error_t          error;
    mongoc_collection_t  *coll;

    coll = mongoc_database_get_collection(c->db, "payment_transitions");
    filter = BCON_NEW("_id", BCON_UTF8(key));
    update = BCON_NEW("$set", "{", "published", BCON_BOOL(true), "}");

    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL,
                                      &error))
    {
        fw_log_warn("mongo: transition %s: %s", key, error.message);
    }

    bson_destroy(update);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
}


/* payment.<status> in the envelope of docs/events.md */

static char *
pw_event(const bson_t *payment, const char *to, const char *actor)
{
    char        pid[25], rid[25], payer[25], payee[25], id[25], seed[64];
    char        type[48], at[32], *text;
    json_t     *ev;
    time_t      now;
    struct tm   tm;

    pw_oid_hex(payment, "_id", pid);
    pw_oid_hex(payment, "request_id", rid);
    pw_oid_hex(payment, "payer_id", payer);
    pw_oid_hex(payment, "payee_id", payee);

    snprintf(seed, sizeof(seed), "%s:%s", pid, to);
    pw_event_id(seed, id);
    snprintf(type, sizeof(type), "payment.%s", to);

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);

    ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:s},"
                   " s:{s:s, s:s, s:s, s:s, s:I, s:s?, s:I, s:s?, s:s}}",
                   "id", id, "type", type, "occurred_at", at,
                   "actor", "id", actor, "role", "system",
                   "data",
                       "payment_id", pid, "request_id", rid,
                       "payer_id", payer, "payee_id", payee,
                       "amount", (json_int_t) pw_int(payment, "amount"),
                       "currency", pw_str(payment, "currency"),
                       "fee", (json_int_t) pw_int(payment, "fee"),
                       "method", pw_str(payment, "method"),
                       "status", to);
    if (ev == NULL) {
        return NULL;
    }

    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);

    return text;
}
