/*
 * feira_users: types shared by the files of the users module.
 */

#ifndef _NGX_HTTP_FEIRA_USERS_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_USERS_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_users_input.h"
#include "ngx_feira_users_bson.h"


#define NGX_FEIRA_USERS_EP_USERS     1
#define NGX_FEIRA_USERS_EP_REVIEWS   2

#define NGX_FEIRA_USERS_TOPIC        "feira.reviews"


typedef struct {
    ngx_uint_t                   used;
} ngx_http_feira_users_main_conf_t;


typedef struct {
    ngx_uint_t                   endpoint;
    ngx_str_t                    prefix;      /* feira_users: the location */
    ngx_uint_t                   comment_max;
    ngx_uint_t                   devices_max;
} ngx_http_feira_users_loc_conf_t;


/*
 * One job of the thread pool.  The "in" part is filled on the event loop
 * before the job is posted; the job fills "out" and touches nothing else.
 */

typedef struct {
    /* in */
    ngx_feira_users_route_e      route;
    ngx_uint_t                   method;
    bson_oid_t                   user;        /* the user of the path */
    bson_oid_t                   item;        /* a device or a request */
    bson_oid_t                   caller;
    const char                  *caller_role;
    bson_t                      *update;      /* PATCH, PUT preferences */
    const char                  *platform;
    const char                  *token;
    int64_t                      rating;
    const char                  *comment;
    ngx_feira_page_t             page;
    ngx_uint_t                   devices_max;
    int64_t                      now;         /* ms since the epoch */
    unsigned                     admin:1;
    unsigned                     self:1;
    unsigned                     provider_only:1;

    /* out */
    ngx_uint_t                   status;
    const char                  *detail;
    const char                  *field;       /* a 400 about one field */
    json_t                      *result;
    char                         detail_buf[96];
} ngx_feira_users_job_t;


extern ngx_module_t  ngx_http_feira_users_module;


/* ngx_feira_users_handlers.c: the feira_users location */
ngx_int_t ngx_feira_users_handler(ngx_http_request_t *r);
ngx_feira_users_job_t *ngx_feira_users_job(ngx_http_request_t *r);
ngx_int_t ngx_feira_users_oid(ngx_http_request_t *r, const char *s,
    size_t len, bson_oid_t *oid);
void ngx_feira_users_post(ngx_http_request_t *r, ngx_feira_job_pt job,
    ngx_feira_done_pt done, ngx_feira_users_job_t *ctx);
void ngx_feira_users_done(ngx_http_request_t *r, void *data);
ngx_int_t ngx_feira_users_result(ngx_http_request_t *r,
    ngx_feira_users_job_t *job);
void ngx_feira_users_invalid(ngx_http_request_t *r,
    ngx_feira_errors_t *errs);

/* ngx_feira_users_reviews.c: the feira_users_reviews location */
ngx_int_t ngx_feira_users_reviews_handler(ngx_http_request_t *r);

/* ngx_feira_users_store.c: jobs for profiles, preferences and devices */
void ngx_feira_users_profile_get_job(void *data);
void ngx_feira_users_profile_patch_job(void *data);
void ngx_feira_users_preferences_get_job(void *data);
void ngx_feira_users_preferences_put_job(void *data);
void ngx_feira_users_devices_list_job(void *data);
void ngx_feira_users_device_add_job(void *data);
void ngx_feira_users_device_delete_job(void *data);
void ngx_feira_users_store_error(ngx_feira_users_job_t *job,
    const char *what, const bson_error_t *error);
ngx_int_t ngx_feira_users_find_one(mongoc_collection_t *coll,
    const bson_t *filter, const bson_t *opts, bson_t *doc,
    bson_error_t *error);
ngx_int_t ngx_feira_users_indexes(mongoc_client_t *client);

/* ngx_feira_users_reviews_store.c: the reviews ledger */
void ngx_feira_users_review_create_job(void *data);
void ngx_feira_users_reviews_list_job(void *data);
ngx_int_t ngx_feira_users_rating(mongoc_client_t *client,
    const bson_oid_t *user, int64_t *count, int64_t *sum,
    bson_error_t *error);


#endif /* _NGX_HTTP_FEIRA_USERS_MODULE_H_INCLUDED_ */
