/*
 * Feira's operational counters, per nginx worker: what the shared library
 * (Redis, Kafka, MongoDB, the thread pool) and the realtime module count.
 */

#ifndef _NGX_FEIRA_STATS_H_INCLUDED_
#define _NGX_FEIRA_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <mongoc/mongoc.h>


/* bounds of feira_mongo_command_duration_seconds, in microseconds */
#define NGX_FEIRA_STATS_MONGO_BUCKETS  12


/*
 * One worker's counters.  The feira_metrics module places one of these per
 * worker in its shared zone and reads them all at scrape time; without it
 * they are counted in process memory and seen by no one.  Counters only
 * grow; the gauges (marked so) go up and down.  Every update is a single
 * atomic operation, from the event loop or from a pool thread.
 */

/* every field after pid is an ngx_atomic_t: ngx_feira_stats_attach() */

typedef struct {
    ngx_atomic_t   pid;                     /* 0: the slot is free */

    ngx_atomic_t   redis_reconnects;

    ngx_atomic_t   kafka_produce_failures;
    ngx_atomic_t   kafka_delivery_failures;
    ngx_atomic_t   kafka_queue;             /* gauge */
    ngx_atomic_t   kafka_outbox_saved;
    ngx_atomic_t   kafka_outbox_resent;
    ngx_atomic_t   kafka_outbox_lost;

    ngx_atomic_t   jobs_queued;             /* gauge */
    ngx_atomic_t   jobs_running;            /* gauge */

    ngx_atomic_t   mongo_failures;
    ngx_atomic_t   mongo_timeouts;
    ngx_atomic_t   mongo_usec;
    ngx_atomic_t   mongo_buckets[NGX_FEIRA_STATS_MONGO_BUCKETS + 1];

    ngx_atomic_t   ws_connections;          /* gauge */
    ngx_atomic_t   ws_opened;
    ngx_atomic_t   ws_dropped;
    ngx_atomic_t   ws_messages_in;
    ngx_atomic_t   ws_messages_out;
} ngx_feira_stats_t;


/* never NULL: the worker's slot in shared memory, or a local one */
extern ngx_feira_stats_t  *ngx_feira_stats_worker;

extern const uint64_t  ngx_feira_stats_mongo_bounds[];


#define ngx_feira_stats_add(field, n)                                        \
    (void) ngx_atomic_fetch_add(&ngx_feira_stats_worker->field,              \
                                (ngx_atomic_int_t) (n))

#define ngx_feira_stats_set(field, value)                                    \
    ngx_feira_stats_worker->field = (ngx_atomic_uint_t) (value)


void ngx_feira_stats_attach(ngx_feira_stats_t *slot);

/* the thread pool: posted, started in a pool thread, done on the loop */
void ngx_feira_stats_job_posted(void);
void ngx_feira_stats_job_started(void);
void ngx_feira_stats_job_done(void);

/* MongoDB: every command's duration and failure, through mongoc's APM */
void ngx_feira_stats_mongo_apm(mongoc_client_pool_t *pool, ngx_log_t *log);
/* a call that failed before any command was sent (server selection) */
void ngx_feira_stats_mongo_error(const bson_error_t *error);

/* WebSocket, for feira_realtime */
void ngx_feira_stats_ws_open(void);
void ngx_feira_stats_ws_close(ngx_uint_t dropped);
void ngx_feira_stats_ws_message_in(void);
void ngx_feira_stats_ws_message_out(void);


#endif /* _NGX_FEIRA_STATS_H_INCLUDED_ */
