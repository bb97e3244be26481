/*
 * Service requests over HTTP: creation (offered at once to the best
 * matches), reads, the ranked matches, and the lifecycle's transitions.
 */

#include "ngx_http_feira_services_module.h"

#include <math.h>


static ngx_int_t ngx_feira_svc_requests_list(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static void ngx_feira_svc_request_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_svc_request_matched(ngx_http_request_t *r, void *data,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n);
static void ngx_feira_svc_request_created(ngx_http_request_t *r, void *data);
static void ngx_feira_svc_transition_done(ngx_http_request_t *r,
    void *data);
static void ngx_feira_svc_published(void *data, ngx_int_t rc);
static void ngx_feira_svc_request_show(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static ngx_int_t ngx_feira_svc_request_access(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static void ngx_feira_svc_request_cached(void *data);
static void ngx_feira_svc_matches_loaded(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);
static void ngx_feira_svc_matches_ranked(ngx_http_request_t *r, void *data,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n);
static json_t *ngx_feira_svc_match_json(ngx_feira_svc_match_t *m);
static ngx_int_t ngx_feira_svc_location_header(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);


static const ngx_feira_field_t  ngx_feira_svc_request_fields[] = {
    { "category", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_SVC_SLUG_LEN, 0, -1,
      NULL },
    { "description", NGX_FEIRA_STRING, 1, 1, 2000, 0, -1, NULL },
    { "location", NGX_FEIRA_OBJECT, 1, 0, 0, 0, -1, NULL },
    { "scheduled_at", NGX_FEIRA_STRING, 0, 1, 40, 0, -1, NULL },
    { "budget", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


ngx_int_t
ngx_feira_svc_requests_handler(ngx_http_request_t *r)
{
    ngx_str_t             id, sub;
    ngx_feira_svc_job_t  *job;

    if (ngx_feira_svc_path(r, &id, &sub) != NGX_OK) {
        return ngx_feira_svc_not_found(r);
    }

    job = ngx_feira_svc_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, job, ngx_http_feira_services_module);

    if (id.len == 0) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return ngx_feira_svc_requests_list(r, job);
        }

        if (r->method == NGX_HTTP_POST) {
            if (ngx_strcmp(job->role, "client") != 0) {
                return ngx_feira_svc_forbidden(r,
                                         "only clients create requests");
            }

            return ngx_feira_read_json_body(r, ngx_feira_svc_request_body);
        }

        return ngx_feira_send_not_allowed(r, "GET, HEAD, POST");
    }

    if (!ngx_feira_is_object_id((char *) id.data, id.len)) {
        return ngx_feira_svc_not_found(r);
    }

    ngx_memcpy(job->id, id.data, id.len);

    if (sub.len == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_feira_send_not_allowed(r, "GET, HEAD");
        }

        return ngx_feira_svc_request_load(r, job, ngx_feira_svc_request_show);
    }

    if (sub.len == 7 && ngx_strncmp(sub.data, "matches", 7) == 0) {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_feira_send_not_allowed(r, "GET, HEAD");
        }

        if (ngx_feira_svc_list_args(r, job) != NGX_OK || job->cursor[0]) {
            if (job->cursor[0]) {
                ngx_feira_errors_add(&job->errs, "cursor",
                                     "matches are not paginated");
            }

            return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid query arguments",
                                          &job->errs);
        }

        return ngx_feira_svc_request_load(r, job,
                                          ngx_feira_svc_matches_loaded);
    }

    /* the actions of the lifecycle table that people take */

    if (sub.len < sizeof(job->action)) {
        ngx_memcpy(job->action, sub.data, sub.len);
    }

    if (job->action[0] == '\0'
        || !(ngx_feira_lifecycle_actors(job->action)
             & ~NGX_FEIRA_ACTOR_SYSTEM))
    {
        return ngx_feira_svc_not_found(r);
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_feira_send_not_allowed(r, "POST");
    }

    return ngx_feira_svc_run(r, ngx_feira_svc_request_transition_job,
                             ngx_feira_svc_transition_done, job);
}


static ngx_int_t
ngx_feira_svc_requests_list(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_str_t  value;

    if (ngx_feira_svc_list_args(r, job) != NGX_OK) {
        goto invalid;
    }

    if (job->cursor[0]
        && !ngx_feira_is_object_id(job->cursor, ngx_strlen(job->cursor)))
    {
        ngx_feira_errors_add(&job->errs, "cursor", "is invalid");
        goto invalid;
    }

    if (ngx_http_arg(r, (u_char *) "role", 4, &value) == NGX_OK) {
        if (!((value.len == 6 && ngx_strncmp(value.data, "client", 6) == 0)
              || (value.len == 8
                  && ngx_strncmp(value.data, "provider", 8) == 0)))
        {
            ngx_feira_errors_add(&job->errs, "role",
                                 "must be client or provider");
            goto invalid;
        }

        ngx_memcpy(job->filter2, value.data, value.len);
    }

    if (ngx_http_arg(r, (u_char *) "status", 6, &value) == NGX_OK) {
        if (value.len >= sizeof(job->filter)) {
            ngx_feira_errors_add(&job->errs, "status", "is not a status");
            goto invalid;
        }

        ngx_memcpy(job->filter, value.data, value.len);

        if (!ngx_feira_lifecycle_is_state(job->filter)) {
            ngx_feira_errors_add(&job->errs, "status", "is not a status");
            goto invalid;
        }
    }

    return ngx_feira_svc_run(r, ngx_feira_svc_request_list_job,
                             ngx_feira_svc_done, job);

invalid:

    return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                  "invalid query arguments", &job->errs);
}


static void
ngx_feira_svc_request_body(ngx_http_request_t *r, json_t *body)
{
    json_t                       *v;
    int64_t                       when;
    ngx_int_t                     rc;
    ngx_feira_svc_job_t          *job;
    ngx_feira_svc_match_query_t  *q;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_validate_object(body, ngx_feira_svc_request_fields,
                                  &job->errs)
        != 0)
    {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    v = json_object_get(body, "category");

    if (!ngx_feira_svc_valid_slug(json_string_value(v),
                                  json_string_length(v)))
    {
        ngx_feira_errors_add(&job->errs, "category",
                             "is not a known category");

    } else {
        ngx_memcpy(job->category, json_string_value(v),
                   json_string_length(v));
    }

    (void) ngx_feira_svc_latlng(json_object_get(body, "location"),
                                "location", &job->errs);

    v = json_object_get(body, "budget");

    if (v) {
        (void) ngx_feira_svc_money(v, "budget", &job->errs);
    }

    v = json_object_get(body, "scheduled_at");

    if (v) {
        if (ngx_feira_parse_rfc3339(json_string_value(v),
                                    json_string_length(v), &when)
            != 0)
        {
            ngx_feira_errors_add(&job->errs, "scheduled_at",
                                 "must be an RFC 3339 time, such as "
                                 "2026-12-01T10:15:00Z");

        } else if (when < job->now - 300 || when > job->now + 366 * 86400) {
            ngx_feira_errors_add(&job->errs, "scheduled_at",
                                 "must be in the coming year");

        } else {
            job->rq.scheduled_at = when;
        }
    }

    if (job->errs.n) {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    job->body = body;

    v = json_object_get(body, "location");
    job->rq.lat = json_number_value(json_object_get(v, "lat"));
    job->rq.lng = json_number_value(json_object_get(v, "lng"));

    v = json_object_get(body, "budget");

    if (v) {
        job->rq.has_budget = 1;
        job->rq.budget = json_integer_value(json_object_get(v, "amount"));
        ngx_memcpy(job->rq.currency,
                   json_string_value(json_object_get(v, "currency")), 3);
    }

    if (job->smcf->offer_top == 0) {
        ngx_feira_svc_post(r, ngx_feira_svc_request_create_job,
                           ngx_feira_svc_request_created, job);
        return;
    }

    /* the best matches are offered the request as it is created */

    q = ngx_pcalloc(r->pool, sizeof(ngx_feira_svc_match_query_t));
    if (q == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->category.data = (u_char *) job->category;
    q->category.len = ngx_strlen(job->category);
    q->rq = job->rq;
    q->limit = job->smcf->offer_top;
    q->handler = ngx_feira_svc_request_matched;
    q->data = job;

    rc = ngx_feira_svc_match(r, q);

    if (rc == NGX_OK) {
        return;
    }

    /* no matching now: the request is created, offered to nobody */
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "feira: services: matching unavailable, request created "
                  "without offers");

    ngx_feira_svc_post(r, ngx_feira_svc_request_create_job,
                       ngx_feira_svc_request_created, job);
}


static void
ngx_feira_svc_request_matched(ngx_http_request_t *r, void *data,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n)
{
    ngx_feira_svc_job_t  *job = data;

    ngx_uint_t  i;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "feira: services: matching failed, request created "
                      "without offers");
        n = 0;
    }

    if (n) {
        job->offered = ngx_palloc(r->pool, n * 25);
        if (job->offered == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (i = 0; i < n; i++) {
            ngx_memcpy(job->offered[i], items[i].provider_id, 25);
        }

        job->noffered = n;
    }

    ngx_feira_svc_post(r, ngx_feira_svc_request_create_job,
                       ngx_feira_svc_request_created, job);
}


static void
ngx_feira_svc_request_created(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_job_t  *job = data;

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_CREATED) {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    ngx_feira_svc_count_offers(NGX_FEIRA_SVC_OFFERED, job->offered,
                               job->noffered);

    if (ngx_feira_svc_location_header(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* readers find it in Redis before anyone hears of it */
    ngx_feira_svc_cache_put(job, ngx_feira_svc_request_cached, r);
}


/* the change is in the cache: its events, then the answer */

static void
ngx_feira_svc_request_cached(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_connection_t     *c;
    ngx_feira_svc_job_t  *job;

    c = r->connection;
    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_svc_publish(job, ngx_feira_svc_published, r) != NGX_OK) {
        /* stored with its events: the relay publishes them */
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_feira_svc_transition_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_job_t  *job = data;

    char  (*provider)[25];

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    if (job->was_offered) {
        provider = &job->provider;
        ngx_feira_svc_count_offers(NGX_FEIRA_SVC_ACCEPTED, provider, 1);
    }

    ngx_feira_svc_cache_put(job, ngx_feira_svc_request_cached, r);
}




/*
 * The answer waits for the broker: the next transition of this request
 * can only be asked for after it, so the log keeps their order.
 */

static void
ngx_feira_svc_published(void *data, ngx_int_t rc)
{
    ngx_http_request_t  *r = data;

    ngx_connection_t     *c;
    ngx_feira_svc_job_t  *job;

    c = r->connection;
    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
    ngx_http_run_posted_requests(c);
}


/* GET /v1/requests/{id}: offered_to is its client's and admins' */

static void
ngx_feira_svc_request_show(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_uint_t  rel;

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rel = ngx_feira_svc_request_access(r, job);

    if (job->status == NGX_HTTP_OK
        && !(rel & NGX_FEIRA_ACTOR_CLIENT)
        && ngx_strcmp(job->role, "admin") != 0)
    {
        (void) json_object_del(job->result, "offered_to");
    }

    ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
}


/*
 * A loaded request: who asks (NGX_FEIRA_ACTOR_* bits); a request that is
 * not theirs to see is a 404 in job->status, whether it exists is nobody
 * else's business.
 */

static ngx_int_t
ngx_feira_svc_request_access(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    ngx_uint_t  rel;

    if (job->status != NGX_HTTP_OK) {
        return 0;
    }

    rel = ngx_feira_svc_relation(job->result, job);

    if (!ngx_feira_svc_visible(job->result, job, rel)) {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such request";
    }

    return rel;
}


/* GET /v1/requests/{id}/matches: what matching needs of the request */

static void
ngx_feira_svc_matches_loaded(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    json_t                       *v;
    ngx_int_t                     rc;
    ngx_uint_t                    rel;
    const char                   *s;
    ngx_feira_svc_match_query_t  *q;

    if (ngx_feira_svc_adopt(r, job) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rel = ngx_feira_svc_request_access(r, job);

    if (job->status == NGX_HTTP_OK
        && !(rel & NGX_FEIRA_ACTOR_CLIENT)
        && ngx_strcmp(job->role, "admin") != 0)
    {
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "only the requesting client sees the matches";
    }

    if (job->status != NGX_HTTP_OK) {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    v = json_object_get(job->result, "category");

    if (!ngx_feira_svc_valid_slug(json_string_value(v),
                                  json_string_length(v)))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(job->category, json_string_value(v), json_string_length(v));

    v = json_object_get(job->result, "location");
    job->rq.lat = json_number_value(json_object_get(v, "lat"));
    job->rq.lng = json_number_value(json_object_get(v, "lng"));

    v = json_object_get(job->result, "scheduled_at");

    if (v != NULL
        && ngx_feira_parse_rfc3339(json_string_value(v),
                                   json_string_length(v),
                                   &job->rq.scheduled_at)
           != 0)
    {
        job->rq.scheduled_at = 0;
    }

    v = json_object_get(job->result, "budget");
    s = json_string_value(json_object_get(v, "currency"));

    if (s != NULL && ngx_strlen(s) == 3) {
        job->rq.has_budget = 1;
        job->rq.budget = json_integer_value(json_object_get(v, "amount"));
        ngx_memcpy(job->rq.currency, s, 4);
    }

    q = ngx_pcalloc(r->pool, sizeof(ngx_feira_svc_match_query_t));
    if (q == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q->category.data = (u_char *) job->category;
    q->category.len = ngx_strlen(job->category);
    q->rq = job->rq;
    q->limit = job->limit;
    q->handler = ngx_feira_svc_matches_ranked;
    q->data = job;

    rc = ngx_feira_svc_match(r, q);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "matching is unavailable, try again",
                                   NULL));
    }
}


static void
ngx_feira_svc_matches_ranked(ngx_http_request_t *r, void *data,
    ngx_int_t rc, ngx_feira_svc_match_t *items, ngx_uint_t n)
{
    json_t      *body, *list, *item;
    ngx_uint_t   i;

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
            ngx_feira_send_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "matching is unavailable, try again",
                                   NULL));
        return;
    }

    list = json_array();
    body = json_pack("{s:o}", "items", list);

    if (body == NULL || ngx_feira_json_cleanup_add(r->pool, body) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < n; i++) {
        item = ngx_feira_svc_match_json(&items[i]);

        if (item == NULL || json_array_append_new(list, item) != 0) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_finalize_request(r, ngx_feira_send_json(r, NGX_HTTP_OK, body));
}


static json_t *
ngx_feira_svc_match_json(ngx_feira_svc_match_t *m)
{
#define ngx_feira_svc_round(x, k)  (round((x) * (k)) / (k))

    return json_pack("{s:s, s:s, s:f, s:f, s:{s:I, s:s}, s:s, s:f,"
                     " s:{s:f, s:f, s:f, s:f}}",
                     "provider_id", m->provider_id,
                     "offering_id", m->profile.offering_id,
                     "distance_km",
                         ngx_feira_svc_round(m->distance_km, 1000.0),
                     "rating_avg", ngx_feira_svc_round(m->rating, 100.0),
                     "price",
                         "amount", (json_int_t) m->profile.amount,
                         "currency", m->profile.currency,
                     "pricing", m->profile.hourly ? "hourly" : "fixed",
                     "score", ngx_feira_svc_round(m->score.score, 10000.0),
                     "score_parts",
                         "distance",
                             ngx_feira_svc_round(m->score.distance, 10000.0),
                         "rating",
                             ngx_feira_svc_round(m->score.rating, 10000.0),
                         "price",
                             ngx_feira_svc_round(m->score.price, 10000.0),
                         "acceptance",
                             ngx_feira_svc_round(m->score.acceptance,
                                                 10000.0));

#undef ngx_feira_svc_round
}


/* Location: <this location>/<id> */

static ngx_int_t
ngx_feira_svc_location_header(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    u_char                    *p;
    size_t                     len;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    len = clcf->name.len + 1 + 24;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (clcf->name.len && clcf->name.data[clcf->name.len - 1] == '/') {
        len = ngx_sprintf(p, "%V%s", &clcf->name, job->key) - p;

    } else {
        len = ngx_sprintf(p, "%V/%s", &clcf->name, job->key) - p;
    }

    return ngx_feira_add_header(r, "Location", p, len) ? NGX_OK : NGX_ERROR;
}
