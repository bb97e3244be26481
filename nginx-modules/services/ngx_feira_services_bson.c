/*
 * MongoDB helpers of the services jobs: documents as the API shows them
 * (ids as 24 hex, dates as RFC 3339), single reads, readable fields.
 *
 * Everything here runs in pool threads: no nginx pool, no event.
 */

#include "ngx_http_feira_services_module.h"


static json_t *ngx_feira_svc_bson_elt(bson_iter_t *it, int depth);
static json_t *ngx_feira_svc_bson_container(bson_iter_t *it, int array,
    int depth);


json_t *
ngx_feira_svc_bson_json(const bson_t *doc, const char *id_name,
    const char *const *skip)
{
    json_t             *obj, *v;
    bson_iter_t         it;
    const char         *key;
    const char *const  *s;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    if (!bson_iter_init(&it, doc)) {
        json_decref(obj);
        return NULL;
    }

    while (bson_iter_next(&it)) {
        key = bson_iter_key(&it);

        for (s = skip; s != NULL && *s != NULL; s++) {
            if (ngx_strcmp(*s, key) == 0) {
                break;
            }
        }

        if (s != NULL && *s != NULL) {
            continue;
        }

        v = ngx_feira_svc_bson_elt(&it, 0);
        if (v == NULL) {
            continue;
        }

        if (ngx_strcmp(key, "_id") == 0) {
            key = id_name;
        }

        if (json_object_set_new(obj, key, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }

    return obj;
}


static json_t *
ngx_feira_svc_bson_elt(bson_iter_t *it, int depth)
{
    char     buf[32];
    int64_t  ms;

    switch (bson_iter_type(it)) {

    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), buf);
        return json_string(buf);

    case BSON_TYPE_UTF8:
        return json_string(bson_iter_utf8(it, NULL));

    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));

    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));

    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));

    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));

    case BSON_TYPE_NULL:
        return json_null();

    case BSON_TYPE_DATE_TIME:
        ms = bson_iter_date_time(it);

        if (ngx_feira_format_rfc3339(ms >= 0 ? ms / 1000 : 0, buf,
                                     sizeof(buf))
            == 0)
        {
            return NULL;
        }

        return json_string(buf);

    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (depth > 8) {
            return NULL;
        }

        return ngx_feira_svc_bson_container(it,
                                   bson_iter_type(it) == BSON_TYPE_ARRAY,
                                   depth + 1);

    default:
        /* nothing else is stored by the module */
        return NULL;
    }
}


static json_t *
ngx_feira_svc_bson_container(bson_iter_t *it, int array, int depth)
{
    json_t       *c, *v;
    bson_iter_t   child;

    if (!bson_iter_recurse(it, &child)) {
        return NULL;
    }

    c = array ? json_array() : json_object();
    if (c == NULL) {
        return NULL;
    }

    while (bson_iter_next(&child)) {
        v = ngx_feira_svc_bson_elt(&child, depth);
        if (v == NULL) {
            continue;
        }

        if ((array ? json_array_append_new(c, v)
                   : json_object_set_new(c, bson_iter_key(&child), v))
            != 0)
        {
            json_decref(c);
            return NULL;
        }
    }

    return c;
}


/* a copy of the first document found, or NULL with error->code 0 if none */

bson_t *
ngx_feira_svc_find_one(mongoc_collection_t *coll, const bson_t *filter,
    bson_error_t *error)
{
    bson_t           *opts, *copy;
    const bson_t     *doc;
    mongoc_cursor_t  *cursor;

    ngx_memzero(error, sizeof(bson_error_t));

    opts = BCON_NEW("limit", BCON_INT64(1));
    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    bson_destroy(opts);

    copy = NULL;

    if (mongoc_cursor_next(cursor, &doc)) {
        copy = bson_copy(doc);

    } else {
        (void) mongoc_cursor_error(cursor, error);
    }

    mongoc_cursor_destroy(cursor);

    return copy;
}


void
ngx_feira_svc_unavailable(ngx_feira_svc_job_t *job, const char *what,
    const bson_error_t *error)
{
    /* the driver's words go to the log, never to the client */
    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "feira: services: %s: %s", what, error->message);

    job->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    job->detail = "the service store is unavailable, try again";
}


int64_t
ngx_feira_svc_bson_int(const bson_t *doc, const char *path)
{
    bson_iter_t  root, it;

    if (!bson_iter_init(&root, doc)
        || !bson_iter_find_descendant(&root, path, &it))
    {
        return 0;
    }

    switch (bson_iter_type(&it)) {

    case BSON_TYPE_INT32:
        return bson_iter_int32(&it);

    case BSON_TYPE_INT64:
        return bson_iter_int64(&it);

    case BSON_TYPE_DOUBLE:
        return (int64_t) bson_iter_double(&it);

    case BSON_TYPE_DATE_TIME:
        return bson_iter_date_time(&it) / 1000;

    default:
        return 0;
    }
}


double
ngx_feira_svc_bson_double(const bson_t *doc, const char *path)
{
    bson_iter_t  root, it;

    if (!bson_iter_init(&root, doc)
        || !bson_iter_find_descendant(&root, path, &it))
    {
        return 0.0;
    }

    return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_double(&it) : 0.0;
}


/* the string at the path, valid as long as the document, or NULL */

const char *
ngx_feira_svc_bson_str(const bson_t *doc, const char *path)
{
    bson_iter_t  root, it;

    if (!bson_iter_init(&root, doc)
        || !bson_iter_find_descendant(&root, path, &it)
        || !BSON_ITER_HOLDS_UTF8(&it))
    {
        return NULL;
    }

    return bson_iter_utf8(&it, NULL);
}


int
ngx_feira_svc_bson_oid(const bson_t *doc, const char *path, char *hex)
{
    bson_iter_t  root, it;

    hex[0] = '\0';

    if (!bson_iter_init(&root, doc)
        || !bson_iter_find_descendant(&root, path, &it)
        || !BSON_ITER_HOLDS_OID(&it))
    {
        return 0;
    }

    bson_oid_to_string(bson_iter_oid(&it), hex);

    return 1;
}


/* the "value" of a findAndModify reply, if a document was found */

int
ngx_feira_svc_bson_value(const bson_t *reply, bson_t *value)
{
    uint32_t        len;
    bson_iter_t     it;
    const uint8_t  *buf;

    if (!bson_iter_init_find(&it, reply, "value")
        || !BSON_ITER_HOLDS_DOCUMENT(&it))
    {
        return 0;
    }

    bson_iter_document(&it, &len, &buf);

    return bson_init_static(value, buf, len);
}


/* a document of a list as the API shows it; data: the name of its _id */

json_t *
ngx_feira_svc_bson_view(const bson_t *doc, void *data)
{
    return ngx_feira_svc_bson_json(doc, data, NULL);
}


/*
 * A page of a list job, sorted by _id ("sort" 1 or -1), into job->result
 * and job->status.
 */

void
ngx_feira_svc_page(ngx_feira_svc_job_t *job, mongoc_collection_t *coll,
    const bson_t *filter, int sort, ngx_feira_page_view_pt view, void *data,
    const char *id_name, const char *what)
{
    bson_t           *opts;
    ngx_int_t         rc;
    bson_error_t      error;
    mongoc_cursor_t  *cursor;

    opts = BCON_NEW("sort", "{", "_id", BCON_INT32(sort), "}",
                    "limit", BCON_INT64((int64_t) job->limit + 1));

    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);

    rc = ngx_feira_mongo_page(cursor, job->limit, view, data, id_name,
                              &job->result, &error);

    if (rc == NGX_OK) {
        job->status = NGX_HTTP_OK;

    } else if (rc == NGX_DECLINED) {
        ngx_feira_svc_unavailable(job, what, &error);

    } else {
        job->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
}
