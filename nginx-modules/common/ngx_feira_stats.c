/*
 * Feira's operational counters: the per-worker slot and the updates that
 * the shared library and feira_realtime make (ngx_feira_stats.h).
 */

#include "ngx_feira_common.h"


static void ngx_feira_stats_move(ngx_atomic_t *from, ngx_atomic_t *to);
static void ngx_feira_stats_mongo_observe(int64_t usec);
static void ngx_feira_stats_mongo_succeeded(
    const mongoc_apm_command_succeeded_t *event);
static void ngx_feira_stats_mongo_failed(
    const mongoc_apm_command_failed_t *event);


const uint64_t  ngx_feira_stats_mongo_bounds[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000
};


/* counted here until feira_metrics attaches the worker's shared slot */
static ngx_feira_stats_t   ngx_feira_stats_local;

ngx_feira_stats_t         *ngx_feira_stats_worker = &ngx_feira_stats_local;


void
ngx_feira_stats_attach(ngx_feira_stats_t *slot)
{
    ngx_uint_t          i, n;
    ngx_atomic_t       *from, *to;
    ngx_feira_stats_t  *local;

    local = &ngx_feira_stats_local;

    if (slot == NULL) {
        ngx_feira_stats_worker = local;
        return;
    }

    ngx_feira_stats_worker = slot;
    ngx_memory_barrier();

    /*
     * What the worker counted before feira_metrics attached its slot
     * (start-up jobs of other modules' init_process) moves into the slot,
     * so that the gauges come back to zero when those jobs are done.
     */

    from = &local->redis_reconnects;
    to = &slot->redis_reconnects;
    n = (sizeof(ngx_feira_stats_t) - offsetof(ngx_feira_stats_t,
                                              redis_reconnects))
        / sizeof(ngx_atomic_t);

    for (i = 0; i < n; i++) {
        ngx_feira_stats_move(&from[i], &to[i]);
    }
}


static void
ngx_feira_stats_move(ngx_atomic_t *from, ngx_atomic_t *to)
{
    ngx_atomic_uint_t  v;

    do {
        v = *from;
    } while (!ngx_atomic_cmp_set(from, v, 0));

    (void) ngx_atomic_fetch_add(to, (ngx_atomic_int_t) v);
}


void
ngx_feira_stats_job_posted(void)
{
    ngx_feira_stats_add(jobs_queued, 1);
}


void
ngx_feira_stats_job_started(void)
{
    ngx_feira_stats_add(jobs_queued, -1);
    ngx_feira_stats_add(jobs_running, 1);
}


void
ngx_feira_stats_job_done(void)
{
    ngx_feira_stats_add(jobs_running, -1);
}


void
ngx_feira_stats_mongo_apm(mongoc_client_pool_t *pool, ngx_log_t *log)
{
    bool                     ok;
    mongoc_apm_callbacks_t  *cbs;

    /* without them MongoDB calls are not measured, and still work */

    cbs = mongoc_apm_callbacks_new();
    if (cbs == NULL) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "feira: mongo: no memory for the APM callbacks");
        return;
    }

    mongoc_apm_set_command_succeeded_cb(cbs,
                                        ngx_feira_stats_mongo_succeeded);
    mongoc_apm_set_command_failed_cb(cbs, ngx_feira_stats_mongo_failed);

    /* the pool keeps a copy */
    ok = mongoc_client_pool_set_apm_callbacks(pool, cbs, NULL);

    mongoc_apm_callbacks_destroy(cbs);

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "feira: mongo: the APM callbacks were not set");
    }
}


void
ngx_feira_stats_mongo_error(const bson_error_t *error)
{
    /* commands that were sent are counted by the APM callbacks */
    if (error->domain == MONGOC_ERROR_SERVER_SELECTION) {
        ngx_feira_stats_add(mongo_timeouts, 1);
    }
}


void
ngx_feira_stats_ws_open(void)
{
    ngx_feira_stats_add(ws_connections, 1);
    ngx_feira_stats_add(ws_opened, 1);
}


void
ngx_feira_stats_ws_close(ngx_uint_t dropped)
{
    ngx_feira_stats_add(ws_connections, -1);

    if (dropped) {
        ngx_feira_stats_add(ws_dropped, 1);
    }
}


void
ngx_feira_stats_ws_message_in(void)
{
    ngx_feira_stats_add(ws_messages_in, 1);
}


void
ngx_feira_stats_ws_message_out(void)
{
    ngx_feira_stats_add(ws_messages_out, 1);
}


/* the APM callbacks run in the pool thread that ran the command */

static void
ngx_feira_stats_mongo_observe(int64_t usec)
{
    ngx_uint_t  i;

    if (usec < 0) {
        usec = 0;
    }

    for (i = 0; i < NGX_FEIRA_STATS_MONGO_BUCKETS; i++) {
        if ((uint64_t) usec <= ngx_feira_stats_mongo_bounds[i]) {
            break;
        }
    }

    ngx_feira_stats_add(mongo_buckets[i], 1);
    ngx_feira_stats_add(mongo_usec, usec);
}


static void
ngx_feira_stats_mongo_succeeded(const mongoc_apm_command_succeeded_t *event)
{
    ngx_feira_stats_mongo_observe(
        mongoc_apm_command_succeeded_get_duration(event));
}


static void
ngx_feira_stats_mongo_failed(const mongoc_apm_command_failed_t *event)
{
    bson_error_t  error;

    ngx_feira_stats_mongo_observe(
        mongoc_apm_command_failed_get_duration(event));

    ngx_feira_stats_add(mongo_failures, 1);

    mongoc_apm_command_failed_get_error(event, &error);

    /* mongoc does not tell a socket timeout from a broken socket */
    if (error.domain == MONGOC_ERROR_STREAM
        && error.code == MONGOC_ERROR_STREAM_SOCKET)
    {
        ngx_feira_stats_add(mongo_timeouts, 1);
    }
}
