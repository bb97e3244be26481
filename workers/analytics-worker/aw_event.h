/*
 * The analytics worker's view of one Kafka event (docs/events.md): the
 * envelope and the fields of its data that the aggregates use.  Pure C
 * over jansson, for the unit tests.
 */

#ifndef AW_EVENT_H
#define AW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define AW_MAX_OFFERED   64

typedef enum {
    AW_IGNORED = 0,         /* a type no aggregate counts */
    AW_REQ_CREATED,
    AW_REQ_OFFERED,
    AW_REQ_ACCEPTED,
    AW_REQ_COMPLETED,
    AW_REQ_CANCELLED,
    AW_REQ_EXPIRED,
    AW_CHAT_MESSAGE,
    AW_PAY_SUCCEEDED,
    AW_PAY_REFUNDED,
    AW_REVIEW_CREATED
} aw_kind_e;

typedef struct {
    aw_kind_e    kind;
    const char  *type;                  /* the envelope's, static */
    char         id[25];
    int64_t      at;                    /* occurred_at, unix ms */
    char         day[11];               /* its UTC day, YYYY-MM-DD */
    char         actor_role[16];
    char         request_id[25];
    char         client_id[25];         /* payments: the payer */
    char         provider_id[25];       /* payments: the payee; reviews:
                                           the reviewee */
    char         category[65];
    char         providers[AW_MAX_OFFERED][25];
    size_t       nproviders;
    char         from[25];              /* chat */
    char         to[25];
    char         payment_id[25];
    char         currency[4];
    int64_t      amount;
    int64_t      fee;
    int          rating;
} aw_event_t;

/* 0: parsed (kind may be AW_IGNORED); -1: not what docs/events.md says */
int aw_event_parse(const char *payload, size_t len, aw_event_t *ev,
    char *err, size_t errlen);
aw_kind_e aw_kind_of(const char *type);
int aw_hex_id(const char *s);
int aw_parse_time(const char *s, int64_t *ms);
void aw_day_of(int64_t ms, char day[11]);

#endif /* AW_EVENT_H */
