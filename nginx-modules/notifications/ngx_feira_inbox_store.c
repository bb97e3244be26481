/*
 * The inbox in MongoDB (collection "notifications", written by the
 * notification worker): jobs for the thread pool, never the event loop.
 */

#include "ngx_http_feira_notifications_module.h"


static json_t *ngx_feira_inbox_item(const bson_t *doc, void *data);
static ngx_int_t ngx_feira_inbox_unread(mongoc_collection_t *coll,
    bson_oid_t *user, json_t *result);


void
ngx_feira_inbox_list_job(void *data)
{
    ngx_feira_inbox_job_t  *job = data;

    bson_t               *filter, *opts;
    ngx_int_t             rc;
    bson_oid_t            user, cursor;
    bson_error_t          error;
    mongoc_cursor_t      *cur;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "notifications");

    bson_oid_init_from_string(&user, job->user);

    filter = BCON_NEW("user_id", BCON_OID(&user));

    if (job->unread_only) {
        BSON_APPEND_BOOL(filter, "read", false);
    }

    if (job->page.cursor[0]) {
        bson_oid_init_from_string(&cursor, job->page.cursor);
        BCON_APPEND(filter, "_id", "{", "$lt", BCON_OID(&cursor), "}");
    }

    /* one more than asked: is there a next page? */
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}",
                    "limit", BCON_INT64((int64_t) job->page.limit + 1));

    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    rc = ngx_feira_mongo_page(cur, job->page.limit, ngx_feira_inbox_item,
                              NULL, "id", &job->result, &error);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: notifications: %s", error.message);

    } else if (rc == NGX_ERROR) {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (ngx_feira_inbox_unread(coll, &user, job->result) == NGX_OK) {
        job->status = NGX_HTTP_OK;
    }

    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


void
ngx_feira_inbox_read_job(void *data)
{
    ngx_feira_inbox_job_t  *job = data;

    bson_t               *filter, *update, reply, ids;
    bson_oid_t            user, oid;
    ngx_uint_t            i;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;
    char                  key[16];
    int64_t               modified;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "notifications");

    bson_oid_init_from_string(&user, job->user);

    /* only the caller's own: the filter always names the owner */
    filter = BCON_NEW("user_id", BCON_OID(&user), "read", BCON_BOOL(false));

    if (job->up_to[0]) {
        bson_oid_init_from_string(&oid, job->up_to);
        BCON_APPEND(filter, "_id", "{", "$lte", BCON_OID(&oid), "}");

    } else if (job->nids) {
        bson_init(&ids);

        for (i = 0; i < job->nids; i++) {
            bson_oid_init_from_string(&oid, job->ids[i]);
            snprintf(key, sizeof(key), "%u", (unsigned) i);
            BSON_APPEND_OID(&ids, key, &oid);
        }

        BCON_APPEND(filter, "_id", "{", "$in", BCON_ARRAY(&ids), "}");
        bson_destroy(&ids);
    }

    update = BCON_NEW("$set", "{",
                          "read", BCON_BOOL(true),
                          "read_at", BCON_DATE_TIME(
                                         (int64_t) time(NULL) * 1000),
                      "}");

    if (!mongoc_collection_update_many(coll, filter, update, NULL, &reply,
                                       &error))
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: notifications: %s", error.message);
        goto done;
    }

    modified = 0;

    if (bson_iter_init_find(&it, &reply, "modifiedCount")) {
        modified = bson_iter_as_int64(&it);
    }

    job->result = json_pack("{s:I}", "updated", (json_int_t) modified);

    if (job->result
        && ngx_feira_inbox_unread(coll, &user, job->result) == NGX_OK)
    {
        job->status = NGX_HTTP_OK;
    }

done:

    bson_destroy(&reply);
    bson_destroy(update);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static ngx_int_t
ngx_feira_inbox_unread(mongoc_collection_t *coll, bson_oid_t *user,
    json_t *result)
{
    bson_t        *filter;
    int64_t        n;
    bson_error_t   error;

    filter = BCON_NEW("user_id", BCON_OID(user), "read", BCON_BOOL(false));

    n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL,
                                          &error);
    bson_destroy(filter);

    if (n < 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: notifications: %s", error.message);
        json_decref(result);
        return NGX_ERROR;
    }

    json_object_set_new(result, "unread_count", json_integer(n));

    return NGX_OK;
}


/* what the owner sees of one notification */

static json_t *
ngx_feira_inbox_item(const bson_t *doc, void *data)
{
    json_t       *item;
    bson_iter_t   it;
    const char   *key;
    char          buf[32];

    item = json_object();
    if (item == NULL || !bson_iter_init(&it, doc)) {
        json_decref(item);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), buf);
            json_object_set_new(item, "id", json_string(buf));

        } else if ((ngx_strcmp(key, "template") == 0
                    || ngx_strcmp(key, "title") == 0
                    || ngx_strcmp(key, "body") == 0
                    || ngx_strcmp(key, "event_id") == 0)
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            json_object_set_new(item, key,
                                json_string(bson_iter_utf8(&it, NULL)));

        } else if (ngx_strcmp(key, "read") == 0 && BSON_ITER_HOLDS_BOOL(&it)) {
            json_object_set_new(item, "read",
                                json_boolean(bson_iter_bool(&it)));

        } else if (ngx_strcmp(key, "created_at") == 0
                   && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            ngx_feira_rfc3339(bson_iter_date_time(&it), buf, sizeof(buf));
            json_object_set_new(item, "created_at", json_string(buf));
        }
    }

    if (json_object_get(item, "read") == NULL) {
        json_object_set_new(item, "read", json_false());
    }

    return item;
}
