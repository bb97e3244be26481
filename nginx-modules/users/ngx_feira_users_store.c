/*
 * feira_users: profiles, preferences and devices in MongoDB.
 *
 * Every function here is a job or is called from one: it runs in a thread
 * of the pool, blocks as long as it needs, touches no nginx pool and no
 * event, and reports through its ngx_feira_users_job_t.  The driver's
 * words go to the log, never to the client.
 */

#include "ngx_http_feira_users_module.h"


static ngx_int_t ngx_feira_users_counterpart(mongoc_client_t *client,
    const bson_oid_t *a, const bson_oid_t *b, bson_error_t *error);
static ngx_int_t ngx_feira_users_exists(mongoc_client_t *client,
    ngx_feira_users_job_t *job);
static ngx_int_t ngx_feira_users_create_index(mongoc_client_t *client,
    const char *collection, const bson_t *index);
static mongoc_collection_t *ngx_feira_users_collection(
    mongoc_client_t *client, const char *name);


/* set once this worker has created the indexes (idempotent anyway) */
static volatile int  ngx_feira_users_indexed;


/*
 * GET {id}: the public view, or the private one (e-mail, phone) to the
 * user, an admin, or the other side of a request they share.
 */

void
ngx_feira_users_profile_get_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    int                   private_view;
    bson_t               *filter, *opts, doc;
    int64_t               count, sum;
    ngx_int_t             rc;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = ngx_feira_users_collection(client, "users");

    /* the hash is not even read: views are allow-lists anyway */
    filter = BCON_NEW("_id", BCON_OID(&job->user));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{",
                        "password_hash", BCON_INT32(0),
                        "email_lc", BCON_INT32(0),
                    "}");

    rc = ngx_feira_users_find_one(users, filter, opts, &doc, &error);

    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find user", &error);
        goto done;
    }

    if (rc == NGX_DECLINED) {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such user";
        goto done;
    }

    private_view = job->self || job->admin;

    if (!private_view) {
        rc = ngx_feira_users_counterpart(client, &job->caller, &job->user,
                                         &error);
        if (rc == NGX_ERROR) {
            ngx_feira_users_store_error(job, "find shared request", &error);
            goto found;
        }

        private_view = (rc == NGX_OK);
    }

    if (ngx_feira_users_rating(client, &job->user, &count, &sum, &error)
        != NGX_OK)
    {
        ngx_feira_users_store_error(job, "read rating", &error);
        goto found;
    }

    job->result = ngx_feira_users_profile_view(&doc, private_view, count,
                                               sum);
    job->status = job->result ? NGX_HTTP_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

found:

    bson_destroy(&doc);

done:

    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/*
 * PATCH {id}: one findAndModify of the checked fields.  skills and
 * service_area only match a provider, so that the role decides in the
 * same step as the write.
 */

void
ngx_feira_users_profile_patch_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bool                  ok;
    bson_t               *query, reply, doc;
    int64_t               count, sum;
    uint32_t              len;
    ngx_int_t             rc;
    bson_iter_t           it;
    bson_error_t          error;
    const uint8_t        *value;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = ngx_feira_users_collection(client, "users");

    if (job->provider_only) {
        query = BCON_NEW("_id", BCON_OID(&job->user),
                         "role", BCON_UTF8("provider"));

    } else {
        query = BCON_NEW("_id", BCON_OID(&job->user));
    }

    /* no projection: FerretDB v1 has none here; the view is an allow-list */
    ok = mongoc_collection_find_and_modify(users, query, NULL, job->update,
                                           NULL, false, false, true,
                                           &reply, &error);
    bson_destroy(query);

    if (!ok) {
        ngx_feira_users_store_error(job, "update user", &error);
        goto done;
    }

    if (!bson_iter_init_find(&it, &reply, "value")
        || !BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        /* nothing matched: no such user, or not a provider */

        rc = job->provider_only ? ngx_feira_users_exists(client, job)
                                : NGX_DECLINED;

        if (rc == NGX_OK) {
            job->status = NGX_HTTP_BAD_REQUEST;
            job->field = job->provider_only ? "skills" : NULL;
            job->detail = "only providers have skills and a service area";

        } else if (rc == NGX_DECLINED) {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such user";
        }

        goto done;
    }

    bson_iter_document(&it, &len, &value);

    if (!bson_init_static(&doc, value, len)) {
        goto done;
    }

    if (ngx_feira_users_rating(client, &job->user, &count, &sum, &error)
        != NGX_OK)
    {
        ngx_feira_users_store_error(job, "read rating", &error);
        goto done;
    }

    job->result = ngx_feira_users_profile_view(&doc, 1, count, sum);
    job->status = job->result ? NGX_HTTP_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

done:

    bson_destroy(&reply);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_users_preferences_get_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bson_t               *filter, *opts, doc;
    ngx_int_t             rc;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = ngx_feira_users_collection(client, "users");

    filter = BCON_NEW("_id", BCON_OID(&job->user));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "preferences", BCON_INT32(1), "}");

    rc = ngx_feira_users_find_one(users, filter, opts, &doc, &error);

    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find preferences", &error);

    } else if (rc == NGX_DECLINED) {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such user";

    } else {
        job->result = ngx_feira_users_preferences_view(&doc);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(&doc);
    }

    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/* PUT preferences: the whole sub-document is replaced at once */

void
ngx_feira_users_preferences_put_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bool                  ok;
    bson_t               *filter, reply, set;
    uint32_t              len;
    bson_iter_t           it;
    bson_error_t          error;
    const uint8_t        *value;
    mongoc_client_t      *client;
    mongoc_collection_t  *users;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = ngx_feira_users_collection(client, "users");

    filter = BCON_NEW("_id", BCON_OID(&job->user));

    ok = mongoc_collection_update_one(users, filter, job->update, NULL,
                                      &reply, &error);
    bson_destroy(filter);

    if (!ok) {
        ngx_feira_users_store_error(job, "update preferences", &error);

    } else if (!bson_iter_init_find(&it, &reply, "matchedCount")
               || bson_iter_as_int64(&it) == 0)
    {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such user";

    } else if (bson_iter_init_find(&it, job->update, "$set")
               && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        /* what was written is what is shown: {preferences: {...}} */
        bson_iter_document(&it, &len, &value);

        if (bson_init_static(&set, value, len)) {
            job->result = ngx_feira_users_preferences_view(&set);
            job->status = job->result ? NGX_HTTP_OK
                                      : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(users);
    ngx_feira_mongo_push(client);
}


/* GET devices: at most feira_users_devices_max, so one page */

void
ngx_feira_users_devices_list_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    json_t               *items, *device;
    bson_t               *filter, *opts;
    ngx_int_t             rc;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_client_t      *client;
    mongoc_collection_t  *devices;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    rc = ngx_feira_users_exists(client, job);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such user";
        }

        ngx_feira_mongo_push(client);
        return;
    }

    devices = ngx_feira_users_collection(client, "devices");

    filter = BCON_NEW("user_id", BCON_OID(&job->user));
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64((int64_t) job->devices_max));

    cursor = mongoc_collection_find_with_opts(devices, filter, opts, NULL);

    bson_destroy(filter);
    bson_destroy(opts);

    items = json_array();

    while (items && mongoc_cursor_next(cursor, &doc)) {
        device = ngx_feira_users_device_view(doc);

        if (device == NULL || json_array_append_new(items, device) != 0) {
            json_decref(items);
            items = NULL;
        }
    }

    if (mongoc_cursor_error(cursor, &error)) {
        ngx_feira_users_store_error(job, "find devices", &error);

    } else if (items) {
        job->result = json_pack("{s:O, s:n}", "items", items,
                                "next_cursor");
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_decref(items);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(devices);
    ngx_feira_mongo_push(client);
}


/*
 * POST devices.  A token is one app on one device, so it has one owner:
 * the same token again for the same user is 200 with the device as it
 * is; a token another user had registered moves to the caller (the app
 * was signed into by someone else, who must not get the pushes of the
 * first).  The unique index on token keeps one document per token.
 */

void
ngx_feira_users_device_add_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bool                  ok;
    bson_t               *filter, *opts, *update, reply, doc, *view;
    int64_t               n, created;
    uint32_t              len;
    ngx_int_t             rc, moved;
    ngx_uint_t            attempt;
    bson_oid_t            oid, id;
    bson_iter_t           it, sub;
    bson_error_t          error;
    const uint8_t        *value;
    mongoc_client_t      *client;
    mongoc_collection_t  *devices;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    if (ngx_feira_users_indexes(client) != NGX_OK) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        job->detail = "the user store is unavailable";
        ngx_feira_mongo_push(client);
        return;
    }

    devices = ngx_feira_users_collection(client, "devices");

    /* already the caller's: nothing to write */

    filter = BCON_NEW("token", BCON_UTF8(job->token),
                      "user_id", BCON_OID(&job->caller));
    opts = BCON_NEW("limit", BCON_INT64(1));

    rc = ngx_feira_users_find_one(devices, filter, opts, &doc, &error);

    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find device", &error);
        goto done;
    }

    if (rc == NGX_OK) {
        job->result = ngx_feira_users_device_view(&doc);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(&doc);
        goto done;
    }

    /* a bounded number per user; concurrent adds may pass it by a few */

    filter = BCON_NEW("user_id", BCON_OID(&job->caller));
    n = mongoc_collection_count_documents(devices, filter, NULL, NULL, NULL,
                                          &error);
    bson_destroy(filter);

    if (n < 0) {
        ngx_feira_users_store_error(job, "count devices", &error);
        goto done;
    }

    if (n >= (int64_t) job->devices_max) {
        job->status = NGX_HTTP_CONFLICT;
        ngx_snprintf((u_char *) job->detail_buf, sizeof(job->detail_buf) - 1,
                     "at most %ui devices per user: remove one first%Z",
                     job->devices_max);
        job->detail = job->detail_buf;
        goto done;
    }

    /* new, or moved from another user, in one upsert */

    for (attempt = 0; /* void */ ; attempt++) {
        bson_oid_init(&oid, NULL);

        filter = BCON_NEW("token", BCON_UTF8(job->token));
        update = BCON_NEW("$set", "{",
                              "user_id", BCON_OID(&job->caller),
                              "platform", BCON_UTF8(job->platform),
                              "updated_at", BCON_DATE_TIME(job->now),
                          "}",
                          "$setOnInsert", "{",
                              "_id", BCON_OID(&oid),
                              "created_at", BCON_DATE_TIME(job->now),
                          "}");

        ok = mongoc_collection_find_and_modify(devices, filter, NULL, update,
                                               NULL, false, true, false,
                                               &reply, &error);
        bson_destroy(filter);
        bson_destroy(update);

        /* two upserts of one new token: the loser finds it the next time */
        if (!ok && error.code == 11000 && attempt == 0) {
            bson_destroy(&reply);
            continue;
        }

        break;
    }

    if (!ok) {
        ngx_feira_users_store_error(job, "upsert device", &error);
        bson_destroy(&reply);
        goto done;
    }

    /* the document as it was before: none, the caller's, or another's */

    moved = 0;
    bson_oid_copy(&oid, &id);
    created = job->now;

    if (bson_iter_init_find(&it, &reply, "value")
        && BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        bson_iter_document(&it, &len, &value);

        if (bson_init_static(&doc, value, len)) {

            if (bson_iter_init_find(&sub, &doc, "_id")
                && BSON_ITER_HOLDS_OID(&sub))
            {
                bson_oid_copy(bson_iter_oid(&sub), &id);
            }

            if (bson_iter_init_find(&sub, &doc, "created_at")
                && BSON_ITER_HOLDS_DATE_TIME(&sub))
            {
                created = bson_iter_date_time(&sub);
            }

            moved = !(bson_iter_init_find(&sub, &doc, "user_id")
                      && BSON_ITER_HOLDS_OID(&sub)
                      && bson_oid_equal(bson_iter_oid(&sub), &job->caller));
        }

        job->status = moved ? NGX_HTTP_CREATED : NGX_HTTP_OK;

    } else {
        job->status = NGX_HTTP_CREATED;
    }

    bson_destroy(&reply);

    if (moved) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "feira: users: a push token moved to another user");
    }

    view = BCON_NEW("_id", BCON_OID(&id),
                    "platform", BCON_UTF8(job->platform),
                    "token", BCON_UTF8(job->token),
                    "created_at", BCON_DATE_TIME(created));

    job->result = ngx_feira_users_device_view(view);
    bson_destroy(view);

    if (job->result == NULL) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

done:

    mongoc_collection_destroy(devices);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_users_device_delete_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bool                  ok;
    bson_t               *filter, reply;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *devices;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    devices = ngx_feira_users_collection(client, "devices");

    /* only a device of the user of the path */
    filter = BCON_NEW("_id", BCON_OID(&job->item),
                      "user_id", BCON_OID(&job->user));

    ok = mongoc_collection_delete_one(devices, filter, NULL, &reply, &error);
    bson_destroy(filter);

    if (!ok) {
        ngx_feira_users_store_error(job, "delete device", &error);

    } else if (!bson_iter_init_find(&it, &reply, "deletedCount")
               || bson_iter_as_int64(&it) == 0)
    {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such device";

    } else {
        job->status = NGX_HTTP_NO_CONTENT;
    }

    bson_destroy(&reply);
    mongoc_collection_destroy(devices);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_users_store_error(ngx_feira_users_job_t *job, const char *what,
    const bson_error_t *error)
{
    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "feira: users: %s: %s", what, error->message);

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    job->detail = "the user store is unavailable";
}


/* NGX_OK and *doc (to be destroyed), NGX_DECLINED: none, NGX_ERROR */

ngx_int_t
ngx_feira_users_find_one(mongoc_collection_t *coll, const bson_t *filter,
    const bson_t *opts, bson_t *doc, bson_error_t *error)
{
    ngx_int_t         rc;
    const bson_t     *found;
    mongoc_cursor_t  *cursor;

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    if (mongoc_cursor_next(cursor, &found)) {
        bson_copy_to(found, doc);
        rc = NGX_OK;

    } else if (mongoc_cursor_error(cursor, error)) {
        rc = NGX_ERROR;

    } else {
        rc = NGX_DECLINED;
    }

    mongoc_cursor_destroy(cursor);

    return rc;
}


/*
 * The unique indexes are what makes "once per side", the ledger and "one
 * document per token" hold under races; without them no review or device
 * is written.  One index per command: FerretDB v1 drops the connection
 * when one createIndexes names several indexes that all exist already.
 */

ngx_int_t
ngx_feira_users_indexes(mongoc_client_t *client)
{
    bson_t      *index;
    ngx_int_t    rc;
    ngx_uint_t   i;

    if (ngx_feira_users_indexed) {
        return NGX_OK;
    }

    rc = NGX_OK;

    for (i = 0; rc == NGX_OK && i < 5; i++) {

        switch (i) {

        case 0:
            index = BCON_NEW("key", "{",
                                 "request_id", BCON_INT32(1),
                                 "reviewer_id", BCON_INT32(1),
                             "}",
                             "name", BCON_UTF8("request_reviewer_unique"),
                             "unique", BCON_BOOL(true));
            break;

        case 1:
            index = BCON_NEW("key", "{",
                                 "reviewee_id", BCON_INT32(1),
                                 "seq", BCON_INT32(1),
                             "}",
                             "name", BCON_UTF8("reviewee_seq_unique"),
                             "unique", BCON_BOOL(true));
            break;

        case 2:
            index = BCON_NEW("key", "{",
                                 "reviewee_id", BCON_INT32(1),
                                 "_id", BCON_INT32(-1),
                             "}",
                             "name", BCON_UTF8("reviewee_id"));
            break;

        case 3:
            index = BCON_NEW("key", "{", "token", BCON_INT32(1), "}",
                             "name", BCON_UTF8("token_unique"),
                             "unique", BCON_BOOL(true));
            break;

        default:
            index = BCON_NEW("key", "{", "user_id", BCON_INT32(1), "}",
                             "name", BCON_UTF8("user_id"));
            break;
        }

        rc = ngx_feira_users_create_index(client,
                                          i < 3 ? "reviews" : "devices",
                                          index);
        bson_destroy(index);
    }

    if (rc == NGX_OK) {
        ngx_feira_users_indexed = 1;
    }

    return rc;
}


static ngx_int_t
ngx_feira_users_create_index(mongoc_client_t *client,
    const char *collection, const bson_t *index)
{
    bool          ok;
    bson_t        cmd, list;
    bson_error_t  error;

    bson_init(&cmd);

    ok = BSON_APPEND_UTF8(&cmd, "createIndexes", collection)
         && BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &list)
         && BSON_APPEND_DOCUMENT(&list, "0", index)
         && bson_append_array_end(&cmd, &list);

    if (ok) {
        ok = mongoc_client_command_simple(client, ngx_feira_mongo_db(), &cmd,
                                          NULL, NULL, &error);
        if (!ok) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: users: createIndexes %s: %s",
                          collection, error.message);
        }
    }

    bson_destroy(&cmd);

    return ok ? NGX_OK : NGX_ERROR;
}


/* NGX_OK: a request has one as client and the other as provider */

static ngx_int_t
ngx_feira_users_counterpart(mongoc_client_t *client, const bson_oid_t *a,
    const bson_oid_t *b, bson_error_t *error)
{
    bson_t               *filter, *opts, doc;
    ngx_int_t             rc;
    mongoc_collection_t  *requests;

    requests = ngx_feira_users_collection(client, "requests");

    filter = BCON_NEW("$or", "[",
                          "{",
                              "client_id", BCON_OID(a),
                              "provider_id", BCON_OID(b),
                          "}",
                          "{",
                              "client_id", BCON_OID(b),
                              "provider_id", BCON_OID(a),
                          "}",
                      "]");
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");

    rc = ngx_feira_users_find_one(requests, filter, opts, &doc, error);

    if (rc == NGX_OK) {
        bson_destroy(&doc);
    }

    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(requests);

    return rc;
}


/* the user of the path exists: NGX_OK, NGX_DECLINED, or 503 set */

static ngx_int_t
ngx_feira_users_exists(mongoc_client_t *client, ngx_feira_users_job_t *job)
{
    bson_t               *filter, *opts, doc;
    ngx_int_t             rc;
    bson_error_t          error;
    mongoc_collection_t  *users;

    users = ngx_feira_users_collection(client, "users");

    filter = BCON_NEW("_id", BCON_OID(&job->user));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");

    rc = ngx_feira_users_find_one(users, filter, opts, &doc, &error);

    if (rc == NGX_OK) {
        bson_destroy(&doc);

    } else if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find user", &error);
    }

    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(users);

    return rc;
}


static mongoc_collection_t *
ngx_feira_users_collection(mongoc_client_t *client, const char *name)
{
    return mongoc_client_get_collection(client, ngx_feira_mongo_db(), name);
}
