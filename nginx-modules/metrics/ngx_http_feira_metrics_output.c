/*
 * feira_metrics: the Prometheus text format (version 0.0.4) of the zone.
 */

#include "ngx_http_feira_metrics.h"


/* the longest sample line, without its label values */
#define NGX_HTTP_FEIRA_METRICS_LINE  160
/* every family's HELP and TYPE lines and the fixed samples */
#define NGX_HTTP_FEIRA_METRICS_FIXED  12288


static u_char *ngx_http_feira_metrics_family(u_char *p, u_char *last,
    const char *name, const char *type, const char *help);
static u_char *ngx_http_feira_metrics_seconds(u_char *p, u_char *last,
    uint64_t value, uint64_t unit);
static u_char *ngx_http_feira_metrics_routes(u_char *p, u_char *last,
    ngx_http_feira_metrics_main_conf_t *mmcf);
static u_char *ngx_http_feira_metrics_stats(u_char *p, u_char *last,
    ngx_http_feira_metrics_shctx_t *sh);
static u_char *ngx_http_feira_metrics_nginx(u_char *p, u_char *last);


ngx_int_t
ngx_http_feira_metrics_render(ngx_http_request_t *r,
    ngx_http_feira_metrics_main_conf_t *mmcf, ngx_buf_t **out)
{
    size_t                           size, labels;
    u_char                          *p, *last;
    ngx_buf_t                       *b;
    ngx_uint_t                       i;
    ngx_http_feira_metrics_route_t  *rt;

    size = NGX_HTTP_FEIRA_METRICS_FIXED
           + NGX_HTTP_FEIRA_METRICS_SLOTS * 3 * NGX_HTTP_FEIRA_METRICS_LINE
           + (NGX_FEIRA_STATS_MONGO_BUCKETS + 3)
             * NGX_HTTP_FEIRA_METRICS_LINE;

    rt = mmcf->routes.elts;

    for (i = 0; i < mmcf->routes.nelts; i++) {
        labels = rt[i].module.len + rt[i].route.len;
        size += (NGX_HTTP_FEIRA_METRICS_CLASSES + mmcf->buckets->nelts + 3)
                * (NGX_HTTP_FEIRA_METRICS_LINE + labels);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = b->last;
    last = b->end;

    p = ngx_http_feira_metrics_routes(p, last, mmcf);
    p = ngx_http_feira_metrics_stats(p, last, mmcf->sh);
    p = ngx_http_feira_metrics_nginx(p, last);

    if (p == last) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "feira_metrics: %uz bytes are not enough", size);
        return NGX_ERROR;
    }

    b->last = p;
    *out = b;

    return NGX_OK;
}


static u_char *
ngx_http_feira_metrics_family(u_char *p, u_char *last, const char *name,
    const char *type, const char *help)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


/* value / unit seconds, without trailing zeros: "0.005", "1", "2.5" */

static u_char *
ngx_http_feira_metrics_seconds(u_char *p, u_char *last, uint64_t value,
    uint64_t unit)
{
    uint64_t  frac, digit;

    p = ngx_slprintf(p, last, "%uL", value / unit);

    frac = value % unit;

    if (frac == 0) {
        return p;
    }

    if (p < last) {
        *p++ = '.';
    }

    while (frac && p < last) {
        unit /= 10;
        digit = frac / unit;
        *p++ = (u_char) ('0' + digit);
        frac -= digit * unit;
    }

    return p;
}


static u_char *
ngx_http_feira_metrics_routes(u_char *p, u_char *last,
    ngx_http_feira_metrics_main_conf_t *mmcf)
{
    ngx_uint_t                       i, j, n;
    ngx_msec_t                      *bounds;
    ngx_atomic_uint_t                count, v, msec;
    ngx_http_feira_metrics_node_t   *node;
    ngx_http_feira_metrics_route_t  *rt;

    rt = mmcf->routes.elts;
    bounds = mmcf->buckets->elts;
    n = mmcf->buckets->nelts;

    p = ngx_http_feira_metrics_family(p, last, "feira_http_requests_total",
            "counter",
            "HTTP requests by Feira module, route and status class.");

    for (i = 0; i < mmcf->routes.nelts; i++) {
        node = rt[i].node;

        for (j = 0; j < NGX_HTTP_FEIRA_METRICS_CLASSES; j++) {
            p = ngx_slprintf(p, last,
                             "feira_http_requests_total{module=\"%V\","
                             "route=\"%V\",status=\"%uixx\"} %uA\n",
                             &rt[i].module, &rt[i].route, j + 1,
                             node->status[j]);
        }
    }

    p = ngx_http_feira_metrics_family(p, last,
            "feira_http_request_duration_seconds", "histogram",
            "Time from the first byte of a request to its log phase.");

    for (i = 0; i < mmcf->routes.nelts; i++) {
        node = rt[i].node;
        count = 0;

        for (j = 0; j <= n; j++) {
            v = node->buckets[j];
            count += v;

            p = ngx_slprintf(p, last,
                             "feira_http_request_duration_seconds_bucket{"
                             "module=\"%V\",route=\"%V\",le=\"",
                             &rt[i].module, &rt[i].route);

            if (j < n) {
                p = ngx_http_feira_metrics_seconds(p, last, bounds[j], 1000);

            } else {
                p = ngx_slprintf(p, last, "+Inf");
            }

            p = ngx_slprintf(p, last, "\"} %uA\n", count);
        }

        msec = node->msec;

        p = ngx_slprintf(p, last,
                         "feira_http_request_duration_seconds_sum{"
                         "module=\"%V\",route=\"%V\"} %uA.%03uA\n"
                         "feira_http_request_duration_seconds_count{"
                         "module=\"%V\",route=\"%V\"} %uA\n",
                         &rt[i].module, &rt[i].route,
                         msec / 1000, msec % 1000,
                         &rt[i].module, &rt[i].route, count);
    }

    return p;
}


static u_char *
ngx_http_feira_metrics_stats(u_char *p, u_char *last,
    ngx_http_feira_metrics_shctx_t *sh)
{
    uint64_t            usec;
    ngx_uint_t          i, j;
    ngx_feira_stats_t  *s, sum;
    ngx_atomic_uint_t   count;

    /* counters: the sum over every slot, live or left by a dead worker */

    ngx_memzero(&sum, sizeof(ngx_feira_stats_t));

    for (i = 0; i < NGX_HTTP_FEIRA_METRICS_SLOTS; i++) {
        s = &sh->workers[i];

        sum.redis_reconnects += s->redis_reconnects;
        sum.kafka_produce_failures += s->kafka_produce_failures;
        sum.kafka_delivery_failures += s->kafka_delivery_failures;
        sum.kafka_outbox_saved += s->kafka_outbox_saved;
        sum.kafka_outbox_resent += s->kafka_outbox_resent;
        sum.kafka_outbox_lost += s->kafka_outbox_lost;
        sum.mongo_failures += s->mongo_failures;
        sum.mongo_timeouts += s->mongo_timeouts;
        sum.mongo_usec += s->mongo_usec;
        sum.ws_connections += s->ws_connections;
        sum.ws_opened += s->ws_opened;
        sum.ws_dropped += s->ws_dropped;
        sum.ws_messages_in += s->ws_messages_in;
        sum.ws_messages_out += s->ws_messages_out;

        for (j = 0; j <= NGX_FEIRA_STATS_MONGO_BUCKETS; j++) {
            sum.mongo_buckets[j] += s->mongo_buckets[j];
        }
    }

    p = ngx_http_feira_metrics_family(p, last, "feira_redis_reconnects_total",
            "counter",
            "Attempts to reconnect to Redis after a lost or failed "
            "connection.");
    p = ngx_slprintf(p, last, "feira_redis_reconnects_total %uA\n",
                     sum.redis_reconnects);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_kafka_produce_failures_total", "counter",
            "Kafka messages that the producer refused to queue.");
    p = ngx_slprintf(p, last, "feira_kafka_produce_failures_total %uA\n",
                     sum.kafka_produce_failures);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_kafka_delivery_failures_total", "counter",
            "Kafka messages whose delivery report was an error.");
    p = ngx_slprintf(p, last, "feira_kafka_delivery_failures_total %uA\n",
                     sum.kafka_delivery_failures);

    p = ngx_http_feira_metrics_family(p, last, "feira_kafka_outbox_total",
            "counter",
            "Kafka messages kept in the MongoDB outbox after a refusal "
            "(saved), produced again from it (resent), or lost because "
            "it could not be stored (lost).");
    p = ngx_slprintf(p, last,
                     "feira_kafka_outbox_total{outcome=\"saved\"} %uA\n"
                     "feira_kafka_outbox_total{outcome=\"resent\"} %uA\n"
                     "feira_kafka_outbox_total{outcome=\"lost\"} %uA\n",
                     sum.kafka_outbox_saved, sum.kafka_outbox_resent,
                     sum.kafka_outbox_lost);

    /* gauges of one worker each: the live slots */

    p = ngx_http_feira_metrics_family(p, last, "feira_kafka_queue_messages",
            "gauge",
            "Kafka messages queued in a worker's producer and not yet "
            "delivered.");

    for (i = 0; i < NGX_HTTP_FEIRA_METRICS_SLOTS; i++) {
        s = &sh->workers[i];

        if (s->pid) {
            p = ngx_slprintf(p, last,
                             "feira_kafka_queue_messages{pid=\"%uA\"} %uA\n",
                             s->pid, s->kafka_queue);
        }
    }

    p = ngx_http_feira_metrics_family(p, last, "feira_thread_pool_jobs",
            "gauge",
            "Blocking jobs (MongoDB calls) of a worker waiting for a pool "
            "thread or running in one.");

    for (i = 0; i < NGX_HTTP_FEIRA_METRICS_SLOTS; i++) {
        s = &sh->workers[i];

        if (s->pid) {
            p = ngx_slprintf(p, last,
                             "feira_thread_pool_jobs{pid=\"%uA\","
                             "state=\"queued\"} %A\n"
                             "feira_thread_pool_jobs{pid=\"%uA\","
                             "state=\"running\"} %A\n",
                             s->pid, (ngx_atomic_int_t) s->jobs_queued,
                             s->pid, (ngx_atomic_int_t) s->jobs_running);
        }
    }

    p = ngx_http_feira_metrics_family(p, last,
            "feira_mongo_command_duration_seconds", "histogram",
            "MongoDB commands, from mongoc's command monitoring.");

    count = 0;

    for (j = 0; j <= NGX_FEIRA_STATS_MONGO_BUCKETS; j++) {
        count += sum.mongo_buckets[j];

        p = ngx_slprintf(p, last,
                         "feira_mongo_command_duration_seconds_bucket{le=\"");

        if (j < NGX_FEIRA_STATS_MONGO_BUCKETS) {
            p = ngx_http_feira_metrics_seconds(p, last,
                                           ngx_feira_stats_mongo_bounds[j],
                                           1000000);

        } else {
            p = ngx_slprintf(p, last, "+Inf");
        }

        p = ngx_slprintf(p, last, "\"} %uA\n", count);
    }

    usec = sum.mongo_usec;

    p = ngx_slprintf(p, last,
                     "feira_mongo_command_duration_seconds_sum %uL.%06uL\n"
                     "feira_mongo_command_duration_seconds_count %uA\n",
                     usec / 1000000, usec % 1000000, count);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_mongo_command_failures_total", "counter",
            "MongoDB commands that failed: an error reply or a network "
            "error.");
    p = ngx_slprintf(p, last, "feira_mongo_command_failures_total %uA\n",
                     sum.mongo_failures);

    p = ngx_http_feira_metrics_family(p, last, "feira_mongo_timeouts_total",
            "counter",
            "MongoDB calls that got no answer: server selection timed out, "
            "or the socket timed out or broke.");
    p = ngx_slprintf(p, last, "feira_mongo_timeouts_total %uA\n",
                     sum.mongo_timeouts);

    p = ngx_http_feira_metrics_family(p, last, "feira_websocket_connections",
            "gauge", "Open WebSocket connections.");
    p = ngx_slprintf(p, last, "feira_websocket_connections %A\n",
                     (ngx_atomic_int_t) sum.ws_connections);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_websocket_connections_total", "counter",
            "WebSocket connections opened.");
    p = ngx_slprintf(p, last, "feira_websocket_connections_total %uA\n",
                     sum.ws_opened);

    p = ngx_http_feira_metrics_family(p, last, "feira_websocket_dropped_total",
            "counter",
            "WebSocket connections lost without a close handshake.");
    p = ngx_slprintf(p, last, "feira_websocket_dropped_total %uA\n",
                     sum.ws_dropped);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_websocket_messages_total", "counter",
            "WebSocket messages received (in) and sent (out).");
    p = ngx_slprintf(p, last,
                     "feira_websocket_messages_total{direction=\"in\"} %uA\n"
                     "feira_websocket_messages_total{direction=\"out\"} %uA\n",
                     sum.ws_messages_in, sum.ws_messages_out);

    return p;
}


static u_char *
ngx_http_feira_metrics_nginx(u_char *p, u_char *last)
{
#if (NGX_STAT_STUB)

    /* what stub_status shows, in the text format */

    p = ngx_http_feira_metrics_family(p, last, "feira_nginx_connections",
            "gauge", "Client connections of nginx by state.");
    p = ngx_slprintf(p, last,
                     "feira_nginx_connections{state=\"active\"} %uA\n"
                     "feira_nginx_connections{state=\"reading\"} %uA\n"
                     "feira_nginx_connections{state=\"writing\"} %uA\n"
                     "feira_nginx_connections{state=\"waiting\"} %uA\n",
                     *ngx_stat_active, *ngx_stat_reading,
                     *ngx_stat_writing, *ngx_stat_waiting);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_nginx_connections_accepted_total", "counter",
            "Client connections accepted by nginx.");
    p = ngx_slprintf(p, last, "feira_nginx_connections_accepted_total %uA\n",
                     *ngx_stat_accepted);

    p = ngx_http_feira_metrics_family(p, last,
            "feira_nginx_connections_handled_total", "counter",
            "Client connections handled by nginx.");
    p = ngx_slprintf(p, last, "feira_nginx_connections_handled_total %uA\n",
                     *ngx_stat_handled);

#endif

    return p;
}
