/*
 * A batch of events into facts and aggregates (docs/events.md,
 * "Analytics"):
 *
 *   1. links: the first offer of a request to a provider, the first chat
 *      message of each sender in a request (insert-only: the first wins);
 *   2. the links the batch needs are read back: the offer of each accepted
 *      request, both first messages of a provider's chat message;
 *   3. one fact per counted event, _id = the event id (insert-only: a
 *      redelivered event is a no-op), with the keys of the aggregates it
 *      counts in ("p:<provider>:<day>", "m:<day>");
 *   4. every aggregate the batch touched is recomputed from all its facts
 *      and replaced.
 *
 * Every step is idempotent, so a crash anywhere is repaired by the
 * redelivery of the batch.  Events of one request share a partition and
 * are handled in order, so an offer's link is there before its accept.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw.h"
#include "aw_event.h"
#include "../common/fw_log.h"
#include "../common/fw_metrics.h"


typedef struct {
    aw_event_t   *evs;
    aw_link_t    *links;
    size_t        nlinks;
    size_t        cap_links;
    char        (*keys)[64];
    size_t        nkeys;
    size_t        cap_keys;
    bson_t      **facts;
    size_t        nfacts;
} aw_batch_t;


static int aw_link_add(aw_batch_t *b, const char *kind, const char *req,
    const char *who, int64_t at, const char *event);
static aw_link_t *aw_link_find(aw_batch_t *b, const char *kind,
    const char *req, const char *who);
static int aw_key_add(aw_batch_t *b, const char *key);
static bson_t *aw_fact_doc(aw_batch_t *b, aw_event_t *ev, int64_t extra,
    const char *type);
static int aw_recompute(aw_ctx_t *c, aw_batch_t *b, char *err,
    size_t errlen);
static void aw_batch_free(aw_batch_t *b);
static void aw_count_new(bson_t **facts, size_t n, const unsigned char *dup);


static int
aw_link_add(aw_batch_t *b, const char *kind, const char *req,
    const char *who, int64_t at, const char *event)
{
    aw_link_t  *nl, *l;

    if (b->nlinks == b->cap_links) {
        b->cap_links = b->cap_links ? b->cap_links * 2 : 64;
        nl = realloc(b->links, b->cap_links * sizeof(aw_link_t));
        if (nl == NULL) {
            return -1;
        }
        b->links = nl;
    }

    l = &b->links[b->nlinks++];
    memset(l, 0, sizeof(aw_link_t));
    snprintf(l->id, sizeof(l->id), "%s:%s:%s", kind, req, who);
    l->at = at;
    snprintf(l->event, sizeof(l->event), "%s", event ? event : "");

    return 0;
}


static aw_link_t *
aw_link_find(aw_batch_t *b, const char *kind, const char *req,
    const char *who)
{
    char    id[96];
    size_t  i;

    snprintf(id, sizeof(id), "%s:%s:%s", kind, req, who);

    for (i = 0; i < b->nlinks; i++) {
        if (strcmp(b->links[i].id, id) == 0) {
            return b->links[i].found ? &b->links[i] : NULL;
        }
    }

    return NULL;
}


static int
aw_key_add(aw_batch_t *b, const char *key)
{
    size_t   i;
    char   (*nk)[64];

    for (i = 0; i < b->nkeys; i++) {
        if (strcmp(b->keys[i], key) == 0) {
            return 0;
        }
    }

    if (b->nkeys == b->cap_keys) {
        b->cap_keys = b->cap_keys ? b->cap_keys * 2 : 64;
        nk = realloc(b->keys, b->cap_keys * 64);
        if (nk == NULL) {
            return -1;
        }
        b->keys = nk;
    }

    snprintf(b->keys[b->nkeys++], 64, "%s", key);

    return 0;
}


/* the fact of an event; extra: offer_ms or response_ms, -1 for none */

static bson_t *
aw_fact_doc(aw_batch_t *b, aw_event_t *ev, int64_t extra, const char *type)
{
    int      market;
    char     key[64], idx[24];
    size_t   i, nk;
    bson_t  *doc, arr;

    doc = bson_new();
    if (doc == NULL) {
        return NULL;
    }

    market = (ev->kind != AW_CHAT_MESSAGE && ev->kind != AW_REVIEW_CREATED);

    BSON_APPEND_UTF8(doc, "_id", ev->id);
    BSON_APPEND_UTF8(doc, "type", type);
    BSON_APPEND_DATE_TIME(doc, "at", ev->at);
    BSON_APPEND_UTF8(doc, "day", ev->day);

    bson_append_array_begin(doc, "keys", -1, &arr);
    nk = 0;

    if (market) {
        aw_key_market(key, sizeof(key), ev->day);
        snprintf(idx, sizeof(idx), "%zu", nk++);
        BSON_APPEND_UTF8(&arr, idx, key);
        if (aw_key_add(b, key) != 0) {
            goto failed;
        }
    }

    if (ev->provider_id[0]) {
        aw_key_provider(key, sizeof(key), ev->provider_id, ev->day);
        snprintf(idx, sizeof(idx), "%zu", nk++);
        BSON_APPEND_UTF8(&arr, idx, key);
        if (aw_key_add(b, key) != 0) {
            goto failed;
        }
    }

    for (i = 0; i < ev->nproviders; i++) {
        aw_key_provider(key, sizeof(key), ev->providers[i], ev->day);
        snprintf(idx, sizeof(idx), "%zu", nk++);
        BSON_APPEND_UTF8(&arr, idx, key);
        if (aw_key_add(b, key) != 0) {
            goto failed;
        }
    }

    bson_append_array_end(doc, &arr);

    if (ev->request_id[0]) {
        BSON_APPEND_UTF8(doc, "request_id", ev->request_id);
    }

    if (ev->client_id[0]) {
        BSON_APPEND_UTF8(doc, "client_id", ev->client_id);
    }

    if (ev->provider_id[0]) {
        BSON_APPEND_UTF8(doc, "provider_id", ev->provider_id);
    }

    if (ev->nproviders) {
        bson_append_array_begin(doc, "provider_ids", -1, &arr);
        for (i = 0; i < ev->nproviders; i++) {
            snprintf(idx, sizeof(idx), "%zu", i);
            BSON_APPEND_UTF8(&arr, idx, ev->providers[i]);
        }
        bson_append_array_end(doc, &arr);
    }

    if (ev->category[0]) {
        BSON_APPEND_UTF8(doc, "category", ev->category);
    }

    if (ev->kind == AW_PAY_SUCCEEDED || ev->kind == AW_PAY_REFUNDED) {
        BSON_APPEND_UTF8(doc, "payment_id", ev->payment_id);
        BSON_APPEND_UTF8(doc, "currency", ev->currency);
        BSON_APPEND_INT64(doc, "amount", ev->amount);
        BSON_APPEND_INT64(doc, "fee", ev->fee);
    }

    if (ev->kind == AW_REVIEW_CREATED) {
        BSON_APPEND_INT32(doc, "rating", ev->rating);
    }

    if (extra >= 0) {
        BSON_APPEND_INT64(doc, ev->kind == AW_CHAT_MESSAGE ? "response_ms"
                                                           : "offer_ms",
                          extra);
    }

    return doc;

failed:

    bson_destroy(doc);

    return NULL;
}


static int
aw_recompute(aw_ctx_t *c, aw_batch_t *b, char *err, size_t errlen)
{
    int         rc;
    char        provider[25], day[11];
    size_t      i, n;
    bson_t      doc;
    int64_t     used;
    aw_fact_t  *facts;

    if (aw_facts_load(c->store, b->keys, b->nkeys, &facts, &n, err, errlen)
        != 0)
    {
        return -1;
    }

    rc = 0;

    for (i = 0; i < b->nkeys && rc == 0; i++) {
        bson_init(&doc);

        if (b->keys[i][0] == 'm') {
            snprintf(day, sizeof(day), "%s", b->keys[i] + 2);
            rc = aw_agg_market(facts, n, day, &doc, &used);

        } else {
            snprintf(provider, sizeof(provider), "%.24s", b->keys[i] + 2);
            snprintf(day, sizeof(day), "%s", b->keys[i] + 2 + 25);
            rc = aw_agg_provider(facts, n, provider, day, &doc, &used);
        }

        if (rc != 0) {
            snprintf(err, errlen, "out of memory");

        } else {
            BSON_APPEND_DATE_TIME(&doc, "updated_at", fw_wall_ms());
            rc = aw_agg_store(c->store, b->keys[i][0] == 'm', &doc, used,
                              err, errlen);
        }

        bson_destroy(&doc);
    }

    aw_facts_free(facts, n);

    return rc;
}


static void
aw_batch_free(aw_batch_t *b)
{
    size_t  i;

    for (i = 0; i < b->nfacts; i++) {
        bson_destroy(b->facts[i]);
    }

    free(b->facts);
    free(b->links);
    free(b->keys);
    free(b->evs);
}


void
aw_process(aw_ctx_t *c, aw_msg_t *msgs, size_t n)
{
    char            err[256];
    size_t          i, j;
    int64_t         extra;
    bson_t         *doc;
    aw_link_t      *mine, *other;
    aw_event_t     *ev;
    aw_batch_t      b;
    unsigned char  *dup;

    memset(&b, 0, sizeof(b));
    err[0] = '\0';

    b.evs = calloc(n ? n : 1, sizeof(aw_event_t));
    b.facts = calloc(n ? n : 1, sizeof(bson_t *));

    if (b.evs == NULL || b.facts == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto retry;
    }

    /* 1. parse; the links the batch writes */

    for (i = 0; i < n; i++) {
        ev = &b.evs[i];
        msgs[i].result = FW_OK;
        msgs[i].error[0] = '\0';

        if (aw_event_parse(msgs[i].payload, msgs[i].len, ev, msgs[i].error,
                           sizeof(msgs[i].error))
            != 0)
        {
            msgs[i].result = FW_FAIL;
            ev->kind = AW_IGNORED;
            continue;
        }

        if (ev->kind == AW_REQ_OFFERED) {
            for (j = 0; j < ev->nproviders; j++) {
                if (aw_link_add(&b, "offer", ev->request_id, ev->providers[j],
                                ev->at, ev->id)
                    != 0)
                {
                    snprintf(err, sizeof(err), "out of memory");
                    goto retry;
                }
            }

        } else if (ev->kind == AW_CHAT_MESSAGE) {
            if (aw_link_add(&b, "chat", ev->request_id, ev->from, ev->at,
                            ev->id)
                != 0)
            {
                snprintf(err, sizeof(err), "out of memory");
                goto retry;
            }
        }
    }

    if (aw_links_insert(c->store, b.links, b.nlinks, err, sizeof(err)) != 0) {
        goto retry;
    }

    /* 2. the links to read: what was written and what is needed */

    for (i = 0; i < n; i++) {
        ev = &b.evs[i];

        if (ev->kind == AW_REQ_ACCEPTED
            && aw_link_add(&b, "offer", ev->request_id, ev->provider_id, 0,
                           NULL) != 0)
        {
            snprintf(err, sizeof(err), "out of memory");
            goto retry;
        }

        if (ev->kind == AW_CHAT_MESSAGE
            && aw_link_add(&b, "chat", ev->request_id, ev->to, 0, NULL) != 0)
        {
            snprintf(err, sizeof(err), "out of memory");
            goto retry;
        }
    }

    if (aw_links_get(c->store, b.links, b.nlinks, err, sizeof(err)) != 0) {
        goto retry;
    }

    /* 3. the facts */

    for (i = 0; i < n; i++) {
        ev = &b.evs[i];
        extra = -1;

        switch (ev->kind) {

        case AW_IGNORED:
            continue;

        case AW_REQ_ACCEPTED:
            other = aw_link_find(&b, "offer", ev->request_id,
                                 ev->provider_id);
            if (other != NULL && ev->at >= other->at) {
                extra = ev->at - other->at;
            }
            break;

        case AW_CHAT_MESSAGE:
            /*
             * a provider's first message in a request, after the first
             * message of the other side: the first-response time
             */
            if (strcmp(ev->actor_role, "provider") != 0) {
                continue;
            }

            mine = aw_link_find(&b, "chat", ev->request_id, ev->from);
            other = aw_link_find(&b, "chat", ev->request_id, ev->to);

            if (mine == NULL || strcmp(mine->event, ev->id) != 0
                || other == NULL || other->at > ev->at)
            {
                continue;
            }

            extra = ev->at - other->at;

            /* counted for the sender, on the day of the reply */
            snprintf(ev->provider_id, sizeof(ev->provider_id), "%s",
                     ev->from);
            ev->client_id[0] = '\0';
            break;

        case AW_REVIEW_CREATED:
            /* the ratings of providers are those their clients give */
            if (ev->actor_role[0] && strcmp(ev->actor_role, "client") != 0) {
                continue;
            }
            break;

        default:
            break;
        }

        doc = aw_fact_doc(&b, ev, extra, ev->kind == AW_CHAT_MESSAGE
                                         ? "chat.response" : ev->type);
        if (doc == NULL) {
            snprintf(err, sizeof(err), "out of memory");
            goto retry;
        }

        b.facts[b.nfacts++] = doc;
    }

    dup = calloc(b.nfacts ? b.nfacts : 1, 1);
    if (dup == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto retry;
    }

    if (aw_facts_insert(c->store, b.facts, b.nfacts, dup, err, sizeof(err))
        != 0)
    {
        free(dup);
        goto retry;
    }

    /* the business counters: each event once, its fact being new */
    aw_count_new(b.facts, b.nfacts, dup);
    free(dup);

    /* 4. the aggregates */

    if (aw_recompute(c, &b, err, sizeof(err)) != 0) {
        goto retry;
    }

    aw_batch_free(&b);

    return;

retry:

    fw_log_warn("batch of %zu events: %s", n, err);

    for (i = 0; i < n; i++) {
        if (msgs[i].result != FW_FAIL) {
            msgs[i].result = FW_RETRY;
            snprintf(msgs[i].error, sizeof(msgs[i].error), "%s", err);
        }
    }

    aw_batch_free(&b);
}


/* the framework's handler: a batch is done when aw_process() returns */

void
aw_handle(void *ctx, fw_event_t **evs, size_t n)
{
    size_t     i;
    aw_msg_t  *msgs;

    msgs = calloc(n, sizeof(aw_msg_t));
    if (msgs == NULL) {
        for (i = 0; i < n; i++) {
            fw_event_done(evs[i], FW_RETRY, "out of memory");
        }
        return;
    }

    for (i = 0; i < n; i++) {
        msgs[i].payload = evs[i]->msg->payload;
        msgs[i].len = evs[i]->msg->len;

        if (msgs[i].payload == NULL) {
            msgs[i].payload = "";
        }
    }

    aw_process(ctx, msgs, n);

    for (i = 0; i < n; i++) {
        fw_event_done(evs[i], msgs[i].result,
                      msgs[i].error[0] ? msgs[i].error : NULL);
    }

    free(msgs);
}


void
aw_poll(void *ctx, int timeout_ms)
{
    (void) ctx;
    (void) timeout_ms;
}


void
aw_tick(void *ctx, int stopping)
{
    (void) ctx;
    (void) stopping;
}


size_t
aw_busy(void *ctx)
{
    (void) ctx;

    return 0;
}


/*
 * feira_requests_{created,accepted,completed,cancelled}_total{category}
 * for the business dashboard (docs/metrics.md): counted from the facts
 * this worker inserted, so a redelivery counts nothing and the replicas
 * of the group add up.
 */

static void
aw_count_new(bson_t **facts, size_t n, const unsigned char *dup)
{
    size_t       i, j, k;
    char         labels[160];
    const char  *type, *cat, *name;
    bson_iter_t  it;

    static const char  *names[][2] = {
        { "request.created", "feira_requests_created_total" },
        { "request.accepted", "feira_requests_accepted_total" },
        { "request.completed", "feira_requests_completed_total" },
        { "request.cancelled", "feira_requests_cancelled_total" },
    };

    for (i = 0; i < n; i++) {
        if (dup[i] || !bson_iter_init_find(&it, facts[i], "type")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        type = bson_iter_utf8(&it, NULL);
        name = NULL;

        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            if (strcmp(type, names[j][0]) == 0) {
                name = names[j][1];
                break;
            }
        }

        if (name == NULL) {
            continue;
        }

        cat = "";
        if (bson_iter_init_find(&it, facts[i], "category")
            && BSON_ITER_HOLDS_UTF8(&it))
        {
            cat = bson_iter_utf8(&it, NULL);
        }

        /* a label value escaped as the text format wants */
        k = snprintf(labels, sizeof(labels), "category=\"");
        for ( /* void */ ; *cat && k < sizeof(labels) - 4; cat++) {
            if (*cat == '"' || *cat == '\\') {
                labels[k++] = '\\';
                labels[k++] = *cat;

            } else if (*cat == '\n') {
                labels[k++] = '\\';
                labels[k++] = 'n';

            } else {
                labels[k++] = *cat;
            }
        }
        labels[k++] = '"';
        labels[k] = '\0';

        fw_metrics_count(name, "Service requests, by category (from the "
                         "analytics worker's facts).", labels, 1);
    }
}
