/*
 * The payment worker's MongoDB: payments (written first by feira_payments),
 * the payee's connected Stripe account (users.stripe_account_id), and the
 * webhook events already applied (payment_webhook_events, _id
 * "<provider>:<event id>").  docs/events.md.
 */

#include <stdio.h>
#include <string.h>

#include "pw.h"
#include "../common/fw_log.h"


static int pw_find_one(pw_ctx_t *c, const char *coll, bson_t *filter,
    bson_t **doc);


int
pw_store_open(pw_ctx_t *c, const char *uri)
{
    bson_error_t  error;
    mongoc_uri_t  *u;
    const char    *db;

    u = mongoc_uri_new_with_error(uri, &error);
    if (u == NULL) {
        fw_log_error("mongo: bad FEIRA_MONGO_URI: %s", error.message);
        return -1;
    }

    c->mongo = mongoc_client_new_from_uri(u);
    db = mongoc_uri_get_database(u);
    c->db = mongoc_client_get_database(c->mongo, db ? db : "feira");
    mongoc_uri_destroy(u);

    if (c->mongo == NULL || c->db == NULL) {
        return -1;
    }

    mongoc_client_set_appname(c->mongo, "feira-payment-worker");

    return 0;
}


void
pw_store_close(pw_ctx_t *c)
{
    if (c->db) {
        mongoc_database_destroy(c->db);
    }

    if (c->mongo) {
        mongoc_client_destroy(c->mongo);
    }
}


/* reachable, and the index of the lookups by payment intent and order */

int
pw_store_indexes(pw_ctx_t *c)
{
    int           ok;
    bson_t       *cmd;
    bson_error_t  error;

    /* one index per command (FerretDB) */
    cmd = BCON_NEW("createIndexes", BCON_UTF8("payments"),
                   "indexes", "[", "{",
                       "key", "{", "request_id", BCON_INT32(1), "}",
                       "name", BCON_UTF8("request_id"),
                   "}", "]");

    ok = mongoc_database_write_command_with_opts(c->db, cmd, NULL, NULL,
                                                 &error);
    bson_destroy(cmd);

    if (!ok) {
        fw_log_warn("mongo: %s", error.message);
        return -1;
    }

    return 0;
}


int
pw_payment_get(pw_ctx_t *c, const char *pid, bson_t **doc)
{
    bson_oid_t  oid;

    if (!bson_oid_is_valid(pid, strlen(pid)) || strlen(pid) != 24) {
        return 0;
    }

    bson_oid_init_from_string(&oid, pid);

    return pw_find_one(c, "payments", BCON_NEW("_id", BCON_OID(&oid)), doc);
}


int
pw_payment_find(pw_ctx_t *c, const char *field, const char *value,
    bson_t **doc)
{
    return pw_find_one(c, "payments", BCON_NEW(field, BCON_UTF8(value)), doc);
}


int
pw_payments_of_request(pw_ctx_t *c, const char *rid, bson_t **list)
{
    int                   n, ok;
    char                  key[16];
    bson_t               *filter;
    bson_oid_t            oid;
    const bson_t         *doc;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_collection_t  *coll;

    *list = NULL;

    if (strlen(rid) != 24 || !bson_oid_is_valid(rid, 24)) {
        *list = bson_new();
        return 0;
    }

    bson_oid_init_from_string(&oid, rid);
    filter = BCON_NEW("request_id", BCON_OID(&oid));

    coll = mongoc_database_get_collection(c->db, "payments");
    cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);

    *list = bson_new();
    n = 0;

    while (mongoc_cursor_next(cur, &doc)) {
        snprintf(key, sizeof(key), "%d", n++);
        BSON_APPEND_DOCUMENT(*list, key, doc);
    }

    ok = !mongoc_cursor_error(cur, &error);

    if (!ok) {
        fw_log_warn("mongo: payments of %s: %s", rid, error.message);
        bson_destroy(*list);
        *list = NULL;
    }

    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(filter);

    return ok ? n : -1;
}


/* $set on one payment, with updated_at; the set is consumed */

int
pw_payment_set(pw_ctx_t *c, const char *pid, bson_t *set)
{
    int                   ok;
    bson_t               *filter, update;
    bson_oid_t            oid;
    bson_error_t          error;
    mongoc_collection_t  *coll;

    bson_oid_init_from_string(&oid, pid);
    filter = BCON_NEW("_id", BCON_OID(&oid));

    BSON_APPEND_DATE_TIME(set, "updated_at", fw_wall_ms());

    bson_init(&update);
    BSON_APPEND_DOCUMENT(&update, "$set", set);

    coll = mongoc_database_get_collection(c->db, "payments");
    ok = mongoc_collection_update_one(coll, filter, &update, NULL, NULL,
                                      &error);

    if (!ok) {
        fw_log_warn("mongo: update of payment %s: %s", pid, error.message);
    }

    mongoc_collection_destroy(coll);
    bson_destroy(&update);
    bson_destroy(filter);
    bson_destroy(set);

    return ok ? 0 : -1;
}


/* the payee's connected account ("acct_..."), "" when it has none */

int
pw_user_stripe_account(pw_ctx_t *c, const bson_t *payment, char *acct,
    size_t size)
{
    int          rc;
    bson_t      *user;
    bson_iter_t  it;
    bson_oid_t   oid;
    const char  *s;

    acct[0] = '\0';

    if (!bson_iter_init_find(&it, payment, "payee_id")
        || !BSON_ITER_HOLDS_OID(&it))
    {
        return 0;
    }

    bson_oid_copy(bson_iter_oid(&it), &oid);

    rc = pw_find_one(c, "users", BCON_NEW("_id", BCON_OID(&oid)), &user);
    if (rc <= 0) {
        return rc;
    }

    s = pw_str(user, "stripe_account_id");

    if (s != NULL && strncmp(s, "acct_", 5) == 0 && strlen(s) < size
        && strspn(s, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(s))
    {
        snprintf(acct, size, "%s", s);
    }

    bson_destroy(user);

    return 1;
}


int
pw_webhook_seen(pw_ctx_t *c, const char *key)
{
    bson_t  *doc;
    int      rc;

    rc = pw_find_one(c, "payment_webhook_events",
                     BCON_NEW("_id", BCON_UTF8(key)), &doc);
    if (rc == 1) {
        bson_destroy(doc);
    }

    return rc;
}


/* after the event is applied; a duplicate key is fine (applied twice) */

int
pw_webhook_record(pw_ctx_t *c, const char *key, const char *type)
{
    int                   ok;
    bson_t               *doc;
    bson_error_t          error;
    mongoc_collection_t  *coll;

    doc = BCON_NEW("_id", BCON_UTF8(key), "type", BCON_UTF8(type),
                   "at", BCON_DATE_TIME(fw_wall_ms()));

    coll = mongoc_database_get_collection(c->db, "payment_webhook_events");
    ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &error);
    mongoc_collection_destroy(coll);
    bson_destroy(doc);

    if (!ok && error.code != 11000) {
        fw_log_warn("mongo: webhook event %s: %s", key, error.message);
        return -1;
    }

    return 0;
}


const char *
pw_str(const bson_t *doc, const char *field)
{
    bson_iter_t  it;

    if (doc != NULL && bson_iter_init_find(&it, doc, field)
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        return bson_iter_utf8(&it, NULL);
    }

    return NULL;
}


int64_t
pw_int(const bson_t *doc, const char *field)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, field)
        && (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)
            || BSON_ITER_HOLDS_DOUBLE(&it)))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


int
pw_bool(const bson_t *doc, const char *field)
{
    bson_iter_t  it;

    return bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_BOOL(&it)
           && bson_iter_bool(&it);
}


void
pw_oid_hex(const bson_t *doc, const char *field, char *hex)
{
    bson_iter_t  it;

    hex[0] = '\0';

    if (bson_iter_init_find(&it, doc, field)) {
        if (BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), hex);

        } else if (BSON_ITER_HOLDS_UTF8(&it)
                   && strlen(bson_iter_utf8(&it, NULL)) == 24)
        {
            memcpy(hex, bson_iter_utf8(&it, NULL), 25);
        }
    }
}


/* the filter is consumed; *doc a copy to bson_destroy() */

static int
pw_find_one(pw_ctx_t *c, const char *coll_name, bson_t *filter, bson_t **doc)
{
    int                   rc;
    bson_t               *opts;
    const bson_t         *found;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_collection_t  *coll;

    *doc = NULL;

    opts = BCON_NEW("limit", BCON_INT64(1));
    coll = mongoc_database_get_collection(c->db, coll_name);
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    if (mongoc_cursor_next(cur, &found)) {
        *doc = bson_copy(found);
        rc = 1;

    } else if (mongoc_cursor_error(cur, &error)) {
        fw_log_warn("mongo: %s: %s", coll_name, error.message);
        rc = -1;

    } else {
        rc = 0;
    }

    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(opts);
    bson_destroy(filter);

    return rc;
}
