/*
 * Categories: anyone reads them, an admin writes them.  The slug is the
 * document's _id (a lookup by _id is the one every store serves fast).
 */

#include "ngx_http_feira_services_module.h"


static void ngx_feira_svc_category_create_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_feira_svc_category_patch_body(ngx_http_request_t *r,
    json_t *body);
static void ngx_feira_svc_category_list_job(void *data);
static void ngx_feira_svc_category_get_job(void *data);
static void ngx_feira_svc_category_create_job(void *data);
static void ngx_feira_svc_category_patch_job(void *data);
static void ngx_feira_svc_category_delete_job(void *data);
static ngx_int_t ngx_feira_svc_category_admin(ngx_http_request_t *r,
    ngx_feira_svc_job_t *job);


static const ngx_feira_field_t  ngx_feira_svc_category_fields[] = {
    { "slug", NGX_FEIRA_STRING, 1, 1, NGX_FEIRA_SVC_SLUG_LEN, 0, -1, NULL },
    { "name", NGX_FEIRA_STRING, 1, 1, 100, 0, -1, NULL },
    { "description", NGX_FEIRA_STRING, 0, 0, 1000, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


static const ngx_feira_field_t  ngx_feira_svc_category_patch_fields[] = {
    { "name", NGX_FEIRA_STRING, 0, 1, 100, 0, -1, NULL },
    { "description", NGX_FEIRA_STRING, 0, 0, 1000, 0, -1, NULL },
    { NULL, 0, 0, 0, 0, 0, 0, NULL }
};


ngx_int_t
ngx_feira_svc_categories_handler(ngx_http_request_t *r)
{
    ngx_str_t             id, sub;
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
                return ngx_feira_send_problem(r, NGX_HTTP_BAD_REQUEST,
                                              "invalid list arguments",
                                              &job->errs);
            }

            return ngx_feira_svc_run(r, ngx_feira_svc_category_list_job,
                                     ngx_feira_svc_done, job);
        }

        if (r->method == NGX_HTTP_POST) {
            if (ngx_feira_svc_category_admin(r, job) != NGX_OK) {
                return ngx_feira_svc_forbidden(r,
                                    "only an admin may change categories");
            }

            return ngx_feira_svc_read(r, ngx_feira_svc_category_create_body,
                                      job);
        }

        return ngx_feira_send_not_allowed(r, "GET, HEAD, POST");
    }

    if (!ngx_feira_svc_valid_slug((char *) id.data, id.len)) {
        return ngx_feira_svc_not_found(r);
    }

    ngx_memcpy(job->id, id.data, id.len);

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_feira_svc_run(r, ngx_feira_svc_category_get_job,
                                 ngx_feira_svc_done, job);
    }

    if (!(r->method & (NGX_HTTP_PATCH|NGX_HTTP_DELETE))) {
        return ngx_feira_send_not_allowed(r, "GET, HEAD, PATCH, DELETE");
    }

    if (ngx_feira_svc_category_admin(r, job) != NGX_OK) {
        return ngx_feira_svc_forbidden(r,
                                       "only an admin may change categories");
    }

    if (r->method == NGX_HTTP_PATCH) {
        return ngx_feira_svc_read(r, ngx_feira_svc_category_patch_body, job);
    }

    return ngx_feira_svc_run(r, ngx_feira_svc_category_delete_job,
                             ngx_feira_svc_done, job);
}


/*
 * Writes need an admin identity, set by "feira_auth_require admin" on the
 * location that serves them (conf/nginx.conf routes writes there).
 */

static ngx_int_t
ngx_feira_svc_category_admin(ngx_http_request_t *r, ngx_feira_svc_job_t *job)
{
    return ngx_strcmp(job->role, "admin") == 0 ? NGX_OK : NGX_DECLINED;
}


static void
ngx_feira_svc_category_create_body(ngx_http_request_t *r, json_t *body)
{
    json_t               *slug;
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_validate_object(body, ngx_feira_svc_category_fields,
                                  &job->errs)
        != 0)
    {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    slug = json_object_get(body, "slug");

    if (!ngx_feira_svc_valid_slug(json_string_value(slug),
                                  json_string_length(slug)))
    {
        ngx_feira_errors_add(&job->errs, "slug",
                             "must be lowercase letters, digits and "
                             "hyphens, not starting with a hyphen");
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    job->body = body;

    ngx_feira_svc_post(r, ngx_feira_svc_category_create_job,
                       ngx_feira_svc_done, job);
}


static void
ngx_feira_svc_category_patch_body(ngx_http_request_t *r, json_t *body)
{
    ngx_feira_svc_job_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_feira_services_module);

    if (ngx_feira_validate_object(body, ngx_feira_svc_category_patch_fields,
                                  &job->errs)
        != 0)
    {
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    if (json_object_size(body) == 0) {
        ngx_feira_errors_add(&job->errs, "", "nothing to change");
        ngx_feira_svc_invalid(r, &job->errs);
        return;
    }

    job->body = body;

    ngx_feira_svc_post(r, ngx_feira_svc_category_patch_job,
                       ngx_feira_svc_done, job);
}


/* the jobs: they run in a pool thread */

static void
ngx_feira_svc_category_list_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CATEGORIES_COLL);

    if (job->cursor[0]) {
        filter = BCON_NEW("_id", "{", "$gt", BCON_UTF8(job->cursor), "}");

    } else {
        filter = bson_new();
    }

    /* by slug, A to Z */
    ngx_feira_svc_page(job, coll, filter, 1, ngx_feira_svc_bson_view, "slug",
                       "slug", "list categories");

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_category_get_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter, *doc;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CATEGORIES_COLL);

    filter = BCON_NEW("_id", BCON_UTF8(job->id));
    doc = ngx_feira_svc_find_one(coll, filter, &error);

    if (doc != NULL) {
        job->result = ngx_feira_svc_bson_json(doc, "slug", NULL);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        bson_destroy(doc);

    } else if (error.code) {
        ngx_feira_svc_unavailable(job, "find category", &error);

    } else {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such category";
    }

    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_category_create_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *doc;
    bson_error_t          error;
    const char           *description;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CATEGORIES_COLL);

    description = json_string_value(json_object_get(job->body,
                                                    "description"));

    doc = BCON_NEW("_id", BCON_UTF8(json_string_value(
                                  json_object_get(job->body, "slug"))),
                   "name", BCON_UTF8(json_string_value(
                                  json_object_get(job->body, "name"))),
                   "description", BCON_UTF8(description ? description : ""),
                   "created_at", BCON_DATE_TIME(job->now * 1000),
                   "updated_at", BCON_DATE_TIME(job->now * 1000));

    if (mongoc_collection_insert_one(coll, doc, NULL, NULL, &error)) {
        job->result = ngx_feira_svc_bson_json(doc, "slug", NULL);
        job->status = job->result ? NGX_HTTP_CREATED
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (error.code == 11000) {
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "a category with this slug exists";

    } else {
        ngx_feira_svc_unavailable(job, "insert category", &error);
    }

    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_category_patch_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    json_t               *v;
    bson_t               *filter, *update, set, reply, value;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CATEGORIES_COLL);

    filter = BCON_NEW("_id", BCON_UTF8(job->id));
    update = bson_new();

    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);

    v = json_object_get(job->body, "name");
    if (v) {
        BSON_APPEND_UTF8(&set, "name", json_string_value(v));
    }

    v = json_object_get(job->body, "description");
    if (v) {
        BSON_APPEND_UTF8(&set, "description", json_string_value(v));
    }

    BSON_APPEND_DATE_TIME(&set, "updated_at", job->now * 1000);
    bson_append_document_end(update, &set);

    if (!mongoc_collection_find_and_modify(coll, filter, NULL, update, NULL,
                                           false, false, true, &reply,
                                           &error))
    {
        ngx_feira_svc_unavailable(job, "update category", &error);

    } else if (ngx_feira_svc_bson_value(&reply, &value)) {
        job->result = ngx_feira_svc_bson_json(&value, "slug", NULL);
        job->status = job->result ? NGX_HTTP_OK
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such category";
    }

    bson_destroy(&reply);
    bson_destroy(filter);
    bson_destroy(update);
    mongoc_collection_destroy(coll);
    ngx_feira_mongo_push(client);
}


static void
ngx_feira_svc_category_delete_job(void *data)
{
    ngx_feira_svc_job_t  *job = data;

    bson_t               *filter, *used, reply;
    bson_error_t          error;
    mongoc_client_t      *client;
    mongoc_collection_t  *coll, *offerings;

    client = ngx_feira_mongo_pop();
    if (client == NULL) {
        job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        return;
    }

    coll = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                        NGX_FEIRA_SVC_CATEGORIES_COLL);
    offerings = mongoc_client_get_collection(client, ngx_feira_mongo_db(),
                                             NGX_FEIRA_SVC_OFFERINGS_COLL);

    /* a category still offered would leave offerings pointing nowhere */
    filter = BCON_NEW("category", BCON_UTF8(job->id));
    used = ngx_feira_svc_find_one(offerings, filter, &error);
    bson_destroy(filter);

    bson_init(&reply);

    if (used != NULL) {
        bson_destroy(used);
        job->status = NGX_HTTP_CONFLICT;
        job->detail = "the category still has offerings";
        goto done;
    }

    if (error.code) {
        ngx_feira_svc_unavailable(job, "find offerings", &error);
        goto done;
    }

    filter = BCON_NEW("_id", BCON_UTF8(job->id));

    if (!mongoc_collection_delete_one(coll, filter, NULL, &reply, &error)) {
        ngx_feira_svc_unavailable(job, "delete category", &error);

    } else if (ngx_feira_svc_bson_int(&reply, "deletedCount") == 0) {
        job->status = NGX_HTTP_NOT_FOUND;
        job->detail = "no such category";

    } else {
        job->status = NGX_HTTP_NO_CONTENT;
    }

    bson_destroy(filter);

done:

    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    mongoc_collection_destroy(offerings);
    ngx_feira_mongo_push(client);
}
