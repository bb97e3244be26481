/*
 * MongoDB access of the analytics worker.  Links and facts are written by
 * inserts only (the unique _id makes a redelivered event a no-op); the
 * aggregates are replaced whole, and only by a computation that saw at
 * least as many facts as the stored one (facts are never removed, so more
 * facts means a later reading): the filter {_id, facts: {$lte: n}} with
 * upsert fails with a duplicate key when a newer aggregate is there.
 */

#include <string.h>

#include "aw_store.h"
#include "../common/fw_log.h"


struct aw_store_s {
    mongoc_client_t       *client;
    mongoc_database_t     *db;
    mongoc_collection_t   *links;
    mongoc_collection_t   *facts;
    mongoc_collection_t   *provider_daily;
    mongoc_collection_t   *daily;
};


static int aw_bulk_run(mongoc_bulk_operation_t *b, unsigned char *dup,
    const char *what,
    char *err, size_t errlen);
static int aw_index(aw_store_t *s, const char *coll, bson_t *key,
    const char *name);
static void aw_get_str(bson_iter_t *it, char *buf, size_t size);
static int aw_fact_from(const bson_t *doc, aw_fact_t *f);


aw_store_t *
aw_store_new(const char *uri)
{
    const char    *dbname;
    aw_store_t    *s;
    bson_error_t   error;
    mongoc_uri_t  *u;

    s = calloc(1, sizeof(aw_store_t));
    if (s == NULL) {
        return NULL;
    }

    u = mongoc_uri_new_with_error(uri, &error);
    if (u == NULL) {
        fw_log_error("FEIRA_MONGO_URI: %s", error.message);
        free(s);
        return NULL;
    }

    if (!mongoc_uri_has_option(u, MONGOC_URI_SOCKETTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 30000);
    }

    if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS)) {
        mongoc_uri_set_option_as_int32(u,
                                       MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       5000);
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

    mongoc_client_set_appname(s->client, "feira-analytics-worker");
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);

    s->db = mongoc_client_get_database(s->client, dbname);
    s->links = mongoc_database_get_collection(s->db, "analytics_links");
    s->facts = mongoc_database_get_collection(s->db, "analytics_facts");
    s->provider_daily = mongoc_database_get_collection(s->db,
                                                "analytics_provider_daily");
    s->daily = mongoc_database_get_collection(s->db, "analytics_daily");

    mongoc_uri_destroy(u);

    return s;
}


void
aw_store_free(aw_store_t *s)
{
    if (s == NULL) {
        return;
    }

    mongoc_collection_destroy(s->links);
    mongoc_collection_destroy(s->facts);
    mongoc_collection_destroy(s->provider_daily);
    mongoc_collection_destroy(s->daily);
    mongoc_database_destroy(s->db);
    mongoc_client_destroy(s->client);
    free(s);
}


/* one index per createIndexes command (FerretDB v1) */

static int
aw_index(aw_store_t *s, const char *coll, bson_t *key, const char *name)
{
    bson_t        *cmd;
    bson_error_t   error;

    cmd = BCON_NEW("createIndexes", BCON_UTF8(coll),
                   "indexes", "[",
                     "{", "key", BCON_DOCUMENT(key),
                          "name", BCON_UTF8(name), "}",
                   "]");

    if (!mongoc_database_command_simple(s->db, cmd, NULL, NULL, &error)) {
        fw_log_error("mongo: index %s of %s: %s", name, coll, error.message);
        bson_destroy(cmd);
        return -1;
    }

    bson_destroy(cmd);

    return 0;
}


int
aw_store_indexes(aw_store_t *s)
{
    int      rc;
    bson_t  *k1, *k2, *k3;

    k1 = BCON_NEW("keys", BCON_INT32(1));
    k2 = BCON_NEW("provider_id", BCON_INT32(1), "day", BCON_INT32(1));
    k3 = BCON_NEW("day", BCON_INT32(1));

    rc = (aw_index(s, "analytics_facts", k1, "keys_1") == 0
          && aw_index(s, "analytics_provider_daily", k2,
                      "provider_id_1_day_1") == 0
          && aw_index(s, "analytics_daily", k3, "day_1") == 0)
         ? 0 : -1;

    bson_destroy(k1);
    bson_destroy(k2);
    bson_destroy(k3);

    return rc;
}


/* the rebuild starts from nothing */

int
aw_store_drop(aw_store_t *s)
{
    size_t                 i;
    bson_error_t           error;
    mongoc_collection_t   *all[4];

    all[0] = s->links;
    all[1] = s->facts;
    all[2] = s->provider_daily;
    all[3] = s->daily;

    for (i = 0; i < 4; i++) {
        if (!mongoc_collection_drop(all[i], &error)
            && strstr(error.message, "not found") == NULL
            && error.code != 26)
        {
            fw_log_error("mongo: drop %s: %s",
                         mongoc_collection_get_name(all[i]), error.message);
            return -1;
        }
    }

    return 0;
}


/*
 * An unordered bulk insert whose duplicate keys are redeliveries; DUP, if
 * given, marks the documents that were (the others are new).
 */

static int
aw_bulk_run(mongoc_bulk_operation_t *b, unsigned char *dup, const char *what,
    char *err, size_t errlen)
{
    int           rc;
    bson_t        reply;
    uint32_t      code;
    bson_iter_t   it, child, e;
    bson_error_t  error;

    rc = 0;

    if (!mongoc_bulk_operation_execute(b, &reply, &error)) {
        rc = -1;

        if (bson_iter_init_find(&it, &reply, "writeErrors")
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

                } else if (dup && bson_iter_recurse(&child, &e)
                           && bson_iter_find(&e, "index"))
                {
                    dup[bson_iter_as_int64(&e)] = 1;
                }
            }
        }

        if (rc != 0) {
            snprintf(err, errlen, "mongo: %s: %.200s", what, error.message);
        }
    }

    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(b);

    return rc;
}


int
aw_links_insert(aw_store_t *s, aw_link_t *links, size_t n, char *err,
    size_t errlen)
{
    size_t                    i;
    bson_t                   *doc, *opts;
    mongoc_bulk_operation_t  *b;

    if (n == 0) {
        return 0;
    }

    opts = BCON_NEW("ordered", BCON_BOOL(false));
    b = mongoc_collection_create_bulk_operation_with_opts(s->links, opts);
    bson_destroy(opts);

    for (i = 0; i < n; i++) {
        doc = BCON_NEW("_id", BCON_UTF8(links[i].id),
                       "at", BCON_DATE_TIME(links[i].at),
                       "event", BCON_UTF8(links[i].event));
        mongoc_bulk_operation_insert(b, doc);
        bson_destroy(doc);
    }

    return aw_bulk_run(b, NULL, "analytics_links", err, errlen);
}


static void
aw_get_str(bson_iter_t *it, char *buf, size_t size)
{
    if (BSON_ITER_HOLDS_UTF8(it)) {
        snprintf(buf, size, "%s", bson_iter_utf8(it, NULL));
    }
}


int
aw_links_get(aw_store_t *s, aw_link_t *links, size_t n, char *err,
    size_t errlen)
{
    char               idx[24];
    size_t             i;
    bson_t            *filter, cond, arr;
    const bson_t      *doc;
    bson_iter_t        it;
    const char        *id;
    bson_error_t       error;
    mongoc_cursor_t   *cur;

    if (n == 0) {
        return 0;
    }

    filter = bson_new();
    bson_append_document_begin(filter, "_id", -1, &cond);
    bson_append_array_begin(&cond, "$in", -1, &arr);

    for (i = 0; i < n; i++) {
        links[i].found = 0;
        snprintf(idx, sizeof(idx), "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, links[i].id);
    }

    bson_append_array_end(&cond, &arr);
    bson_append_document_end(filter, &cond);

    cur = mongoc_collection_find_with_opts(s->links, filter, NULL, NULL);

    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        id = bson_iter_utf8(&it, NULL);

        for (i = 0; i < n; i++) {
            if (strcmp(links[i].id, id) != 0) {
                continue;
            }

            if (bson_iter_init_find(&it, doc, "at")
                && BSON_ITER_HOLDS_DATE_TIME(&it))
            {
                links[i].at = bson_iter_date_time(&it);
                links[i].found = 1;
            }

            if (bson_iter_init_find(&it, doc, "event")) {
                aw_get_str(&it, links[i].event, sizeof(links[i].event));
            }
        }
    }

    bson_destroy(filter);

    if (mongoc_cursor_error(cur, &error)) {
        snprintf(err, errlen, "mongo: analytics_links: %.200s",
                 error.message);
        mongoc_cursor_destroy(cur);
        return -1;
    }

    mongoc_cursor_destroy(cur);

    return 0;
}


int
aw_facts_insert(aw_store_t *s, bson_t **docs, size_t n, unsigned char *dup,
    char *err, size_t errlen)
{
    size_t                    i;
    bson_t                   *opts;
    mongoc_bulk_operation_t  *b;

    if (n == 0) {
        return 0;
    }

    opts = BCON_NEW("ordered", BCON_BOOL(false));
    b = mongoc_collection_create_bulk_operation_with_opts(s->facts, opts);
    bson_destroy(opts);

    for (i = 0; i < n; i++) {
        mongoc_bulk_operation_insert(b, docs[i]);
    }

    return aw_bulk_run(b, dup, "analytics_facts", err, errlen);
}


static int
aw_fact_from(const bson_t *doc, aw_fact_t *f)
{
    char          type[32];
    size_t        n;
    bson_iter_t   it, arr;
    const char   *key;

    memset(f, 0, sizeof(aw_fact_t));
    f->offer_ms = -1;
    f->response_ms = -1;
    type[0] = '\0';

    if (!bson_iter_init(&it, doc)) {
        return -1;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        if (strcmp(key, "type") == 0) {
            aw_get_str(&it, type, sizeof(type));

        } else if (strcmp(key, "day") == 0) {
            aw_get_str(&it, f->day, sizeof(f->day));

        } else if (strcmp(key, "provider_id") == 0) {
            aw_get_str(&it, f->provider_id, sizeof(f->provider_id));

        } else if (strcmp(key, "client_id") == 0) {
            aw_get_str(&it, f->client_id, sizeof(f->client_id));

        } else if (strcmp(key, "category") == 0) {
            aw_get_str(&it, f->category, sizeof(f->category));

        } else if (strcmp(key, "currency") == 0) {
            aw_get_str(&it, f->currency, sizeof(f->currency));

        } else if (strcmp(key, "amount") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            f->amount = bson_iter_as_int64(&it);

        } else if (strcmp(key, "fee") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            f->fee = bson_iter_as_int64(&it);

        } else if (strcmp(key, "rating") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            f->rating = (int) bson_iter_as_int64(&it);

        } else if (strcmp(key, "offer_ms") == 0
                   && BSON_ITER_HOLDS_NUMBER(&it))
        {
            f->offer_ms = bson_iter_as_int64(&it);

        } else if (strcmp(key, "response_ms") == 0
                   && BSON_ITER_HOLDS_NUMBER(&it))
        {
            f->response_ms = bson_iter_as_int64(&it);

        } else if (strcmp(key, "provider_ids") == 0
                   && BSON_ITER_HOLDS_ARRAY(&it)
                   && bson_iter_recurse(&it, &arr))
        {
            n = 0;
            while (bson_iter_next(&arr)) {
                n++;
            }

            f->providers = calloc(n ? n : 1, 25);
            if (f->providers == NULL) {
                return -1;
            }

            bson_iter_recurse(&it, &arr);
            while (bson_iter_next(&arr) && f->nproviders < n) {
                aw_get_str(&arr, f->providers[f->nproviders], 25);
                f->nproviders++;
            }
        }
    }

    f->kind = AW_IGNORED;

    if (strcmp(type, "chat.response") == 0) {
        f->kind = AW_CHAT_RESPONSE;

    } else {
        f->kind = aw_kind_of(type);
    }

    return 0;
}


void
aw_facts_free(aw_fact_t *facts, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(facts[i].providers);
    }

    free(facts);
}


int
aw_facts_load(aw_store_t *s, char (*keys)[64], size_t nkeys,
    aw_fact_t **facts, size_t *n, char *err, size_t errlen)
{
    char               idx[24];
    size_t             i, cap;
    bson_t            *filter, cond, arr;
    aw_fact_t         *list, *nl;
    const bson_t      *doc;
    bson_error_t       error;
    mongoc_cursor_t   *cur;

    *facts = NULL;
    *n = 0;

    if (nkeys == 0) {
        return 0;
    }

    filter = bson_new();
    bson_append_document_begin(filter, "keys", -1, &cond);
    bson_append_array_begin(&cond, "$in", -1, &arr);

    for (i = 0; i < nkeys; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, keys[i]);
    }

    bson_append_array_end(&cond, &arr);
    bson_append_document_end(filter, &cond);

    cur = mongoc_collection_find_with_opts(s->facts, filter, NULL, NULL);

    list = NULL;
    cap = 0;
    i = 0;

    while (mongoc_cursor_next(cur, &doc)) {
        if (i == cap) {
            cap = cap ? cap * 2 : 256;
            nl = realloc(list, cap * sizeof(aw_fact_t));
            if (nl == NULL) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
            list = nl;
        }

        if (aw_fact_from(doc, &list[i]) != 0) {
            free(list[i].providers);
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        i++;
    }

    if (mongoc_cursor_error(cur, &error)) {
        snprintf(err, errlen, "mongo: analytics_facts: %.200s",
                 error.message);
        goto failed;
    }

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);

    *facts = list;
    *n = i;

    return 0;

failed:

    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    aw_facts_free(list, i);

    return -1;
}


int
aw_agg_store(aw_store_t *s, int market, bson_t *doc, int64_t n_facts,
    char *err, size_t errlen)
{
    bson_t               *filter, *opts;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_collection_t  *coll;

    coll = market ? s->daily : s->provider_daily;

    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it)) {
        snprintf(err, errlen, "aggregate without _id");
        return -1;
    }

    filter = BCON_NEW("_id", BCON_UTF8(bson_iter_utf8(&it, NULL)),
                      "facts", "{", "$lte", BCON_INT64(n_facts), "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));

    if (!mongoc_collection_replace_one(coll, filter, doc, opts, NULL,
                                       &error)
        && error.code != 11000)
    {
        snprintf(err, errlen, "mongo: %s: %.200s",
                 mongoc_collection_get_name(coll), error.message);
        bson_destroy(filter);
        bson_destroy(opts);
        return -1;
    }

    /* 11000: a computation from more facts is stored already */

    bson_destroy(filter);
    bson_destroy(opts);

    return 0;
}
