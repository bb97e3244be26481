/*
 * The daily aggregates of the analytics worker, computed from facts (the
 * per-event records of analytics_facts, docs/events.md): per provider and
 * day, and for the whole marketplace per day.  Pure: facts in, BSON out.
 */

#ifndef AW_AGG_H
#define AW_AGG_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

#include "aw_event.h"

/* a chat reply that counts for the first-response time (not an event) */
#define AW_CHAT_RESPONSE  100

typedef struct {
    int          kind;               /* aw_kind_e or AW_CHAT_RESPONSE */
    char         day[11];
    char         provider_id[25];
    char         client_id[25];
    char         category[65];
    char       (*providers)[25];     /* request.offered */
    size_t       nproviders;
    char         currency[4];
    int64_t      amount;
    int64_t      fee;
    int64_t      offer_ms;           /* -1: none */
    int64_t      response_ms;        /* -1: none */
    int          rating;
} aw_fact_t;

/* the aggregate key of a provider's day and of a marketplace day */
void aw_key_provider(char *buf, size_t size, const char *provider,
    const char *day);
void aw_key_market(char *buf, size_t size, const char *day);

/* the nearest-rank percentile (p in 1..100) of n sorted values */
int64_t aw_percentile(const int64_t *sorted, size_t n, int p);

/* the aggregate document of one key from the facts (only those of the key
   are counted); n_facts gets how many were; -1: no memory */
int aw_agg_provider(const aw_fact_t *facts, size_t n, const char *provider,
    const char *day, bson_t *out, int64_t *n_facts);
int aw_agg_market(const aw_fact_t *facts, size_t n, const char *day,
    bson_t *out, int64_t *n_facts);

#endif /* AW_AGG_H */
