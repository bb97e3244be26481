/*
 * The analytics worker: its state and the processing of a batch of events,
 * shared by the consumer group (aw_main.c) and the rebuild (aw_rebuild.c).
 */

#ifndef AW_H
#define AW_H

#include <stddef.h>

#include "aw_store.h"
#include "../common/fw_worker.h"

#define AW_TOPICS  "feira.requests,feira.chat,feira.payments,feira.reviews"

typedef struct {
    aw_store_t   *store;
    fw_worker_t  *worker;
} aw_ctx_t;

/* one message of a batch, and what became of it */
typedef struct {
    const char   *payload;
    size_t        len;
    fw_result_e   result;
    char          error[256];
} aw_msg_t;

/* sets every msgs[i].result: FW_OK, FW_FAIL (not an event of
   docs/events.md) or FW_RETRY (the store failed: the whole batch) */
void aw_process(aw_ctx_t *c, aw_msg_t *msgs, size_t n);
int aw_rebuild(aw_ctx_t *c, const char *brokers, char **topics,
    size_t ntopics, size_t batch);

void aw_handle(void *ctx, fw_event_t **evs, size_t n);
void aw_poll(void *ctx, int timeout_ms);
void aw_tick(void *ctx, int stopping);
size_t aw_busy(void *ctx);

#endif /* AW_H */
