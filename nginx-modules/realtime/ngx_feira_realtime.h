/*
 * feira_realtime for other modules (the TCP ingest): the live location
 * pipeline.  Load ngx_http_feira_realtime_module.so before their module.
 */

#ifndef _NGX_FEIRA_REALTIME_H_INCLUDED_
#define _NGX_FEIRA_REALTIME_H_INCLUDED_


#include "ngx_feira_common.h"


typedef struct ngx_feira_rt_location_s  ngx_feira_rt_location_t;

/*
 * rc: NGX_OK, stored (and relayed when the provider has an active
 * request); NGX_BUSY, too soon after the provider's last one (the rate
 * limit); NGX_DECLINED, the store or Redis is down; NGX_ERROR.
 */
typedef void (*ngx_feira_rt_location_pt)(void *data, ngx_int_t rc);

/*
 * A provider's position; at_ms is when it was taken (0: now).  NGX_OK: the
 * handler runs once, later, unless the location is cancelled first;
 * NGX_DECLINED: Redis is down; NGX_ERROR.
 */
ngx_int_t ngx_feira_rt_location_submit(ngx_feira_rt_location_t **loc,
    ngx_str_t *provider, double lat, double lng, int64_t at_ms,
    ngx_feira_rt_location_pt handler, void *data);
/* its owner is gone: the handler will not run */
void ngx_feira_rt_location_cancel(ngx_feira_rt_location_t *loc);

/* latitude and longitude in range */
ngx_int_t ngx_feira_rt_location_valid(double lat, double lng);

/* feira_realtime is configured in this worker */
ngx_int_t ngx_feira_rt_ready(void);


#endif /* _NGX_FEIRA_REALTIME_H_INCLUDED_ */
