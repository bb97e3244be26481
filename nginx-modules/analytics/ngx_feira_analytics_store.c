/*
 * Reading the daily aggregates (analytics_provider_daily, analytics_daily,
 * written by the analytics worker): jobs for the thread pool, never the
 * event loop.  Every day of the range gets an entry (zeros where nothing
 * happened); the totals are computed over the range: sums, rates of the
 * sums, medians and p90 of all the durations, distinct active users.
 */

#include "ngx_http_feira_analytics_module.h"


typedef struct {
    int64_t             *v;
    size_t               n;
    size_t               cap;
} ngx_feira_samples_t;


static mongoc_cursor_t *ngx_feira_analytics_find(mongoc_client_t *client,
    const char *coll, const char *provider, const char *from,
    const char *to);
static int64_t ngx_feira_bson_int(const bson_t *doc, const char *path);
static ngx_int_t ngx_feira_samples_add(ngx_feira_samples_t *s,
    const bson_t *doc, const char *path);
static json_t *ngx_feira_samples_json(ngx_feira_samples_t *s);
static int ngx_feira_cmp_i64(const void *a, const void *b);
static json_t *ngx_feira_ratio(int64_t num, int64_t den);
static ngx_int_t ngx_feira_sum_object(json_t *into, const bson_t *doc,
    const char *key, ngx_uint_t nested);
static json_t *ngx_feira_analytics_days(time_t from, time_t to);
static json_t *ngx_feira_provider_day(const bson_t *doc, const char *day);
static json_t *ngx_feira_market_day(const bson_t *doc, const char *day);
static ngx_int_t ngx_feira_ids_add(json_t *set, const bson_t *doc,
    const char *key);


static mongoc_cursor_t *
ngx_feira_analytics_find(mongoc_client_t *client, const char *coll,
    const char *provider, const char *from, const char *to)
{
    bson_t               *filter, *opts;
    mongoc_cursor_t      *cur;
    mongoc_collection_t  *c;

    c = mongoc_client_get_collection(client, ngx_feira_mongo_db(), coll);

    filter = BCON_NEW("day", "{", "$gte", BCON_UTF8(from),
                                  "$lte", BCON_UTF8(to), "}");

    if (provider != NULL) {
        BSON_APPEND_UTF8(filter, "provider_id", provider);
    }

    opts = BCON_NEW("sort", "{", "day", BCON_INT32(1), "}");

    cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);

    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(c);

    return cur;
}


static int64_t
ngx_feira_bson_int(const bson_t *doc, const char *path)
{
    bson_iter_t  it;

    if (doc != NULL && bson_iter_init(&it, doc)
        && bson_iter_find_descendant(&it, path, &it)
        && BSON_ITER_HOLDS_NUMBER(&it))
    {
        return bson_iter_as_int64(&it);
    }

    return 0;
}


static ngx_int_t
ngx_feira_samples_add(ngx_feira_samples_t *s, const bson_t *doc,
    const char *path)
{
    int64_t      *nv;
    bson_iter_t   it, arr;

    if (doc == NULL || !bson_iter_init_find(&it, doc, path)
        || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
    {
        return NGX_OK;
    }

    while (bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_NUMBER(&arr)) {
            continue;
        }

        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 64;
            nv = realloc(s->v, s->cap * sizeof(int64_t));
            if (nv == NULL) {
                return NGX_ERROR;
            }
            s->v = nv;
        }

        s->v[s->n++] = bson_iter_as_int64(&arr);
    }

    return NGX_OK;
}


static int
ngx_feira_cmp_i64(const void *a, const void *b)
{
    int64_t  x, y;

    x = *(const int64_t *) a;
    y = *(const int64_t *) b;

    return (x > y) - (x < y);
}


/* {count, median, p90}: nearest rank, as the worker computes them */

static json_t *
ngx_feira_samples_json(ngx_feira_samples_t *s)
{
    size_t   r50, r90;

    if (s->n == 0) {
        return json_pack("{s:i, s:n, s:n}", "count", 0, "median", "p90");
    }

    qsort(s->v, s->n, sizeof(int64_t), ngx_feira_cmp_i64);

    r50 = (s->n * 50 + 99) / 100;
    r90 = (s->n * 90 + 99) / 100;

    return json_pack("{s:I, s:I, s:I}", "count", (json_int_t) s->n,
                     "median", (json_int_t) s->v[r50 ? r50 - 1 : 0],
                     "p90", (json_int_t) s->v[r90 ? r90 - 1 : 0]);
}


static json_t *
ngx_feira_ratio(int64_t num, int64_t den)
{
    return den > 0 ? json_real((double) num / (double) den) : json_null();
}


/*
 * adds the numbers of doc[key] ({CUR: n}, or nested {CUR: {gross, net}})
 * into the JSON object
 */

static ngx_int_t
ngx_feira_sum_object(json_t *into, const bson_t *doc, const char *key,
    ngx_uint_t nested)
{
    json_t       *cur, *v;
    bson_iter_t   it, sub, leaf;
    const char   *name;

    if (doc == NULL || !bson_iter_init_find(&it, doc, key)
        || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub))
    {
        return NGX_OK;
    }

    while (bson_iter_next(&sub)) {
        name = bson_iter_key(&sub);

        if (!nested) {
            if (!BSON_ITER_HOLDS_NUMBER(&sub)) {
                continue;
            }

            v = json_object_get(into, name);
            if (json_object_set_new(into, name,
                    json_integer(json_integer_value(v)
                                 + bson_iter_as_int64(&sub)))
                != 0)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (!BSON_ITER_HOLDS_DOCUMENT(&sub) || !bson_iter_recurse(&sub, &leaf))
        {
            continue;
        }

        cur = json_object_get(into, name);

        if (cur == NULL) {
            cur = json_pack("{s:i, s:i}", "gross", 0, "net", 0);
            if (cur == NULL || json_object_set_new(into, name, cur) != 0) {
                return NGX_ERROR;
            }
        }

        while (bson_iter_next(&leaf)) {
            if (!BSON_ITER_HOLDS_NUMBER(&leaf)) {
                continue;
            }

            v = json_object_get(cur, bson_iter_key(&leaf));
            if (v == NULL) {
                continue;
            }

            json_integer_set(v, json_integer_value(v)
                                + bson_iter_as_int64(&leaf));
        }
    }

    return NGX_OK;
}


/* {"<day>": null, ...} for every day of the range, in order */

static json_t *
ngx_feira_analytics_days(time_t t, time_t end)
{
    char     buf[11];
    json_t  *days;

    days = json_object();
    if (days == NULL) {
        return NULL;
    }

    for ( /* void */ ; t <= end; t += 86400) {
        ngx_feira_analytics_day_str(t, buf);

        if (json_object_set_new(days, buf, json_null()) != 0) {
            json_decref(days);
            return NULL;
        }
    }

    return days;
}


static json_t *
ngx_feira_provider_day(const bson_t *doc, const char *day)
{
    json_t               *o, *earnings;
    int64_t               offers, accepted, rcount, rsum;
    ngx_feira_samples_t   oa, fr;

    ngx_memzero(&oa, sizeof(oa));
    ngx_memzero(&fr, sizeof(fr));

    offers = ngx_feira_bson_int(doc, "offers");
    accepted = ngx_feira_bson_int(doc, "accepted");
    rcount = ngx_feira_bson_int(doc, "rating_count");
    rsum = ngx_feira_bson_int(doc, "rating_sum");

    earnings = json_object();

    if (earnings == NULL
        || ngx_feira_sum_object(earnings, doc, "earnings", 1) != NGX_OK
        || ngx_feira_samples_add(&oa, doc, "offer_to_accept_ms_samples")
           != NGX_OK
        || ngx_feira_samples_add(&fr, doc, "first_response_ms_samples")
           != NGX_OK)
    {
        json_decref(earnings);
        free(oa.v);
        free(fr.v);
        return NULL;
    }

    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, "
                  "s:I, s:o}",
                  "day", day,
                  "offers", (json_int_t) offers,
                  "accepted", (json_int_t) accepted,
                  "completed", (json_int_t) ngx_feira_bson_int(doc,
                                                               "completed"),
                  "cancelled", (json_int_t) ngx_feira_bson_int(doc,
                                                               "cancelled"),
                  "acceptance_rate", ngx_feira_ratio(accepted, offers),
                  "offer_to_accept_ms", ngx_feira_samples_json(&oa),
                  "first_response_ms", ngx_feira_samples_json(&fr),
                  "earnings", earnings,
                  "rating_count", (json_int_t) rcount,
                  "rating_sum", (json_int_t) rsum,
                  "rating_avg", ngx_feira_ratio(rsum, rcount));

    free(oa.v);
    free(fr.v);

    return o;
}


void
ngx_feira_analytics_dashboard_job(void *data)
{
    ngx_feira_analytics_job_t  *job = data;

    json_t               *days, *series, *totals, *day, *earnings, *v;
    int64_t               offers, accepted, completed, cancelled;
    int64_t               rcount, rsum;
    const char           *key;
    const bson_t         *doc;
    bson_iter_t           it;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_cursor_t      *cur;
    ngx_feira_samples_t   oa, fr;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    days = ngx_feira_analytics_days(job->from_t, job->to_t);
    if (days == NULL) {
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        json_decref(days);
        return;
    }

    ngx_memzero(&oa, sizeof(oa));
    ngx_memzero(&fr, sizeof(fr));
    offers = accepted = completed = cancelled = rcount = rsum = 0;

    earnings = json_object();
    series = json_array();

    cur = ngx_feira_analytics_find(client, "analytics_provider_daily",
                                   job->provider, job->from, job->to);

    while (earnings && series && mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "day")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        key = bson_iter_utf8(&it, NULL);

        if (json_object_get(days, key) == NULL) {
            continue;
        }

        day = ngx_feira_provider_day(doc, key);

        if (day == NULL || json_object_set_new(days, key, day) != 0
            || ngx_feira_sum_object(earnings, doc, "earnings", 1) != NGX_OK
            || ngx_feira_samples_add(&oa, doc, "offer_to_accept_ms_samples")
               != NGX_OK
            || ngx_feira_samples_add(&fr, doc, "first_response_ms_samples")
               != NGX_OK)
        {
            json_decref(series);
            series = NULL;
            break;
        }

        offers += ngx_feira_bson_int(doc, "offers");
        accepted += ngx_feira_bson_int(doc, "accepted");
        completed += ngx_feira_bson_int(doc, "completed");
        cancelled += ngx_feira_bson_int(doc, "cancelled");
        rcount += ngx_feira_bson_int(doc, "rating_count");
        rsum += ngx_feira_bson_int(doc, "rating_sum");
    }

    if (mongoc_cursor_error(cur, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: analytics: %s", error.message);
        goto done;
    }

    if (earnings == NULL || series == NULL) {
        goto done;
    }

    json_object_foreach(days, key, v) {
        day = json_is_null(v) ? ngx_feira_provider_day(NULL, key)
                              : json_incref(v);

        if (day == NULL || json_array_append_new(series, day) != 0) {
            goto done;
        }
    }

    totals = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:O, s:I, "
                       "s:I, s:o}",
                       "offers", (json_int_t) offers,
                       "accepted", (json_int_t) accepted,
                       "completed", (json_int_t) completed,
                       "cancelled", (json_int_t) cancelled,
                       "acceptance_rate", ngx_feira_ratio(accepted, offers),
                       "offer_to_accept_ms", ngx_feira_samples_json(&oa),
                       "first_response_ms", ngx_feira_samples_json(&fr),
                       "earnings", earnings,
                       "rating_count", (json_int_t) rcount,
                       "rating_sum", (json_int_t) rsum,
                       "rating_avg", ngx_feira_ratio(rsum, rcount));

    job->result = json_pack("{s:s, s:s, s:s, s:O, s:o}",
                            "provider_id", job->provider,
                            "from", job->from, "to", job->to,
                            "days", series, "totals", totals);

    if (job->result == NULL) {
        goto done;
    }

    if (job->csv) {
        job->text = ngx_feira_analytics_dashboard_csv(job->result,
                                                      &job->text_len);
        if (job->text == NULL) {
            goto done;
        }
    }

    job->status = NGX_HTTP_OK;

done:

    json_decref(series);
    json_decref(earnings);
    json_decref(days);
    free(oa.v);
    free(fr.v);
    mongoc_cursor_destroy(cur);
    ngx_feira_mongo_push(client);
}


static json_t *
ngx_feira_market_day(const bson_t *doc, const char *day)
{
    json_t   *cats, *gmv, *fees, *o;
    int64_t   created, accepted;

    cats = json_object();
    gmv = json_object();
    fees = json_object();

    if (cats == NULL || gmv == NULL || fees == NULL
        || ngx_feira_sum_object(cats, doc, "requests_by_category", 0)
           != NGX_OK
        || ngx_feira_sum_object(gmv, doc, "gmv", 0) != NGX_OK
        || ngx_feira_sum_object(fees, doc, "fees", 0) != NGX_OK)
    {
        json_decref(cats);
        json_decref(gmv);
        json_decref(fees);
        return NULL;
    }

    created = ngx_feira_bson_int(doc, "requests_created");
    accepted = ngx_feira_bson_int(doc, "accepted");

    o = json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, "
                  "s:I, s:I}",
                  "day", day,
                  "requests_created", (json_int_t) created,
                  "requests_by_category", cats,
                  "accepted", (json_int_t) accepted,
                  "completed", (json_int_t) ngx_feira_bson_int(doc,
                                                               "completed"),
                  "cancelled", (json_int_t) ngx_feira_bson_int(doc,
                                                               "cancelled"),
                  "expired", (json_int_t) ngx_feira_bson_int(doc, "expired"),
                  "fill_rate", ngx_feira_ratio(accepted, created),
                  "gmv", gmv,
                  "fees", fees,
                  "payments", (json_int_t) ngx_feira_bson_int(doc,
                                                              "payments"),
                  "active_clients", (json_int_t) ngx_feira_bson_int(doc,
                                                          "active_clients"),
                  "active_providers", (json_int_t) ngx_feira_bson_int(doc,
                                                        "active_providers"));

    return o;
}


static ngx_int_t
ngx_feira_ids_add(json_t *set, const bson_t *doc, const char *key)
{
    bson_iter_t  it, arr;

    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it)
        || !bson_iter_recurse(&it, &arr))
    {
        return NGX_OK;
    }

    while (bson_iter_next(&arr)) {
        if (BSON_ITER_HOLDS_UTF8(&arr)
            && json_object_set_new(set, bson_iter_utf8(&arr, NULL),
                                   json_true()) != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_feira_analytics_summary_job(void *data)
{
    ngx_feira_analytics_job_t  *job = data;

    json_t            *days, *series, *totals, *day, *v, *cats, *gmv, *fees;
    json_t            *clients, *providers;
    int64_t            created, accepted, completed, cancelled, expired;
    int64_t            payments;
    const char        *key;
    const bson_t      *doc;
    bson_iter_t        it;
    bson_error_t       error;
    mongoc_client_t   *client;
    mongoc_cursor_t   *cur;

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;

    days = ngx_feira_analytics_days(job->from_t, job->to_t);
    if (days == NULL) {
        return;
    }

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        json_decref(days);
        return;
    }

    created = accepted = completed = cancelled = expired = payments = 0;

    series = json_array();
    cats = json_object();
    gmv = json_object();
    fees = json_object();
    clients = json_object();
    providers = json_object();

    cur = ngx_feira_analytics_find(client, "analytics_daily", NULL,
                                   job->from, job->to);

    while (series && cats && gmv && fees && clients && providers
           && mongoc_cursor_next(cur, &doc))
    {
        if (!bson_iter_init_find(&it, doc, "day")
            || !BSON_ITER_HOLDS_UTF8(&it))
        {
            continue;
        }

        key = bson_iter_utf8(&it, NULL);

        if (json_object_get(days, key) == NULL) {
            continue;
        }

        day = ngx_feira_market_day(doc, key);

        if (day == NULL || json_object_set_new(days, key, day) != 0
            || ngx_feira_sum_object(cats, doc, "requests_by_category", 0)
               != NGX_OK
            || ngx_feira_sum_object(gmv, doc, "gmv", 0) != NGX_OK
            || ngx_feira_sum_object(fees, doc, "fees", 0) != NGX_OK
            || ngx_feira_ids_add(clients, doc, "client_ids") != NGX_OK
            || ngx_feira_ids_add(providers, doc, "provider_ids") != NGX_OK)
        {
            json_decref(series);
            series = NULL;
            break;
        }

        created += ngx_feira_bson_int(doc, "requests_created");
        accepted += ngx_feira_bson_int(doc, "accepted");
        completed += ngx_feira_bson_int(doc, "completed");
        cancelled += ngx_feira_bson_int(doc, "cancelled");
        expired += ngx_feira_bson_int(doc, "expired");
        payments += ngx_feira_bson_int(doc, "payments");
    }

    if (mongoc_cursor_error(cur, &error)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "feira: analytics: %s", error.message);
        goto done;
    }

    if (!(series && cats && gmv && fees && clients && providers)) {
        goto done;
    }

    json_object_foreach(days, key, v) {
        day = json_is_null(v) ? ngx_feira_market_day(NULL, key)
                              : json_incref(v);

        if (day == NULL || json_array_append_new(series, day) != 0) {
            goto done;
        }
    }

    /* active users of the range: distinct, not the sum of the days */
    totals = json_pack("{s:I, s:O, s:I, s:I, s:I, s:I, s:o, s:O, s:O, s:I, "
                       "s:I, s:I}",
                       "requests_created", (json_int_t) created,
                       "requests_by_category", cats,
                       "accepted", (json_int_t) accepted,
                       "completed", (json_int_t) completed,
                       "cancelled", (json_int_t) cancelled,
                       "expired", (json_int_t) expired,
                       "fill_rate", ngx_feira_ratio(accepted, created),
                       "gmv", gmv,
                       "fees", fees,
                       "payments", (json_int_t) payments,
                       "active_clients", (json_int_t) json_object_size(clients),
                       "active_providers",
                       (json_int_t) json_object_size(providers));

    job->result = json_pack("{s:s, s:s, s:O, s:o}",
                            "from", job->from, "to", job->to,
                            "days", series, "totals", totals);

    if (job->result == NULL) {
        goto done;
    }

    if (job->csv) {
        job->text = ngx_feira_analytics_summary_csv(job->result,
                                                    &job->text_len);
        if (job->text == NULL) {
            goto done;
        }
    }

    job->status = NGX_HTTP_OK;

done:

    json_decref(series);
    json_decref(cats);
    json_decref(gmv);
    json_decref(fees);
    json_decref(clients);
    json_decref(providers);
    json_decref(days);
    mongoc_cursor_destroy(cur);
    ngx_feira_mongo_push(client);
}
