/*
 * What the analytics worker reads and writes in MongoDB (docs/events.md,
 * "Analytics"): links (first offer, first chat message), facts (one per
 * counted event), and the daily aggregates recomputed from the facts.
 */

#ifndef AW_STORE_H
#define AW_STORE_H

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stddef.h>
#include <stdint.h>

#include "aw_agg.h"

typedef struct aw_store_s  aw_store_t;

/* analytics_links: the first of something, insert-only */
typedef struct {
    char         id[96];
    int64_t      at;
    char         event[25];
    int          found;
} aw_link_t;

aw_store_t *aw_store_new(const char *uri);
void aw_store_free(aw_store_t *s);
int aw_store_indexes(aw_store_t *s);
int aw_store_drop(aw_store_t *s);
int aw_links_insert(aw_store_t *s, aw_link_t *links, size_t n, char *err,
    size_t errlen);
int aw_links_get(aw_store_t *s, aw_link_t *links, size_t n, char *err,
    size_t errlen);
int aw_facts_insert(aw_store_t *s, bson_t **docs, size_t n,
    unsigned char *dup, char *err, size_t errlen);
int aw_facts_load(aw_store_t *s, char (*keys)[64], size_t nkeys,
    aw_fact_t **facts, size_t *n, char *err, size_t errlen);
void aw_facts_free(aw_fact_t *facts, size_t n);
int aw_agg_store(aw_store_t *s, int market, bson_t *doc, int64_t n_facts,
    char *err, size_t errlen);

#endif /* AW_STORE_H */
