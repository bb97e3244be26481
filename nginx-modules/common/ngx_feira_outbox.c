/*
 * The Kafka outbox: a message the broker did not take (its delivery failed
 * or timed out, the local queue was full, the worker exited with it still
 * queued) is kept in MongoDB, collection kafka_outbox, and produced again
 * by a sweep, so that an outage of Kafka longer than feira_kafka_timeout
 * loses no event.  A message may so arrive twice, or after a newer one of
 * its key: consumers deduplicate by event id (docs/events.md).
 *
 * ngx_feira_event_publish() goes further: the record is stored before the
 * answer, and removed once Kafka has the message, so that not even a
 * worker killed with its queue full loses the event of an accepted write.
 *
 * Inserts and the sweep's reads run in the thread pool; the sweep claims
 * a message by deleting it (of several sweepers exactly one deletes it).
 * The sweep first asks Kafka for its metadata, so that messages do not go
 * round while the broker is away.
 */

#include "ngx_feira_common.h"


#define NGX_FEIRA_OUTBOX_COLLECTION  "kafka_outbox"
#define NGX_FEIRA_OUTBOX_BATCH       100
#define NGX_FEIRA_OUTBOX_PROBE       1000     /* ms: is Kafka back? */

/* after feira_kafka_timeout librdkafka has reported on a message */
#define NGX_FEIRA_OUTBOX_MARGIN      5000


typedef struct ngx_feira_outbox_msg_s  ngx_feira_outbox_msg_t;

struct ngx_feira_outbox_msg_s {
    ngx_feira_outbox_msg_t    *next;
    char                      *topic;
    u_char                    *key;
    size_t                     key_len;
    u_char                    *payload;
    size_t                     len;
    ngx_uint_t                 failed;
    char                       error[64];
};


typedef struct {
    ngx_feira_outbox_msg_t    *msg;
    ngx_feira_done_pt          done;
    void                      *data;
    bson_oid_t                 oid;
    ngx_uint_t                 stored;
} ngx_feira_event_t;


typedef struct {
    ngx_feira_outbox_msg_t    *msgs;
    ngx_uint_t                 probe;
    ngx_uint_t                 failed;
} ngx_feira_outbox_sweep_t;


static ngx_feira_outbox_msg_t *ngx_feira_outbox_msg(const char *topic,
    const void *key, size_t key_len, const void *payload, size_t len);
static void ngx_feira_outbox_free(ngx_feira_outbox_msg_t *msg);
static ngx_int_t ngx_feira_outbox_insert(ngx_feira_outbox_msg_t *msg,
    bson_oid_t *oid, int64_t due, bson_error_t *error);
static void ngx_feira_outbox_forget_job(void *data);
static void ngx_feira_outbox_forget_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_feira_outbox_delete(bson_oid_t *oid);
static void ngx_feira_event_store_job(void *data);
static void ngx_feira_event_stored(ngx_http_request_t *r, void *data);
static void ngx_feira_outbox_insert_job(void *data);
static void ngx_feira_outbox_insert_done(ngx_http_request_t *r, void *data);
static void ngx_feira_outbox_lost(ngx_feira_outbox_msg_t *msg,
    const char *why);
static void ngx_feira_outbox_timer_handler(ngx_event_t *ev);
static void ngx_feira_outbox_sweep_job(void *data);
static void ngx_feira_outbox_sweep_done(ngx_http_request_t *r, void *data);
static ngx_feira_outbox_msg_t *ngx_feira_outbox_read(const bson_t *doc);


/* per-worker state */
static ngx_event_t   ngx_feira_outbox_timer;
static ngx_msec_t    ngx_feira_outbox_interval;
static ngx_msec_t    ngx_feira_outbox_grace;
static ngx_uint_t    ngx_feira_outbox_sweeping;


ngx_int_t
ngx_feira_outbox_init_process(ngx_cycle_t *cycle, ngx_msec_t interval,
    ngx_msec_t kafka_timeout)
{
    /* a stored message still there after this was lost with its worker */
    ngx_feira_outbox_grace = kafka_timeout + NGX_FEIRA_OUTBOX_MARGIN;
    ngx_feira_outbox_sweeping = 0;
    ngx_feira_outbox_interval = interval;

    if (!ngx_feira_mongo_configured() || interval == 0) {
        return NGX_OK;
    }

    /* one sweeper per instance is enough; others only write */
    if (ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_memzero(&ngx_feira_outbox_timer, sizeof(ngx_event_t));
    ngx_feira_outbox_timer.handler = ngx_feira_outbox_timer_handler;
    ngx_feira_outbox_timer.log = cycle->log;
    ngx_feira_outbox_timer.data = cycle;
    ngx_feira_outbox_timer.cancelable = 1;

    ngx_add_timer(&ngx_feira_outbox_timer, interval);

    return NGX_OK;
}


void
ngx_feira_outbox_exit_process(void)
{
    if (ngx_feira_outbox_timer.timer_set) {
        ngx_del_timer(&ngx_feira_outbox_timer);
    }
}


/*
 * Keeps a message that Kafka did not take.  From the event loop the
 * insert is a job; while the worker exits (SYNC) it is done right here,
 * the event loop being over.
 */

void
ngx_feira_outbox_save(const char *topic, const void *key, size_t key_len,
    const void *payload, size_t len, const char *error, ngx_uint_t sync)
{
    bson_error_t             berr;
    ngx_feira_outbox_msg_t  *msg;

    msg = ngx_feira_outbox_msg(topic, key, key_len, payload, len);
    if (msg == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "feira: kafka outbox: no memory, message to \"%s\" "
                      "lost: %*s", topic, len, payload);
        return;
    }

    ngx_cpystrn((u_char *) msg->error, (u_char *) error, sizeof(msg->error));

    if (!ngx_feira_mongo_configured()) {
        ngx_feira_outbox_lost(msg, "no feira_mongo_uri");
        return;
    }

    if (sync) {
        if (ngx_feira_outbox_insert(msg, NULL, 0, &berr) != NGX_OK) {
            ngx_feira_outbox_lost(msg, berr.message);
            return;
        }

        ngx_feira_outbox_free(msg);
        return;
    }

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_outbox_insert_job,
                                    ngx_feira_outbox_insert_done, msg)
        != NGX_OK)
    {
        ngx_feira_outbox_lost(msg, "thread pool");
    }
}


static ngx_feira_outbox_msg_t *
ngx_feira_outbox_msg(const char *topic, const void *key, size_t key_len,
    const void *payload, size_t len)
{
    size_t                   tlen;
    ngx_feira_outbox_msg_t  *msg;

    tlen = ngx_strlen(topic) + 1;

    /* one allocation: the job outlives any pool */
    msg = ngx_alloc(sizeof(ngx_feira_outbox_msg_t) + tlen + key_len + len,
                    ngx_cycle->log);
    if (msg == NULL) {
        return NULL;
    }

    msg->next = NULL;
    msg->failed = 0;
    msg->error[0] = '\0';
    msg->topic = (char *) (msg + 1);
    ngx_memcpy(msg->topic, topic, tlen);
    msg->key = (u_char *) msg->topic + tlen;
    msg->key_len = key_len;
    ngx_memcpy(msg->key, key, key_len);
    msg->payload = msg->key + key_len;
    msg->len = len;
    ngx_memcpy(msg->payload, payload, len);

    return msg;
}


static void
ngx_feira_outbox_free(ngx_feira_outbox_msg_t *msg)
{
    ngx_feira_outbox_msg_t  *next;

    while (msg) {
        next = msg->next;
        ngx_free(msg);
        msg = next;
    }
}


static void
ngx_feira_outbox_lost(ngx_feira_outbox_msg_t *msg, const char *why)
{
    /* the last place the event is kept: the error log, whole */
    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "feira: kafka outbox: not stored (%s), message to "
                  "\"%s\" key \"%*s\" lost: %*s", why, msg->topic,
                  msg->key_len, msg->key, msg->len, msg->payload);

    ngx_feira_stats_add(kafka_outbox_lost, 1);
    ngx_feira_outbox_free(msg);
}


/* runs in a pool thread, or at exit */

static ngx_int_t
ngx_feira_outbox_insert(ngx_feira_outbox_msg_t *msg, bson_oid_t *oid,
    int64_t due, bson_error_t *error)
{
    bool                  ok;
    bson_t                doc;
    bson_oid_t            id;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        bson_set_error(error, 0, 0, "no MongoDB client");
        return NGX_ERROR;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_OUTBOX_COLLECTION);

    if (oid == NULL) {
        oid = &id;
    }

    bson_oid_init(oid, NULL);

    bson_init(&doc);
    BSON_APPEND_OID(&doc, "_id", oid);

    BSON_APPEND_UTF8(&doc, "topic", msg->topic);
    BSON_APPEND_BINARY(&doc, "key", BSON_SUBTYPE_BINARY, msg->key,
                       (uint32_t) msg->key_len);
    BSON_APPEND_BINARY(&doc, "payload", BSON_SUBTYPE_BINARY, msg->payload,
                       (uint32_t) msg->len);
    BSON_APPEND_UTF8(&doc, "error", msg->error);
    BSON_APPEND_DATE_TIME(&doc, "failed_at", ngx_feira_now_ms());
    BSON_APPEND_DATE_TIME(&doc, "due_at", ngx_feira_now_ms() + due);

    ok = mongoc_collection_insert_one(coll, &doc, NULL, NULL, error);

    bson_destroy(&doc);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);

    return ok ? NGX_OK : NGX_ERROR;
}


static void
ngx_feira_outbox_insert_job(void *data)
{
    ngx_feira_outbox_msg_t  *msg = data;

    bson_error_t  error;

    if (ngx_feira_outbox_insert(msg, NULL, 0, &error) != NGX_OK) {
        /* read on the event loop */
        ngx_cpystrn((u_char *) msg->error, (u_char *) error.message,
                    sizeof(msg->error));
        msg->failed = 1;
    }
}


static void
ngx_feira_outbox_insert_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_outbox_msg_t  *msg = data;

    if (msg->failed) {
        ngx_feira_outbox_lost(msg, msg->error);
        return;
    }

    ngx_feira_stats_add(kafka_outbox_saved, 1);
    ngx_feira_outbox_free(msg);
}


static void
ngx_feira_outbox_timer_handler(ngx_event_t *ev)
{
    ngx_feira_outbox_sweep_t  *sw;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (ngx_feira_outbox_sweeping || !ngx_feira_kafka_configured()) {
        goto next;
    }

    sw = ngx_calloc(sizeof(ngx_feira_outbox_sweep_t), ev->log);
    if (sw == NULL) {
        goto next;
    }

    /*
     * The sweep asks Kafka first, every time: an instance that has not
     * seen the broker fail would otherwise take the messages of one that
     * has, and send them round while the broker is away.
     */
    sw->probe = 1;

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_outbox_sweep_job,
                                    ngx_feira_outbox_sweep_done, sw)
        != NGX_OK)
    {
        ngx_free(sw);
        goto next;
    }

    ngx_feira_outbox_sweeping = 1;

    return;

next:

    ngx_add_timer(ev, ngx_feira_outbox_interval);
}


/* runs in a pool thread: the oldest messages, each claimed by deleting it */

static void
ngx_feira_outbox_sweep_job(void *data)
{
    ngx_feira_outbox_sweep_t  *sw = data;

    bson_t                   filter, opts, sort, one, reply, lte;
    bson_iter_t              it;
    bson_error_t             error;
    const bson_t            *doc;
    mongoc_cursor_t         *cursor;
    mongoc_client_t         *client;
    mongoc_collection_t     *coll;
    ngx_feira_outbox_msg_t  *msg, **last;
    char                     err[128];

    if (sw->probe && ngx_feira_kafka_ping(err, sizeof(err),
                                          NGX_FEIRA_OUTBOX_PROBE)
                     != NGX_OK)
    {
        /* the messages stay where they are */
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        sw->failed = 1;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_OUTBOX_COLLECTION);

    /* what failed, and what was stored and not delivered in time */
    bson_init(&filter);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "due_at", &lte);
    BSON_APPEND_DATE_TIME(&lte, "$lte", ngx_feira_now_ms());
    bson_append_document_end(&filter, &lte);

    bson_init(&opts);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", NGX_FEIRA_OUTBOX_BATCH);

    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    last = &sw->msgs;

    while (mongoc_cursor_next(cursor, &doc)) {

        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_OID(&it))
        {
            continue;
        }

        bson_init(&one);
        BSON_APPEND_OID(&one, "_id", bson_iter_oid(&it));

        if (!mongoc_collection_delete_one(coll, &one, NULL, &reply, &error))
        {
            bson_destroy(&one);
            bson_destroy(&reply);
            sw->failed = 1;
            break;
        }

        bson_destroy(&one);

        /* another sweeper had it */
        if (!bson_iter_init_find(&it, &reply, "deletedCount")
            || bson_iter_as_int64(&it) != 1)
        {
            bson_destroy(&reply);
            continue;
        }

        bson_destroy(&reply);

        msg = ngx_feira_outbox_read(doc);
        if (msg == NULL) {
            /* claimed but unreadable or no memory: say so, loudly */
            sw->failed = 1;
            continue;
        }

        *last = msg;
        last = &msg->next;
    }

    if (mongoc_cursor_error(cursor, &error)) {
        sw->failed = 1;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static ngx_feira_outbox_msg_t *
ngx_feira_outbox_read(const bson_t *doc)
{
    uint32_t        klen, plen;
    bson_iter_t     it;
    const char     *topic;
    bson_subtype_t  sub;
    const uint8_t  *key, *payload;

    if (!bson_iter_init_find(&it, doc, "topic") || !BSON_ITER_HOLDS_UTF8(&it))
    {
        return NULL;
    }

    topic = bson_iter_utf8(&it, NULL);

    if (!bson_iter_init_find(&it, doc, "key") || !BSON_ITER_HOLDS_BINARY(&it))
    {
        return NULL;
    }

    bson_iter_binary(&it, &sub, &klen, &key);

    if (!bson_iter_init_find(&it, doc, "payload")
        || !BSON_ITER_HOLDS_BINARY(&it))
    {
        return NULL;
    }

    bson_iter_binary(&it, &sub, &plen, &payload);

    return ngx_feira_outbox_msg(topic, key, klen, payload, plen);
}


static void
ngx_feira_outbox_sweep_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_outbox_sweep_t  *sw = data;

    ngx_uint_t               n;
    ngx_feira_outbox_msg_t  *msg;

    ngx_feira_outbox_sweeping = 0;
    n = 0;

    for (msg = sw->msgs; msg; msg = msg->next) {
        /* a refusal puts it back in the outbox */
        (void) ngx_feira_kafka_produce(msg->topic, (char *) msg->key,
                                       msg->key_len, msg->payload, msg->len,
                                       NULL, NULL);
        n++;
    }

    if (n) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "feira: kafka outbox: %ui messages produced again", n);
        ngx_feira_stats_add(kafka_outbox_resent, n);
    }

    if (sw->failed) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "feira: kafka outbox: sweep incomplete");
    }

    ngx_feira_outbox_free(sw->msgs);
    ngx_free(sw);

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a full batch: more may wait, go on at once */
    ngx_add_timer(&ngx_feira_outbox_timer,
                  n == NGX_FEIRA_OUTBOX_BATCH ? 1 : ngx_feira_outbox_interval);
}


/* Kafka has a stored message: its record goes */

void
ngx_feira_outbox_forget(bson_oid_t *oid, ngx_uint_t sync)
{
    bson_oid_t  *copy;

    if (sync) {
        (void) ngx_feira_outbox_delete(oid);
        return;
    }

    copy = ngx_alloc(sizeof(bson_oid_t), ngx_cycle->log);
    if (copy == NULL) {
        /* the sweep sends it once more: a duplicate, not a loss */
        return;
    }

    bson_oid_copy(oid, copy);

    if (ngx_feira_thread_post_cycle((ngx_cycle_t *) ngx_cycle,
                                    ngx_feira_outbox_forget_job,
                                    ngx_feira_outbox_forget_done, copy)
        != NGX_OK)
    {
        ngx_free(copy);
    }
}


static void
ngx_feira_outbox_forget_job(void *data)
{
    (void) ngx_feira_outbox_delete(data);
}


static void
ngx_feira_outbox_forget_done(ngx_http_request_t *r, void *data)
{
    ngx_free(data);
}


static ngx_int_t
ngx_feira_outbox_delete(bson_oid_t *oid)
{
    bool                  ok;
    bson_t                filter;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        return NGX_ERROR;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_OUTBOX_COLLECTION);

    bson_init(&filter);
    BSON_APPEND_OID(&filter, "_id", oid);

    ok = mongoc_collection_delete_one(coll, &filter, NULL, NULL, NULL);

    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);

    return ok ? NGX_OK : NGX_ERROR;
}


/*
 * The event of a write the request has made: stored in the outbox, then
 * produced, then DONE runs (it answers the request).  An answer sent so
 * means that the event will reach Kafka, whatever happens to this worker.
 */

ngx_int_t
ngx_feira_event_publish(ngx_http_request_t *r, const char *topic,
    const char *key, size_t key_len, const void *payload, size_t len,
    ngx_feira_done_pt done, void *data)
{
    ngx_feira_event_t  *ev;

    ev = ngx_pcalloc(r->pool, sizeof(ngx_feira_event_t));
    if (ev == NULL) {
        return NGX_ERROR;
    }

    ev->msg = ngx_feira_outbox_msg(topic, key, key_len, payload, len);
    if (ev->msg == NULL) {
        return NGX_ERROR;
    }

    ev->done = done;
    ev->data = data;

    if (!ngx_feira_kafka_configured() || !ngx_feira_mongo_configured()
        || ngx_feira_thread_post(r, ngx_feira_event_store_job,
                                 ngx_feira_event_stored, ev)
           != NGX_OK)
    {
        ngx_feira_event_stored(r, ev);
    }

    return NGX_OK;
}


static void
ngx_feira_event_store_job(void *data)
{
    ngx_feira_event_t  *ev = data;

    bson_error_t  error;

    ev->stored = (ngx_feira_outbox_insert(ev->msg, &ev->oid,
                                          ngx_feira_outbox_grace, &error)
                  == NGX_OK);

    if (!ev->stored) {
        ngx_cpystrn((u_char *) ev->msg->error, (u_char *) error.message,
                    sizeof(ev->msg->error));
    }
}


static void
ngx_feira_event_stored(ngx_http_request_t *r, void *data)
{
    ngx_feira_event_t  *ev = data;

    ngx_feira_outbox_msg_t  *msg;

    msg = ev->msg;

    if (!ngx_feira_kafka_configured()) {
        /* no brokers configured: nothing is published */

    } else if (ev->stored) {
        (void) ngx_feira_kafka_produce_stored(msg->topic, (char *) msg->key,
                                              msg->key_len, msg->payload,
                                              msg->len, &ev->oid);

    } else {
        /* the store is away: kept by librdkafka for feira_kafka_timeout */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: event to \"%s\" not stored first: %s",
                      msg->topic, msg->error);

        (void) ngx_feira_kafka_produce(msg->topic, (char *) msg->key,
                                       msg->key_len, msg->payload, msg->len,
                                       NULL, NULL);
    }

    ngx_feira_outbox_free(msg);
    ev->msg = NULL;

    ev->done(r, ev->data);
}
