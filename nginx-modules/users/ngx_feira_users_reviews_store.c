/*
 * feira_users: reviews in MongoDB, and the ratings they make.
 *
 * Each user's reviews form an append-only ledger: the n-th review of a
 * reviewee carries seq = n and rating_sum = the sum of the ratings of
 * reviews 1..n, and (reviewee_id, seq) is a unique index.  A review is
 * added by reading the last entry (n, sum) and inserting (n + 1,
 * sum + rating); of concurrent writers exactly one gets n + 1, the others
 * get a duplicate key and go round again.  So the rating is exact under
 * any concurrency, and the review and its effect on the rating are one
 * single insert: nothing to undo if anything fails afterwards.
 *
 * Why not "$inc rating_sum and rating_count" in one findAndModify: with
 * MongoDB that is atomic, but FerretDB v1 (the local and test store)
 * applies every update as read, modify, write the whole document, with
 * nothing in between held; concurrent $inc lose updates, and so does a
 * conditional update.  A unique index is enforced by the store itself,
 * on both.
 *
 * users.rating_avg, rating_count and rating_sum are a copy of the last
 * entry, for readers of the users collection (matching sorts by it).  It
 * is written after the insert and checked again until it equals the
 * ledger, which converges under FerretDB's lost updates as well.  The API
 * itself answers from the ledger.
 *
 * Every function here is a job, run in a thread of the pool by
 * ngx_feira_thread_post() (ngx_feira_users_handlers.c), or is called from
 * one: no MongoDB call here runs on the event loop.
 */

#include "ngx_http_feira_users_module.h"


#define NGX_FEIRA_USERS_LEDGER_TRIES  64
#define NGX_FEIRA_USERS_CACHE_TRIES   8


static ngx_int_t ngx_feira_users_reviewed(mongoc_collection_t *reviews,
    ngx_feira_users_job_t *job);
static void ngx_feira_users_rating_cache(mongoc_client_t *client,
    const bson_oid_t *user);
static ngx_int_t ngx_feira_users_oid_of(const bson_t *doc, const char *key,
    bson_oid_t *oid);
static mongoc_collection_t *ngx_feira_users_reviews(mongoc_client_t *client);
static json_t *ngx_feira_users_review_item(const bson_t *doc, void *data);


/*
 * POST .../requests/{id}/reviews: the caller must be the client or the
 * provider of the completed request; the other one is reviewed.
 */

void
ngx_feira_users_review_create_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bson_t               *filter, *opts, request, *doc;
    int64_t               count, sum;
    uint32_t              len;
    ngx_int_t             rc, has_client, has_provider;
    ngx_uint_t            i;
    bson_oid_t            client_id, provider_id, reviewee, oid;
    const char           *status, *role;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *requests, *reviews;

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

    requests = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                            "requests");
    reviews = ngx_feira_users_reviews(client);
    doc = NULL;

    /* the request and its participants */

    ngx_memzero(&client_id, sizeof(bson_oid_t));
    ngx_memzero(&provider_id, sizeof(bson_oid_t));

    filter = BCON_NEW("_id", BCON_OID(&job->item));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{",
                        "client_id", BCON_INT32(1),
                        "provider_id", BCON_INT32(1),
                        "status", BCON_INT32(1),
                    "}");

    rc = ngx_feira_users_find_one(requests, filter, opts, &request, &error);

    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find request", &error);
        goto done;
    }

    if (rc == NGX_DECLINED) {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such request";
        goto done;
    }

    has_client = ngx_feira_users_oid_of(&request, "client_id",
                                        &client_id) == NGX_OK;
    has_provider = ngx_feira_users_oid_of(&request, "provider_id",
                                          &provider_id) == NGX_OK;

    if (has_client && bson_oid_equal(&client_id, &job->caller)) {
        role = "client";
        bson_oid_copy(&provider_id, &reviewee);

    } else if (has_client && has_provider
               && bson_oid_equal(&provider_id, &job->caller))
    {
        role = "provider";
        bson_oid_copy(&client_id, &reviewee);

    } else {
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "only the client and the provider of a request "
                      "may review it";
        bson_destroy(&request);
        goto done;
    }

    /* a request of one user with themselves is not a rating source */
    if (bson_oid_equal(&reviewee, &job->caller)) {
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "nobody reviews themselves";
        bson_destroy(&request);
        goto done;
    }

    status = NULL;
    len = 0;

    if (bson_iter_init_find(&it, &request, "status")
        && BSON_ITER_HOLDS_UTF8(&it))
    {
        status = bson_iter_utf8(&it, &len);
    }

    if (status == NULL || ngx_strcmp(status, "completed") != 0
        || !has_provider)
    {
        job->status = NGX_HTTP_CONFLICT;
        ngx_snprintf((u_char *) job->detail_buf, sizeof(job->detail_buf) - 1,
                     "a request is reviewed once it is completed; "
                     "this one is %*s%Z",
                     (size_t) ngx_min(len, 24), status ? status : "");
        job->detail = job->detail_buf;
        bson_destroy(&request);
        goto done;
    }

    bson_destroy(&request);

    /* once per side: a look first, the unique index decides races */

    rc = ngx_feira_users_reviewed(reviews, job);
    if (rc != NGX_DECLINED) {
        goto done;
    }

    /* the next entry of the reviewee's ledger */

    for (i = 0; i < NGX_FEIRA_USERS_LEDGER_TRIES; i++) {

        if (ngx_feira_users_rating(client, &reviewee, &count, &sum, &error)
            != NGX_OK)
        {
            ngx_feira_users_store_error(job, "read rating", &error);
            goto done;
        }

        bson_oid_init(&oid, NULL);

        doc = BCON_NEW("_id", BCON_OID(&oid),
                       "request_id", BCON_OID(&job->item),
                       "reviewer_id", BCON_OID(&job->caller),
                       "reviewee_id", BCON_OID(&reviewee),
                       "reviewer_role", BCON_UTF8(role),
                       "rating", BCON_INT32((int32_t) job->rating),
                       "comment", BCON_UTF8(job->comment),
                       "created_at", BCON_DATE_TIME(job->now),
                       "seq", BCON_INT64(count + 1),
                       "rating_sum", BCON_INT64(sum + job->rating));

        if (mongoc_collection_insert_one(reviews, doc, NULL, NULL, &error)) {
            break;
        }

        bson_destroy(doc);
        doc = NULL;

        if (error.code != 11000) {
            ngx_feira_users_store_error(job, "insert review", &error);
            goto done;
        }

        /* this side has reviewed meanwhile, or another review took seq */

        rc = ngx_feira_users_reviewed(reviews, job);
        if (rc != NGX_DECLINED) {
            goto done;
        }
    }

    if (doc == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: users: review not stored after %d rounds",
                      NGX_FEIRA_USERS_LEDGER_TRIES);
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        job->detail = "too many reviews at once, try again";
        goto done;
    }

    ngx_feira_users_rating_cache(client, &reviewee);

    job->result = ngx_feira_users_review_view(doc);
    job->status = job->result ? NGX_HTTP_CREATED
                              : NGX_HTTP_INTERNAL_SERVER_ERROR;

done:

    if (doc) {
        bson_destroy(doc);
    }

    mongoc_collection_destroy(requests);
    mongoc_collection_destroy(reviews);
    ngx_feira_mongo_push(client);
}


/* GET {id}/reviews: newest first, by _id; the cursor is the last _id */

void
ngx_feira_users_reviews_list_job(void *data)
{
    ngx_feira_users_job_t  *job = data;

    bson_t               *filter, *opts, user;
    ngx_int_t             rc;
    bson_oid_t            after;
    bson_error_t          error;
    mongoc_cursor_t      *cursor;
    mongoc_client_t      *client;
    mongoc_collection_t  *users, *reviews;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");
    reviews = ngx_feira_users_reviews(client);
    cursor = NULL;

    filter = BCON_NEW("_id", BCON_OID(&job->user));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");

    rc = ngx_feira_users_find_one(users, filter, opts, &user, &error);

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

    bson_destroy(&user);

    if (job->page.cursor[0]) {
        bson_oid_init_from_string(&after, job->page.cursor);
        filter = BCON_NEW("reviewee_id", BCON_OID(&job->user),
                          "_id", "{", "$lt", BCON_OID(&after), "}");

    } else {
        filter = BCON_NEW("reviewee_id", BCON_OID(&job->user));
    }

    /* one more than asked: whether there is a next page */
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}",
                    "limit", BCON_INT64((int64_t) job->page.limit + 1));

    cursor = mongoc_collection_find_with_opts(reviews, filter, opts, NULL);

    bson_destroy(filter);
    bson_destroy(opts);

    rc = ngx_feira_mongo_page(cursor, job->page.limit,
                              ngx_feira_users_review_item, NULL, "id",
                              &job->result, &error);

    if (rc == NGX_DECLINED) {
        ngx_feira_users_store_error(job, "find reviews", &error);
        goto done;
    }

    job->status = (rc == NGX_OK) ? NGX_HTTP_OK
                                 : NGX_HTTP_INTERNAL_SERVER_ERROR;

done:

    if (cursor) {
        mongoc_cursor_destroy(cursor);
    }

    mongoc_collection_destroy(users);
    mongoc_collection_destroy(reviews);
    ngx_feira_mongo_push(client);
}


static json_t *
ngx_feira_users_review_item(const bson_t *doc, void *data)
{
    return ngx_feira_users_review_view(doc);
}


/* the last entry of a user's ledger: 0 and 0 before the first review */

ngx_int_t
ngx_feira_users_rating(mongoc_client_t *client, const bson_oid_t *user,
    int64_t *count, int64_t *sum, bson_error_t *error)
{
    bson_t               *filter, *opts, doc;
    ngx_int_t             rc;
    bson_iter_t           it;
    mongoc_collection_t  *reviews;

    *count = 0;
    *sum = 0;

    reviews = ngx_feira_users_reviews(client);

    filter = BCON_NEW("reviewee_id", BCON_OID(user));
    opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}",
                    "limit", BCON_INT64(1),
                    "projection", "{",
                        "seq", BCON_INT32(1),
                        "rating_sum", BCON_INT32(1),
                    "}");

    rc = ngx_feira_users_find_one(reviews, filter, opts, &doc, error);

    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(reviews);

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (bson_iter_init_find(&it, &doc, "seq") && BSON_ITER_HOLDS_NUMBER(&it))
    {
        *count = bson_iter_as_int64(&it);
    }

    if (bson_iter_init_find(&it, &doc, "rating_sum")
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        *sum = bson_iter_as_int64(&it);
    }

    bson_destroy(&doc);

    return NGX_OK;
}


/* NGX_DECLINED: not yet; otherwise the job's answer is set (409, 503) */

static ngx_int_t
ngx_feira_users_reviewed(mongoc_collection_t *reviews,
    ngx_feira_users_job_t *job)
{
    bson_t        *filter, *opts, doc;
    ngx_int_t      rc;
    bson_error_t   error;

    filter = BCON_NEW("request_id", BCON_OID(&job->item),
                      "reviewer_id", BCON_OID(&job->caller));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{", "_id", BCON_INT32(1), "}");

    rc = ngx_feira_users_find_one(reviews, filter, opts, &doc, &error);

    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_OK) {
        bson_destroy(&doc);
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "you have already reviewed this request";

    } else if (rc == NGX_ERROR) {
        ngx_feira_users_store_error(job, "find review", &error);
    }

    return rc;
}


/*
 * The copy in users, made equal to the ledger.  The write only raises
 * rating_count (with MongoDB that alone is enough); the loop reads both
 * again after writing, so that the last writer leaves them equal even
 * where the store loses concurrent updates.
 */

static void
ngx_feira_users_rating_cache(mongoc_client_t *client, const bson_oid_t *user)
{
    bool                  ok;
    bson_t               *filter, *opts, *update, doc;
    int64_t               count, sum, cached;
    ngx_int_t             rc;
    ngx_uint_t            i;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_collection_t  *users;

    users = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                         "users");

    for (i = 0; i < NGX_FEIRA_USERS_CACHE_TRIES; i++) {

        if (ngx_feira_users_rating(client, user, &count, &sum, &error)
            != NGX_OK)
        {
            goto failed;
        }

        filter = BCON_NEW("_id", BCON_OID(user));
        opts = BCON_NEW("limit", BCON_INT64(1),
                        "projection", "{", "rating_count", BCON_INT32(1), "}");

        rc = ngx_feira_users_find_one(users, filter, opts, &doc, &error);

        bson_destroy(filter);
        bson_destroy(opts);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_DECLINED) {
            /* the reviewee is gone; the ledger stays */
            goto done;
        }

        cached = -1;

        if (bson_iter_init_find(&it, &doc, "rating_count")
            && BSON_ITER_HOLDS_NUMBER(&it))
        {
            cached = bson_iter_as_int64(&it);
        }

        bson_destroy(&doc);

        if (cached >= count) {
            goto done;
        }

        filter = BCON_NEW("_id", BCON_OID(user),
                          "$or", "[",
                              "{", "rating_count", "{",
                                  "$lt", BCON_INT64(count),
                              "}", "}",
                              "{", "rating_count", "{",
                                  "$exists", BCON_BOOL(false),
                              "}", "}",
                          "]");
        update = BCON_NEW("$set", "{",
                              "rating_count", BCON_INT32((int32_t) count),
                              "rating_sum", BCON_INT64(sum),
                              "rating_avg",
                                  BCON_DOUBLE((double) sum / (double) count),
                          "}");

        ok = mongoc_collection_update_one(users, filter, update, NULL, NULL,
                                          &error);
        bson_destroy(filter);
        bson_destroy(update);

        if (!ok) {
            goto failed;
        }
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "feira: users: the rating copy was not settled after "
                  "%d rounds; the API answers from the reviews",
                  NGX_FEIRA_USERS_CACHE_TRIES);

    goto done;

failed:

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "feira: users: the rating copy was not written: %s",
                  error.message);

done:

    mongoc_collection_destroy(users);
}


static ngx_int_t
ngx_feira_users_oid_of(const bson_t *doc, const char *key, bson_oid_t *oid)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_copy(bson_iter_oid(&it), oid);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static mongoc_collection_t *
ngx_feira_users_reviews(mongoc_client_t *client)
{
    return mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        "reviews");
}
