/*
 * The aggregates, recomputed from scratch from the facts of one key: the
 * same facts always give the same document, however often and in whatever
 * order they were delivered (docs/events.md, "Analytics").
 */

#include <stdlib.h>
#include <string.h>

#include "aw_agg.h"


#define AW_MAX_CURRENCIES  16


typedef struct {
    char         code[4];
    int64_t      gross;
    int64_t      net;
    int64_t      fees;
} aw_money_t;

typedef struct {
    aw_money_t   items[AW_MAX_CURRENCIES];
    size_t       n;
} aw_purse_t;

typedef struct {
    int64_t     *v;
    size_t       n;
    size_t       cap;
} aw_vec_t;

typedef struct {
    char       (*v)[25];
    size_t       n;
    size_t       cap;
} aw_ids_t;


static aw_money_t *aw_purse_get(aw_purse_t *p, const char *code);
static void aw_purse_append(bson_t *doc, const char *key, aw_purse_t *p,
    int market);
static int aw_vec_push(aw_vec_t *v, int64_t x);
static void aw_samples_append(bson_t *doc, const char *key, aw_vec_t *v);
static int aw_cmp_i64(const void *a, const void *b);
static int aw_ids_push(aw_ids_t *s, const char *id);
static size_t aw_ids_unique(aw_ids_t *s);
static int aw_cmp_id(const void *a, const void *b);
static void aw_ratio(bson_t *doc, const char *key, int64_t num, int64_t den);
static int aw_of_provider(const aw_fact_t *f, const char *provider);


void
aw_key_provider(char *buf, size_t size, const char *provider,
    const char *day)
{
    snprintf(buf, size, "p:%s:%s", provider, day);
}


void
aw_key_market(char *buf, size_t size, const char *day)
{
    snprintf(buf, size, "m:%s", day);
}


int64_t
aw_percentile(const int64_t *sorted, size_t n, int p)
{
    size_t  rank;

    if (n == 0) {
        return 0;
    }

    /* the smallest value with at least p% of the values at or below it */
    rank = (n * (size_t) p + 99) / 100;

    if (rank == 0) {
        rank = 1;
    }

    return sorted[rank - 1];
}


static aw_money_t *
aw_purse_get(aw_purse_t *p, const char *code)
{
    size_t  i;

    for (i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].code, code) == 0) {
            return &p->items[i];
        }
    }

    if (p->n == AW_MAX_CURRENCIES) {
        return NULL;
    }

    memset(&p->items[p->n], 0, sizeof(aw_money_t));
    memcpy(p->items[p->n].code, code, 4);

    return &p->items[p->n++];
}


/* {"BRL": {"gross": n, "net": n}}; market: {"BRL": n} of gross or fees */

static void
aw_purse_append(bson_t *doc, const char *key, aw_purse_t *p, int market)
{
    size_t  i;
    bson_t  all, one;

    bson_append_document_begin(doc, key, -1, &all);

    for (i = 0; i < p->n; i++) {
        if (market == 1) {
            BSON_APPEND_INT64(&all, p->items[i].code, p->items[i].gross);
            continue;
        }

        if (market == 2) {
            BSON_APPEND_INT64(&all, p->items[i].code, p->items[i].fees);
            continue;
        }

        bson_append_document_begin(&all, p->items[i].code, -1, &one);
        BSON_APPEND_INT64(&one, "gross", p->items[i].gross);
        BSON_APPEND_INT64(&one, "net", p->items[i].net);
        bson_append_document_end(&all, &one);
    }

    bson_append_document_end(doc, &all);
}


static int
aw_vec_push(aw_vec_t *v, int64_t x)
{
    int64_t  *nv;

    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        nv = realloc(v->v, v->cap * sizeof(int64_t));
        if (nv == NULL) {
            return -1;
        }
        v->v = nv;
    }

    v->v[v->n++] = x;

    return 0;
}


static int
aw_cmp_i64(const void *a, const void *b)
{
    int64_t  x, y;

    x = *(const int64_t *) a;
    y = *(const int64_t *) b;

    return (x > y) - (x < y);
}


/* "<key>_samples": the durations, sorted; "<key>": count, median, p90 */

static void
aw_samples_append(bson_t *doc, const char *key, aw_vec_t *v)
{
    char    name[64], idx[24];
    size_t  i;
    bson_t  arr, stats;

    if (v->n) {
        qsort(v->v, v->n, sizeof(int64_t), aw_cmp_i64);
    }

    bson_append_document_begin(doc, key, -1, &stats);
    BSON_APPEND_INT64(&stats, "count", (int64_t) v->n);

    if (v->n) {
        BSON_APPEND_INT64(&stats, "median", aw_percentile(v->v, v->n, 50));
        BSON_APPEND_INT64(&stats, "p90", aw_percentile(v->v, v->n, 90));

    } else {
        BSON_APPEND_NULL(&stats, "median");
        BSON_APPEND_NULL(&stats, "p90");
    }

    bson_append_document_end(doc, &stats);

    snprintf(name, sizeof(name), "%s_samples", key);
    bson_append_array_begin(doc, name, -1, &arr);

    for (i = 0; i < v->n; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        BSON_APPEND_INT64(&arr, idx, v->v[i]);
    }

    bson_append_array_end(doc, &arr);
}


static int
aw_ids_push(aw_ids_t *s, const char *id)
{
    char  (*nv)[25];

    if (id[0] == '\0') {
        return 0;
    }

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        nv = realloc(s->v, s->cap * 25);
        if (nv == NULL) {
            return -1;
        }
        s->v = nv;
    }

    memcpy(s->v[s->n++], id, 25);

    return 0;
}


static int
aw_cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}


static size_t
aw_ids_unique(aw_ids_t *s)
{
    size_t  i, m;

    if (s->n == 0) {
        return 0;
    }

    qsort(s->v, s->n, 25, aw_cmp_id);

    m = 1;

    for (i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[m - 1]) != 0) {
            memcpy(s->v[m++], s->v[i], 25);
        }
    }

    s->n = m;

    return m;
}


static void
aw_ratio(bson_t *doc, const char *key, int64_t num, int64_t den)
{
    if (den > 0) {
        BSON_APPEND_DOUBLE(doc, key, (double) num / (double) den);

    } else {
        BSON_APPEND_NULL(doc, key);
    }
}


static int
aw_of_provider(const aw_fact_t *f, const char *provider)
{
    size_t  i;

    if (f->kind == AW_REQ_OFFERED) {
        for (i = 0; i < f->nproviders; i++) {
            if (strcmp(f->providers[i], provider) == 0) {
                return 1;
            }
        }
        return 0;
    }

    if (f->kind == AW_REVIEW_CREATED) {
        /* only the ratings given by clients are a provider's */
        return strcmp(f->provider_id, provider) == 0;
    }

    return strcmp(f->provider_id, provider) == 0;
}


int
aw_agg_provider(const aw_fact_t *facts, size_t n, const char *provider,
    const char *day, bson_t *out, int64_t *n_facts)
{
    int               rc;
    char              key[64];
    size_t            i;
    int64_t           offers, accepted, completed, cancelled, payments;
    int64_t           refunds, rcount, rsum, used;
    aw_vec_t          oa, fr;
    aw_money_t       *m;
    aw_purse_t        purse;
    const aw_fact_t  *f;

    offers = accepted = completed = cancelled = payments = refunds = 0;
    rcount = rsum = used = 0;
    memset(&oa, 0, sizeof(oa));
    memset(&fr, 0, sizeof(fr));
    memset(&purse, 0, sizeof(purse));
    rc = 0;

    for (i = 0; i < n; i++) {
        f = &facts[i];

        if (strcmp(f->day, day) != 0 || !aw_of_provider(f, provider)) {
            continue;
        }

        used++;

        switch (f->kind) {

        case AW_REQ_OFFERED:
            offers++;
            break;

        case AW_REQ_ACCEPTED:
            accepted++;
            if (f->offer_ms >= 0 && aw_vec_push(&oa, f->offer_ms) != 0) {
                rc = -1;
            }
            break;

        case AW_REQ_COMPLETED:
            completed++;
            break;

        case AW_REQ_CANCELLED:
            cancelled++;
            break;

        case AW_CHAT_RESPONSE:
            if (f->response_ms >= 0
                && aw_vec_push(&fr, f->response_ms) != 0)
            {
                rc = -1;
            }
            break;

        case AW_PAY_SUCCEEDED:
        case AW_PAY_REFUNDED:
            m = aw_purse_get(&purse, f->currency);
            if (m == NULL) {
                break;
            }

            /* a refund takes its payment back */
            if (f->kind == AW_PAY_SUCCEEDED) {
                payments++;
                m->gross += f->amount;
                m->net += f->amount - f->fee;

            } else {
                refunds++;
                m->gross -= f->amount;
                m->net -= f->amount - f->fee;
            }
            break;

        case AW_REVIEW_CREATED:
            rcount++;
            rsum += f->rating;
            break;

        default:
            break;
        }
    }

    aw_key_provider(key, sizeof(key), provider, day);

    BSON_APPEND_UTF8(out, "_id", key);
    BSON_APPEND_UTF8(out, "provider_id", provider);
    BSON_APPEND_UTF8(out, "day", day);
    BSON_APPEND_INT64(out, "facts", used);
    BSON_APPEND_INT64(out, "offers", offers);
    BSON_APPEND_INT64(out, "accepted", accepted);
    BSON_APPEND_INT64(out, "completed", completed);
    BSON_APPEND_INT64(out, "cancelled", cancelled);
    aw_ratio(out, "acceptance_rate", accepted, offers);
    aw_samples_append(out, "offer_to_accept_ms", &oa);
    aw_samples_append(out, "first_response_ms", &fr);
    aw_purse_append(out, "earnings", &purse, 0);
    BSON_APPEND_INT64(out, "payments", payments);
    BSON_APPEND_INT64(out, "refunds", refunds);
    BSON_APPEND_INT64(out, "rating_count", rcount);
    BSON_APPEND_INT64(out, "rating_sum", rsum);
    aw_ratio(out, "rating_avg", rsum, rcount);

    free(oa.v);
    free(fr.v);

    *n_facts = used;

    return rc;
}


int
aw_agg_market(const aw_fact_t *facts, size_t n, const char *day, bson_t *out,
    int64_t *n_facts)
{
    int               rc;
    char              key[32], idx[24];
    size_t            i, j, ncat;
    int64_t           created, offered, accepted, completed, cancelled;
    int64_t           expired, payments, refunds, used;
    bson_t            cats, arr;
    aw_ids_t          clients, providers;
    aw_money_t       *m;
    aw_purse_t        purse;
    const aw_fact_t  *f;

    created = offered = accepted = completed = cancelled = expired = 0;
    payments = refunds = used = 0;
    memset(&purse, 0, sizeof(purse));
    memset(&clients, 0, sizeof(clients));
    memset(&providers, 0, sizeof(providers));
    rc = 0;

    for (i = 0; i < n; i++) {
        f = &facts[i];

        if (strcmp(f->day, day) != 0 || f->kind == AW_CHAT_RESPONSE
            || f->kind == AW_REVIEW_CREATED)
        {
            continue;
        }

        used++;

        switch (f->kind) {

        case AW_REQ_CREATED:
            created++;
            break;

        case AW_REQ_OFFERED:
            offered++;
            continue;

        case AW_REQ_ACCEPTED:
            accepted++;
            break;

        case AW_REQ_COMPLETED:
            completed++;
            break;

        case AW_REQ_CANCELLED:
            cancelled++;
            break;

        case AW_REQ_EXPIRED:
            expired++;
            continue;

        case AW_PAY_SUCCEEDED:
        case AW_PAY_REFUNDED:
            m = aw_purse_get(&purse, f->currency);
            if (m != NULL) {
                if (f->kind == AW_PAY_SUCCEEDED) {
                    payments++;
                    m->gross += f->amount;
                    m->fees += f->fee;

                } else {
                    refunds++;
                    m->gross -= f->amount;
                    m->fees -= f->fee;
                }
            }
            break;

        default:
            continue;
        }

        /* who took part that day: the client and provider of a request
           event (not an offer), the payer and payee of a payment */
        if (aw_ids_push(&clients, f->client_id) != 0
            || aw_ids_push(&providers, f->provider_id) != 0)
        {
            rc = -1;
        }
    }

    aw_key_market(key, sizeof(key), day);

    BSON_APPEND_UTF8(out, "_id", key);
    BSON_APPEND_UTF8(out, "day", day);
    BSON_APPEND_INT64(out, "facts", used);
    BSON_APPEND_INT64(out, "requests_created", created);
    BSON_APPEND_INT64(out, "offers", offered);
    BSON_APPEND_INT64(out, "accepted", accepted);
    BSON_APPEND_INT64(out, "completed", completed);
    BSON_APPEND_INT64(out, "cancelled", cancelled);
    BSON_APPEND_INT64(out, "expired", expired);
    aw_ratio(out, "fill_rate", accepted, created);

    /* requests created, by category */
    bson_append_document_begin(out, "requests_by_category", -1, &cats);

    for (i = 0; i < n; i++) {
        f = &facts[i];

        if (f->kind != AW_REQ_CREATED || strcmp(f->day, day) != 0) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (facts[j].kind == AW_REQ_CREATED
                && strcmp(facts[j].day, day) == 0
                && strcmp(facts[j].category, f->category) == 0)
            {
                break;
            }
        }

        if (j < i) {
            continue;       /* counted with its first */
        }

        ncat = 0;

        for (j = i; j < n; j++) {
            if (facts[j].kind == AW_REQ_CREATED
                && strcmp(facts[j].day, day) == 0
                && strcmp(facts[j].category, f->category) == 0)
            {
                ncat++;
            }
        }

        BSON_APPEND_INT64(&cats, f->category, (int64_t) ncat);
    }

    bson_append_document_end(out, &cats);

    aw_purse_append(out, "gmv", &purse, 1);
    aw_purse_append(out, "fees", &purse, 2);
    BSON_APPEND_INT64(out, "payments", payments);
    BSON_APPEND_INT64(out, "refunds", refunds);

    BSON_APPEND_INT64(out, "active_clients",
                      (int64_t) aw_ids_unique(&clients));
    BSON_APPEND_INT64(out, "active_providers",
                      (int64_t) aw_ids_unique(&providers));

    bson_append_array_begin(out, "client_ids", -1, &arr);
    for (i = 0; i < clients.n; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, clients.v[i]);
    }
    bson_append_array_end(out, &arr);

    bson_append_array_begin(out, "provider_ids", -1, &arr);
    for (i = 0; i < providers.n; i++) {
        snprintf(idx, sizeof(idx), "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, providers.v[i]);
    }
    bson_append_array_end(out, &arr);

    free(clients.v);
    free(providers.v);

    *n_facts = used;

    return rc;
}
