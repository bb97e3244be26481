/*
 * feira_services: types shared by the files of the services module.
 */

#ifndef _NGX_HTTP_FEIRA_SERVICES_MODULE_H_INCLUDED_
#define _NGX_HTTP_FEIRA_SERVICES_MODULE_H_INCLUDED_


#include "ngx_feira_common.h"
#include "ngx_feira_lifecycle.h"
#include "ngx_feira_matching.h"


#define NGX_FEIRA_SVC_CATEGORIES     1
#define NGX_FEIRA_SVC_OFFERINGS      2
#define NGX_FEIRA_SVC_PRESENCE       3
#define NGX_FEIRA_SVC_REQUESTS       4

#define NGX_FEIRA_SVC_TOPIC          "feira.requests"

/* MongoDB collections */
#define NGX_FEIRA_SVC_CATEGORIES_COLL   "categories"
#define NGX_FEIRA_SVC_OFFERINGS_COLL    "offerings"
#define NGX_FEIRA_SVC_REQUESTS_COLL     "requests"
#define NGX_FEIRA_SVC_CLAIMS_COLL       "request_transitions"

/*
 * Redis keys (docs/events.md): presence is common (NGX_FEIRA_PRESENCE_*,
 * written by feira_realtime); the offering mirror and the offer counters
 * are feira_services' own.
 */
#define NGX_FEIRA_SVC_KEY_OFFER      "feira:offer:"      /* + category */
#define NGX_FEIRA_SVC_KEY_OFFERS     "feira:offers"
#define NGX_FEIRA_SVC_KEY_RATING     "feira:rating"
#define NGX_FEIRA_SVC_KEY_REQUEST    "feira:request:"    /* + request id */

/* ngx_feira_svc_count_offers() */
#define NGX_FEIRA_SVC_OFFERED        "r"
#define NGX_FEIRA_SVC_ACCEPTED       "a"

#define NGX_FEIRA_SVC_SLUG_LEN       48
#define NGX_FEIRA_SVC_MAX_EVENTS     2
#define NGX_FEIRA_SVC_MAX_OFFERED    50
#define NGX_FEIRA_SVC_MAX_LIMIT      100
#define NGX_FEIRA_SVC_DEFAULT_LIMIT  20
#define NGX_FEIRA_SVC_SWEEP_BATCH    100


typedef struct {
    time_t                       presence_ttl;    /* online window */
    time_t                       request_ttl;
    time_t                       rating_ttl;      /* 0: always MongoDB */
    time_t                       relay_after;
    ngx_msec_t                   sweep_interval;
    ngx_uint_t                   offer_top;
    ngx_uint_t                   max_radius;      /* km */
    ngx_uint_t                   candidates;
    time_t                       request_cache;   /* 0: no cache */

    ngx_uint_t                   used;            /* some location serves */
    ngx_uint_t                   requests;        /* requests are served */
} ngx_http_feira_services_main_conf_t;


typedef struct {
    ngx_uint_t                   kind;
} ngx_http_feira_services_loc_conf_t;


typedef struct ngx_feira_svc_job_s  ngx_feira_svc_job_t;

/* ngx_feira_svc_request_load() */
typedef void (*ngx_feira_svc_loaded_pt)(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);


/*
 * One job of the thread pool, for every endpoint: inputs copied from the
 * request before it is posted, outputs read on the event loop once it is
 * done.  Nothing in it points into a pool the job would have to touch.
 */

struct ngx_feira_svc_job_s {
    ngx_http_feira_services_main_conf_t  *smcf;

    /* in */
    char                         user[25];
    char                         role[16];
    char                         id[NGX_FEIRA_SVC_SLUG_LEN + 1];
    char                         action[16];
    json_t                      *body;          /* the request's, read-only */
    int64_t                      now;           /* unix seconds */
    ngx_uint_t                   limit;
    char                         cursor[NGX_FEIRA_SVC_SLUG_LEN + 1];
    char                         category[NGX_FEIRA_SVC_SLUG_LEN + 1];
    char                         filter[32];    /* provider id, status */
    char                         filter2[32];   /* role */

    /* requests: what matching needs; at creation, the providers offered */
    ngx_feira_match_request_t    rq;
    char                       (*offered)[25];
    ngx_uint_t                   noffered;

    /* out */
    ngx_uint_t                   status;
    const char                  *detail;
    char                         current[16];   /* status, on a 409 */
    ngx_feira_errors_t           errs;
    json_t                      *result;        /* the answer, malloc()ed */
    json_t                      *cache;         /* the request, for Redis */

    /* the Redis mirror, after an offering changed or a provider went on */
    char                         profile[NGX_FEIRA_PROFILE_LEN];
    json_t                      *mirror;        /* {category: profile} */

    /* the events to publish, and the claim that records them */
    char                        *events[NGX_FEIRA_SVC_MAX_EVENTS];
    ngx_uint_t                   nevents;
    char                         claim[40];
    char                         key[25];       /* request id */
    char                         provider[25];  /* accepted by */
    unsigned                     was_offered:1;
    unsigned                     adopted:1;

    /* the event loop's only: a request being loaded */
    ngx_http_request_t          *request;
    ngx_feira_svc_loaded_pt      loaded;
};


/* one run of the sweep: the jobs it made, published on the event loop */
typedef struct {
    ngx_http_feira_services_main_conf_t  *smcf;
    int64_t                      now;
    ngx_feira_svc_job_t         *jobs;          /* calloc()ed */
    ngx_uint_t                   njobs;
    ngx_uint_t                   pending;
} ngx_feira_svc_sweep_t;


/* one candidate of a match, ranked */
typedef struct {
    char                         provider_id[25];
    ngx_feira_profile_t          profile;
    double                       distance_km;
    double                       rating;
    ngx_feira_score_t            score;
} ngx_feira_svc_match_t;


typedef void (*ngx_feira_svc_match_pt)(ngx_http_request_t *r, void *data,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n);


typedef struct {
    /* in */
    ngx_str_t                    category;
    ngx_feira_match_request_t    rq;
    ngx_uint_t                   limit;

    ngx_feira_svc_match_pt       handler;
    void                        *data;
} ngx_feira_svc_match_query_t;


extern ngx_module_t  ngx_http_feira_services_module;


/* ngx_http_feira_services_module.c: shared by the handlers */
ngx_feira_svc_job_t *ngx_feira_svc_job(ngx_http_request_t *r);
ngx_int_t ngx_feira_svc_path(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *sub);
ngx_int_t ngx_feira_svc_list_args(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
ngx_int_t ngx_feira_svc_run(ngx_http_request_t *r, ngx_feira_job_pt fn,
    ngx_feira_done_pt done, ngx_feira_svc_job_t *job);
ngx_int_t ngx_feira_svc_read(ngx_http_request_t *r, ngx_feira_body_pt handler,
    ngx_feira_svc_job_t *job);
void ngx_feira_svc_post(ngx_http_request_t *r, ngx_feira_job_pt fn,
    ngx_feira_done_pt done, ngx_feira_svc_job_t *job);
void ngx_feira_svc_done(ngx_http_request_t *r, void *data);
ngx_int_t ngx_feira_svc_adopt(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
ngx_int_t ngx_feira_svc_reply(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
ngx_int_t ngx_feira_svc_not_found(ngx_http_request_t *r);
ngx_int_t ngx_feira_svc_forbidden(ngx_http_request_t *r, const char *detail);
void ngx_feira_svc_invalid(ngx_http_request_t *r, ngx_feira_errors_t *errs);
ngx_int_t ngx_feira_svc_valid_slug(const char *s, size_t len);
ngx_int_t ngx_feira_svc_money(json_t *v, const char *name,
    ngx_feira_errors_t *errs);
ngx_int_t ngx_feira_svc_latlng(json_t *obj, const char *prefix,
    ngx_feira_errors_t *errs);

/* ngx_feira_services_categories.c */
ngx_int_t ngx_feira_svc_categories_handler(ngx_http_request_t *r);

/* ngx_feira_services_offerings.c */
ngx_int_t ngx_feira_svc_offerings_handler(ngx_http_request_t *r);
ngx_int_t ngx_feira_svc_offering_profile(const bson_t *doc, char *buf,
    size_t len);

/* ngx_feira_services_presence.c: the provider side of Redis */
ngx_int_t ngx_feira_svc_presence_handler(ngx_http_request_t *r);
void ngx_feira_svc_mirror_offer(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
void ngx_feira_svc_count_offers(const char *kind, char (*ids)[25],
    ngx_uint_t n);
void ngx_feira_svc_month_key(time_t t, int back, char *buf);

/* ngx_feira_services_candidates.c: matching over Redis */
ngx_int_t ngx_feira_svc_match(ngx_http_request_t *r,
    ngx_feira_svc_match_query_t *q);

/*
 * ngx_feira_services_access.c: who the caller of a job is to a request,
 * from the request as its client sees it (pure: any thread)
 */
ngx_uint_t ngx_feira_svc_relation(json_t *view, ngx_feira_svc_job_t *job);
ngx_uint_t ngx_feira_svc_visible(json_t *view, ngx_feira_svc_job_t *job,
    ngx_uint_t rel);
ngx_uint_t ngx_feira_svc_offered(json_t *view, const char *id);

/*
 * ngx_feira_services_cache.c: request documents in Redis.  load() answers
 * through "loaded" with job->result the request as its client sees it
 * (or job->status an error), from Redis or else from MongoDB; put() then
 * calls fn (if any) once, NGX_OK or not.
 */
typedef void (*ngx_feira_svc_cached_pt)(void *data);

ngx_int_t ngx_feira_svc_request_load(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job, ngx_feira_svc_loaded_pt loaded);
void ngx_feira_svc_cache_put(ngx_feira_svc_job_t *job,
    ngx_feira_svc_cached_pt fn, void *data);

/* ngx_feira_services_requests.c */
ngx_int_t ngx_feira_svc_requests_handler(ngx_http_request_t *r);

/* ngx_feira_services_events.c: Kafka, after MongoDB */
typedef void (*ngx_feira_svc_published_pt)(void *data, ngx_int_t rc);

ngx_int_t ngx_feira_svc_publish(ngx_feira_svc_job_t *job,
    ngx_feira_svc_published_pt handler, void *data);
char *ngx_feira_svc_event(const char *type, const char *event_id,
    int64_t now, const char *actor_id, const char *actor_role,
    json_t *data);

/* ngx_feira_services_store.c: jobs for the thread pool */
ngx_int_t ngx_feira_svc_indexes(mongoc_client_t *client);
void ngx_feira_svc_request_create_job(void *data);
void ngx_feira_svc_request_load_job(void *data);
void ngx_feira_svc_request_list_job(void *data);
void ngx_feira_svc_request_transition_job(void *data);
void ngx_feira_svc_transition(ngx_feira_svc_job_t *job,
    mongoc_client_t *client);
void ngx_feira_svc_sweep_job(void *data);

/* ngx_feira_services_bson.c: MongoDB helpers for the jobs */
json_t *ngx_feira_svc_bson_json(const bson_t *doc, const char *id_name,
    const char *const *skip);
bson_t *ngx_feira_svc_find_one(mongoc_collection_t *coll,
    const bson_t *filter, bson_error_t *error);
void ngx_feira_svc_unavailable(ngx_feira_svc_job_t *job, const char *what,
    const bson_error_t *error);
int64_t ngx_feira_svc_bson_int(const bson_t *doc, const char *path);
double ngx_feira_svc_bson_double(const bson_t *doc, const char *path);
const char *ngx_feira_svc_bson_str(const bson_t *doc, const char *path);
int ngx_feira_svc_bson_oid(const bson_t *doc, const char *path, char *hex);
int ngx_feira_svc_bson_value(const bson_t *reply, bson_t *value);
json_t *ngx_feira_svc_bson_view(const bson_t *doc, void *data);
void ngx_feira_svc_page(ngx_feira_svc_job_t *job, mongoc_collection_t *coll,
    const bson_t *filter, int sort, ngx_feira_page_view_pt view, void *data,
    const char *id_name, const char *what);

/* ngx_feira_services_sweep.c: expiry, outbox relay */
ngx_int_t ngx_feira_svc_sweep_init(ngx_cycle_t *cycle,
    ngx_http_feira_services_main_conf_t *smcf);
void ngx_feira_svc_sweep_exit(void);


#endif /* _NGX_HTTP_FEIRA_SERVICES_MODULE_H_INCLUDED_ */
