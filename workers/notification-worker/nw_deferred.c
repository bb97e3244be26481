/*
 * Notifications held back by quiet hours.  They wait in
 * notification_deferred, rendered, with the event they came from; when
 * due, one worker claims each (findAndModify with a state precondition,
 * so replicas never share one) and sends it.  A claim older than
 * FEIRA_DEFERRED_STALE_MS is taken to be of a worker that died.  Transient
 * failures wait again with backoff; after the configured attempts the
 * original event goes to the dead letter topic.
 */

#include <stdlib.h>
#include <string.h>

#include "nw.h"
#include "../common/fw_backoff.h"
#include "../common/fw_log.h"


#define NW_DEFERRED_BATCH  100


typedef struct {
    nw_ctx_t  *ctx;
    char       key[128];
} nw_dlq_arg_t;


static void nw_deferred_claim(nw_ctx_t *c);
static int nw_deferred_start(nw_ctx_t *c, const bson_t *doc);
static char *nw_str(const bson_t *doc, const char *name);
static void nw_deferred_delete(nw_ctx_t *c, const char *key);
static void nw_deferred_release(nw_ctx_t *c, const char *key, int attempts,
    int64_t delay, const char *error);
static void nw_deferred_dlq_done(void *arg, int ok);


static char *
nw_str(const bson_t *doc, const char *name)
{
    bson_iter_t  it;

    if (bson_iter_init_find(&it, doc, name) && BSON_ITER_HOLDS_UTF8(&it)) {
        return strdup(bson_iter_utf8(&it, NULL));
    }

    return strdup("");
}


void
nw_tick(void *ctx, int stopping)
{
    int64_t    now;
    nw_ctx_t  *c;

    c = ctx;

    if (stopping) {
        return;
    }

    now = fw_now_ms();

    if (now < c->deferred_next) {
        return;
    }

    c->deferred_next = now + c->deferred_poll_ms;

    nw_deferred_claim(c);
}


static void
nw_deferred_claim(nw_ctx_t *c)
{
    int64_t                 now;
    bson_t                 *filter, *opts, *query, *update, reply;
    const bson_t           *doc;
    bson_iter_t             it;
    const char             *key;
    bson_error_t            error;
    mongoc_cursor_t        *cur;
    mongoc_collection_t    *coll;
    char                  (*keys)[128];
    size_t                  i, n;

    coll = nw_store_deferred(c->store);
    now = fw_wall_ms();

    filter = BCON_NEW("$or", "[",
                        "{", "state", BCON_UTF8("waiting"),
                             "due_at", "{", "$lte", BCON_DATE_TIME(now), "}",
                        "}",
                        "{", "state", BCON_UTF8("claimed"),
                             "claimed_at", "{", "$lte",
                               BCON_DATE_TIME(now - c->deferred_stale_ms),
                             "}",
                        "}",
                      "]");
    opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}",
                    "limit", BCON_INT64(NW_DEFERRED_BATCH));

    keys = malloc(NW_DEFERRED_BATCH * sizeof(*keys));
    if (keys == NULL) {
        bson_destroy(filter);
        bson_destroy(opts);
        return;
    }

    n = 0;
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    while (n < NW_DEFERRED_BATCH && mongoc_cursor_next(cur, &doc)) {
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
        {
            snprintf(keys[n++], sizeof(keys[0]), "%s",
                     bson_iter_utf8(&it, NULL));
        }
    }

    if (mongoc_cursor_error(cur, &error)) {
        fw_log_warn("mongo: deferred: %s", error.message);
    }

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);

    for (i = 0; i < n; i++) {
        key = keys[i];

        /* the claim: only from the state just seen */
        query = BCON_NEW("_id", BCON_UTF8(key),
                         "$or", "[",
                           "{", "state", BCON_UTF8("waiting"), "}",
                           "{", "claimed_at", "{", "$lte",
                                BCON_DATE_TIME(now - c->deferred_stale_ms),
                           "}", "}",
                         "]");
        update = BCON_NEW("$set", "{", "state", BCON_UTF8("claimed"),
                          "claimed_at", BCON_DATE_TIME(now), "}");

        if (!mongoc_collection_find_and_modify(coll, query, NULL, update,
                                               NULL, false, false, true,
                                               &reply, &error))
        {
            fw_log_warn("mongo: claim %s: %s", key, error.message);
            bson_destroy(query);
            bson_destroy(update);
            bson_destroy(&reply);
            continue;
        }

        if (bson_iter_init_find(&it, &reply, "value")
            && BSON_ITER_HOLDS_DOCUMENT(&it))
        {
            const uint8_t  *data;
            uint32_t        len;
            bson_t          claimed;

            bson_iter_document(&it, &len, &data);

            if (bson_init_static(&claimed, data, len)) {
                nw_deferred_start(c, &claimed);
            }
        }

        bson_destroy(query);
        bson_destroy(update);
        bson_destroy(&reply);
    }

    free(keys);
}


/* a claimed notification to the sender, unless it went meanwhile */

static int
nw_deferred_start(nw_ctx_t *c, const bson_t *doc)
{
    char            key[128], st[1][16], (*keys)[128];
    char           *channel;
    bson_iter_t     it;
    nw_job_t       *job;
    nw_channel_t   *ch;
    nw_deferred_t  *d;

    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) {
        return -1;
    }

    snprintf(key, sizeof(key), "%s", bson_iter_utf8(&it, NULL));

    keys = &key;
    if (nw_deliveries_status(c->store, keys, 1, st) != 0) {
        nw_deferred_release(c, key, -1, 1000, "mongo");
        return -1;
    }

    /*
     * an outcome: sent by a redelivery of its event, or before a crash;
     * "sending" without outcome is a send cut short (a stale claim): it
     * goes again
     */
    if (strcmp(st[0], "deferred") != 0 && strcmp(st[0], "sending") != 0) {
        fw_log_info("%s: deferred, but already %s", key,
                    st[0][0] ? st[0] : "unrecorded");
        nw_deferred_delete(c, key);
        return 0;
    }

    channel = nw_str(doc, "channel");
    ch = NULL;

    if (channel != NULL) {
        if (c->email && strcmp(channel, c->email->name) == 0) {
            ch = c->email;

        } else if (c->push && strcmp(channel, c->push->name) == 0) {
            ch = c->push;

        } else if (c->sms && strcmp(channel, c->sms->name) == 0) {
            ch = c->sms;
        }
    }

    free(channel);

    if (ch == NULL) {
        fw_log_warn("%s: channel no longer configured, dropped", key);
        nw_delivery_set(c->store, key, "", "", "", "failed",
                        "channel not configured");
        nw_deferred_delete(c, key);
        return -1;
    }

    job = calloc(1, sizeof(nw_job_t));
    d = calloc(1, sizeof(nw_deferred_t));

    if (job == NULL || d == NULL) {
        free(job);
        free(d);
        nw_deferred_release(c, key, -1, 1000, "out of memory");
        return -1;
    }

    d->owner.kind = NW_OWNER_DEFERRED;
    d->owner.ctx = c;
    d->attempts = bson_iter_init_find(&it, doc, "attempts")
                  ? (int) bson_iter_as_int64(&it) : 0;
    d->topic = nw_str(doc, "topic");
    d->msg_key = nw_str(doc, "msg_key");
    d->event = nw_str(doc, "event");

    job->channel = ch;
    job->owner = d;
    job->done = nw_job_finished;
    snprintf(job->key, sizeof(job->key), "%s", key);

#define NW_COPY(field, name)                                                  \
    {                                                                         \
        char  *v = nw_str(doc, name);                                         \
        snprintf(job->field, sizeof(job->field), "%s", v ? v : "");           \
        free(v);                                                              \
    }

    NW_COPY(event_id, "event_id");
    NW_COPY(user_id, "user_id");
    NW_COPY(device_id, "device_id");
    NW_COPY(event_type, "event_type");
    NW_COPY(template, "template");

#undef NW_COPY

    job->to = nw_str(doc, "to");
    job->subject = nw_str(doc, "subject");
    job->text = nw_str(doc, "text");
    job->html = nw_str(doc, "html");
    job->short_text = nw_str(doc, "short");

    if (d->topic == NULL || d->msg_key == NULL || d->event == NULL
        || job->to == NULL || job->subject == NULL || job->text == NULL
        || job->html == NULL || job->short_text == NULL)
    {
        free(d->topic);
        free(d->msg_key);
        free(d->event);
        free(d);
        nw_job_free(job);
        nw_deferred_release(c, key, -1, 1000, "out of memory");
        return -1;
    }

    if (nw_delivery_set(c->store, key, job->event_id, job->user_id,
                        ch->name, "sending", NULL) != 0
        || nw_store_flush(c->store, job->error, sizeof(job->error)) != 0)
    {
        free(d->topic);
        free(d->msg_key);
        free(d->event);
        free(d);
        nw_job_free(job);
        nw_deferred_release(c, key, -1, 1000, "mongo");
        return -1;
    }

    fw_log_info("%s: quiet hours over, sending", key);

    c->deferred_active++;
    nw_sender_submit(c->sender, job);

    return 0;
}


static void
nw_deferred_delete(nw_ctx_t *c, const char *key)
{
    bson_t        *sel;
    bson_error_t   error;

    sel = BCON_NEW("_id", BCON_UTF8(key));

    if (!mongoc_collection_delete_one(nw_store_deferred(c->store), sel, NULL,
                                      NULL, &error))
    {
        fw_log_warn("mongo: delete deferred %s: %s", key, error.message);
    }

    bson_destroy(sel);
}


/* back to waiting, due after delay; attempts -1 leaves them as they are */

static void
nw_deferred_release(nw_ctx_t *c, const char *key, int attempts,
    int64_t delay, const char *error)
{
    bson_t        *sel, *upd;
    bson_error_t   err;

    sel = BCON_NEW("_id", BCON_UTF8(key));

    if (attempts >= 0) {
        upd = BCON_NEW("$set", "{", "state", BCON_UTF8("waiting"),
                       "due_at", BCON_DATE_TIME(fw_wall_ms() + delay),
                       "attempts", BCON_INT32(attempts),
                       "error", BCON_UTF8(error), "}");

    } else {
        upd = BCON_NEW("$set", "{", "state", BCON_UTF8("waiting"),
                       "due_at", BCON_DATE_TIME(fw_wall_ms() + delay),
                       "error", BCON_UTF8(error), "}");
    }

    if (!mongoc_collection_update_one(nw_store_deferred(c->store), sel, upd,
                                      NULL, NULL, &err))
    {
        fw_log_warn("mongo: release deferred %s: %s", key, err.message);
    }

    bson_destroy(sel);
    bson_destroy(upd);
}


/* called by nw_poll() after the job's delivery record is written */

void
nw_deferred_finished(nw_ctx_t *c, nw_job_t *job)
{
    int             attempts;
    nw_dlq_arg_t   *arg;
    nw_deferred_t  *d;

    d = job->owner;
    c->deferred_active--;

    if (job->result != NW_TRANSIENT) {
        nw_deferred_delete(c, job->key);
        goto done;
    }

    attempts = d->attempts + 1;

    if ((unsigned) attempts < c->max_attempts) {
        nw_deferred_release(c, job->key, attempts,
                            fw_backoff_ms(attempts, c->backoff_base_ms,
                                          c->backoff_max_ms, fw_random()),
                            job->error);
        goto done;
    }

    /* out of attempts: the event it came from becomes a dead letter */

    arg = malloc(sizeof(nw_dlq_arg_t));
    if (arg == NULL) {
        nw_deferred_release(c, job->key, attempts, 1000, job->error);
        goto done;
    }

    arg->ctx = c;
    snprintf(arg->key, sizeof(arg->key), "%s", job->key);

    if (fw_worker_dead_letter(c->worker, d->topic, d->msg_key,
                              strlen(d->msg_key), d->event, strlen(d->event),
                              job->error, attempts, nw_deferred_dlq_done, arg)
        != 0)
    {
        free(arg);
        nw_deferred_release(c, job->key, attempts, 1000, job->error);
    }

done:

    free(d->topic);
    free(d->msg_key);
    free(d->event);
    free(d);
}


static void
nw_deferred_dlq_done(void *p, int ok)
{
    nw_dlq_arg_t  *arg;

    arg = p;

    if (ok) {
        /* forgotten, so that a replay of the event sends it again */
        nw_delivery_forget(arg->ctx->store, arg->key);
        nw_deferred_delete(arg->ctx, arg->key);

    } else {
        nw_deferred_release(arg->ctx, arg->key, -1, 1000, "dead letter");
    }

    free(arg);
}
