/*
 * feira_analytics: the provider dashboard and the marketplace summary,
 * read from the daily aggregates of the analytics worker; types shared by
 * its files.
 */

#ifndef _NGX_HTTP_FEIRA_ANALYTICS_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_ANALYTICS_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"


#define NGX_FEIRA_ANALYTICS_DEFAULT_DAYS  30


typedef struct {
    /* in */
    ngx_uint_t           summary;       /* else a provider's dashboard */
    char                 provider[25];
    char                 from[11];
    char                 to[11];
    time_t               from_t;        /* their UTC midnights */
    time_t               to_t;
    ngx_uint_t           csv;

    /* out */
    ngx_uint_t           status;
    json_t              *result;
    char                *text;          /* the CSV, malloc()ed */
    size_t               text_len;
} ngx_feira_analytics_job_t;


/* ngx_feira_analytics_range.c: ?from=&to= (pure) */
ngx_int_t ngx_feira_analytics_date(const u_char *s, size_t len,
    time_t *day);
void ngx_feira_analytics_day_str(time_t day, char buf[11]);

/* ngx_feira_analytics_store.c: jobs for the thread pool */
void ngx_feira_analytics_dashboard_job(void *data);
void ngx_feira_analytics_summary_job(void *data);

/* ngx_feira_analytics_csv.c: the CSV of a result, malloc()ed */
char *ngx_feira_analytics_dashboard_csv(json_t *result, size_t *len);
char *ngx_feira_analytics_summary_csv(json_t *result, size_t *len);


#endif /* _NGX_HTTP_FEIRA_ANALYTICS_MODULE_H_INCLUDED_ */
