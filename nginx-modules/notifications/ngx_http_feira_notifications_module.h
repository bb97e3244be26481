/*
 * feira_notifications: the in-app inbox; types shared by its files.
 */

#ifndef _NGX_HTTP_FEIRA_NOTIFICATIONS_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_NOTIFICATIONS_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"


#define NGX_FEIRA_INBOX_MAX_IDS  100


typedef struct {
    /* in */
    char                 user[25];
    ngx_feira_page_t     page;
    ngx_uint_t           unread_only;
    char                 up_to[25];
    char                 ids[NGX_FEIRA_INBOX_MAX_IDS][25];
    ngx_uint_t           nids;

    /* out */
    ngx_uint_t           status;
    json_t              *result;
} ngx_feira_inbox_job_t;


void ngx_feira_inbox_list_job(void *data);
void ngx_feira_inbox_read_job(void *data);


#endif /* _NGX_HTTP_FEIRA_NOTIFICATIONS_MODULE_H_INCLUDED_ */
