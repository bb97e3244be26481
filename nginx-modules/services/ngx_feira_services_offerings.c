/*
 * Offerings: what a provider sells in a category (one per category), with
 * its price, weekly availability and service radius.  MongoDB holds them;
 * every change is mirrored to Redis for matching (ngx_feira_services_
 * presence.c).
 */

#include "ngx_http_feira_services_module.h"


static void ngx_feira_svc_offering_create_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_feira_svc_offering_patch_body(ngx_http_request_t *r,
    json_t *body);
static ngx_int_t ngx_feira_svc_offering_validate(ngx_feira_svc_job_t *job,
    json_t *body, ngx_uint_t patch);
static void ngx_feira_svc_offering_windows(json_t *list,
    ngx_feira_errors_t *errs);
static void ngx_feira_svc_offering_changed(ngx_http_request_t *r,
    void *data);
static void ngx_feira_svc_offering_list_job(void *data);
static void ngx_feira_svc_offering_get_job(void *data);
static void ngx_feira_svc_offering_create_job(void *data);
static void ngx_feira_svc_offering_patch_job(void *data);
static void ngx_feira_svc_offering_delete_job(void *data);
static void ngx_feira_svc_offering_set(bson_t *doc, json_t *body);
static bson_t *ngx_feira_svc_offering_owned(ngx_feira_svc_job_t *job,
    mongoc_collection_t *coll, bson_oid_t *oid);
static void ngx_feira_svc_offering_view(ngx_feira_svc_job_t *job,
    const bson_t *doc, ngx_uint_t status);


static const char *const  ngx_feira_svc_pricing[] = {
    "hourly", "fixed", NULL
};


static const ngx_feira_field_t  ngx_feira_svc_offering_fields[] = {
    { "category", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_SVC_SLUG_LEN, 0, -1,
      NULL },
    { "title", NGX_FEIRA_STRING, 1, 1, 120, 0, -1, NULL },
    { "price", NGX_FEIRA_OBJECT, 1, 0, 0, 0, -1, NULL },
    { "pricing", NGX_FEIRA_ENUM, 1, 0, 0, 0, -1, ngx_feira_svc_pricing },
    { "availability", NGX_FEIRA_ARRAY, 1, 0, NGX_FEIRA_MAX_WINDOWS, 0, -1,
      NULL },
    { "service_radius_km", NGX_FEIRA_NUMBER, 1, 0, 0, 0, 20000, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


/* the category is not here: an offering does not move */
static const ngx_feira_field_t  ngx_feira_svc_offering_patch_fields[] = {
    { "title", NGX_FEIRA_STRING, 0, 1, 120, 0, -1, NULL },
    { "price", NGX_FEIRA_OBJECT, 0, 0, 0, 0, -1, NULL },
    { "pricing", NGX_FEIRA_ENUM, 0, 0, 0, 0, -1, ngx_feira_svc_pricing },
    { "availability", NGX_FEIRA_ARRAY, 0, 0, NGX_FEIRA_MAX_WINDOWS, 0, -1,
      NULL },
    { "service_radius_km", NGX_FEIRA_NUMBER, 0, 0, 0, 0, 20000, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_svc_window_fields[] = {
    { "day", NGX_FEIRA_INTEGER, 1, 0, 0, 0, 6, NULL },
    { "start", NGX_FEIRA_STRING, 1, 5, 5, 0, -1, NULL },
    { "end", NGX_FEIRA_STRING, 1, 5, 5, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


ngx_int_t
ngx_feira_svc_offerings_handler(ngx_http_request_t *r)
{
    ngx_str_t             id, sub, value;
    ngx_feira_svc_job_t  *job;

    if (ngx_feira_svc_path(r, &id, &sub) != NGX_OK || sub.len) {
        return ngx_feira_svc_not_found(r);
    }

    job = ngx_feira_svc_job(r);
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (id.len == 0) {

        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            if (ngx_feira_svc_list_args(r, job) != NGX_OK) {
                goto bad_args;
            }

            if (job->cursor[0]
                && !ngx_feira_is_object_id(job->cursor,
                                           ngx_strlen(job->cursor)))
            {
                ngx_feira_errors_add(&job->errs, "cursor", "is invalid");
                goto bad_args;
            }

            if (ngx_http_arg(r, (u_char *) "category", 8, &value) == NGX_OK)
            {
                if (!ngx_feira_svc_valid_slug((char *) value.data,
                                              value.len))
                {
                    ngx_feira_errors_add(&job->errs, "category",
                                         "is not a category slug");
                    goto bad_args;
                }

                ngx_memcpy(job->category, value.data, value.len);
            }

            if (ngx_http_arg(r, (u_char *) "provider", 8, &value) == NGX_OK)
            {
                if (!ngx_feira_is_object_id((char *) value.data, value.len)) {
                    ngx_feira_errors_add(&job->errs, "provider",
                                         "must be a 24-character hex id");
                    goto bad_args;
                }

                ngx_memcpy(job->filter, value.data, value.len);
            }

            return ngx_feira_svc_run(r, ngx_feira_svc_offering_list_job,
                                     ngx_feira_svc_done, job);
        }

        if (r->method == NGX_HTTP_POST) {
            if (ngx_strcmp(job->role, "provider") != 0) {
                return ngx_feira_svc_forbidden(r,
                                        "only providers create offerings");
            }

            return ngx_feira_svc_read(r, ngx_feira_svc_offering_create_body,
                                      job);
        }

        return ngx_feira_send_not_allowed(r, "GET, HEAD, POST");
    }

    if (!ngx_feira_is_object_id((char *) id.data, id.len)) {
        return ngx_feira_svc_not_found(r);
    }

    ngx_memcpy(job->id, id.data, id.len);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_feira_svc_run(r, ngx_feira_svc_offering_get_job,
                                 ngx_feira_svc_done, job);
    }

    if (r->method == NGX_HTTP_PATCH) {
        return ngx_feira_svc_read(r, ngx_feira_svc_offering_patch_body, job);
    }

    if (r->method == NGX_HTTP_DELETE) {
        return ngx_feira_svc_run(r, ngx_feira_svc_offering_delete_job,
                                 ngx_feira_svc_offering_changed, job);
    }

    return ngx_feira_send_not_allowed(r, "GET, HEAD, PATCH, DELETE");

bad_args:

    return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                  "invalid query arguments", &job->errs);
}


static void
ngx_feira_svc_offering_create_body(ngx_http_request_t *r, json_t *body)
{
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_svc_offering_validate(job, body, 0) != NGX_OK) {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    job->body = body;

    ngx_feira_svc_post(r, ngx_feira_svc_offering_create_job,
                       ngx_feira_svc_offering_changed, job);
}


static void
ngx_feira_svc_offering_patch_body(ngx_http_request_t *r, json_t *body)
{
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_svc_offering_validate(job, body, 1) != NGX_OK) {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    job->body = body;

    ngx_feira_svc_post(r, ngx_feira_svc_offering_patch_job,
                       ngx_feira_svc_offering_changed, job);
}


static ngx_int_t
ngx_feira_svc_offering_validate(ngx_feira_svc_job_t *job, json_t *body,
    ngx_uint_t patch)
{
    json_t              *v;
    double               radius;
    ngx_feira_errors_t  *errs;

    errs = &job->errs;

    if (patch && json_is_object(body)
        && json_object_get(body, "category") != NULL)
    {
        /* a clearer word than "unknown field" */
        ngx_feira_errors_add(errs, "category",
                             "cannot be changed: delete the offering and "
                             "create another");
        json_object_del(body, "category");
    }

    if (ngx_feira_validate_object(body, patch
                                        ? ngx_feira_svc_offering_patch_fields
                                        : ngx_feira_svc_offering_fields,
                                  errs)
        != 0 || errs->n)
    {
        return NGX_ERROR;
    }

    if (patch && json_object_size(body) == 0) {
        ngx_feira_errors_add(errs, "", "nothing to change");
        return NGX_ERROR;
    }

    v = json_object_get(body, "category");

    if (v && !ngx_feira_svc_valid_slug(json_string_value(v),
                                       json_string_length(v)))
    {
        ngx_feira_errors_add(errs, "category", "is not a known category");
    }

    v = json_object_get(body, "price");

    if (v) {
        (void) ngx_feira_svc_money(v, "price", errs);
    }

    v = json_object_get(body, "availability");

    if (v) {
        ngx_feira_svc_offering_windows(v, errs);
    }

    v = json_object_get(body, "service_radius_km");

    if (v) {
        radius = json_number_value(v);

        if (radius <= 0 || radius > (double) job->smcf->max_radius) {
            ngx_feira_errors_add(errs, "service_radius_km",
                                 "must be above 0 and at most the "
                                 "configured maximum");
        }
    }

    return errs->n ? NGX_ERROR : NGX_OK;
}


static void
ngx_feira_svc_offering_windows(json_t *list, ngx_feira_errors_t *errs)
{
    int                  start, end;
    size_t               i, k;
    json_t              *w, *s, *e;
    ngx_feira_errors_t   inner;
    char                 name[64];

    json_array_foreach(list, i, w) {

        ngx_memzero(&inner, sizeof(ngx_feira_errors_t));

        if (ngx_feira_validate_object(w, ngx_feira_svc_window_fields, &inner)
            != 0)
        {
            for (k = 0; k < inner.n; k++) {
                ngx_snprintf((u_char *) name, sizeof(name) - 1,
                             "availability[%uz]%s%s%Z", i,
                             inner.items[k].field[0] ? "." : "",
                             inner.items[k].field);
                name[sizeof(name) - 1] = '\0';
                ngx_feira_errors_add(errs, name, inner.items[k].message);
            }

            continue;
        }

        s = json_object_get(w, "start");
        e = json_object_get(w, "end");

        start = ngx_feira_parse_hhmm(json_string_value(s),
                                     json_string_length(s), 0);
        end = ngx_feira_parse_hhmm(json_string_value(e),
                                   json_string_length(e), 1);

        if (start < 0 || end < 0) {
            ngx_snprintf((u_char *) name, sizeof(name) - 1,
                         "availability[%uz].%s%Z", i,
                         start < 0 ? "start" : "end");
            ngx_feira_errors_add(errs, name,
                                 "must be HH:MM (an end may be 24:00)");
            continue;
        }

        if (end <= start) {
            ngx_snprintf((u_char *) name, sizeof(name) - 1,
                         "availability[%uz].end%Z", i);
            ngx_feira_errors_add(errs, name, "must be after start");
        }
    }
}


/*
 * After a change in MongoDB, the Redis mirror, then the answer; a failed
 * mirror is healed when the provider next goes online.
 */

static void
ngx_feira_svc_offering_changed(ngx_http_request_t *r, void *data)
{
    ngx_feira_svc_job_t  *job = data;

    if (job->status >= NGX_HTTP_BAD_REQUEST || job->category[0] == '\0') {
        ngx_http_finalize_request(r, ngx_feira_svc_reply(r, job));
        return;
    }

    ngx_feira_svc_mirror_offer(r, job);
}


/* the profile string that matching reads from Redis (thread-safe) */

ngx_int_t
ngx_feira_svc_offering_profile(const bson_t *doc, char *buf, size_t len)
{
    int                   start, end;
    bson_iter_t           it, arr, win;
    const char           *currency, *pricing, *s;
    ngx_feira_profile_t   p;

    ngx_memzero(&p, sizeof(ngx_feira_profile_t));

    if (!ngx_feira_svc_bson_oid(doc, "_id", p.offering_id)) {
        return NGX_ERROR;
    }

    currency = ngx_feira_svc_bson_str(doc, "price.currency");
    pricing = ngx_feira_svc_bson_str(doc, "pricing");

    if (currency == NULL || ngx_strlen(currency) != 3 || pricing == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p.currency, currency, 4);
    p.amount = ngx_feira_svc_bson_int(doc, "price.amount");
    p.hourly = (ngx_strcmp(pricing, "hourly") == 0);
    p.radius_km = ngx_feira_svc_bson_double(doc, "service_radius_km");

    if (bson_iter_init_find(&it, doc, "availability")
        && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr))
    {
        while (bson_iter_next(&arr) && p.nwindows < NGX_FEIRA_MAX_WINDOWS) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr)
                || !bson_iter_recurse(&arr, &win))
            {
                continue;
            }

            start = -1;
            end = -1;

            while (bson_iter_next(&win)) {
                if (BSON_ITER_HOLDS_UTF8(&win)) {
                    s = bson_iter_utf8(&win, NULL);

                    if (ngx_strcmp(bson_iter_key(&win), "start") == 0) {
                        start = ngx_feira_parse_hhmm(s, ngx_strlen(s), 0);

                    } else if (ngx_strcmp(bson_iter_key(&win), "end") == 0) {
                        end = ngx_feira_parse_hhmm(s, ngx_strlen(s), 1);
                    }

                } else if (ngx_strcmp(bson_iter_key(&win), "day") == 0
                           && BSON_ITER_HOLDS_NUMBER(&win))
                {
                    p.windows[p.nwindows].day =
                                        (uint8_t) bson_iter_as_int64(&win);
                }
            }

            if (start < 0 || end <= start || p.windows[p.nwindows].day > 6) {
                continue;
            }

            p.windows[p.nwindows].start = (uint16_t) start;
            p.windows[p.nwindows].end = (uint16_t) end;
            p.nwindows++;
        }
    }

    return ngx_feira_profile_format(&p, buf, len) ? NGX_OK : NGX_ERROR;
}


/* the jobs: they run in a pool thread */

static void
ngx_feira_svc_offering_list_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter;
    bson_oid_t            oid;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);

    filter = bson_new();

    if (job->category[0]) {
        BSON_APPEND_UTF8(filter, "category", job->category);
    }

    if (job->filter[0]) {
        bson_oid_init_from_string(&oid, job->filter);
        BSON_APPEND_OID(filter, "provider_id", &oid);
    }

    if (job->cursor[0]) {
        bson_oid_init_from_string(&oid, job->cursor);
        BCON_APPEND(filter, "_id", "{", "$lt", BCON_OID(&oid), "}");
    }

    ngx_feira_svc_page(job, coll, filter, -1, ngx_feira_svc_bson_view, "id",
                       "id", "list offerings");

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_offering_get_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter, *doc;
    bson_oid_t            oid;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);

    bson_oid_init_from_string(&oid, job->id);
    filter = BCON_NEW("_id", BCON_OID(&oid));
    doc = ngx_feira_svc_find_one(coll, filter, &error);

    if (doc != NULL) {
        job->result = ngx_feira_svc_bson_json(doc, "id", NULL);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(doc);

    } else if (error.code) {
        ngx_feira_svc_unavailable(job, "find offering", &error);

    } else {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such offering";
    }

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_offering_create_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *doc, *filter, *category;
    bson_oid_t            oid, provider;
    const char           *slug;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll, *categories;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    doc = NULL;

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);
    categories = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                              NGX_FEIRA_SVC_CATEGORIES_COLL);

    /* the unique (provider_id, category) index decides duplicates */
    if (ngx_feira_svc_indexes(client) != NGX_OK) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        job->detail = "the service store is unavailable, try again";
        goto done;
    }

    slug = json_string_value(json_object_get(job->body, "category"));

    filter = BCON_NEW("_id", BCON_UTF8(slug));
    category = ngx_feira_svc_find_one(categories, filter, &error);
    bson_destroy(filter);

    if (category == NULL) {
        if (error.code) {
            ngx_feira_svc_unavailable(job, "find category", &error);

        } else {
            job->status = NGX_HTTP_BAD_REQUEST;
            job->detail = "the request is invalid";
            ngx_feira_errors_add(&job->errs, "category",
                                 "is not a known category");
        }

        goto done;
    }

    bson_destroy(category);

    bson_oid_init(&oid, NULL);
    bson_oid_init_from_string(&provider, job->user);

    doc = BCON_NEW("_id", BCON_OID(&oid),
                   "provider_id", BCON_OID(&provider),
                   "category", BCON_UTF8(slug));

    ngx_feira_svc_offering_set(doc, job->body);

    BSON_APPEND_DATE_TIME(doc, "created_at", job->now * 1000);
    BSON_APPEND_DATE_TIME(doc, "updated_at", job->now * 1000);

    if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error)) {

        if (error.code == 11000) {
            job->status = NGX_HTTP_CONFLICT;
            job->detail = "you already have an offering in this category: "
                          "change that one";

        } else {
            ngx_feira_svc_unavailable(job, "insert offering", &error);
        }

        goto done;
    }

    ngx_feira_svc_offering_view(job, doc, NGX_HTTP_CREATED);

done:

    if (doc) {
        bson_destroy(doc);
    }

    mongoc_collection_destroy(coll);
    mongoc_collection_destroy(categories);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_offering_patch_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *doc, *filter, *update, set, reply, value;
    bson_oid_t            oid;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);

    doc = ngx_feira_svc_offering_owned(job, coll, &oid);
    if (doc == NULL) {
        goto done;
    }

    bson_destroy(doc);

    filter = BCON_NEW("_id", BCON_OID(&oid));
    update = bson_new();

    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    ngx_feira_svc_offering_set(&set, job->body);
    BSON_APPEND_DATE_TIME(&set, "updated_at", job->now * 1000);
    bson_append_document_end(update, &set);

    if (!mongoc_collection_find_and_modify(coll, filter, NULL, update, NULL,
                                           false, false, true, &reply,
                                           &error))
    {
        ngx_feira_svc_unavailable(job, "update offering", &error);

    } else if (ngx_feira_svc_bson_value(&reply, &value)) {
        ngx_feira_svc_offering_view(job, &value, NGX_HTTP_OK);

    } else {
        /* deleted in between */
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such offering";
    }

    bson_destroy(&reply);
    bson_destroy(filter);
    bson_destroy(update);

done:

    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_offering_delete_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *doc, *filter;
    bson_oid_t            oid;
    const char           *category;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_OFFERINGS_COLL);

    doc = ngx_feira_svc_offering_owned(job, coll, &oid);
    if (doc == NULL) {
        goto done;
    }

    filter = BCON_NEW("_id", BCON_OID(&oid));

    if (mongoc_collection_delete_one(coll, filter, NULL, NULL, &error)) {
        category = ngx_feira_svc_bson_str(doc, "category");

        if (category) {
            ngx_cpystrn((u_char *) job->category, (u_char *) category,
                        sizeof(job->category));
        }

        /* an empty profile takes it out of the mirror */
        job->profile[0] = '\0';
        job->status = NGX_HTTP_NO_CONTENT;

    } else {
        ngx_feira_svc_unavailable(job, "delete offering", &error);
    }

    bson_destroy(filter);
    bson_destroy(doc);

done:

    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


/* the offering, if it exists and the caller owns it; else the status */

static bson_t *
ngx_feira_svc_offering_owned(ngx_feira_svc_job_t *job,
    mongoc_collection_t *coll, bson_oid_t *oid)
{
    bson_t        *filter, *doc;
    bson_error_t   error;
    char           owner[25];

    bson_oid_init_from_string(oid, job->id);
    filter = BCON_NEW("_id", BCON_OID(oid));
    doc = ngx_feira_svc_find_one(coll, filter, &error);
    bson_destroy(filter);

    if (doc == NULL) {
        if (error.code) {
            ngx_feira_svc_unavailable(job, "find offering", &error);

        } else {
            job->status = NGX_HTTP_NOT_FOUND;
            job->detail = "no such offering";
        }

        return NULL;
    }

    if (!ngx_feira_svc_bson_oid(doc, "provider_id", owner)
        || ngx_strcmp(owner, job->user) != 0)
    {
        bson_destroy(doc);
        job->status = NGX_HTTP_FORBIDDEN;
        job->detail = "only its owner may change an offering";
        return NULL;
    }

    return doc;
}


/* the fields of a validated body, appended to a document or a $set */

static void
ngx_feira_svc_offering_set(bson_t *doc, json_t *body)
{
    size_t   i;
    json_t  *v, *w;
    bson_t   price, list, win;
    char     key[16];

    v = json_object_get(body, "title");
    if (v) {
        BSON_APPEND_UTF8(doc, "title", json_string_value(v));
    }

    v = json_object_get(body, "price");
    if (v) {
        BSON_APPEND_DOCUMENT_BEGIN(doc, "price", &price);
        BSON_APPEND_INT64(&price, "amount",
                          json_integer_value(json_object_get(v, "amount")));
        BSON_APPEND_UTF8(&price, "currency",
                         json_string_value(json_object_get(v, "currency")));
        bson_append_document_end(doc, &price);
    }

    v = json_object_get(body, "pricing");
    if (v) {
        BSON_APPEND_UTF8(doc, "pricing", json_string_value(v));
    }

    v = json_object_get(body, "availability");
    if (v) {
        BSON_APPEND_ARRAY_BEGIN(doc, "availability", &list);

        json_array_foreach(v, i, w) {
            ngx_snprintf((u_char *) key, sizeof(key) - 1, "%uz%Z", i);

            BSON_APPEND_DOCUMENT_BEGIN(&list, key, &win);
            BSON_APPEND_INT32(&win, "day", (int32_t) json_integer_value(
                                               json_object_get(w, "day")));
            BSON_APPEND_UTF8(&win, "start", json_string_value(
                                                json_object_get(w, "start")));
            BSON_APPEND_UTF8(&win, "end", json_string_value(
                                              json_object_get(w, "end")));
            bson_append_document_end(&list, &win);
        }

        bson_append_array_end(doc, &list);
    }

    v = json_object_get(body, "service_radius_km");
    if (v) {
        BSON_APPEND_DOUBLE(doc, "service_radius_km", json_number_value(v));
    }
}


static void
ngx_feira_svc_offering_view(ngx_feira_svc_job_t *job, const bson_t *doc,
    ngx_uint_t status)
{
    const char  *category;

    category = ngx_feira_svc_bson_str(doc, "category");

    if (category == NULL
        || ngx_feira_svc_offering_profile(doc, job->profile,
                                          sizeof(job->profile))
           != NGX_OK)
    {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    ngx_cpystrn((u_char *) job->category, (u_char *) category,
                sizeof(job->category));

    job->result = ngx_feira_svc_bson_json(doc, "id", NULL);
    job->status = job->result ? status : NGX_HTTP_INTERNAL_SERVER_ERROR;
}
