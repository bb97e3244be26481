/*
 * feira_metrics: the types shared by the exporter's files.
 */

#ifndef _NGX_HTTP_FEIRA_METRICS_H_INCLUDED_
#define _NGX_HTTP_FEIRA_METRICS_H_INCLUDED_


#include "ngx_feira_common.h"


#define NGX_HTTP_FEIRA_METRICS_MAX_BUCKETS  32
#define NGX_HTTP_FEIRA_METRICS_SLOTS        128
#define NGX_HTTP_FEIRA_METRICS_CLASSES      5       /* 1xx .. 5xx */


/*
 * A route's counters in the shared zone.  Nodes are found again by name
 * (and bucket layout) after a reload, so counters survive it; the names
 * follow the counters in the same allocation.
 */

typedef struct {
    ngx_queue_t                       queue;
    uint32_t                          key;
    ngx_uint_t                        nbuckets;
    size_t                            name_len;
    ngx_atomic_t                      status[NGX_HTTP_FEIRA_METRICS_CLASSES];
    ngx_atomic_t                      msec;     /* sum of request times */
    ngx_atomic_t                      buckets[1];  /* nbuckets + 1 (+Inf) */
} ngx_http_feira_metrics_node_t;


typedef struct {
    ngx_queue_t                       routes;
    ngx_feira_stats_t                 workers[NGX_HTTP_FEIRA_METRICS_SLOTS];
} ngx_http_feira_metrics_shctx_t;


/* a route of the configuration; the label values are escaped already */
typedef struct {
    ngx_str_t                         module;
    ngx_str_t                         route;
    ngx_http_feira_metrics_node_t    *node;
} ngx_http_feira_metrics_route_t;


typedef struct {
    ngx_shm_zone_t                   *shm_zone;
    ngx_slab_pool_t                  *shpool;
    ngx_http_feira_metrics_shctx_t   *sh;
    ngx_array_t                      *buckets;    /* ngx_msec_t */
    ngx_array_t                       routes;
} ngx_http_feira_metrics_main_conf_t;


extern ngx_module_t  ngx_http_feira_metrics_module;


ngx_int_t ngx_http_feira_metrics_render(ngx_http_request_t *r,
    ngx_http_feira_metrics_main_conf_t *mmcf, ngx_buf_t **out);


#endif /* _NGX_HTTP_FEIRA_METRICS_H_INCLUDED_ */
