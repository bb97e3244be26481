/*
 * feira_chat: the MongoDB side, run as jobs in the thread pool.  Who talks
 * to whom comes from `requests` (feira_services'; read only); messages are
 * an append-only collection whose unique (request_id, from, client_msg_id)
 * index makes a retried send one message, even under FerretDB.
 */

#include <sys/time.h>

#include "ngx_http_feira_chat_module.h"


#define NGX_FEIRA_CHAT_OFFERED_MAX  64


/* what a request says about who may talk */
typedef struct {
    char                 client[25];
    char                 provider[25];          /* assigned, or "" */
    ngx_uint_t           open;
    ngx_uint_t           noffered;
    char                 offered[NGX_FEIRA_CHAT_OFFERED_MAX][25];
} ngx_feira_chat_req_t;


static ngx_int_t ngx_feira_chat_indexes(mongoc_client_t *client);
static ngx_int_t ngx_feira_chat_create_index(mongoc_client_t *client,
    bson_t *index);
static ngx_int_t ngx_feira_chat_load(mongoc_client_t *client,
    ngx_feira_chat_op_t *op, ngx_feira_chat_req_t *req);
static ngx_int_t ngx_feira_chat_member(ngx_feira_chat_op_t *op,
    ngx_feira_chat_req_t *req);
static ngx_int_t ngx_feira_chat_pair(ngx_feira_chat_op_t *op,
    ngx_feira_chat_req_t *req, const char *field);
static void ngx_feira_chat_send(mongoc_client_t *client,
    ngx_feira_chat_op_t *op);
static void ngx_feira_chat_history(mongoc_client_t *client,
    ngx_feira_chat_op_t *op);
static json_t *ngx_feira_chat_item(const bson_t *doc, void *data);
static void ngx_feira_chat_read(mongoc_client_t *client,
    ngx_feira_chat_op_t *op);
static void ngx_feira_chat_conversations(mongoc_client_t *client,
    ngx_feira_chat_op_t *op, ngx_feira_chat_req_t *req);
static int64_t ngx_feira_chat_unread(mongoc_client_t *client,
    const char *request, const char *provider, const char *user,
    bson_oid_t *read_up_to);
static json_t *ngx_feira_chat_last(mongoc_client_t *client,
    const char *request, const char *provider);
static json_t *ngx_feira_chat_message_json(const bson_t *doc);
static void ngx_feira_chat_hex(const bson_iter_t *it, char *out);
static void ngx_feira_chat_fail(ngx_feira_chat_op_t *op, ngx_uint_t status,
    const char *detail);
static mongoc_collection_t *ngx_feira_chat_collection(
    mongoc_client_t *client, const char *name);
static int64_t ngx_feira_chat_now(void);
static void ngx_feira_chat_oid(bson_oid_t *oid, int64_t ms);


/* set once this worker has created the indexes (idempotent anyway) */
static volatile int  ngx_feira_chat_indexed;

/* message ids: see ngx_feira_chat_oid() */
static uint32_t      ngx_feira_chat_oid_counter;
static uint8_t       ngx_feira_chat_oid_process[3];


void
ngx_feira_chat_job(void *data)
{
    ngx_feira_chat_op_t  *op = data;

    mongoc_client_t       *client;
    ngx_feira_chat_req_t   req;

    op->status = NGX_HTTP_OK;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        return;
    }

    if (ngx_feira_chat_indexes(client) != NGX_OK) {
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        goto done;
    }

    if (ngx_feira_chat_load(client, op, &req) != NGX_OK
        || ngx_feira_chat_member(op, &req) != NGX_OK)
    {
        goto done;
    }

    switch (op->what) {

    case NGX_FEIRA_CHAT_SEND:
        if (ngx_feira_chat_pair(op, &req, "to") == NGX_OK) {
            ngx_feira_chat_send(client, op);
        }
        break;

    case NGX_FEIRA_CHAT_HISTORY:
        if (ngx_feira_chat_pair(op, &req, "provider") == NGX_OK) {
            ngx_feira_chat_history(client, op);
        }
        break;

    case NGX_FEIRA_CHAT_TYPING:
        (void) ngx_feira_chat_pair(op, &req, "to");
        break;

    case NGX_FEIRA_CHAT_READ:
        ngx_feira_chat_read(client, op);
        break;

    default: /* NGX_FEIRA_CHAT_CONVERSATIONS */
        ngx_feira_chat_conversations(client, op, &req);
        break;
    }

done:

    ngx_feira_mongo_push(client);
}


/*
 * The unique index is what makes a retry one message; the second serves
 * the history (newest first, by _id) and the unread counts.  One index
 * per command: FerretDB v1 drops the connection when one createIndexes
 * names several indexes that all exist already.
 */

static ngx_int_t
ngx_feira_chat_indexes(mongoc_client_t *client)
{
    bson_t     *index;
    ngx_int_t   rc;

    if (ngx_feira_chat_indexed) {
        return NGX_OK;
    }

    index = BCON_NEW("key", "{",
                         "request_id", BCON_INT32(1),
                         "from", BCON_INT32(1),
                         "client_msg_id", BCON_INT32(1),
                     "}",
                     "name", BCON_UTF8("request_from_cmid_unique"),
                     "unique", BCON_BOOL(true));

    rc = ngx_feira_chat_create_index(client, index);
    bson_destroy(index);

    if (rc != NGX_OK) {
        return rc;
    }

    index = BCON_NEW("key", "{",
                         "request_id", BCON_INT32(1),
                         "provider_id", BCON_INT32(1),
                         "_id", BCON_INT32(-1),
                     "}",
                     "name", BCON_UTF8("conversation"));

    rc = ngx_feira_chat_create_index(client, index);
    bson_destroy(index);

    if (rc == NGX_OK) {
        ngx_feira_chat_indexed = 1;
    }

    return rc;
}


static ngx_int_t
ngx_feira_chat_create_index(mongoc_client_t *client, bson_t *index)
{
    bool          ok;
    bson_t        cmd, list;
    bson_error_t  error;

    bson_init(&cmd);

    ok = BSON_APPEND_UTF8(&cmd, "createIndexes", NGX_FEIRA_CHAT_MESSAGES)
         && BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &list)
         && BSON_APPEND_DOCUMENT(&list, "0", index)
         && bson_append_array_end(&cmd, &list);

    if (ok) {
        ok = mongoc_client_command_simple(client, ngx_feira_mongo_db(), &cmd,
                                          NULL, NULL, &error);
        if (!ok) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: chat: createIndexes messages: %s",
                          error.message);
        }
    }

    bson_destroy(&cmd);

    return ok ? NGX_OK : NGX_ERROR;
}


/* the request, or op->status 404/503 */

static ngx_int_t
ngx_feira_chat_load(mongoc_client_t *client, ngx_feira_chat_op_t *op,
    ngx_feira_chat_req_t *req)
{
    bson_t               *filter, *opts;
    bson_oid_t            oid;
    ngx_int_t             rc;
    bson_iter_t           it, arr;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *requests;

    ngx_memzero(req, sizeof(ngx_feira_chat_req_t));

    bson_oid_init_from_string(&oid, op->request_id);

    filter = BCON_NEW("_id", BCON_OID(&oid));
    opts = BCON_NEW("limit", BCON_INT64(1),
                    "projection", "{",
                        "client_id", BCON_INT32(1),
                        "provider_id", BCON_INT32(1),
                        "offered_to", BCON_INT32(1),
                        "status", BCON_INT32(1),
                    "}");

    requests = ngx_feira_chat_collection(client, "requests");
    cursor = mongoc_collection_find_with_opts(requests, filter, opts, NULL);

    rc = NGX_DECLINED;

    if (mongoc_cursor_next(cursor, &doc)) {
        rc = NGX_OK;

        if (bson_iter_init_find(&it, doc, "client_id")) {
            ngx_feira_chat_hex(&it, req->client);
        }

        if (bson_iter_init_find(&it, doc, "provider_id")) {
            ngx_feira_chat_hex(&it, req->provider);
        }

        if (bson_iter_init_find(&it, doc, "status")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            req->open = ngx_strcmp(bson_iter_utf8(&it, NULL), "open") == 0;
        }

        if (bson_iter_init_find(&it, doc, "offered_to")
            && BSON_ITER_HOLDS_ARRAY(&it)
            && bson_iter_recurse(&it, &arr))
        {
            while (bson_iter_next(&arr)
                   && req->noffered < NGX_FEIRA_CHAT_OFFERED_MAX)
            {
                ngx_feira_chat_hex(&arr, req->offered[req->noffered]);

                if (req->offered[req->noffered][0]) {
                    req->noffered++;
                }
            }
        }

    } else if (mongoc_cursor_error(cursor, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: chat: find request: %s", error.message);
        rc = NGX_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(requests);
    bson_destroy(filter);
    bson_destroy(opts);

    if (rc == NGX_DECLINED || (rc == NGX_OK && req->client[0] == '\0')) {
        ngx_feira_chat_fail(op, NGX_HTTP_NOT_FOUND, "no such request");
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
    }

    return rc;
}


/*
 * The participants: the client; the assigned provider; while the request
 * is open, each provider it was offered to (each with its own pair).
 * Sets op->client_id, and op->provider_id for a provider.
 */

static ngx_int_t
ngx_feira_chat_member(ngx_feira_chat_op_t *op, ngx_feira_chat_req_t *req)
{
    ngx_uint_t  i;

    ngx_memcpy(op->client_id, req->client, 25);

    if (ngx_strcmp(op->user, req->client) == 0) {
        return NGX_OK;
    }

    if (req->provider[0] && ngx_strcmp(op->user, req->provider) == 0) {
        ngx_memcpy(op->provider_id, op->user, 25);
        return NGX_OK;
    }

    for (i = 0; req->open && i < req->noffered; i++) {
        if (ngx_strcmp(op->user, req->offered[i]) == 0) {
            ngx_memcpy(op->provider_id, op->user, 25);
            return NGX_OK;
        }
    }

    ngx_feira_chat_fail(op, NGX_HTTP_FORBIDDEN,
                        "only the participants of a request may use its "
                        "conversations");

    return NGX_DECLINED;
}


/*
 * The conversation of a participant: a provider's own; the client's with
 * op->to (the provider named), else the assigned one, else the only one
 * it was offered to.  Sets op->provider_id and op->peer_id.
 */

static ngx_int_t
ngx_feira_chat_pair(ngx_feira_chat_op_t *op, ngx_feira_chat_req_t *req,
    const char *field)
{
    ngx_uint_t  i, ok;

    if (op->provider_id[0]) {
        ngx_memcpy(op->peer_id, op->client_id, 25);
        return NGX_OK;
    }

    if (op->to[0] == '\0') {
        if (req->provider[0]) {
            ngx_memcpy(op->provider_id, req->provider, 25);

        } else if (req->open && req->noffered == 1) {
            ngx_memcpy(op->provider_id, req->offered[0], 25);

        } else {
            ngx_feira_errors_add(&op->errs, field,
                                 "name the provider of the conversation: "
                                 "the request has none or several");
            ngx_feira_chat_fail(op, NGX_HTTP_BAD_REQUEST,
                                "which conversation is not said");
            return NGX_DECLINED;
        }

        ngx_memcpy(op->peer_id, op->provider_id, 25);
        return NGX_OK;
    }

    ok = req->provider[0] && ngx_strcmp(op->to, req->provider) == 0;

    for (i = 0; !ok && req->open && i < req->noffered; i++) {
        ok = ngx_strcmp(op->to, req->offered[i]) == 0;
    }

    if (!ok) {
        ngx_feira_chat_fail(op, NGX_HTTP_FORBIDDEN,
                            "that provider is not a participant of this "
                            "request");
        return NGX_DECLINED;
    }

    ngx_memcpy(op->provider_id, op->to, 25);
    ngx_memcpy(op->peer_id, op->to, 25);

    return NGX_OK;
}


/*
 * Stored first: insert; a duplicate (request, sender, client_msg_id) is a
 * retry: the stored message if the text is the same, else 409.
 */

static void
ngx_feira_chat_send(mongoc_client_t *client, ngx_feira_chat_op_t *op)
{
    bson_t               *doc, *filter;
    int64_t               now;
    uint32_t              len;
    bson_oid_t            oid, rid, cid, pid, from, to;
    const char           *text;
    bson_iter_t           it;
    bson_error_t          error;
    const bson_t         *found;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *messages;

    bson_oid_init_from_string(&rid, op->request_id);
    bson_oid_init_from_string(&cid, op->client_id);
    bson_oid_init_from_string(&pid, op->provider_id);
    bson_oid_init_from_string(&from, op->user);
    bson_oid_init_from_string(&to, op->peer_id);

    now = ngx_feira_chat_now();
    ngx_feira_chat_oid(&oid, now);

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "request_id", BCON_OID(&rid),
                   "client_id", BCON_OID(&cid),
                   "provider_id", BCON_OID(&pid),
                   "from", BCON_OID(&from),
                   "to", BCON_OID(&to),
                   "text", BCON_UTF8(op->text),
                   "client_msg_id", BCON_UTF8(op->cmid),
                   "created_at", BCON_DATE_TIME(now));

    messages = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_MESSAGES);

    if (mongoc_collection_insert_one(messages, doc, NULL, NULL, &error)) {
        op->status = NGX_HTTP_CREATED;
        op->result = ngx_feira_chat_message_json(doc);

        if (op->result == NULL) {
            ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
        }

        goto done;
    }

    if (error.code != 11000) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: chat: insert message: %s", error.message);
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        goto done;
    }

    /* a retry: what was stored under this client_msg_id */
    filter = BCON_NEW("request_id", BCON_OID(&rid),
                      "from", BCON_OID(&from),
                      "client_msg_id", BCON_UTF8(op->cmid));

    cursor = mongoc_collection_find_with_opts(messages, filter, NULL, NULL);

    if (mongoc_cursor_next(cursor, &found)) {
        text = NULL;
        len = 0;

        if (bson_iter_init_find(&it, found, "text")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            text = bson_iter_utf8(&it, &len);
        }

        if (bson_iter_init_find(&it, found, "provider_id")
            && BSON_ITER_HOLDS_OID(&it)
            && bson_oid_equal(bson_iter_oid(&it), &pid)
            && text && len == op->text_len
            && ngx_memcmp(text, op->text, len) == 0)
        {
            op->status = NGX_HTTP_OK;
            op->replayed = 1;
            op->result = ngx_feira_chat_message_json(found);

            if (op->result == NULL) {
                ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
            }

        } else {
            ngx_feira_errors_add(&op->errs, "client_msg_id",
                                 "was used for another message");
            ngx_feira_chat_fail(op, NGX_HTTP_CONFLICT,
                                "this client_msg_id was sent with another "
                                "text or to another conversation");
        }

    } else {
        /* the winner's insert is not visible yet (or the store failed) */
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE,
                            "the message is being stored, try again");
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);

done:

    mongoc_collection_destroy(messages);
    bson_destroy(doc);
}


static json_t *
ngx_feira_chat_item(const bson_t *doc, void *data)
{
    return ngx_feira_chat_message_json(doc);
}


/* newest first; ?before= is the last id of the previous page */

static void
ngx_feira_chat_history(mongoc_client_t *client, ngx_feira_chat_op_t *op)
{
    bson_t               *filter, *opts;
    json_t               *page;
    int64_t               unread;
    ngx_int_t             rc;
    bson_oid_t            rid, pid, before;
    bson_error_t          error;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *messages;

    bson_oid_init_from_string(&rid, op->request_id);
    bson_oid_init_from_string(&pid, op->provider_id);

    if (op->before[0]) {
        bson_oid_init_from_string(&before, op->before);
        filter = BCON_NEW("request_id", BCON_OID(&rid),
                          "provider_id", BCON_OID(&pid),
                          "_id", "{", "$lt", BCON_OID(&before), "}");

    } else {
        filter = BCON_NEW("request_id", BCON_OID(&rid),
                          "provider_id", BCON_OID(&pid));
    }

    /* one more than a page tells whether there is a next one */
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}",
                    "limit", BCON_INT64((int64_t) op->limit + 1));

    messages = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_MESSAGES);
    cursor = mongoc_collection_find_with_opts(messages, filter, opts, NULL);

    rc = ngx_feira_mongo_page(cursor, op->limit, ngx_feira_chat_item, NULL,
                              "id", &page, &error);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: chat: history: %s", error.message);
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);

    } else if (rc == NGX_ERROR) {
        ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(messages);
    bson_destroy(filter);
    bson_destroy(opts);

    if (page == NULL) {
        return;
    }

    /* on the first page only: each count is a scan under FerretDB */
    unread = op->before[0] ? -1
                           : ngx_feira_chat_unread(client, op->request_id,
                                                   op->provider_id, op->user,
                                                   NULL);

    if (json_object_set_new(page, "request_id",
                            json_string(op->request_id)) == 0
        && json_object_set_new(page, "client_id",
                               json_string(op->client_id)) == 0
        && json_object_set_new(page, "provider_id",
                               json_string(op->provider_id)) == 0
        && json_object_set_new(page, "unread",
                               unread < 0 ? json_null()
                                          : json_integer(unread)) == 0)
    {
        op->result = page;

    } else {
        json_decref(page);
        ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }

    if (op->result == NULL) {
        ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
}


/*
 * A read receipt: up to a message of the caller's conversation.  The mark
 * only moves forward.  Under FerretDB two concurrent receipts of one user
 * may both write (read, compare, write); the later id wins on the next one.
 */

static void
ngx_feira_chat_read(mongoc_client_t *client, ngx_feira_chat_op_t *op)
{
    bson_t               *filter, *update, *opts;
    int64_t               unread;
    bson_oid_t            rid, mid, pid, uid, mark;
    bson_iter_t           it;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *messages, *reads;
    u_char                key[80];

    bson_oid_init_from_string(&rid, op->request_id);
    bson_oid_init_from_string(&mid, op->up_to);

    filter = BCON_NEW("_id", BCON_OID(&mid), "request_id", BCON_OID(&rid));
    opts = BCON_NEW("limit", BCON_INT64(1));

    messages = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_MESSAGES);
    cursor = mongoc_collection_find_with_opts(messages, filter, opts, NULL);

    op->provider_id[0] = '\0';

    if (mongoc_cursor_next(cursor, &doc)
        && bson_iter_init_find(&it, doc, "provider_id"))
    {
        ngx_feira_chat_hex(&it, op->provider_id);

    } else if (mongoc_cursor_error(cursor, &error)) {
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(messages);
    bson_destroy(filter);
    bson_destroy(opts);

    if (op->status >= NGX_HTTP_BAD_REQUEST) {
        return;
    }

    /* a provider reads its own conversation only */
    if (op->provider_id[0] == '\0'
        || (ngx_strcmp(op->user, op->client_id) != 0
            && ngx_strcmp(op->user, op->provider_id) != 0))
    {
        ngx_feira_errors_add(&op->errs, "up_to",
                             "is not a message of your conversation");
        ngx_feira_chat_fail(op, NGX_HTTP_BAD_REQUEST,
                            "no such message in this request");
        return;
    }

    ngx_memcpy(op->peer_id, ngx_strcmp(op->user, op->client_id) == 0
                            ? op->provider_id : op->client_id, 25);

    *ngx_sprintf(key, "%s:%s:%s", op->request_id, op->provider_id, op->user)
        = '\0';

    unread = ngx_feira_chat_unread(client, op->request_id, op->provider_id,
                                   op->user, &mark);

    if (unread < 0) {
        ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        return;
    }

    if (bson_oid_compare(&mid, &mark) > 0) {
        bson_oid_init_from_string(&pid, op->provider_id);
        bson_oid_init_from_string(&uid, op->user);

        filter = BCON_NEW("_id", BCON_UTF8((char *) key));
        update = BCON_NEW("$set", "{",
                              "request_id", BCON_OID(&rid),
                              "provider_id", BCON_OID(&pid),
                              "user_id", BCON_OID(&uid),
                              "up_to", BCON_OID(&mid),
                              "at", BCON_DATE_TIME(ngx_feira_chat_now()),
                          "}");
        opts = BCON_NEW("upsert", BCON_BOOL(true));

        reads = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_READS);

        if (!mongoc_collection_update_one(reads, filter, update, opts, NULL,
                                          &error))
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "feira: chat: read receipt: %s", error.message);
            ngx_feira_chat_fail(op, NGX_HTTP_SERVICE_UNAVAILABLE, NULL);
        }

        mongoc_collection_destroy(reads);
        bson_destroy(filter);
        bson_destroy(update);
        bson_destroy(opts);

        if (op->status >= NGX_HTTP_BAD_REQUEST) {
            return;
        }

        op->changed = 1;
        bson_oid_copy(&mid, &mark);

        unread = ngx_feira_chat_unread(client, op->request_id,
                                       op->provider_id, op->user, NULL);
    }

    bson_oid_to_string(&mark, op->up_to);

    op->result = json_pack("{s:s, s:s, s:s, s:s, s:o}",
                           "request_id", op->request_id,
                           "client_id", op->client_id,
                           "provider_id", op->provider_id,
                           "up_to", op->up_to,
                           "unread",
                               unread < 0 ? json_null()
                                          : json_integer(unread));

    if (op->result == NULL) {
        ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
}


/* the caller's conversations of the request, with what is unread */

static void
ngx_feira_chat_conversations(mongoc_client_t *client,
    ngx_feira_chat_op_t *op, ngx_feira_chat_req_t *req)
{
    json_t      *items, *item, *last;
    int64_t      unread;
    ngx_uint_t   i, n;
    const char  *providers[NGX_FEIRA_CHAT_OFFERED_MAX + 1];

    n = 0;

    if (op->provider_id[0]) {
        providers[n++] = op->provider_id;

    } else if (req->provider[0]) {
        providers[n++] = req->provider;

    } else if (req->open) {
        for (i = 0; i < req->noffered; i++) {
            providers[n++] = req->offered[i];
        }
    }

    items = json_array();

    for (i = 0; items && i < n; i++) {
        unread = ngx_feira_chat_unread(client, op->request_id, providers[i],
                                       op->user, NULL);
        last = ngx_feira_chat_last(client, op->request_id, providers[i]);

        item = json_pack("{s:s, s:s, s:s, s:o, s:o}",
                         "request_id", op->request_id,
                         "client_id", op->client_id,
                         "provider_id", providers[i],
                         "unread",
                             unread < 0 ? json_null() : json_integer(unread),
                         "last_message", last ? last : json_null());

        if (item == NULL || json_array_append_new(items, item) != 0) {
            json_decref(items);
            items = NULL;
        }
    }

    op->result = items ? json_pack("{s:o}", "items", items) : NULL;

    if (op->result == NULL) {
        ngx_feira_chat_fail(op, NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    }
}


/*
 * Messages to user after its read mark (the mark into read_up_to, zero
 * when none); -1 when the store failed.
 */

static int64_t
ngx_feira_chat_unread(mongoc_client_t *client, const char *request,
    const char *provider, const char *user, bson_oid_t *read_up_to)
{
    bson_t               *filter, *opts;
    int64_t               n;
    bson_oid_t            rid, pid, uid, mark;
    bson_iter_t           it;
    bson_error_t          error;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *coll;
    u_char                key[80];

    bson_oid_init_from_string(&rid, request);
    bson_oid_init_from_string(&pid, provider);
    bson_oid_init_from_string(&uid, user);
    bson_oid_init_from_data(&mark, (const uint8_t *) "\0\0\0\0\0\0\0\0\0\0\0");

    *ngx_sprintf(key, "%s:%s:%s", request, provider, user) = '\0';

    filter = BCON_NEW("_id", BCON_UTF8((char *) key));
    opts = BCON_NEW("limit", BCON_INT64(1));

    coll = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_READS);
    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    n = 0;

    if (mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, "up_to")
            && BSON_ITER_HOLDS_OID(&it))
        {
            bson_oid_copy(bson_iter_oid(&it), &mark);
        }

    } else if (mongoc_cursor_error(cursor, &error)) {
        n = -1;
    }

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(coll);
    bson_destroy(filter);
    bson_destroy(opts);

    if (read_up_to) {
        bson_oid_copy(&mark, read_up_to);
    }

    if (n < 0) {
        return n;
    }

    filter = BCON_NEW("request_id", BCON_OID(&rid),
                      "provider_id", BCON_OID(&pid),
                      "to", BCON_OID(&uid),
                      "_id", "{", "$gt", BCON_OID(&mark), "}");

    coll = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_MESSAGES);
    n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL,
                                          &error);
    if (n < 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: chat: unread count: %s", error.message);
    }

    mongoc_collection_destroy(coll);
    bson_destroy(filter);

    return n;
}


static json_t *
ngx_feira_chat_last(mongoc_client_t *client, const char *request,
    const char *provider)
{
    json_t               *last;
    bson_t               *filter, *opts;
    bson_oid_t            rid, pid;
    const bson_t         *doc;
    mongoc_cursor_t      *cursor;
    mongoc_collection_t  *messages;

    bson_oid_init_from_string(&rid, request);
    bson_oid_init_from_string(&pid, provider);

    filter = BCON_NEW("request_id", BCON_OID(&rid),
                      "provider_id", BCON_OID(&pid));
    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(-1), "}",
                    "limit", BCON_INT64(1));

    messages = ngx_feira_chat_collection(client, NGX_FEIRA_CHAT_MESSAGES);
    cursor = mongoc_collection_find_with_opts(messages, filter, opts, NULL);

    last = mongoc_cursor_next(cursor, &doc)
           ? ngx_feira_chat_message_json(doc) : NULL;

    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(messages);
    bson_destroy(filter);
    bson_destroy(opts);

    return last;
}


/* the public view of a stored message */

static json_t *
ngx_feira_chat_message_json(const bson_t *doc)
{
    json_t       *json;
    uint32_t      len;
    const char   *text, *cmid, *key;
    bson_iter_t   it;
    char          id[25], request[25], client[25], provider[25], from[25],
                  to[25], at[32];

    id[0] = request[0] = client[0] = provider[0] = from[0] = to[0] = '\0';
    text = "";
    cmid = "";
    len = 0;
    ngx_feira_rfc3339(0, at, sizeof(at));

    if (!bson_iter_init(&it, doc)) {
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (ngx_strcmp(key, "_id") == 0) {
            ngx_feira_chat_hex(&it, id);

        } else if (ngx_strcmp(key, "request_id") == 0) {
            ngx_feira_chat_hex(&it, request);

        } else if (ngx_strcmp(key, "client_id") == 0) {
            ngx_feira_chat_hex(&it, client);

        } else if (ngx_strcmp(key, "provider_id") == 0) {
            ngx_feira_chat_hex(&it, provider);

        } else if (ngx_strcmp(key, "from") == 0) {
            ngx_feira_chat_hex(&it, from);

        } else if (ngx_strcmp(key, "to") == 0) {
            ngx_feira_chat_hex(&it, to);

        } else if (ngx_strcmp(key, "text") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            text = bson_iter_utf8(&it, &len);

        } else if (ngx_strcmp(key, "client_msg_id") == 0
                   && BSON_ITER_HOLDS_UTF8(&it))
        {
            cmid = bson_iter_utf8(&it, NULL);

        } else if (ngx_strcmp(key, "created_at") == 0
                   && BSON_ITER_HOLDS_DATE_TIME(&it))
        {
            ngx_feira_rfc3339(bson_iter_date_time(&it), at, sizeof(at));
        }
    }

    /* stored as given; jansson escapes it on the way out */
    json = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s%, s:s, s:s}",
                     "id", id, "request_id", request, "client_id", client,
                     "provider_id", provider, "from", from, "to", to,
                     "text", text, (size_t) len, "client_msg_id", cmid,
                     "created_at", at);

    return json;
}


/* an ObjectId (or a 24-hex string) as 24 hex; "" otherwise */

static void
ngx_feira_chat_hex(const bson_iter_t *it, char *out)
{
    uint32_t     len;
    ngx_uint_t   i;
    const char  *s;

    out[0] = '\0';

    if (BSON_ITER_HOLDS_OID(it)) {
        bson_oid_to_string(bson_iter_oid(it), out);
        return;
    }

    if (BSON_ITER_HOLDS_UTF8(it)) {
        s = bson_iter_utf8(it, &len);

        if (ngx_feira_is_object_id(s, len)) {
            for (i = 0; i < 24; i++) {
                out[i] = ngx_tolower(s[i]);
            }

            out[24] = '\0';
        }
    }
}


static void
ngx_feira_chat_fail(ngx_feira_chat_op_t *op, ngx_uint_t status,
    const char *detail)
{
    op->status = status;
    op->detail = detail;
}


static mongoc_collection_t *
ngx_feira_chat_collection(mongoc_client_t *client, const char *name)
{
    return mongoc_client_get_collection(client, ngx_feira_mongo_db(), name);
}


static int64_t
ngx_feira_chat_now(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/*
 * A message id that orders messages by time across processes: a standard
 * ObjectId orders the ids of one second by the random value of the
 * process that made them, which would put a later message of one nginx
 * worker before an earlier one of another.  Here: 4 bytes of seconds (as
 * an ObjectId's), 2 of milliseconds, 3 of a per-process counter (order
 * within a millisecond), 3 random per process (unique across processes).
 */

static void
ngx_feira_chat_oid(bson_oid_t *oid, int64_t ms)
{
    uint32_t  secs, n;
    uint16_t  milli;

    secs = (uint32_t) (ms / 1000);
    milli = (uint16_t) (ms % 1000);
    n = __atomic_fetch_add(&ngx_feira_chat_oid_counter, 1, __ATOMIC_RELAXED);

    oid->bytes[0] = (uint8_t) (secs >> 24);
    oid->bytes[1] = (uint8_t) (secs >> 16);
    oid->bytes[2] = (uint8_t) (secs >> 8);
    oid->bytes[3] = (uint8_t) secs;
    oid->bytes[4] = (uint8_t) (milli >> 8);
    oid->bytes[5] = (uint8_t) milli;
    oid->bytes[6] = (uint8_t) (n >> 16);
    oid->bytes[7] = (uint8_t) (n >> 8);
    oid->bytes[8] = (uint8_t) n;
    ngx_memcpy(&oid->bytes[9], ngx_feira_chat_oid_process, 3);
}


/* in init_process, before any job: bytes 4..8 of an ObjectId are random */

void
ngx_feira_chat_oid_init(void)
{
    bson_oid_t  seed;

    bson_oid_init(&seed, NULL);
    ngx_memcpy(ngx_feira_chat_oid_process, &seed.bytes[4], 3);
    ngx_feira_chat_oid_counter = (uint32_t) seed.bytes[7] << 8
                                 | seed.bytes[8];
}
