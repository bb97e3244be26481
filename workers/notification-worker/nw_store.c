/*
 * MongoDB access of the notification worker.  Writes are gathered in
 * unordered bulk operations and flushed by the caller at the points where
 * they must be durable: before a send starts ("sending", "deferred") and
 * before an offset is stored ("sent", "failed").
 *
 * The delivery state is written by inserts only: a record in
 * notification_deliveries (_id = the delivery key, status "sending" or
 * "deferred") before the send, an outcome in notification_outcomes (same
 * _id, status "sent" or "failed") after it.  The unique _id makes both
 * idempotent, a second insert of a key is a no-op.  Updates are avoided on
 * this path because FerretDB v1 (SQLite) scans the collection for each
 * updated document (measured: 500 updates by _id take 6 s in a collection
 * of 5,000), while inserts take microseconds; and it stops answering, with
 * the database locked, on one update command of 100 updates of existing
 * documents.  No transactions are needed.
 */

#include <string.h>

#include "nw_store.h"
#include "../common/fw_log.h"
#include "../common/fw_worker.h"


struct nw_store_s {
    mongoc_client_t            *client;
    mongoc_database_t          *db;
    mongoc_collection_t        *users;
    mongoc_collection_t        *devices;
    mongoc_collection_t        *deliveries;
    mongoc_collection_t        *outcomes;
    mongoc_collection_t        *inbox;
    mongoc_collection_t        *deferred;
    mongoc_bulk_operation_t    *b_deliveries;
    mongoc_bulk_operation_t    *b_outcomes;
    mongoc_bulk_operation_t    *b_inbox;
    mongoc_bulk_operation_t    *b_deferred;
};


static int nw_oid(const char *hex, bson_oid_t *oid);
static int nw_bulk_run(mongoc_bulk_operation_t **b, int dup_ok,
    const char *what, char *err, size_t errlen);
static char *nw_dup_str(const bson_t *doc, const char *path);


nw_store_t *
nw_store_new(const char *uri)
{
    const char      *dbname;
    nw_store_t      *s;
    bson_error_t     error;
    mongoc_uri_t    *u;

    s = calloc(1, sizeof(nw_store_t));
    if (s == NULL) {
        return NULL;
    }

    u = mongoc_uri_new_with_error(uri, &error);
    if (u == NULL) {
        fw_log_error("FEIRA_MONGO_URI: %s", error.message);
        free(s);
        return NULL;
    }

    /*
     * a store that stops answering must not hold the worker for the
     * driver's default 5 minutes: the URI may still say otherwise
     */
    if (!mongoc_uri_has_option(u, MONGOC_URI_SOCKETTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
    }

    if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(u,
                                       MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       5000);
    }

    if (!mongoc_uri_has_option(u, MONGOC_URI_CONNECTTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
    }

    dbname = mongoc_uri_get_database(u);
    if (dbname == NULL) {
        dbname = "feira";
    }

    s->client = mongoc_client_new_from_uri(u);
    if (s->client == NULL) {
        mongoc_uri_destroy(u);
        free(s);
        return NULL;
    }

    mongoc_client_set_appname(s->client, "feira-notification-worker");
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);

    s->db = mongoc_client_get_database(s->client, dbname);
    s->users = mongoc_database_get_collection(s->db, "users");
    s->devices = mongoc_database_get_collection(s->db, "devices");
    s->deliveries = mongoc_database_get_collection(s->db,
                                                   "notification_deliveries");
    s->outcomes = mongoc_database_get_collection(s->db,
                                                 "notification_outcomes");
    s->inbox = mongoc_database_get_collection(s->db, "notifications");
    s->deferred = mongoc_database_get_collection(s->db,
                                                 "notification_deferred");

    mongoc_uri_destroy(u);

    return s;
}


void
nw_store_free(nw_store_t *s)
{
    if (s == NULL) {
        return;
    }

    mongoc_bulk_operation_destroy(s->b_deliveries);
    mongoc_bulk_operation_destroy(s->b_outcomes);
    mongoc_bulk_operation_destroy(s->b_inbox);
    mongoc_bulk_operation_destroy(s->b_deferred);
    mongoc_collection_destroy(s->users);
    mongoc_collection_destroy(s->devices);
    mongoc_collection_destroy(s->deliveries);
    mongoc_collection_destroy(s->outcomes);
    mongoc_collection_destroy(s->inbox);
    mongoc_collection_destroy(s->deferred);
    mongoc_database_destroy(s->db);
    mongoc_client_destroy(s->client);
    free(s);
}


mongoc_collection_t *
nw_store_deferred(nw_store_t *s)
{
    return s->deferred;
}


/*
 * One index per createIndexes command: FerretDB v1 panics on a command
 * that names several indexes when they exist already.
 */

static int
nw_index(nw_store_t *s, const char *coll, bson_t *key, const char *name,
    int unique)
{
    bson_t        *cmd;
    bson_error_t   error;

    cmd = BCON_NEW("createIndexes", BCON_UTF8(coll),
                   "indexes", "[",
                     "{", "key", BCON_DOCUMENT(key),
                          "name", BCON_UTF8(name),
                          "unique", BCON_BOOL(unique), "}",
                   "]");

    if (!mongoc_database_command_simple(s->db, cmd, NULL, NULL, &error)) {
        fw_log_error("mongo: index %s of %s: %s", name, coll, error.message);
        bson_destroy(cmd);
        return -1;
    }

    bson_destroy(cmd);

    return 0;
}


/* the indexes of docs/events.md and of the worker's own collections */

int
nw_store_indexes(nw_store_t *s)
{
    int      rc;
    bson_t  *k1, *k2, *k3;

    k1 = BCON_NEW("event_id", BCON_INT32(1), "user_id", BCON_INT32(1));
    k2 = BCON_NEW("user_id", BCON_INT32(1), "_id", BCON_INT32(1));
    k3 = BCON_NEW("due_at", BCON_INT32(1));

    rc = (nw_index(s, "notifications", k1, "event_id_1_user_id_1", 1) == 0
          && nw_index(s, "notifications", k2, "user_id_1__id_1", 0) == 0
          && nw_index(s, "notification_deferred", k3, "due_at_1", 0) == 0)
         ? 0 : -1;

    bson_destroy(k1);
    bson_destroy(k2);
    bson_destroy(k3);

    return rc;
}


static int
nw_oid(const char *hex, bson_oid_t *oid)
{
    if (!bson_oid_is_valid(hex, strlen(hex)) || strlen(hex) != 24) {
        return -1;
    }

    bson_oid_init_from_string(oid, hex);

    return 0;
}


static char *
nw_dup_str(const bson_t *doc, const char *path)
{
    bson_iter_t  it;

    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it)
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        return strdup(bson_iter_utf8(&it, NULL));
    }

    return NULL;
}


static int
nw_get_bool(const bson_t *doc, const char *path, int dflt)
{
    bson_iter_t  it;

    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it)
        && BSON_ITER_HOLDS_BOOL(&it))
    {
        return bson_iter_bool(&it);
    }

    return dflt;
}


static void
nw_get_buf(const bson_t *doc, const char *path, char *buf, size_t size)
{
    bson_iter_t  it;

    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it)
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        snprintf(buf, size, "%s", bson_iter_utf8(&it, NULL));
    }
}


nw_user_t *
nw_user_find(nw_user_t *users, size_t n, const char *id)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(users[i].id, id) == 0) {
            return &users[i];
        }
    }

    return NULL;
}


void
nw_users_free(nw_user_t *users, size_t n)
{
    size_t  i, j;

    for (i = 0; i < n; i++) {
        free(users[i].email);
        free(users[i].phone);
        free(users[i].name);

        for (j = 0; j < users[i].ndevices; j++) {
            free(users[i].devices[j].token);
        }

        free(users[i].devices);
    }

    free(users);
}


/*
 * The users with these ids and their devices, two queries for a batch.
 * Preferences that are absent take the defaults of docs/events.md.
 */

int
nw_users_load(nw_store_t *s, char (*ids)[32], size_t n, nw_user_t **users,
    size_t *nusers)
{
    char                  key[24], hex[32];
    size_t                i, count;
    bson_t               *filter, *opts;
    const bson_t         *doc;
    bson_oid_t            oid;
    bson_iter_t           it;
    nw_user_t            *u, *list;
    nw_device_t          *dv;
    bson_error_t          error;
    mongoc_cursor_t      *cur;

    *users = NULL;
    *nusers = 0;

    list = calloc(n ? n : 1, sizeof(nw_user_t));
    if (list == NULL) {
        return -1;
    }

    filter = bson_new();
    {
        bson_t  cond, arr;

        bson_append_document_begin(filter, "_id", -1, &cond);
        bson_append_array_begin(&cond, "$in", -1, &arr);

        count = 0;
        for (i = 0; i < n; i++) {
            if (nw_oid(ids[i], &oid) == 0) {
                snprintf(key, sizeof(key), "%zu", count++);
                bson_append_oid(&arr, key, -1, &oid);
            }
        }

        bson_append_array_end(&cond, &arr);
        bson_append_document_end(filter, &cond);
    }

    opts = BCON_NEW("projection", "{", "email", BCON_INT32(1),
                    "phone", BCON_INT32(1), "name", BCON_INT32(1),
                    "preferences", BCON_INT32(1), "}");

    cur = mongoc_collection_find_with_opts(s->users, filter, opts, NULL);
    count = 0;

    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it)
            || count == n)
        {
            continue;
        }

        u = &list[count++];
        bson_oid_to_string(bson_iter_oid(&it), u->id);

        u->email = nw_dup_str(doc, "email");
        u->phone = nw_dup_str(doc, "phone");
        u->name = nw_dup_str(doc, "name");
        snprintf(u->lang, sizeof(u->lang), "pt-BR");
        nw_get_buf(doc, "preferences.language", u->lang, sizeof(u->lang));
        u->email_on = nw_get_bool(doc, "preferences.notifications.email", 1);
        u->push_on = nw_get_bool(doc, "preferences.notifications.push", 1);
        u->sms_on = nw_get_bool(doc, "preferences.notifications.sms", 0);
        nw_get_buf(doc, "preferences.quiet_hours.start", u->quiet_start,
                   sizeof(u->quiet_start));
        nw_get_buf(doc, "preferences.quiet_hours.end", u->quiet_end,
                   sizeof(u->quiet_end));
        nw_get_buf(doc, "preferences.quiet_hours.tz", u->quiet_tz,
                   sizeof(u->quiet_tz));
    }

    bson_destroy(filter);
    bson_destroy(opts);

    if (mongoc_cursor_error(cur, &error)) {
        fw_log_error("mongo: users: %s", error.message);
        mongoc_cursor_destroy(cur);
        nw_users_free(list, count);
        return -1;
    }

    mongoc_cursor_destroy(cur);

    *users = list;
    *nusers = count;

    if (count == 0) {
        return 0;
    }

    /* their devices */

    filter = bson_new();
    {
        bson_t  cond, arr;

        bson_append_document_begin(filter, "user_id", -1, &cond);
        bson_append_array_begin(&cond, "$in", -1, &arr);

        for (i = 0; i < count; i++) {
            nw_oid(list[i].id, &oid);
            snprintf(key, sizeof(key), "%zu", i);
            bson_append_oid(&arr, key, -1, &oid);
        }

        bson_append_array_end(&cond, &arr);
        bson_append_document_end(filter, &cond);
    }

    cur = mongoc_collection_find_with_opts(s->devices, filter, NULL, NULL);

    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "user_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_oid_to_string(bson_iter_oid(&it), hex);

        u = nw_user_find(list, count, hex);
        if (u == NULL || !bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        dv = realloc(u->devices, (u->ndevices + 1) * sizeof(nw_device_t));
        if (dv == NULL) {
            continue;
        }

        u->devices = dv;
        dv = &u->devices[u->ndevices];
        bson_oid_to_string(bson_iter_oid(&it), dv->id);
        dv->token = nw_dup_str(doc, "token");

        if (dv->token != NULL) {
            u->ndevices++;
        }
    }

    bson_destroy(filter);

    if (mongoc_cursor_error(cur, &error)) {
        fw_log_error("mongo: devices: %s", error.message);
        mongoc_cursor_destroy(cur);
        return -1;
    }

    mongoc_cursor_destroy(cur);

    return 0;
}


/* the "status" of each key found in one collection, into status[] */

static int
nw_status_from(mongoc_collection_t *coll, char (*keys)[128], size_t n,
    char (*status)[16])
{
    char              idx[24];
    size_t            i;
    bson_t           *filter, *opts, cond, arr;
    const bson_t     *doc;
    bson_iter_t       it;
    const char       *id;
    bson_error_t      error;
    mongoc_cursor_t  *cur;

    filter = bson_new();
    bson_append_document_begin(filter, "_id", -1, &cond);
    bson_append_array_begin(&cond, "$in", -1, &arr);

    for (i = 0; i < n; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        bson_append_utf8(&arr, idx, -1, keys[i], -1);
    }

    bson_append_array_end(&cond, &arr);
    bson_append_document_end(filter, &cond);

    opts = BCON_NEW("projection", "{", "status", BCON_INT32(1), "}");

    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        id = bson_iter_utf8(&it, NULL);

        for (i = 0; i < n; i++) {
            if (strcmp(keys[i], id) == 0) {
                nw_get_buf(doc, "status", status[i], sizeof(status[i]));
            }
        }
    }

    bson_destroy(filter);
    bson_destroy(opts);

    if (mongoc_cursor_error(cur, &error)) {
        fw_log_error("mongo: delivery state: %s", error.message);
        mongoc_cursor_destroy(cur);
        return -1;
    }

    mongoc_cursor_destroy(cur);

    return 0;
}


/*
 * The state of each delivery key: "sent" or "failed" (an outcome),
 * "sending" or "deferred" (a record without outcome), "" (nothing).
 */

int
nw_deliveries_status(nw_store_t *s, char (*keys)[128], size_t n,
    char (*status)[16])
{
    size_t    i;
    char    (*outcome)[16];

    for (i = 0; i < n; i++) {
        status[i][0] = '\0';
    }

    if (n == 0) {
        return 0;
    }

    outcome = calloc(n, sizeof(*outcome));
    if (outcome == NULL) {
        return -1;
    }

    if (nw_status_from(s->deliveries, keys, n, status) != 0
        || nw_status_from(s->outcomes, keys, n, outcome) != 0)
    {
        free(outcome);
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (outcome[i][0] != '\0') {
            memcpy(status[i], outcome[i], sizeof(status[i]));
        }
    }

    free(outcome);

    return 0;
}


static mongoc_bulk_operation_t *
nw_bulk(mongoc_collection_t *c, mongoc_bulk_operation_t **b)
{
    bson_t  *opts;

    if (*b == NULL) {
        opts = BCON_NEW("ordered", BCON_BOOL(false));
        *b = mongoc_collection_create_bulk_operation_with_opts(c, opts);
        bson_destroy(opts);
    }

    return *b;
}


/*
 * "sending" and "deferred" insert the record, "sent" and "failed" the
 * outcome; a key that has one already keeps it (duplicate key).  Other
 * states ("retry") are not written: the record stays "sending".
 */

int
nw_delivery_set(nw_store_t *s, const char *key, const char *event_id,
    const char *user_id, const char *channel, const char *status,
    const char *error)
{
    int                        ok;
    bson_t                    *doc;
    bson_error_t               err;
    mongoc_collection_t       *coll;
    mongoc_bulk_operation_t  **b;

    if (strcmp(status, "sending") == 0 || strcmp(status, "deferred") == 0) {
        coll = s->deliveries;
        b = &s->b_deliveries;

    } else if (strcmp(status, "sent") == 0 || strcmp(status, "failed") == 0) {
        coll = s->outcomes;
        b = &s->b_outcomes;

    } else {
        return 0;
    }

    doc = BCON_NEW("_id", BCON_UTF8(key),
                   "status", BCON_UTF8(status),
                   "error", BCON_UTF8(error ? error : ""),
                   "event_id", BCON_UTF8(event_id),
                   "user_id", BCON_UTF8(user_id),
                   "channel", BCON_UTF8(channel),
                   "at", BCON_DATE_TIME(fw_wall_ms()));

    ok = mongoc_bulk_operation_insert_with_opts(nw_bulk(coll, b), doc, NULL,
                                                &err);
    bson_destroy(doc);

    return ok ? 0 : -1;
}


/*
 * The records of a batch, inserted at once and at once durable; a key
 * that has a record already (a redelivery, a retry) is marked existed.
 */

int
nw_records_insert(nw_store_t *s, nw_record_t *r, size_t n, char *err,
    size_t errlen)
{
    int                       rc;
    bson_t                   *doc, reply, *opts;
    size_t                    i;
    int64_t                   now, idx;
    uint32_t                  code;
    bson_iter_t               it, child, e;
    bson_error_t              error;
    mongoc_bulk_operation_t  *b;

    if (n == 0) {
        return 0;
    }

    opts = BCON_NEW("ordered", BCON_BOOL(false));
    b = mongoc_collection_create_bulk_operation_with_opts(s->deliveries,
                                                            opts);
    bson_destroy(opts);

    now = fw_wall_ms();

    for (i = 0; i < n; i++) {
        r[i].existed = 0;

        doc = BCON_NEW("_id", BCON_UTF8(r[i].key),
                       "status", BCON_UTF8(r[i].status),
                       "event_id", BCON_UTF8(r[i].event_id),
                       "user_id", BCON_UTF8(r[i].user_id),
                       "channel", BCON_UTF8(r[i].channel),
                       "at", BCON_DATE_TIME(now));

        if (!mongoc_bulk_operation_insert_with_opts(b, doc, NULL, &error)) {
            snprintf(err, errlen, "mongo: records: %.200s", error.message);
            bson_destroy(doc);
            mongoc_bulk_operation_destroy(b);
            return -1;
        }

        bson_destroy(doc);
    }

    rc = 0;

    if (!mongoc_bulk_operation_execute(b, &reply, &error)) {
        if (!bson_iter_init_find(&it, &reply, "writeErrors")
            || !bson_iter_recurse(&it, &child)
            || bson_iter_init_find(&it, &reply, "writeConcernErrors"))
        {
            rc = -1;
        }

        while (rc == 0 && bson_iter_next(&child)) {
            code = 0;
            idx = -1;

            if (bson_iter_recurse(&child, &e) && bson_iter_find(&e, "index")) {
                idx = bson_iter_as_int64(&e);
            }

            if (bson_iter_recurse(&child, &e) && bson_iter_find(&e, "code")) {
                code = bson_iter_as_int64(&e);
            }

            if (code != 11000 || idx < 0 || (size_t) idx >= n) {
                rc = -1;
                break;
            }

            r[idx].existed = 1;
        }

        if (rc != 0) {
            snprintf(err, errlen, "mongo: records: %.200s", error.message);
        }
    }

    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(b);

    return rc;
}


/* a key forgotten: sent again by the next delivery of its event */

int
nw_delivery_forget(nw_store_t *s, const char *key)
{
    bson_t        *sel;
    bson_error_t   error;

    sel = BCON_NEW("_id", BCON_UTF8(key));

    if (!mongoc_collection_delete_one(s->deliveries, sel, NULL, NULL,
                                      &error))
    {
        fw_log_error("mongo: forget %s: %s", key, error.message);
        bson_destroy(sel);
        return -1;
    }

    bson_destroy(sel);

    return 0;
}


int
nw_inbox_add(nw_store_t *s, const char *event_id, const char *user_id,
    const char *template, const char *title, const char *body,
    int64_t created_ms)
{
    int           ok;
    bson_t       *doc;
    bson_oid_t    oid, uid;
    bson_error_t  err;

    if (nw_oid(user_id, &uid) != 0) {
        return -1;
    }

    bson_oid_init(&oid, NULL);

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "user_id", BCON_OID(&uid),
                   "event_id", BCON_UTF8(event_id),
                   "channel", BCON_UTF8("inapp"),
                   "template", BCON_UTF8(template),
                   "title", BCON_UTF8(title),
                   "body", BCON_UTF8(body),
                   "read", BCON_BOOL(false),
                   "created_at", BCON_DATE_TIME(created_ms));

    ok = mongoc_bulk_operation_insert_with_opts(
             nw_bulk(s->inbox, &s->b_inbox), doc, NULL, &err);

    bson_destroy(doc);

    return ok ? 0 : -1;
}


/* doc without _id; a key deferred already stays as it is */

int
nw_deferred_add(nw_store_t *s, const char *key, bson_t *doc)
{
    int            ok;
    bson_t        *full;
    bson_error_t   err;

    full = BCON_NEW("_id", BCON_UTF8(key));
    bson_concat(full, doc);

    ok = mongoc_bulk_operation_insert_with_opts(
             nw_bulk(s->deferred, &s->b_deferred), full, NULL, &err);

    bson_destroy(full);

    return ok ? 0 : -1;
}


static int
nw_bulk_run(mongoc_bulk_operation_t **b, int dup_ok, const char *what,
    char *err, size_t errlen)
{
    int           rc;
    bson_t        reply;
    uint32_t      code;
    bson_iter_t   it, child, e;
    bson_error_t  error;

    if (*b == NULL) {
        return 0;
    }

    rc = 0;

    if (!mongoc_bulk_operation_execute(*b, &reply, &error)) {
        rc = -1;

        /* duplicate keys are redeliveries, not errors */
        if (dup_ok && bson_iter_init_find(&it, &reply, "writeErrors")
            && bson_iter_recurse(&it, &child))
        {
            rc = 0;

            while (bson_iter_next(&child)) {
                code = 0;
                if (bson_iter_recurse(&child, &e)
                    && bson_iter_find(&e, "code"))
                {
                    code = bson_iter_as_int64(&e);
                }

                if (code != 11000) {
                    rc = -1;
                }
            }

            if (bson_iter_init_find(&it, &reply, "writeConcernErrors")) {
                rc = -1;
            }
        }

        if (rc != 0) {
            snprintf(err, errlen, "mongo: %s: %.200s", what, error.message);
        }
    }

    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(*b);
    *b = NULL;

    return rc;
}


/* makes the gathered writes durable; -1 and err when one failed */

int
nw_store_flush(nw_store_t *s, char *err, size_t errlen)
{
    int  rc;

    rc = 0;

    if (nw_bulk_run(&s->b_inbox, 1, "inbox", err, errlen) != 0) {
        rc = -1;
    }

    if (nw_bulk_run(&s->b_deferred, 1, "deferred", err, errlen) != 0) {
        rc = -1;
    }

    if (nw_bulk_run(&s->b_deliveries, 1, "deliveries", err, errlen) != 0) {
        rc = -1;
    }

    if (nw_bulk_run(&s->b_outcomes, 1, "outcomes", err, errlen) != 0) {
        rc = -1;
    }

    return rc;
}


int
nw_device_delete(nw_store_t *s, const char *device_id)
{
    bson_t        *sel;
    bson_oid_t     oid;
    bson_error_t   error;

    if (nw_oid(device_id, &oid) != 0) {
        return -1;
    }

    sel = BCON_NEW("_id", BCON_OID(&oid));

    if (!mongoc_collection_delete_one(s->devices, sel, NULL, NULL, &error)) {
        fw_log_error("mongo: delete device %s: %s", device_id,
                     error.message);
        bson_destroy(sel);
        return -1;
    }

    bson_destroy(sel);

    return 0;
}
