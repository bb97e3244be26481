/*
 * feira_users_reviews: POST .../requests/{id}/reviews, and the
 * review.created event on feira.reviews once the review is stored.
 */

#include "ngx_http_feira_users_module.h"


static void ngx_feira_users_review_body(ngx_http_request_t *r, json_t *body);
static void ngx_feira_users_review_done(ngx_http_request_t *r, void *data);
static ngx_int_t ngx_feira_users_publish(ngx_http_request_t *r,
    ngx_feira_users_job_t *job);
static void ngx_feira_users_review_answer(ngx_http_request_t *r,
    void *data);


ngx_int_t
ngx_feira_users_reviews_handler(ngx_http_request_t *r)
{
    size_t                  len;
    const char             *id;
    ngx_feira_errors_t      errs;
    ngx_feira_users_job_t  *job;

    if (r->method != NGX_HTTP_POST) {
        return ngx_feira_send_not_allowed(r, "POST");
    }

    /* the location's pattern is configuration: the id is before the end */
    if (ngx_feira_users_parent_segment((char *) r->uri.data, r->uri.len,
                                       &id, &len)
        != 0)
    {
        return ngx_feira_send_problem(r, NGX_HTTP_NOT_FOUND,
                                      "no such resource", NULL);
    }

    job = ngx_feira_users_job(r);
    if (job == NULL) {
        return ngx_feira_send_problem(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      NULL, NULL);
    }

    if (ngx_feira_users_oid(r, id, len, &job->item) != NGX_OK) {
        ngx_memzero(&errs, sizeof(ngx_feira_errors_t));
        ngx_feira_errors_add(&errs, "request_id",
                             "must be a 24-character hex id");

        return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                      "the path names an invalid id", &errs);
    }

    ngx_http_set_ctx(r, job, ngx_http_feira_users_module);

    return ngx_feira_read_json_body(r, ngx_feira_users_review_body);
}


static void
ngx_feira_users_review_body(ngx_http_request_t *r, json_t *body)
{
    json_t                           *comment;
    ngx_feira_errors_t                errs;
    ngx_feira_users_job_t            *job;
    ngx_http_feira_users_loc_conf_t  *ulcf;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_users_module);
    ulcf = ngx_http_get_module_loc_conf(r, ngx_http_feira_users_module);

    ngx_memzero(&errs, sizeof(ngx_feira_errors_t));

    if (ngx_feira_users_review_check(body, ulcf->comment_max, &errs) != 0) {
        ngx_feira_users_invalid(r, &errs);
        return;
    }

    job->rating = (int64_t) json_integer_value(json_object_get(body,
                                                               "rating"));

    comment = json_object_get(body, "comment");
    job->comment = json_is_string(comment) ? json_string_value(comment) : "";

    ngx_feira_users_post(r, ngx_feira_users_review_create_job,
                         ngx_feira_users_review_done, job);
}


static void
ngx_feira_users_review_done(ngx_http_request_t *r, void *data)
{
    ngx_feira_users_job_t  *job = data;

    if (job->status == NGX_HTTP_CREATED && job->result
        && ngx_feira_users_publish(r, job) == NGX_OK)
    {
        /* the answer once the event is kept */
        return;
    }

    ngx_feira_users_review_answer(r, job);
}


static void
ngx_feira_users_review_answer(ngx_http_request_t *r, void *data)
{
    ngx_feira_users_job_t  *job = data;

    ngx_http_finalize_request(r, ngx_feira_users_result(r, job));
}


/*
 * review.created, keyed by the reviewee (docs/events.md).  The event id is
 * the review id: the event of one review is one event, even if sent twice.
 * The review is stored already; the answer waits for the event to be kept
 * in the outbox (ngx_feira_event_publish), not for Kafka.  NGX_OK: the
 * answer is on its way.
 */

static ngx_int_t
ngx_feira_users_publish(ngx_http_request_t *r, ngx_feira_users_job_t *job)
{
    char                  *payload;
    json_t                *review, *event;
    ngx_int_t              rc;
    const char            *key;
    ngx_feira_identity_t  *id;

    review = job->result;
    id = ngx_feira_identity(r);

    event = json_pack("{s:O, s:s, s:O, s:{s:s%, s:s%},"
                      " s:{s:O, s:O, s:O, s:O, s:O, s:O}}",
                      "id", json_object_get(review, "id"),
                      "type", "review.created",
                      "occurred_at", json_object_get(review, "created_at"),
                      "actor",
                          "id", (char *) id->id.data, id->id.len,
                          "role", (char *) id->role.data, id->role.len,
                      "data",
                          "review_id", json_object_get(review, "id"),
                          "request_id", json_object_get(review, "request_id"),
                          "reviewer_id",
                              json_object_get(review, "reviewer_id"),
                          "reviewee_id",
                              json_object_get(review, "reviewee_id"),
                          "rating", json_object_get(review, "rating"),
                          "comment", json_object_get(review, "comment"));
    if (event == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: users: review.created not built");
        return NGX_ERROR;
    }

    payload = json_dumps(event, JSON_COMPACT);
    key = json_string_value(json_object_get(review, "reviewee_id"));

    if (payload == NULL || key == NULL) {
        rc = NGX_ERROR;

    } else {
        rc = ngx_feira_event_publish(r, NGX_FEIRA_USERS_TOPIC, key,
                                     ngx_strlen(key), payload,
                                     ngx_strlen(payload),
                                     ngx_feira_users_review_answer, job);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "feira: users: review.created of review %s "
                      "not published",
                      json_string_value(json_object_get(review, "id")));
    }

    free(payload);
    json_decref(event);

    return rc;
}
