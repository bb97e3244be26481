/*
 * Who is told what: an event of docs/events.md to its recipients, each
 * with a template and the channels it may use.
 */

#ifndef NW_PLAN_H
#define NW_PLAN_H

#include <jansson.h>
#include <stddef.h>

#define NW_CH_EMAIL  1
#define NW_CH_PUSH   2
#define NW_CH_SMS    4
#define NW_CH_ALL    7

#define NW_MAX_RECIPIENTS  64

typedef struct {
    char       user_id[32];
    char       other_id[32];     /* the counterpart, "" if none */
    char       template[64];
    unsigned   channels;
} nw_recipient_t;

typedef struct {
    char            id[32];
    char            type[64];
    json_t         *vars;        /* common template variables */
    nw_recipient_t  rcpt[NW_MAX_RECIPIENTS];
    size_t          nrcpt;
} nw_plan_t;

int nw_plan(const char *json, size_t len, nw_plan_t *plan, char *err,
    size_t errlen);
void nw_plan_free(nw_plan_t *plan);
int nw_hex_id(const char *s);

#endif /* NW_PLAN_H */
