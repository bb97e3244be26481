/*
 * The notification worker's shared state, between its handler of Kafka
 * events, its scheduler of deferred notifications and its main.
 */

#ifndef NW_H
#define NW_H

#include "nw_channel.h"
#include "nw_plan.h"
#include "nw_sender.h"
#include "nw_store.h"
#include "nw_template.h"
#include "../common/fw_worker.h"

typedef struct {
    fw_worker_t      *worker;
    nw_store_t       *store;
    nw_templates_t   *templates;
    nw_sender_t      *sender;
    nw_channel_t     *email;
    nw_channel_t     *push;
    nw_channel_t     *sms;
    nw_job_t         *finished;
    size_t            nfinished;
    int64_t           finished_since;
    long              flush_ms;
    size_t            deferred_active;
    int64_t           deferred_next;
    long              deferred_poll_ms;
    long              deferred_stale_ms;
    unsigned          max_attempts;
    int64_t           backoff_base_ms;
    int64_t           backoff_max_ms;
} nw_ctx_t;

/* what a job belongs to: an attempt of a Kafka event, or a deferred one */
#define NW_OWNER_EVENT     1
#define NW_OWNER_DEFERRED  2

typedef struct {
    int           kind;
    nw_ctx_t     *ctx;
} nw_owner_t;

/* an attempt at an event: done when its last job is */
typedef struct {
    nw_owner_t    owner;
    fw_event_t   *ev;
    size_t        pending;
    int           retry;
    char          error[256];
} nw_attempt_t;

/* a notification deferred by quiet hours, being sent */
typedef struct {
    nw_owner_t    owner;
    int           attempts;
    char         *topic;
    char         *msg_key;
    char         *event;
} nw_deferred_t;

void nw_handle(void *ctx, fw_event_t **evs, size_t n);
void nw_poll(void *ctx, int timeout_ms);
size_t nw_busy(void *ctx);
void nw_tick(void *ctx, int stopping);
void nw_job_finished(nw_job_t *job);
void nw_deferred_finished(nw_ctx_t *c, nw_job_t *job);
void nw_count(const char *channel, const char *result);

#endif /* NW_H */
